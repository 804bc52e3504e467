"""The built-in sandbox as a channel kind: the official API for videos and Kling's for images, at the
sandbox's own address (DREAMRELAY_SANDBOX_URL, or this process's mount) with its own key."""

from __future__ import annotations

from dreamrelay.domain.catalog import IMAGE, VIDEO
from dreamrelay.domain.channel import Channel
from dreamrelay.settings import Settings
from dreamrelay.upstreams.base import ChannelKind, Endpoint, Probe
from dreamrelay.upstreams.kling import KlingUpstream
from dreamrelay.upstreams.luma import LumaUpstream


def _endpoint(channel: Channel, settings: Settings, capability: str) -> Endpoint:
    base = settings.sandbox_kling_url if capability == IMAGE else settings.sandbox_base_url
    return Endpoint(base, settings.sandbox_key)


def _probe(endpoint: Endpoint) -> Probe:
    return Probe("GET", endpoint.base_url.rstrip("/") + "/ping")


KIND = ChannelKind(
    name="sandbox",
    adapters={VIDEO: LumaUpstream.connect, IMAGE: KlingUpstream.connect},
    probe=_probe,
    needs_base_url=False,
    endpoint=_endpoint,
)
