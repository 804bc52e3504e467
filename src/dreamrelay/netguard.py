"""URL safety: the one place that decides which customer-given URLs DreamRelay may connect to.

Used for callback URLs, image URLs we fetch, and every redirect hop. Three layers:
- `check_url_syntax` refuses bad schemes and IP literals in any spelling before anything is sent;
- `resolve_checked` refuses host names that resolve to a forbidden address (used at submit, for a 400);
- `guarded_session` checks the address of every socket right before it connects, so a DNS answer
  that changes between the check and the connection (rebinding) cannot reach a forbidden address.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import logging
import socket
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import aiohttp
import anyio
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

MAX_URL_CHARS = 2048
MAX_REDIRECTS = 3
RESPONSE_READ_LIMIT = 64 * 1024  # what we read of a callback receiver's answer
FILE_CHUNK_BYTES = 1 << 20  # what one fetch to a file holds in memory at a time

log = logging.getLogger(__name__)

# Not caught by the ipaddress flags on every Python version; named here so the rule is visible.
_ALWAYS_REFUSED = (
    ipaddress.ip_network("169.254.169.254/32"),  # cloud metadata (AWS, GCP, Azure, ...)
    ipaddress.ip_network("fd00:ec2::254/128"),  # AWS metadata over IPv6
    ipaddress.ip_network("100.64.0.0/10"),  # carrier-grade NAT
    ipaddress.ip_network("64:ff9b::/96"),  # NAT64: may map to any IPv4, checked after unwrapping below
)


class UnsafeURL(ValueError):
    """The URL is not one DreamRelay will connect to; the message says why."""


class FetchError(Exception):
    """The URL was allowed but fetching or posting failed. Its text is our own words (customers read it
    in a 400 or a callback attempt); `detail` adds what the HTTP library said, for the operator."""

    def __init__(
        self, message: str, *, too_large: bool = False, status: int | None = None, detail: str | None = None
    ) -> None:
        super().__init__(message)
        self.too_large = too_large
        self.status = status  # the HTTP status that ended it, if an answer did
        self.detail = detail or message


class _RefusedAddress(OSError):
    """Raised inside aiohttp's connect path; surfaces as a connection error we translate."""


@dataclass(frozen=True)
class URLPolicy:
    allow_networks: tuple[IPNetwork, ...] = ()
    # Single (address, port) pairs allowed despite the rules: the relay's own listener for the sandbox,
    # the sandbox's listener for media copied from a sandbox channel. Nothing else on those hosts.
    allow_endpoints: tuple[tuple[IPAddress, int], ...] = ()

    def __post_init__(self) -> None:
        # Hashed once: a policy is part of the key of every remembered URL check.
        object.__setattr__(self, "_hash", hash((self.allow_networks, self.allow_endpoints)))

    def __hash__(self) -> int:
        return self._hash  # type: ignore[no-any-return,attr-defined]

    def with_endpoints(self, endpoints: Iterable[tuple[IPAddress, int]]) -> URLPolicy:
        return URLPolicy(self.allow_networks, tuple(dict.fromkeys((*self.allow_endpoints, *endpoints))))

    def with_networks(self, networks: Iterable[IPNetwork]) -> URLPolicy:
        return URLPolicy(tuple(dict.fromkeys((*self.allow_networks, *networks))), self.allow_endpoints)

    @classmethod
    def from_setting(cls, value: str | None) -> URLPolicy:
        """`DREAMRELAY_ALLOW_PRIVATE_URLS`: comma-separated CIDRs (or addresses) allowed despite the rules."""
        return cls(parse_networks(value))


def parse_networks(value: str | None) -> tuple[IPNetwork, ...]:
    """Comma-separated CIDRs or addresses; ValueError names the first that is neither."""
    networks: list[IPNetwork] = []
    for part in (value or "").split(","):
        part = part.strip()
        if part:
            networks.append(ipaddress.ip_network(part, strict=False))
    return tuple(networks)


