"""Every kind of upstream channel by name: what it makes, its adapter for each, how to test a channel.

Adding a kind: write its module in upstreams/ (the adapter, plus `KIND = ChannelKind(...)`) and name
that KIND in `_ALL` below. Routing, the worker, the admin API, the CLI and the console read the rest
from here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dreamrelay.domain.catalog import capability
from dreamrelay.domain.channel import Channel
from dreamrelay.upstreams import agents, kling, luma, relay, sandbox
from dreamrelay.upstreams.base import ChannelKind, Endpoint, Probe, Site, Upstream

if TYPE_CHECKING:
    import aiohttp

_ALL = (sandbox.KIND, luma.KIND, relay.KIND, kling.KIND, agents.KIND)
KINDS: dict[str, ChannelKind] = {kind.name: kind for kind in _ALL}
NAMES = tuple(KINDS)


def serves(channel: Channel, model: str) -> bool:
    """Whether `channel` can make `model` (its kind's capabilities and the operator's model list)."""
    kind = KINDS.get(channel.kind)
    if kind is None or capability(model) not in kind.capabilities:
        return False
    return channel.models is None or model in channel.models


def adapter(session: aiohttp.ClientSession, site: Site, channel: Channel, wanted: str) -> Upstream:
    """The adapter that makes `wanted` (a capability) through `channel`; ValueError if it cannot."""
    kind = KINDS.get(channel.kind)
    if kind is None:
        raise ValueError(f"channel kind {channel.kind!r} is not supported yet")
    factory = kind.adapters.get(wanted)
    if factory is None:
        raise ValueError(f"channel kind {channel.kind!r} makes no {wanted}s")
    return factory(session, kind.endpoint(channel, site, wanted))


def probe(site: Site, channel: Channel) -> tuple[Probe, Endpoint]:
    """The request that tests `channel`, and the endpoint (key) to send it with."""
    kind = KINDS[channel.kind]
    endpoint = kind.endpoint(channel, site, next(iter(kind.adapters)))
    return kind.probe(endpoint), endpoint
