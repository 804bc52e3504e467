"""What a customer asks for, in our own words, whatever API format it arrived in.

A route builds one of these once from its validated body; the submit services check it, make its
images ours and turn it into a request of domain/requests.py, which is stored and sent upstream.
Values are as given: URLs or data URIs not yet fetched, defaults not yet filled in.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dreamrelay.domain.json_object import JsonObject


@dataclass(frozen=True)
class GenerationInput:
    """A video generation (own, official and AceData formats).

    `start_generation` / `end_generation` are task ids whose video this one continues from (extend)
    or leads into (reverse extend); both together interpolate between two videos.
    """

    prompt: str
    aspect_ratio: str | None = None
    model: str | None = None
    resolution: str | None = None
    duration: str | None = None
    loop: bool = False
    expand_prompt: bool = False
    image: str | None = None
    end_image: str | None = None
    callback_url: str | None = None
    start_generation: str | None = None
    end_generation: str | None = None


@dataclass(frozen=True)
class ImagesInput:
    """An image generation (Kling's parameters, already within the seed's limits): `n` pictures."""

    prompt: str
    n: int = 1
    model: str | None = None
    negative_prompt: str | None = None
    image: str | None = None
    image_fidelity: float | None = None
    aspect_ratio: str | None = None
    callback_url: str | None = None


@dataclass(frozen=True)
class KlingVideoInput:
    """A Kling video (text2video or image2video), as given: `image` and `image_tail` are URLs or base64
    not yet fetched; an empty string is no image (Dooy's client always sends both)."""

    prompt: str
    model: str | None = None
    mode: str | None = None
    aspect_ratio: str | None = None
    duration: int | None = None
    negative_prompt: str | None = None
    cfg_scale: float | None = None
    camera_control: JsonObject | None = None
    image: str | None = None
    image_tail: str | None = None
    callback_url: str | None = None
    image_to_video: bool = False  # POST …/image2video: `image` is required


# ---- the rest of the Dream Machine API ----------------------------------------------------------------


@dataclass(frozen=True)
class Reference:
    url: str
    weight: float | None = None


@dataclass(frozen=True)
class PhotonInput:
    """POST /generations/image (photon-1, photon-flash-1)."""

    model: str
    prompt: str
    aspect_ratio: str | None = None
    format: str | None = None
    image_ref: tuple[Reference, ...] = ()
    style_ref: tuple[Reference, ...] = ()
    character_images: tuple[str, ...] = ()
    modify_image_ref: Reference | None = None
    callback_url: str | None = None


@dataclass(frozen=True)
class ReframeInput:
    """POST /generations/{video,image}/reframe: `media_url` shown in a new aspect ratio."""

    action: str  # REFRAME_VIDEO or REFRAME_IMAGE
    model: str  # official model name
    aspect_ratio: str
    media_url: str
    prompt: str = ""
    format: str | None = None  # images only
    first_frame_url: str | None = None  # videos only
    position: dict[str, int] = field(default_factory=dict)  # the POSITION_FIELDS given
    callback_url: str | None = None


@dataclass(frozen=True)
class ModifyInput:
    """POST /generations/video/modify."""

    model: str  # official model name
    mode: str
    media_url: str
    prompt: str = ""
    first_frame_url: str | None = None
    callback_url: str | None = None


# ---- the Agents API (/agents/v1) ----------------------------------------------------------------------


@dataclass(frozen=True)
class ImageRef:
    """Exactly one of url, data, generation_id, file_id (checked by the service)."""

    url: str | None = None
    data: str | None = None
    generation_id: str | None = None
    file_id: str | None = None
    media_type: str | None = None


@dataclass(frozen=True)
class AgentsEdit:
    strength: str | None = None
    auto_controls: bool | None = None
    controls: JsonObject | None = None
    keyframes: tuple[ImageRef, ...] | None = None
    keyframe_indexes: tuple[int, ...] | None = None


@dataclass(frozen=True)
class AgentsVideo:
    duration: str | None = None
    resolution: str | None = None
    loop: bool | None = None
    hdr: bool | None = None
    exr_export: bool | None = None
    start_frame: ImageRef | None = None
    end_frame: ImageRef | None = None
    keyframes: tuple[ImageRef, ...] | None = None
    keyframe_indexes: tuple[int, ...] | None = None
    source_position: dict[str, float] | None = None
    edit: AgentsEdit | None = None


@dataclass(frozen=True)
class AgentsInput:
    """POST /agents/v1/generations."""

    prompt: str
    type: str | None = None
    model: str | None = None
    aspect_ratio: str | None = None
    image_ref: tuple[ImageRef, ...] = ()
    source: ImageRef | None = None
    output_format: str | None = None
    style: str | None = None
    video: AgentsVideo | None = None