async def endpoints_of(url: str) -> list[tuple[IPAddress, int]]:
    """The (address, port) pairs an http(s) URL's host resolves to (none if it does not resolve)."""
    host, port = host_and_port(url)
    literal = literal_address(host)
    if literal is not None:
        return [(_unwrap(literal), port)]
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        return []
    found = [_unwrap(ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])) for info in infos]
    return [(address, port) for address in dict.fromkeys(found)]


def _unwrap(address: IPAddress) -> IPAddress:
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.sixtofour is not None:
            return address.sixtofour
        if address in _ALWAYS_REFUSED[3]:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        packed = address.packed
        if packed[:12] == bytes(12) and int(address) > 1:  # deprecated IPv4-compatible ::a.b.c.d
            return ipaddress.IPv4Address(packed[12:])
    return address


def is_allowed_address(address: IPAddress | str, policy: URLPolicy, port: int | None = None) -> bool:
    if isinstance(address, str):
        address = ipaddress.ip_address(address.split("%", 1)[0])
    inner = _unwrap(address)
    if port is not None and (
        (inner, port) in policy.allow_endpoints or (address, port) in policy.allow_endpoints
    ):
        return True
    for candidate in {address, inner}:
        if any(candidate in net for net in policy.allow_networks if net.version == candidate.version):
            return True
    if any(inner in net for net in _ALWAYS_REFUSED if net.version == inner.version):
        return False
    return inner.is_global and not inner.is_multicast


def literal_address(host: str) -> IPAddress | None:
    """The address a host names if it is an IP literal in any spelling browsers and libc accept.

    `2130706433`, `0x7f.1`, `0177.0.0.1` and `127.1` all mean 127.0.0.1 to inet_aton; `127.0.0.1.`
    and full-width `１２７.0.0.1` mean it to browsers and to the IDNA step before the resolver.
    """
    if not host.isascii():
        with contextlib.suppress(UnicodeError):
            host = host.encode("idna").decode("ascii")
    host = host.rstrip(".")
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        pass
    if host and all(c in "0123456789abcdefxABCDEFX." for c in host) and host[0].isdigit():
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def has_control_characters(text: str) -> bool:
    """C0 controls, DEL and C1 controls: never part of a URL as sent (RFC 3986 wants them encoded)."""
    return any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in text)


def check_url_syntax(url: str, policy: URLPolicy) -> None:
    """Raise UnsafeURL unless `url` is one we may send to as written. A pure function of the two, so
    URLs that passed are remembered (a callback URL is checked on every delivery); refusals are not,
    and raise every time."""
    _passes_syntax(url, policy)


@functools.lru_cache(maxsize=4096)
def _passes_syntax(url: str, policy: URLPolicy) -> bool:
    _check_url_syntax(url, policy)
    return True


def _check_url_syntax(url: str, policy: URLPolicy) -> None:
    if len(url) > MAX_URL_CHARS:
        raise UnsafeURL(f"URL is longer than {MAX_URL_CHARS} characters")
    if has_control_characters(url):  # before urlsplit, which silently drops tabs, CR and LF
        raise UnsafeURL("URL contains control characters (CR, LF, tab or other); percent-encode them")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeURL("malformed URL: its host or port cannot be read") from exc
    if parts.scheme.lower() not in ("http", "https"):
        raise UnsafeURL("only http and https URLs are allowed")
    host = parts.hostname
    if not host:
        raise UnsafeURL("URL has no host")
    if port == 0:
        raise UnsafeURL("URL port 0 is not allowed")
    address = literal_address(host)
    default_port = 443 if parts.scheme.lower() == "https" else 80
    if address is not None and not is_allowed_address(address, policy, port or default_port):
        raise UnsafeURL(f"host {host} is a private, loopback or reserved address")


def host_and_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "", parts.port or (443 if parts.scheme.lower() == "https" else 80)


