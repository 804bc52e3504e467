"""A generation as DreamRelay keeps it and asks an upstream for it: an input of domain/inputs.py once
the submit services have checked it, filled in its defaults and made every image ours.

Each request knows the JSON object a task row keeps of it (`stored`, read back by the formats) and what
prices it (`price_key`); upstream adapters read its fields to build their own bodies. Dispatch adds
`callback_url` and `user_id`, which depend on the channel and are never stored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dreamrelay.domain.catalog import (
    ADD_AUDIO,
    GENERATE_IMAGE,
    MODIFY_VIDEO,
    REFRAME_IMAGE,
    REFRAME_VIDEO,
    UPSCALE_VIDEO,
)
from dreamrelay.domain.inputs import Reference

WILDCARD = "*"  # a price rule's field that matches anything; a request without the field is priced so


@dataclass(frozen=True)
class PriceKey:
    """What the price list is searched by, besides action and model."""

    resolution: str = WILDCARD
    duration: str = WILDCARD
    hdr: bool = False
    n: int = 1  # the price is per picture


@dataclass(frozen=True)
class VideoRequest:
    """A video generation (own-format vocabulary)."""

    prompt: str
    model: str
    aspect_ratio: str
    resolution: str
    duration: str
    loop: bool = False
    expand_prompt: bool = False
    start_image_url: str | None = None  # our stored copy
    end_image_url: str | None = None
    start_generation: str | None = None  # our task this one continues (keyframe 0)
    end_generation: str | None = None  # our task this one leads into (keyframe 1)
    extend_upstream_id: str | None = None  # start_generation's upstream id
    end_upstream_id: str | None = None  # end_generation's upstream id
    callback_url: str | None = None  # where upstream may tell us about changes (kinds that support it)
    user_id: str | None = None  # the customer account's opaque id, for upstreams that take one

    @property
    def price_key(self) -> PriceKey:
        return PriceKey(resolution=self.resolution, duration=self.duration)

    def stored(self) -> dict[str, Any]:
        return {
            "prompt": self.prompt,
            "aspect_ratio": self.aspect_ratio,
            "model": self.model,
            "resolution": self.resolution,
            "duration": self.duration,
            "loop": self.loop,
            "expand_prompt": self.expand_prompt,
            "image_url": self.start_image_url,
            "image_end_url": self.end_image_url,
            "start_generation": self.start_generation,
            "end_generation": self.end_generation,
        }


@dataclass(frozen=True)
class ImagesRequest:
    """An image generation (Kling's parameters): `n` pictures of one prompt."""

    prompt: str
    model: str
    aspect_ratio: str
    n: int
    negative_prompt: str | None = None
    image_url: str | None = None  # reference image (our stored copy)
    image_fidelity: float | None = None
    callback_url: str | None = None  # not used by image upstreams; kept for a uniform dispatch
    user_id: str | None = None

    @property
    def price_key(self) -> PriceKey:
        return PriceKey(n=self.n)

    def stored(self) -> dict[str, Any]:
        return {
            "prompt": self.prompt,
            "negative_prompt": self.negative_prompt,
            "image_url": self.image_url,
            "image_fidelity": self.image_fidelity,
            "n": self.n,
            "aspect_ratio": self.aspect_ratio,
        }


@dataclass(frozen=True)
class DreamMachineRequest:
    """One of the Dream Machine API's other generations: Photon image (GENERATE_IMAGE), image and video
    reframe, video modify, upscale and add audio, every media URL ours. `model` is the official name;
    `duration` and `source_generation` are ours only (the price bucket of a source video, our task
    whose output it is); `parent_upstream_id` is the generation an upscale or audio applies to."""

    action: str
    model: str | None = None  # not sent with an upscale or audio
    prompt: str = ""
    aspect_ratio: str = "16:9"
    format: str | None = None
    image_ref: tuple[Reference, ...] = ()
    style_ref: tuple[Reference, ...] = ()
    character_images: tuple[str, ...] = ()
    modify_image_ref: Reference | None = None
    mode: str | None = None
    media_url: str | None = None
    first_frame_url: str | None = None
    position: dict[str, int] = field(default_factory=dict)
    resolution: str | None = None
    negative_prompt: str | None = None
    duration: str | None = None
    source_generation: str | None = None
    parent_upstream_id: str | None = None
    callback_url: str | None = None
    user_id: str | None = None

    @property
    def price_key(self) -> PriceKey:
        return PriceKey(resolution=self.resolution or WILDCARD, duration=self.duration or WILDCARD)

    def stored(self) -> dict[str, Any]:
        """What the official format's `request` echo is read from (formats/official.py)."""
        if self.action == GENERATE_IMAGE:
            return {"prompt": self.prompt, "aspect_ratio": self.aspect_ratio, **self.photon_refs()}
        if self.action in (UPSCALE_VIDEO, ADD_AUDIO):
            kept: dict[str, Any] = {
                "prompt": self.prompt,
                "aspect_ratio": self.aspect_ratio,
                "resolution": self.resolution,
                "duration": self.duration,
                "source_generation": self.source_generation,
            }
            if self.action == ADD_AUDIO:
                kept["negative_prompt"] = self.negative_prompt
            return kept
        kept = {"prompt": self.prompt, "aspect_ratio": self.aspect_ratio}
        if self.action == MODIFY_VIDEO:
            kept["mode"] = self.mode
        kept["media"] = {"url": self.media_url}
        if self.action == REFRAME_IMAGE:
            kept["format"] = self.format
        else:
            kept["duration"] = self.duration
            kept["source_generation"] = self.source_generation
            if self.first_frame_url:
                kept["first_frame"] = {"url": self.first_frame_url}
        if self.action in (REFRAME_IMAGE, REFRAME_VIDEO):
            kept.update(self.position)
        return kept

    def photon_refs(self) -> dict[str, Any]:
        """A Photon image's format and references, in the official vocabulary."""
        refs: dict[str, Any] = {"format": self.format}
        if self.image_ref:
            refs["image_ref"] = [_reference(r) for r in self.image_ref]
        if self.style_ref:
            refs["style_ref"] = [_reference(r) for r in self.style_ref]
        if self.character_images:
            refs["character_ref"] = {"identity0": {"images": list(self.character_images)}}
        if self.modify_image_ref is not None:
            refs["modify_image_ref"] = _reference(self.modify_image_ref)
        return refs


def _reference(reference: Reference) -> dict[str, Any]:
    return (
        {"url": reference.url}
        if reference.weight is None
        else {"url": reference.url, "weight": reference.weight}
    )


@dataclass(frozen=True)
class UpstreamRef:
    """An Agents API ImageRef as upstream gets it: a URL of ours (with its media type), or the upstream
    id of a generation of the same channel."""

    url: str | None = None
    media_type: str | None = None
    generation_id: str | None = None

    def wire(self) -> dict[str, Any]:
        if self.generation_id is not None:
            return {"generation_id": self.generation_id}
        return {"url": self.url, "media_type": self.media_type}


@dataclass(frozen=True)
class AgentsRequest:
    """A generation in Luma's Agents API vocabulary (POST /generations), every reference one upstream can
    reach. `video` holds the video options as given (duration, resolution, loop, hdr, exr_export,
    keyframe_indexes, source_position; resolution filled in), their references and edit in the fields
    below; `duration` is what a video lasts (an edit or reframe: its source's length, the price bucket)."""

    kind: str  # the Agents API's `type`
    model: str
    prompt: str
    aspect_ratio: str | None = None
    output_format: str | None = None
    style: str | None = None
    source: UpstreamRef | None = None
    image_ref: tuple[UpstreamRef, ...] = ()
    video: dict[str, Any] | None = None  # None: not a video kind
    start_frame: UpstreamRef | None = None
    end_frame: UpstreamRef | None = None
    keyframes: tuple[UpstreamRef, ...] = ()
    edit: dict[str, Any] | None = None  # video.edit's settings as given (video_edit)
    edit_keyframes: tuple[UpstreamRef, ...] = ()
    duration: str | None = None
    callback_url: str | None = None  # not used: the Agents API has no callbacks
    user_id: str | None = None

    @property
    def price_key(self) -> PriceKey:
        if self.video is None:
            return PriceKey()
        return PriceKey(resolution=self.video["resolution"], duration=self.duration or WILDCARD, hdr=self.hdr)

    @property
    def hdr(self) -> bool:
        return bool(self.video and self.video.get("hdr"))

    def stored(self) -> dict[str, Any]:
        kept: dict[str, Any] = {"type": self.kind, "prompt": self.prompt, "aspect_ratio": self.aspect_ratio}
        if self.video is not None:
            kept.update(resolution=self.video["resolution"], duration=self.duration, hdr=self.hdr)
        kept["output_format"] = self.output_format
        return kept


# Whatever dispatch may hand an adapter; each adapter refuses (UpstreamRefused) what it cannot make.
SubmitRequest = VideoRequest | ImagesRequest | DreamMachineRequest | AgentsRequest
