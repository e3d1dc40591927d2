"""Server-side request forgery guard for every URL the hub fetches because a user, an admin or a remote
server told it to (OAuth discovery documents, dynamic client registration, token endpoints).

Two checks, both needed:
- `UrlGuard.check_url` refuses a URL before any request: scheme other than http(s), credentials in the
  URL, or a host that resolves to an address on an internal network.
- `guarded_client` connects only to addresses the guard has just approved (its network backend resolves,
  checks and then dials the approved IP itself), so a name that resolves to a public address for the
  check and to 127.0.0.1 a moment later (DNS rebinding) still cannot reach the inside.

`ipaddress.is_private` alone is not enough: an internal IPv4 address can be written as IPv4-mapped IPv6
(::ffff:10.0.0.1), IPv4-compatible (::a00:1), 6to4 (2002:0a00:0001::) or NAT64 (64:ff9b::a00:1, and
local-use 64:ff9b:1::a00:1), and some ranges (shared address
space 100.64.0.0/10, benchmarking 198.18.0.0/15) are not "private" there. Embedded IPv4 addresses are
unwrapped and judged as IPv4.

`MCP_HUB_OAUTH_ALLOWED_HOSTS` admits host names (or IPs / CIDR ranges) an operator trusts on internal
networks. Link-local addresses, which include the cloud metadata service (169.254.169.254, fe80::/10,
fd00:ec2::254), are never admitted.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpcore2
import httpx2
from httpcore2._backends.auto import AutoBackend
from httpcore2._backends.base import AsyncNetworkBackend, AsyncNetworkStream

from mcp_hub.errors import UnsafeUrlError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]

_V4 = ipaddress.IPv4Network
_V6 = ipaddress.IPv6Network

# Never reachable, allowlist or not: link-local (incl. the metadata service) and known metadata IPs.
NEVER_ALLOWED: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = (
    _V4("169.254.0.0/16"),
    _V4("100.100.100.200/32"),  # Alibaba Cloud metadata service
    _V6("fe80::/10"),
    _V6("fd00:ec2::254/128"),  # AWS metadata service over IPv6
)

# Internal or special-purpose: refused unless the host is on the operator's allowlist.
INTERNAL: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = (
    _V4("0.0.0.0/8"),
    _V4("10.0.0.0/8"),
    _V4("100.64.0.0/10"),  # shared address space (carrier-grade NAT)
    _V4("127.0.0.0/8"),
    _V4("172.16.0.0/12"),
    _V4("192.0.0.0/24"),
    _V4("192.0.2.0/24"),
    _V4("192.88.99.0/24"),  # 6to4 relay anycast
    _V4("192.168.0.0/16"),
    _V4("198.18.0.0/15"),
    _V4("198.51.100.0/24"),
    _V4("203.0.113.0/24"),
    _V4("224.0.0.0/4"),  # multicast
    _V4("240.0.0.0/4"),  # reserved, includes 255.255.255.255
    _V6("::/128"),
    _V6("::1/128"),
    _V6("::/96"),  # deprecated IPv4-compatible addresses
    _V6("64:ff9b:1::/48"),  # local-use NAT64 (RFC 8215)
    _V6("100::/64"),  # discard-only
    _V6("2001::/23"),  # IETF protocol assignments, includes Teredo 2001::/32
    _V6("2001:db8::/32"),
    _V6("3fff::/20"),  # documentation (RFC 9637)
    _V6("fc00::/7"),  # unique local
    _V6("fec0::/10"),  # deprecated site-local
    _V6("ff00::/8"),  # multicast
)

_NAT64 = _V6("64:ff9b::/96")
# Local-use NAT64 (RFC 8215) and deprecated IPv4-compatible addresses also carry an IPv4 address in
# their last 32 bits (the /96 form of RFC 6052, the usual one). Both are internal anyway, but an
# allowlisted name resolving to one of them must not reach link-local through the translator.
_LOW_32_BITS = (_NAT64, _V6("64:ff9b:1::/48"), _V6("::/96"))
_SIX_TO_FOUR = _V6("2002::/16")


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (mapped, 6to4, NAT64 or IPv4-compatible), if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _SIX_TO_FOUR:
        return address.sixtofour
    if any(address in net for net in _LOW_32_BITS):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    reason: str | None = None


def judge_address(address: IPAddress, *, trusted: bool) -> Verdict:
    """Whether the hub may connect to `address`. `trusted` means the host is on the allowlist."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id:
            return Verdict(False, "scoped IPv6 address")
        inner = embedded_ipv4(address)
        if inner is not None:
            verdict = judge_address(inner, trusted=trusted)
            if not verdict.allowed:
                return Verdict(False, f"{verdict.reason} (embedded in {address})")
            return verdict
    if any(address in net for net in NEVER_ALLOWED if net.version == address.version):
        return Verdict(False, f"{address} is link-local or a metadata address")
    internal = any(address in net for net in INTERNAL if net.version == address.version) or (
        # Belt and braces: whatever the standard library also calls special-purpose.
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )
    if internal and not trusted:
        return Verdict(
            False,
            f"{address} is on a private, loopback or reserved network (not in MCP_HUB_OAUTH_ALLOWED_HOSTS)",
        )
    return Verdict(True)


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