async def resolve_checked(host: str, port: int, policy: URLPolicy) -> list[IPAddress]:
    """Resolve `host`; refuse it if any address it resolves to is forbidden (or if it does not resolve)."""
    literal = literal_address(host)
    if literal is not None:
        if not is_allowed_address(literal, policy, port):
            raise UnsafeURL(f"host {host} is a private, loopback or reserved address")
        return [literal]
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise UnsafeURL(f"host {host} does not resolve") from exc
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
    for address in addresses:
        if not is_allowed_address(address, policy, port):
            raise UnsafeURL(f"host {host} resolves to a private, loopback or reserved address")
    return addresses


class _GuardedResolver(AbstractResolver):
    """Drops forbidden answers so aiohttp never even tries them."""

    def __init__(self, policy: URLPolicy) -> None:
        self._policy = policy
        self._inner = ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        allowed = [r for r in results if is_allowed_address(r["host"], self._policy, r["port"])]
        if not allowed:
            raise _RefusedAddress(f"host {host} resolves only to forbidden addresses")
        return allowed

    async def close(self) -> None:
        await self._inner.close()


def _socket_factory(policy: URLPolicy) -> Any:
    def make_socket(addr_info: tuple[Any, ...]) -> socket.socket:
        family, sock_type, proto, _canon, sockaddr = addr_info
        if not is_allowed_address(str(sockaddr[0]), policy, int(sockaddr[1])):
            raise _RefusedAddress(f"refusing to connect to {sockaddr[0]}")
        return socket.socket(family=family, type=sock_type, proto=proto)

    return make_socket


def guarded_session(policy: URLPolicy) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(
        resolver=_GuardedResolver(policy),
        socket_factory=_socket_factory(policy),
        limit=128,
        ttl_dns_cache=None,
        use_dns_cache=False,
    )
    # No cookie jar: one session serves every customer's URLs, so a cookie one receiver sets must not
    # ride along to another's (and keeping none costs nothing per request).
    return aiohttp.ClientSession(
        connector=connector, trust_env=False, auto_decompress=True, cookie_jar=aiohttp.DummyCookieJar()
    )


def _refused(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, _RefusedAddress) or "forbidden addresses" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


# How a failed request reads, by the HTTP library's exception class (most specific first): aiohttp's own
# text names resolved addresses, SSL internals and source files.
_FAILURES: tuple[tuple[type[BaseException], str], ...] = (
    (aiohttp.ClientConnectorCertificateError, "TLS failed: the certificate was not accepted"),
    (aiohttp.ClientSSLError, "TLS failed: the handshake did not complete"),
    (aiohttp.ClientConnectorError, "connection failed: the host refused or did not answer"),
    (aiohttp.ServerDisconnectedError, "connection closed before an answer"),
    (aiohttp.ClientPayloadError, "the answer's body was cut short or malformed"),
    (aiohttp.ClientResponseError, "the answer was not valid HTTP"),
)


def _failed(exc: BaseException, url: str) -> UnsafeURL | FetchError:
    """A request that failed: UnsafeURL when our connector refused the address, else FetchError."""
    if _refused(exc):
        return UnsafeURL("the host resolves to a private, loopback or reserved address")
    detail = f"{type(exc).__name__}: {exc}"
    log.info("request to %s failed: %s", url[:200], detail)
    words = next((words for kind, words in _FAILURES if isinstance(exc, kind)), "the request failed")
    return FetchError(words, detail=f"{words} ({detail})")


async def fetch_bytes(
    session: aiohttp.ClientSession,
    url: str,
    policy: URLPolicy,
    *,
    max_bytes: int,
    timeout_seconds: float = 20,
) -> tuple[bytes, str | None]:
    """GET `url` following at most MAX_REDIRECTS checked redirects; at most `max_bytes` are read."""
    timeout = aiohttp.ClientTimeout(total=timeout_seconds, sock_connect=5)
    async with opened(session, url, policy, max_bytes=max_bytes, limits=timeout) as response:
        data = bytearray()
        async for chunk in response.content.iter_chunked(64 * 1024):
            data += chunk
            if len(data) > max_bytes:
                raise FetchError("response is too large", too_large=True)
        return bytes(data), response.headers.get("Content-Type")


