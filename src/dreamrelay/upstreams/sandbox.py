"""The built-in sandbox as a channel kind: the official API for videos, Kling's for images and Luma's
Agents API, at the sandbox's own address (DREAMRELAY_SANDBOX_URL, or this process's mount) with its
own key."""

from __future__ import annotations

from collections.abc import Callable

from dreamrelay.domain.catalog import AGENTS, IMAGE, VIDEO
from dreamrelay.domain.channel import Channel
from dreamrelay.settings import Settings
from dreamrelay.upstreams.agents import AgentsUpstream
from dreamrelay.upstreams.base import ChannelKind, Endpoint, Probe, Site
from dreamrelay.upstreams.kling import KlingUpstream
from dreamrelay.upstreams.luma import LumaUpstream

_BASES: dict[str, Callable[[Settings], str]] = {
    VIDEO: lambda settings: settings.sandbox_base_url,
    IMAGE: lambda settings: settings.sandbox_kling_url,
    AGENTS: lambda settings: settings.sandbox_agents_url,
}


def _endpoint(channel: Channel, site: Site, capability: str) -> Endpoint:
    return Endpoint(_BASES[capability](site.settings), site.sandbox_key)


def _probe(endpoint: Endpoint) -> Probe:
    return Probe("GET", endpoint.base_url.rstrip("/") + "/ping")


KIND = ChannelKind(
    name="sandbox",
    adapters={VIDEO: LumaUpstream.connect, IMAGE: KlingUpstream.connect, AGENTS: AgentsUpstream.connect},
    probe=_probe,
    needs_base_url=False,
    endpoint=_endpoint,
)
