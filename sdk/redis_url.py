"""The Redis URL forms every command and the SDK accept (SPEC §11), checked in one place.

``redis://`` and ``rediss://`` (and redis-py's ``unix://``) name one server.
``redis+cluster://[user:password@]host:port[,host:port…][/0][?option=value…]`` (and
``rediss+cluster://``, over TLS) name a Redis Cluster by any of its nodes: the client
finds the others. Sentinel (``redis+sentinel://``) is recognised but not served yet.
Anything else is a one-line configuration error rather than a traceback from deep inside
redis-py. ``sdk/clients.py`` turns a checked URL into a client.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from sdk.errors import ConfigurationError

SINGLE = frozenset({"redis", "rediss", "unix"})
CLUSTER = frozenset({"redis+cluster", "rediss+cluster"})
NOT_YET = frozenset({"redis+sentinel"})
DEFAULT_PORT = 6379


@dataclass(frozen=True, slots=True)
class ClusterURL:
    """A Cluster URL taken apart: redis-py's URL of its first node (credentials, TLS and
    options, which every node shares) and every node named, as (host, port)."""

    first: str
    nodes: tuple[tuple[str, int], ...]


def is_cluster_url(url: str | None) -> bool:
    return url is not None and urlsplit(url).scheme.lower() in CLUSTER


def check_redis_url(url: str) -> str:
    """``url`` when it is a form Celeriac serves; ConfigurationError otherwise."""
    scheme = urlsplit(url).scheme.lower()
    if scheme in SINGLE:
        return url
    if scheme in CLUSTER:
        split_cluster_url(url)
        return url
    if scheme in NOT_YET:
        raise ConfigurationError(f"{scheme}:// URLs are not supported yet: {url!r}")
    raise ConfigurationError(
        f"unsupported Redis URL {url!r}: use redis://, rediss://, unix:// or redis+cluster://"
    )


def split_cluster_url(url: str) -> ClusterURL:
    """The nodes of a ``redis+cluster://`` or ``rediss+cluster://`` URL."""
    parts = urlsplit(url)
    userinfo, at, hosts = parts.netloc.rpartition("@")
    nodes = tuple(_node(url, host) for host in hosts.split(","))
    if parts.path.strip("/") not in ("", "0"):
        raise ConfigurationError(f"a Redis Cluster has only database 0: {url!r}")
    scheme = "rediss" if parts.scheme.lower() == "rediss+cluster" else "redis"
    host, port = nodes[0]
    netloc = f"{userinfo}{at}{f'[{host}]' if ':' in host else host}:{port}"
    return ClusterURL(urlunsplit((scheme, netloc, "/0", parts.query, "")), nodes)


def _node(url: str, text: str) -> tuple[str, int]:
    """``host:port`` (``[v6 address]:port``; the port defaults to 6379)."""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest.removeprefix(":")
    else:
        host, _, port = text.partition(":")
    if not host or (port and not port.isdigit()) or not 0 < int(port or DEFAULT_PORT) < 65536:
        raise ConfigurationError(f"a Cluster URL names nodes as host:port, not {text!r}: {url!r}")
    return host, int(port or DEFAULT_PORT)
