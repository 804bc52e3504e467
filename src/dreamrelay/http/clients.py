"""Who the client is: the peer's address, or with trusted proxies (DREAMRELAY_TRUSTED_PROXIES) the
address a proxy forwarded; and who may read /metrics without a token.

The rule, in one place: a peer that is not a configured proxy never chooses its address by a header.
`serve` runs uvicorn without its own proxy-header handling (which believes X-Forwarded-For from
127.0.0.1 by default), and the app's outermost layer (`http/app.py::RelayApp`, `with_forwarded_client`)
believes X-Forwarded-For and X-Forwarded-Proto only from the operator's proxies. With none configured
(the default) it does nothing.
Everything after it (sign-in and redeem throttles, logs, metrics) reads `scope["client"]`.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Mapping, MutableMapping
from typing import Any

from dreamrelay.netguard import IPAddress, IPNetwork

# What a relaying proxy adds: the standard headers (RFC 7239 Forwarded, Via), any X-Forwarded-* (For,
# Host, Proto, Port, Server, Prefix…), and the client-address headers of common proxies, load balancers
# and CDNs. The relay's own calls carry none of them. A proxy that adds nothing cannot be told apart,
# so this rule only narrows who may try: every route still needs the key or a link the sandbox signed.
RELAY_HEADERS = frozenset(
    {
        b"forwarded",
        b"via",
        b"x-real-ip",
        b"client-ip",
        b"x-client-ip",
        b"true-client-ip",
        b"x-cluster-client-ip",
        b"cf-connecting-ip",
        b"fastly-client-ip",
        b"akamai-origin-hop",
        b"x-original-forwarded-for",
        b"x-proxyuser-ip",
    }
)
RELAY_HEADER_PREFIXES = (b"x-forwarded-", b"x-original-", b"x-envoy-", b"x-amzn-", b"x-azure-", b"cf-")


def relayed(headers: list[tuple[bytes, bytes]]) -> bool:
    """Whether a request's headers show a proxy between its client and us (names are lower case)."""
    return any(name in RELAY_HEADERS or name.startswith(RELAY_HEADER_PREFIXES) for name, _value in headers)


FORWARDED_DONE = "dreamrelay.forwarded"  # scope key: the client came from a trusted proxy's header


def address_of(endpoint: Any) -> IPAddress | None:
    """The IP address of an ASGI (host, port) pair; None for none, a Unix socket or a name. An
    IPv4-mapped IPv6 address is its IPv4 address."""
    if not endpoint:
        return None
    try:
        address = ipaddress.ip_address(str(endpoint[0]).split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _within(address: IPAddress, networks: tuple[IPNetwork, ...]) -> bool:
    return any(address.version == net.version and address in net for net in networks)


def forwarded_client(peer: IPAddress, header: str, trusted: tuple[IPNetwork, ...]) -> IPAddress | None:
    """The client a chain of trusted proxies forwarded (X-Forwarded-For, `client, proxy1, proxy2`): the
    rightmost address that is not one of ours; None when the header holds no usable address."""
    hops: list[IPAddress] = []
    for part in header.split(","):
        try:
            hops.append(ipaddress.ip_address(part.strip()))
        except ValueError:
            return None  # a garbled chain names nobody: the peer stays the client
    chain = [peer, *reversed(hops)]
    for hop in chain[1:]:
        if not _within(hop, trusted):
            return hop
    return chain[-1] if len(chain) > 1 else None


def with_forwarded_client(
    scope: MutableMapping[str, Any], trusted: tuple[IPNetwork, ...]
) -> MutableMapping[str, Any]:
    """`scope`, or a copy whose client (and scheme) a trusted proxy forwarded: believed only from a
    peer in `trusted`; from any other peer the headers are ignored."""
    peer = address_of(scope.get("client"))
    if peer is None or not _within(peer, trusted):
        return scope
    chain = proto = None
    for name, value in scope.get("headers", []):
        if name == b"x-forwarded-for":
            chain = value.decode("latin-1") if chain is None else f"{chain},{value.decode('latin-1')}"
        elif name == b"x-forwarded-proto" and proto is None:
            proto = value.decode("latin-1").split(",")[-1].strip().lower()
    client = forwarded_client(peer, chain, trusted) if chain else None
    if client is None:
        return scope
    scope = dict(scope)
    scope["client"] = (str(client), 0)
    scope[FORWARDED_DONE] = True
    if proto in ("http", "https"):
        scope["scheme"] = proto
    return scope


def relayed_by_stranger(scope: Mapping[str, Any]) -> bool:
    """The request carries forwarding headers no trusted proxy accounted for: a proxy we were not told
    about relayed it, so its peer address (often loopback) says nothing of the client."""
    if scope.get(FORWARDED_DONE):
        return False
    return relayed(scope.get("headers", []))


def reads_metrics_freely(scope: Mapping[str, Any], networks: tuple[IPNetwork, ...]) -> bool:
    """/metrics without a token: a client on loopback or in an operator-named network that no unknown
    proxy relayed (a reverse proxy on this host makes every client loopback unless it is trusted)."""
    client = address_of(scope.get("client"))
    if client is None or relayed_by_stranger(scope):
        return False
    return client.is_loopback or _within(client, networks)


def bearer_matches(authorization: str | None, tokens: tuple[str, ...]) -> bool:
    """`Authorization: Bearer <one of tokens>`, compared in constant time."""
    if not authorization or authorization[:7].lower() != "bearer ":
        return False
    given = authorization[7:].strip().encode()
    return any(hmac.compare_digest(given, token.encode()) for token in tokens if token)