@dataclass(frozen=True)
class UrlGuard:
    allowed_hosts: frozenset[str] = frozenset()
    resolver: Resolver = field(default=system_resolver, compare=False)

    @classmethod
    def from_list(cls, hosts: Iterable[str], resolver: Resolver | None = None) -> UrlGuard:
        return cls(
            allowed_hosts=frozenset(host.strip().lower() for host in hosts if host.strip()),
            resolver=resolver or system_resolver,
        )

    def _trusted(self, host: str, address: IPAddress) -> bool:
        if host.lower().rstrip(".") in self.allowed_hosts:
            return True
        for entry in self.allowed_hosts:
            try:
                network = ipaddress.ip_network(entry, strict=False)
            except ValueError:
                continue  # a host name, matched above
            if network.version == address.version and address in network:
                return True
        return False

    async def approved_addresses(self, host: str, port: int) -> list[str]:
        """The host's addresses, all judged; refuses if any of them is not allowed (a name that also
        resolves inside is treated as inside)."""
        try:
            literal: IPAddress | None = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            literal = None
        if literal is not None:
            raw = [str(literal)]
        else:
            try:
                raw = await self.resolver(host, port)
            except OSError as exc:
                raise UnsafeUrlError(f"cannot resolve {host!r}: {exc.strerror or exc}") from None
        if not raw:
            raise UnsafeUrlError(f"{host!r} has no addresses")
        approved: list[str] = []
        for text in raw:
            if "%" in text:
                raise UnsafeUrlError(f"refusing {host!r}: it resolves to a scoped address")
            address = ipaddress.ip_address(text)
            verdict = judge_address(address, trusted=self._trusted(host, address))
            if not verdict.allowed:
                raise UnsafeUrlError(f"refusing to contact {host!r}: {verdict.reason}")
            approved.append(str(address))
        return approved

    async def check_url(self, url: str, *, what: str) -> str:
        """Returns the URL if the hub may fetch it; raises UnsafeUrlError naming `what` otherwise."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise UnsafeUrlError(f"{what}: not a valid URL") from None
        if parts.scheme not in ("http", "https"):
            raise UnsafeUrlError(
                f"{what}: only http and https URLs are allowed (got {parts.scheme or 'none'}:)"
            )
        if parts.username is not None or parts.password is not None:
            raise UnsafeUrlError(f"{what}: URLs with credentials in them are not allowed")
        host = parts.hostname
        if not host:
            raise UnsafeUrlError(f"{what}: the URL has no host")
        try:
            await self.approved_addresses(host, port or (443 if parts.scheme == "https" else 80))
        except UnsafeUrlError as exc:
            raise UnsafeUrlError(f"{what}: {exc.message}") from None
        return url


class _GuardedBackend(AsyncNetworkBackend):
    """Resolves through the guard and dials the approved address itself, so the address checked is the
    address connected to. TLS still verifies the host name (httpcore passes it to start_tls)."""

    def __init__(self, guard: UrlGuard) -> None:
        self._guard = guard
        self._inner = AutoBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's backend interface
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> AsyncNetworkStream:
        addresses = await self._guard.approved_addresses(host, port)
        return await self._inner.connect_tcp(
            addresses[0], port, timeout=timeout, local_address=local_address, socket_options=socket_options
        )

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's backend interface
        socket_options: Iterable[Any] | None = None,
    ) -> AsyncNetworkStream:
        raise UnsafeUrlError("unix sockets are not reachable through the URL guard")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class GuardedTransport(httpx2.AsyncHTTPTransport):
    def __init__(self, guard: UrlGuard) -> None:
        super().__init__(trust_env=False)
        # Replaces the pool the parent built with one that dials through the guard; same TLS defaults.
        self._pool = httpcore2.AsyncConnectionPool(
            ssl_context=httpx2.create_ssl_context(), network_backend=_GuardedBackend(guard)
        )


def guarded_client(guard: UrlGuard, *, timeout: float) -> httpx2.AsyncClient:
    """A client for one OAuth operation: no redirects followed (each hop would need its own check), no
    proxies from the environment, and a connect path that only reaches approved addresses."""
    return httpx2.AsyncClient(
        transport=GuardedTransport(guard), follow_redirects=False, trust_env=False, timeout=timeout
    )
