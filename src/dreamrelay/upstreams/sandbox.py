"""The built-in sandbox as a channel kind: the official API for videos, Kling's for images and Kling
videos, Luma's Agents API and Ark's tasks API (Seedance), at the sandbox's own address
(DREAMRELAY_SANDBOX_URL, or this process's mount) with its own key."""

from __future__ import annotations

from collections.abc import Callable

from dreamrelay.domain.catalog import AGENTS, DREAM_MACHINE, IMAGE, KLING_VIDEO, SEEDANCE, VIDEO
from dreamrelay.domain.channel import Channel
from dreamrelay.domain.requests import used_price_key
from dreamrelay.settings import Settings
from dreamrelay.upstreams.agents import AgentsUpstream
from dreamrelay.upstreams.base import ChannelKind, Endpoint, Probe, Site
from dreamrelay.upstreams.kling import KlingUpstream, KlingVideoUpstream, video_report
from dreamrelay.upstreams.luma import LumaUpstream, generation_report
from dreamrelay.upstreams.seedance import SeedanceUpstream, task_report

_BASES: dict[str, Callable[[Settings], str]] = {
    VIDEO: lambda settings: settings.sandbox_base_url,
    DREAM_MACHINE: lambda settings: settings.sandbox_base_url,
    IMAGE: lambda settings: settings.sandbox_kling_url,
    AGENTS: lambda settings: settings.sandbox_agents_url,
    SEEDANCE: lambda settings: settings.sandbox_ark_url,
    KLING_VIDEO: lambda settings: settings.sandbox_kling_url,
}


def _endpoint(channel: Channel, site: Site, capability: str) -> Endpoint:
    return Endpoint(_BASES[capability](site.settings), site.sandbox_key)


def _probe(endpoint: Endpoint) -> Probe:
    return Probe("GET", endpoint.base_url.rstrip("/") + "/ping")


def _media(settings: Settings, capability: str) -> str:
    """Where the sandbox's finished media are: its presigned Agents outputs, or its files."""
    if capability in _EXPIRING:
        return settings.sandbox_agents_url + "/outputs/"
    return settings.sandbox_base_url + "/files/"


_EXPIRING = frozenset({AGENTS})  # like Luma's Agents API, its output URLs are presigned

KIND = ChannelKind(
    name="sandbox",
    adapters={
        VIDEO: LumaUpstream.connect,
        IMAGE: KlingUpstream.connect,
        AGENTS: AgentsUpstream.connect,
        DREAM_MACHINE: LumaUpstream.connect,
        SEEDANCE: SeedanceUpstream.connect,
        KLING_VIDEO: KlingVideoUpstream.connect,
    },
    reports={
        VIDEO: generation_report,
        DREAM_MACHINE: generation_report,
        KLING_VIDEO: video_report,
        SEEDANCE: task_report,
    },
    priced_by_use={KLING_VIDEO: used_price_key},
    probe=_probe,
    needs_base_url=False,
    endpoint=_endpoint,
    expiring_links=_EXPIRING,
    own_media=_media,
    price_keys=("resolution", "duration", "hdr", "n"),
)
