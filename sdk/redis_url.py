"""The Redis URL forms every command and the SDK accept (SPEC §11), checked in one place.

``redis://`` and ``rediss://`` (and redis-py's ``unix://``) name one server. The Cluster
(``redis+cluster://``, ``rediss+cluster://``) and Sentinel (``redis+sentinel://``) forms
are recognised but not served yet: their clients need the protocol core's Cluster work
(docs/protocol.md, "Redis Cluster"). Anything else is a one-line configuration error
rather than a traceback from deep inside redis-py.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from sdk.errors import ConfigurationError

SINGLE = frozenset({"redis", "rediss", "unix"})
NOT_YET = frozenset({"redis+cluster", "rediss+cluster", "redis+sentinel"})


def check_redis_url(url: str) -> str:
    """``url`` when it is a form Celeriac serves; ConfigurationError otherwise."""
    scheme = urlsplit(url).scheme.lower()
    if scheme in SINGLE:
        return url
    if scheme in NOT_YET:
        raise ConfigurationError(f"{scheme}:// URLs are not supported yet: {url!r}")
    raise ConfigurationError(f"unsupported Redis URL {url!r}: use redis://, rediss:// or unix://")
