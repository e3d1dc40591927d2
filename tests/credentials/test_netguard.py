"""The SSRF guard on its own: which addresses are internal (including IPv4 embedded in IPv6), the
operator allowlist, and the connect-time check. No test sends traffic off the machine: names resolve
through fake resolvers, and every refusal happens before a connection is made."""

from __future__ import annotations

import ipaddress

import httpx2
import pytest

from mcp_hub.credentials.netguard import UrlGuard, guarded_client, judge_address
from mcp_hub.errors import UnsafeUrlError


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "100.64.0.1",  # shared address space: not "private" to the standard library
        "198.18.0.1",  # benchmarking
        "0.0.0.0",
        "224.0.0.1",
        "240.0.0.1",
        "255.255.255.255",
        "::1",
        "::",
        "fc00::1",
        "fd12:3456::1",
        "ff02::1",
        "::ffff:127.0.0.1",  # IPv4-mapped
        "::ffff:10.0.0.1",
        "2002:7f00:1::",  # 6to4 of 127.0.0.1
        "2002:c0a8:101::1",  # 6to4 of 192.168.1.1
        "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
        "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
        "64:ff9b:1::1",  # local-use NAT64
        "2001:db8::1",
        "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
    ],
)
def test_internal_addresses_need_the_allowlist(address: str) -> None:
    ip = ipaddress.ip_address(address)
    assert not judge_address(ip, trusted=False).allowed
    assert judge_address(ip, trusted=True).allowed


@pytest.mark.parametrize(
    "address",
    [
        "169.254.169.254",
        "169.254.0.1",
        "fe80::1",
        "fd00:ec2::254",
        "100.100.100.200",
        "::ffff:169.254.169.254",
        "2002:a9fe:a9fe::",  # 6to4 of the metadata address
        "64:ff9b::a9fe:a9fe",  # NAT64 of the metadata address
        "64:ff9b:1::a9fe:a9fe",  # local-use NAT64 of the metadata address
        "::a9fe:a9fe",  # IPv4-compatible form of the metadata address
    ],
)
def test_link_local_and_metadata_addresses_are_never_admitted(address: str) -> None:
    ip = ipaddress.ip_address(address)
    assert not judge_address(ip, trusted=False).allowed
    assert not judge_address(ip, trusted=True).allowed


@pytest.mark.parametrize(
    "address", ["93.184.216.34", "2606:4700::1111", "64:ff9b::5db8:d822", "2002:5db8:d822::"]
)
def test_public_addresses_are_allowed(address: str) -> None:
    assert judge_address(ipaddress.ip_address(address), trusted=False).allowed


def resolver_for(table: dict[str, list[str]]):
    calls: list[str] = []

    async def resolve(host: str, port: int) -> list[str]:
        calls.append(host)
        return table[host]

    resolve.calls = calls  # type: ignore[attr-defined]
    return resolve


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "javascript:alert(1)",
        "ftp://public.example/x",
        "gopher://public.example/",
        "data:text/plain,hi",
        "http://user:pass@public.example/",
        "http:///nohost",
        "http://public.example:99999/",
    ],
)
async def test_unsafe_urls_are_refused(url: str) -> None:
    guard = UrlGuard.from_list([], resolver=resolver_for({"public.example": ["93.184.216.34"]}))
    with pytest.raises(UnsafeUrlError):
        await guard.check_url(url, what="test")


async def test_names_are_judged_by_every_address_they_resolve_to() -> None:
    resolve = resolver_for(
        {
            "public.example": ["93.184.216.34"],
            "mixed.example": ["93.184.216.34", "10.0.0.8"],
            "mapped.example": ["::ffff:192.168.0.1"],
            "auth.internal": ["10.0.0.9"],
            "meta.internal": ["169.254.169.254"],
            "ten.internal": ["10.20.30.40"],
        }
    )
    guard = UrlGuard.from_list([], resolver=resolve)
    assert await guard.check_url("https://public.example/.well-known/x", what="t") == (
        "https://public.example/.well-known/x"
    )
    for host in ("mixed.example", "mapped.example", "auth.internal", "meta.internal"):
        with pytest.raises(UnsafeUrlError):
            await guard.check_url(f"https://{host}/", what="t")

    trusted = UrlGuard.from_list(
        ["AUTH.internal", "meta.internal", "10.20.0.0/16", "169.254.0.0/16"], resolver=resolve
    )
    await trusted.check_url("https://auth.internal/token", what="t")  # allowlisted by name
    await trusted.check_url("https://ten.internal/token", what="t")  # allowlisted by range
    with pytest.raises(UnsafeUrlError, match="link-local"):
        await trusted.check_url("http://meta.internal/", what="t")  # never, even when listed
    with pytest.raises(UnsafeUrlError, match="link-local"):
        await trusted.check_url("http://169.254.169.254/", what="t")
    with pytest.raises(UnsafeUrlError):
        await trusted.check_url("https://mixed.example/", what="t")  # not listed: its 10.x counts


@pytest.mark.parametrize(
    "url", ["http://2130706433/", "http://0x7f.1/", "http://127.1/", "http://[::ffff:7f00:1]/"]
)
async def test_numeric_spellings_of_loopback_are_refused(url: str) -> None:
    # The system resolver parses numeric host spellings locally (inet_aton): no DNS query leaves.
    with pytest.raises(UnsafeUrlError, match="private, loopback or reserved"):
        await UrlGuard().check_url(url, what="t")


async def test_connect_time_check_defeats_dns_rebinding() -> None:
    """A name that resolves to a public address for the check and to loopback for the connection is
    still refused: the guarded client dials only what the guard approved at connect time."""
    answers = iter([["93.184.216.34"], ["127.0.0.1"]])

    async def rebinding(host: str, port: int) -> list[str]:
        return next(answers)

    guard = UrlGuard.from_list([], resolver=rebinding)
    await guard.check_url("http://rebind.example/", what="t")
    async with guarded_client(guard, timeout=5) as client:
        with pytest.raises(UnsafeUrlError, match="private, loopback or reserved"):
            await client.get("http://rebind.example/")


async def test_guarded_client_reaches_allowlisted_loopback_and_follows_no_redirects(fake_peer) -> None:
    fake_peer.json("/hop", {}, status=302, headers={"location": "http://169.254.169.254/"})
    guard = UrlGuard.from_list(["127.0.0.1"])
    async with guarded_client(guard, timeout=5) as client:
        response = await client.get(f"{fake_peer.origin}/hop")
    assert response.status_code == 302  # returned, not followed
    with pytest.raises(UnsafeUrlError):
        async with guarded_client(UrlGuard(), timeout=5) as client:
            await client.get(f"{fake_peer.origin}/hop")
    assert fake_peer.requests == ["/hop"]
    assert isinstance(response, httpx2.Response)
