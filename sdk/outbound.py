"""Calling URLs that users give (webhook callbacks, HTTP task targets): the SSRF guard,
and reading the answers' ``Retry-After`` (docs/webhooks.md, docs/http-executor.md).

A host is resolved and every address it resolves to must be global: loopback, private
(RFC 1918, unique-local), link-local (cloud metadata at 169.254.169.254), multicast,
reserved, unspecified and shared (CGNAT) addresses are refused, unless the address is in
an allowed network or the host name itself is allowed. The check runs when the URL is
given and again before every attempt, and the attempt connects to the address that was
checked (never re-resolving in between), so a DNS answer cannot change under it.
"""

from __future__ import annotations

import asyncio
import email.utils
import ipaddress
import socket
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx

from sdk.errors import InvalidCallback

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
SCHEMES = ("http", "https")
RESOLVE_TIMEOUT = 5.0
_KINDS = ("loopback", "link_local", "multicast", "private", "reserved", "unspecified")


@dataclass(frozen=True, slots=True)
class AllowList:
    """An allow-list setting (``CELERIAC_WEBHOOK_ALLOW``, ``CELERIAC_HTTP_TASK_ALLOW``):
    comma-separated networks (``127.0.0.0/8``) and hosts."""

    networks: tuple[IPNetwork, ...] = ()
    hosts: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, spec: str) -> AllowList:
        networks: list[IPNetwork] = []
        hosts: set[str] = set()
        for item in (part.strip() for part in spec.split(",")):
            if not item:
                continue
            try:
                networks.append(ipaddress.ip_network(item.strip("[]"), strict=False))
            except ValueError:
                hosts.add(item.lower().rstrip("."))
        return cls(tuple(networks), frozenset(hosts))

    def allows(self, address: IPAddress) -> bool:
        return any(address in net for net in self.networks if net.version == address.version)


@dataclass(frozen=True, slots=True)
class Target:
    """A checked URL: as given, and the address the attempt connects to."""

    url: httpx.URL
    address: str

    def connect_url(self) -> httpx.URL:
        """The URL with its host replaced by the checked address (Host header and TLS SNI
        keep the name: see ``Target.extensions``)."""
        return self.url.copy_with(host=self.address)

    @property
    def host_header(self) -> str:
        return self.url.netloc.decode("ascii")

    @property
    def extensions(self) -> dict[str, str]:
        """httpx request extensions: TLS checks the name, not the address connected to."""
        return {"sni_hostname": self.url.host} if self.url.scheme == "https" else {}


def refused_kind(address: IPAddress) -> str | None:
    """Why an address may not be called back, or None when it is a global address."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    for kind in _KINDS:
        if getattr(address, f"is_{kind}"):
            return kind.replace("_", "-")
    return None if address.is_global else "non-global"


@dataclass(frozen=True, slots=True)
class Purpose:
    """What a URL is for, as errors name it, and the setting that allows more."""

    what: str
    setting: str


CALLBACK = Purpose("callback", "CELERIAC_WEBHOOK_ALLOW")


def parse_url(raw: str, purpose: Purpose = CALLBACK) -> httpx.URL:
    try:
        url = httpx.URL(raw)
    except (httpx.InvalidURL, TypeError) as exc:
        raise InvalidCallback(f"invalid {purpose.what} URL: {exc}", details={"url": raw}) from None
    if url.scheme not in SCHEMES or not url.host:
        raise InvalidCallback(
            f"a {purpose.what} URL needs an http or https scheme and a host", details={"url": raw}
        )
    return url


async def resolve(host: str, port: int, purpose: Purpose = CALLBACK) -> list[IPAddress]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(
            loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), RESOLVE_TIMEOUT
        )
    except (OSError, TimeoutError) as exc:
        raise InvalidCallback(
            f"{purpose.what} host {host!r} does not resolve: {exc}", details={"host": host}
        ) from None
    found = {ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos}
    return sorted(found, key=lambda a: (a.version, int(a)))


async def check(raw: str, allow: AllowList, purpose: Purpose = CALLBACK) -> Target:
    """The URL's target, or InvalidCallback (422) when it may not be called."""
    url = parse_url(raw, purpose)
    port = url.port or (443 if url.scheme == "https" else 80)
    addresses = await resolve(url.host, port, purpose)
    if url.host.lower().rstrip(".") not in allow.hosts:
        for address in addresses:
            kind = refused_kind(address)
            if kind is not None and not allow.allows(address):
                raise InvalidCallback(
                    f"{purpose.what} host {url.host!r} resolves to a {kind} address "
                    f"({address}); allow it with {purpose.setting}",
                    details={"host": url.host, "address": str(address), "kind": kind},
                )
    return Target(url, str(addresses[0]))


def retry_after(value: str | None) -> float | None:
    """A ``Retry-After`` header (seconds or an HTTP date) as seconds from now."""
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - datetime.now(UTC)).total_seconds(), 0.0)
