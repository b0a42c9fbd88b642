"""The SSRF guard: which addresses a callback URL may reach (docs/webhooks.md).

A callback host is resolved and every address it resolves to must be global: loopback,
private (RFC 1918, unique-local), link-local (cloud metadata at 169.254.169.254),
multicast, reserved, unspecified and shared (CGNAT) addresses are refused, unless the
address is in an allowed network or the host name itself is allowed. The check runs at
submission and again before every attempt, and the attempt connects to the address that
was checked (never re-resolving in between), so a DNS answer cannot change under it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass

import httpx

from sdk.errors import InvalidCallback

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
SCHEMES = ("http", "https")
RESOLVE_TIMEOUT = 5.0
_KINDS = ("loopback", "link_local", "multicast", "private", "reserved", "unspecified")


@dataclass(frozen=True, slots=True)
class AllowList:
    """``CELERIAC_WEBHOOK_ALLOW``: comma-separated networks (``127.0.0.0/8``) and hosts."""

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
    """A checked callback: the URL as given and the address the attempt connects to."""

    url: httpx.URL
    address: str

    def connect_url(self) -> httpx.URL:
        """The URL with its host replaced by the checked address (Host header and TLS SNI
        keep the name: see ``Sender``)."""
        return self.url.copy_with(host=self.address)


def refused_kind(address: IPAddress) -> str | None:
    """Why an address may not be called back, or None when it is a global address."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    for kind in _KINDS:
        if getattr(address, f"is_{kind}"):
            return kind.replace("_", "-")
    return None if address.is_global else "non-global"


def parse_url(raw: str) -> httpx.URL:
    try:
        url = httpx.URL(raw)
    except (httpx.InvalidURL, TypeError) as exc:
        raise InvalidCallback(f"invalid callback URL: {exc}", details={"url": raw}) from None
    if url.scheme not in SCHEMES or not url.host:
        raise InvalidCallback(
            "a callback URL needs an http or https scheme and a host", details={"url": raw}
        )
    return url


async def resolve(host: str, port: int) -> list[IPAddress]:
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
            f"callback host {host!r} does not resolve: {exc}", details={"host": host}
        ) from None
    found = {ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos}
    return sorted(found, key=lambda a: (a.version, int(a)))


async def check(raw: str, allow: AllowList) -> Target:
    """The callback's target, or InvalidCallback (422) when it may not be called."""
    url = parse_url(raw)
    port = url.port or (443 if url.scheme == "https" else 80)
    addresses = await resolve(url.host, port)
    if url.host.lower().rstrip(".") not in allow.hosts:
        for address in addresses:
            kind = refused_kind(address)
            if kind is not None and not allow.allows(address):
                raise InvalidCallback(
                    f"callback host {url.host!r} resolves to a {kind} address ({address}); "
                    "allow it with CELERIAC_WEBHOOK_ALLOW",
                    details={"host": url.host, "address": str(address), "kind": kind},
                )
    return Target(url, str(addresses[0]))


class Policy:
    """What the gateway checks of a callback URL at submission."""

    def __init__(self, secret: str | None, allow: str) -> None:
        self.enabled = bool(secret)
        self.allow = AllowList.parse(allow)

    async def check(self, raw: str) -> Target:
        if not self.enabled:
            raise InvalidCallback(
                "this gateway has no CELERIAC_WEBHOOK_SECRET, so it sends no webhooks",
                details={"url": raw},
            )
        return await check(raw, self.allow)