async def fetch_to_file(
    session: aiohttp.ClientSession,
    url: str,
    policy: URLPolicy,
    target: Path,
    *,
    max_bytes: int,
    timeout_seconds: float = 20,
) -> None:
    """GET `url` into the file `target`, as `fetch_bytes` does, a chunk at a time: memory holds one
    chunk whatever the answer's size; more than `max_bytes` is refused as soon as it arrives."""
    timeout = aiohttp.ClientTimeout(total=timeout_seconds, sock_connect=5)
    async with (
        opened(session, url, policy, max_bytes=max_bytes, limits=timeout) as response,
        await anyio.open_file(target, "wb") as handle,
    ):
        size = 0
        async for chunk in response.content.iter_chunked(FILE_CHUNK_BYTES):
            size += len(chunk)
            if size > max_bytes:
                raise FetchError("response is too large", too_large=True)
            await handle.write(chunk)


@contextlib.asynccontextmanager
async def opened(
    session: aiohttp.ClientSession,
    url: str,
    policy: URLPolicy,
    *,
    max_bytes: int,
    limits: aiohttp.ClientTimeout,
    headers: Mapping[str, str] | None = None,
) -> AsyncIterator[aiohttp.ClientResponse]:
    """A 200 answer to GET `url` (at most MAX_REDIRECTS checked redirects), for the caller to read.

    A declared length above `max_bytes` is refused here; the caller counts what it reads. `headers` (a
    key) go with the first request only, never to where it redirects.
    """
    for hop in range(MAX_REDIRECTS + 1):
        check_url_syntax(url, policy)
        try:
            sent = headers if hop == 0 else None
            async with session.get(url, allow_redirects=False, timeout=limits, headers=sent) as response:
                if response.status in (301, 302, 303, 307, 308):
                    location = response.headers.get("Location")
                    if not location:
                        raise FetchError(f"redirect {response.status} without a Location")
                    url = urljoin(url, location)
                    continue
                if response.status != 200:
                    raise FetchError(f"answered HTTP {response.status}", status=response.status)
                if (response.content_length or 0) > max_bytes:
                    raise FetchError("response is too large", too_large=True)
                yield response
                return
        except TimeoutError as exc:  # before OSError: TimeoutError is one
            raise FetchError(f"no complete answer within {limits.total or 0:g} s") from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise _failed(exc, url) from exc
    raise FetchError(f"more than {MAX_REDIRECTS} redirects")


@functools.lru_cache(maxsize=8)
def _post_timeout(timeout_seconds: float) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(total=timeout_seconds, sock_connect=min(5, timeout_seconds))


async def post_json(
    session: aiohttp.ClientSession,
    url: str,
    body: bytes,
    headers: dict[str, str],
    policy: URLPolicy,
    *,
    timeout_seconds: float,
) -> tuple[int, float]:
    """POST `body` to `url` (redirects are not followed); returns (status, seconds)."""
    check_url_syntax(url, policy)
    timeout = _post_timeout(timeout_seconds)
    started = time.monotonic()
    try:
        async with session.post(
            url, data=body, headers=headers, allow_redirects=False, timeout=timeout
        ) as response:
            await response.content.read(RESPONSE_READ_LIMIT)
            return response.status, time.monotonic() - started
    except TimeoutError as exc:  # before OSError: TimeoutError is one
        raise FetchError(f"no answer within {timeout_seconds:g} s") from exc
    except (aiohttp.ClientError, OSError) as exc:
        raise _failed(exc, url) from exc
