"""A generation as DreamRelay keeps it and asks an upstream for it: an input of domain/inputs.py once
the submit services have checked it, filled in its defaults and made every image ours.

Each request knows the JSON object a task row keeps of it (`stored`, read back by the formats) and what
prices it (`price_key`); upstream adapters read its fields to build their own bodies. Dispatch adds
`callback_url` and `user_id`, which depend on the channel and are never stored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from dreamrelay.domain.catalog import (
    ADD_AUDIO,
    GENERATE_IMAGE,
    KLING_MODE_RESOLUTIONS,
    MODIFY_VIDEO,
    POSITION_FIELDS,
    REFRAME_IMAGE,
    REFRAME_VIDEO,
    UPSCALE_VIDEO,
    kling_used_duration,
    seedance_most_tokens,
)
from dreamrelay.domain.inputs import Reference
from dreamrelay.domain.json_object import JsonObject

WILDCARD = "*"  # a price rule's field that matches anything; a request without the field is priced so


@dataclass(frozen=True)
class PriceKey:
    """What the price list is searched by, besides action and model."""

    resolution: str = WILDCARD
    duration: str = WILDCARD
    hdr: bool = False
    n: int = 1  # the price is per picture
    tokens: int = 0  # the most tokens it can use (what a price per token holds)


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

    @classmethod
    def from_stored(cls, stored: Mapping[str, Any]) -> VideoRequest:
        """The request a task row keeps (`stored()`), read back; a missing field takes its default (the
        stored request of a Dream Machine video action reads as the video it describes)."""
        return cls(
            prompt=stored.get("prompt", ""),
            model=stored.get("model", ""),
            aspect_ratio=stored.get("aspect_ratio", "16:9"),
            resolution=stored.get("resolution", "720p"),
            duration=stored.get("duration", "5s"),
            loop=stored.get("loop", False),
            expand_prompt=stored.get("expand_prompt", False),
            start_image_url=stored.get("image_url"),
            end_image_url=stored.get("image_end_url"),
            start_generation=stored.get("start_generation"),
            end_generation=stored.get("end_generation"),
        )

    def stored(self) -> JsonObject:
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

    @classmethod
    def from_stored(cls, stored: Mapping[str, Any], model: str) -> ImagesRequest:
        """The request a Kling task row keeps, read back (`model` is the task's)."""
        return cls(
            prompt=stored.get("prompt", ""),
            model=model,
            aspect_ratio=stored.get("aspect_ratio", "16:9"),
            n=stored.get("n", 1),
            negative_prompt=stored.get("negative_prompt"),
            image_url=stored.get("image_url"),
            image_fidelity=stored.get("image_fidelity"),
        )

    def stored(self) -> JsonObject:
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

    @classmethod
    def from_stored(cls, stored: Mapping[str, Any], action: str) -> DreamMachineRequest:
        """The request a task row of `action` keeps (`stored()`), read back: what it echoes and what an
        upscale or audio of it carries on. The official model name and upstream ids are not kept."""
        media = stored.get("media") or {}
        first_frame = stored.get("first_frame") or {}
        character = (stored.get("character_ref") or {}).get("identity0", {})
        modify = stored.get("modify_image_ref")
        return cls(
            action=action,
            prompt=stored.get("prompt", ""),
            aspect_ratio=stored.get("aspect_ratio", "16:9"),
            format=stored.get("format"),
            image_ref=tuple(_read_reference(r) for r in stored.get("image_ref") or ()),
            style_ref=tuple(_read_reference(r) for r in stored.get("style_ref") or ()),
            character_images=tuple(character.get("images", ())),
            modify_image_ref=_read_reference(modify) if modify else None,
            mode=stored.get("mode"),
            media_url=media.get("url"),
            first_frame_url=first_frame.get("url"),
            position={name: stored[name] for name in POSITION_FIELDS if name in stored},
            resolution=stored.get("resolution"),
            negative_prompt=stored.get("negative_prompt"),
            duration=stored.get("duration"),
            source_generation=stored.get("source_generation"),
        )

    def stored(self) -> JsonObject:
        """What the official format's `request` echo is read from (formats/official.py)."""
        if self.action == GENERATE_IMAGE:
            return {"prompt": self.prompt, "aspect_ratio": self.aspect_ratio, **self.photon_refs()}
        if self.action in (UPSCALE_VIDEO, ADD_AUDIO):
            kept: JsonObject = {
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

    def photon_refs(self) -> JsonObject:
        """A Photon image's format and references, in the official vocabulary."""
        refs: JsonObject = {"format": self.format}
        if self.image_ref:
            refs["image_ref"] = [_reference(r) for r in self.image_ref]
        if self.style_ref:
            refs["style_ref"] = [_reference(r) for r in self.style_ref]
        if self.character_images:
            refs["character_ref"] = {"identity0": {"images": list(self.character_images)}}
        if self.modify_image_ref is not None:
            refs["modify_image_ref"] = _reference(self.modify_image_ref)
        return refs


def _read_reference(kept: Mapping[str, Any]) -> Reference:
    return Reference(url=kept["url"], weight=kept.get("weight"))


def _reference(reference: Reference) -> JsonObject:
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

    def wire(self) -> JsonObject:
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
    video: JsonObject | None = None  # None: not a video kind
    start_frame: UpstreamRef | None = None
    end_frame: UpstreamRef | None = None
    keyframes: tuple[UpstreamRef, ...] = ()
    edit: JsonObject | None = None  # video.edit's settings as given (video_edit)
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

    def stored(self) -> JsonObject:
        kept: JsonObject = {"type": self.kind, "prompt": self.prompt, "aspect_ratio": self.aspect_ratio}
        if self.video is not None:
            kept.update(resolution=self.video["resolution"], duration=self.duration, hdr=self.hdr)
        kept["output_format"] = self.output_format
        return kept

    @classmethod
    def from_stored(cls, stored: Mapping[str, Any], model: str) -> AgentsRequest:
        """The request a task row keeps (`stored()`; the model is the row's), read back: what the Agents
        API shows and prices of it. References are not kept, so a read-back request has none."""
        video = None
        if "resolution" in stored:
            video = {"resolution": stored["resolution"], "hdr": stored.get("hdr", False)}
        return cls(
            kind=stored.get("type", "video"),
            model=model,
            prompt=stored.get("prompt", ""),
            aspect_ratio=stored.get("aspect_ratio"),
            output_format=stored.get("output_format"),
            video=video,
            duration=stored.get("duration") if video is not None else None,
        )


# Whatever dispatch may hand an adapter; each adapter refuses (UpstreamRefused) what it cannot make.
@dataclass(frozen=True)
class SeedanceImage:
    """An input image of a Seedance task: our stored copy and the role Ark gives it."""

    url: str
    role: str  # first_frame, last_frame or reference_image


@dataclass(frozen=True)
class SeedanceRequest:
    """A Seedance video (Ark's content-generation task parameters, checked against the catalog)."""

    prompt: str
    model: str
    resolution: str
    ratio: str
    duration: int  # seconds
    fps: int = 24
    seed: int = -1
    camera_fixed: bool = False
    watermark: bool = False
    return_last_frame: bool = False
    images: tuple[SeedanceImage, ...] = ()
    callback_url: str | None = None
    user_id: str | None = None

    @property
    def price_key(self) -> PriceKey:
        tokens = seedance_most_tokens(self.resolution, self.duration, self.fps)
        return PriceKey(resolution=self.resolution, duration=f"{self.duration}s", tokens=tokens)

    def stored(self) -> JsonObject:
        return {
            "prompt": self.prompt,
            "model": self.model,
            "resolution": self.resolution,
            "ratio": self.ratio,
            "aspect_ratio": self.ratio,  # the shared video formats' name (a /v1/videos task is listed there)
            "duration": self.duration,
            "fps": self.fps,
            "seed": self.seed,
            "camera_fixed": self.camera_fixed,
            "watermark": self.watermark,
            "return_last_frame": self.return_last_frame,
            "images": [{"url": i.url, "role": i.role} for i in self.images],
        }

    @classmethod
    def from_stored(cls, stored: Mapping[str, Any]) -> SeedanceRequest:
        return cls(
            prompt=stored.get("prompt", ""),
            model=stored.get("model", ""),
            resolution=stored.get("resolution", "720p"),
            ratio=stored.get("ratio", "16:9"),
            duration=int(stored.get("duration", 5)),
            fps=int(stored.get("fps", 24)),
            seed=int(stored.get("seed", -1)),
            camera_fixed=bool(stored.get("camera_fixed", False)),
            watermark=bool(stored.get("watermark", False)),
            return_last_frame=bool(stored.get("return_last_frame", False)),
            images=tuple(SeedanceImage(i["url"], i["role"]) for i in stored.get("images", ())),
        )


@dataclass(frozen=True)
class KlingVideoRequest:
    """A Kling video (text2video, or image2video from `image_url`), checked against the catalog. Its
    stored form also carries the own-format fields (resolution of the mode, duration as '5s', the images
    as image_url / image_end_url), so every shared video family shows it."""

    prompt: str
    model: str
    mode: str  # std or pro
    aspect_ratio: str
    duration: int  # 5 or 10 seconds
    negative_prompt: str | None = None
    cfg_scale: float | None = None
    camera_control: dict[str, Any] | None = None
    image_url: str | None = None  # our stored copy of the first frame (image2video)
    image_tail_url: str | None = None  # our stored copy of the last frame
    callback_url: str | None = None
    user_id: str | None = None

    @property
    def price_key(self) -> PriceKey:
        """Kling charges by mode and length: the price list's resolution field holds the mode."""
        return PriceKey(resolution=self.mode, duration=f"{self.duration}s")

    def stored(self) -> dict[str, Any]:
        return {
            "prompt": self.prompt,
            "aspect_ratio": self.aspect_ratio,
            "model": self.model,
            "resolution": KLING_MODE_RESOLUTIONS[self.mode],
            "duration": f"{self.duration}s",
            "loop": False,
            "expand_prompt": False,
            "image_url": self.image_url,
            "image_end_url": self.image_tail_url,
            "start_generation": None,
            "end_generation": None,
            "mode": self.mode,
            "negative_prompt": self.negative_prompt,
            "cfg_scale": self.cfg_scale,
            "camera_control": self.camera_control,
        }

    @classmethod
    def from_stored(cls, stored: Mapping[str, Any]) -> KlingVideoRequest:
        return cls(
            prompt=stored.get("prompt", ""),
            model=stored.get("model", ""),
            mode=stored.get("mode", "std"),
            aspect_ratio=stored.get("aspect_ratio", "16:9"),
            duration=int(str(stored.get("duration", "5s")).removesuffix("s")),
            negative_prompt=stored.get("negative_prompt"),
            cfg_scale=stored.get("cfg_scale"),
            camera_control=stored.get("camera_control"),
            image_url=stored.get("image_url"),
            image_tail_url=stored.get("image_end_url"),
        )


def used_price_key(stored: Mapping[str, Any], seconds: float) -> PriceKey:
    """What a finished Kling video used, as the price list reads it: its mode, and the length of the
    clip delivered (not the one asked for)."""
    request = KlingVideoRequest.from_stored(stored)
    return replace(request, duration=kling_used_duration(seconds)).price_key


SubmitRequest = (
    VideoRequest | ImagesRequest | DreamMachineRequest | AgentsRequest | SeedanceRequest | KlingVideoRequest
)
