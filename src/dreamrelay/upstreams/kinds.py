"""Every kind of upstream channel by name: what it makes, its adapter for each, how to test a channel.

Adding a kind: write its module in upstreams/ (the adapter, plus `KIND = ChannelKind(...)`) and name
that KIND in `_ALL` below. Routing, the worker, the admin API, the CLI and the console read the rest
from here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from dreamrelay.domain import routing
from dreamrelay.domain.channel import Channel
from dreamrelay.upstreams import agents, kling, luma, openai_videos, relay, sandbox, seedance
from dreamrelay.upstreams.base import ChannelKind, Endpoint, Probe, ReportReader, Site, Upstream, UsedPrice

if TYPE_CHECKING:
    import aiohttp

    from dreamrelay.settings import Settings

_ALL = (sandbox.KIND, luma.KIND, relay.KIND, kling.KIND, agents.KIND, openai_videos.KIND, seedance.KIND)
KINDS: dict[str, ChannelKind] = {kind.name: kind for kind in _ALL}
NAMES = tuple(KINDS)
CAPABILITIES = {kind.name: kind.capabilities for kind in _ALL}  # what routing reads (domain/routing.py)


def makes(channel: Channel, capability: str) -> bool:
    """Whether `channel`'s kind declares `capability` (domain/catalog.py)."""
    return routing.makes(channel, capability, CAPABILITIES)


def serves(channel: Channel, model: str, capability: str) -> bool:
    """Whether `channel` can make `capability` on `model` (domain/routing.py::serves)."""
    return routing.serves(channel, model, capability, CAPABILITIES)


def links_expire(channel: Channel, capability: str) -> bool:
    """Whether `channel`'s outputs of `capability` sit behind links that expire (presigned)."""
    kind = KINDS.get(channel.kind)
    return kind is not None and capability in kind.expiring_links


def own_media(channel: Channel) -> Callable[[Settings, str], str] | None:
    """Where the media of a kind served by our own sandbox is (None: URL safety's rules alone)."""
    kind = KINDS.get(channel.kind)
    return kind.own_media if kind is not None else None


def media_headers(channel: Channel) -> tuple[str, dict[str, str]] | None:
    """For a kind whose media needs the channel's key: the URL prefix it is sent to, and the header."""
    kind = KINDS.get(channel.kind)
    if kind is None or not kind.media_key:
        return None
    return channel.base_url.rstrip("/") + "/", {"Authorization": f"Bearer {channel.secret_key}"}


def report_reader(channel: Channel, capability: str) -> ReportReader | None:
    """How `channel`'s upstream reports a `capability` task to our callback URL (None: it does not)."""
    kind = KINDS.get(channel.kind)
    return kind.reports.get(capability) if kind is not None else None


def used_price(channel: Channel, capability: str) -> UsedPrice | None:
    """For a kind that charges `capability` tasks by what they delivered: how to price that."""
    kind = KINDS.get(channel.kind)
    return kind.priced_by_use.get(capability) if kind is not None else None


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
