"""Official Dream Machine API shapes (api.lumalabs.ai/dream-machine/v1): request bodies and responses."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from dreamrelay.domain.catalog import (
    PHOTON_CHARACTER_IMAGES_MAX,
    PHOTON_IMAGE_REFS_MAX,
    PHOTON_STYLE_REFS_MAX,
    PROMPT_MAX_CHARS,
)
from dreamrelay.domain.json_object import JsonObject
from dreamrelay.http.schemas.own import AspectRatio

OfficialModel = Literal["ray-1-6", "ray-2", "ray-flash-2", "ray-3.2"]


class _Body(BaseModel):
    # As the official API: unknown fields are ignored; JSON types must be right.
    model_config = ConfigDict(extra="ignore", strict=True)


class ImageFrame(_Body):
    type: Literal["image"]
    url: str = Field(min_length=1, description="http(s) URL or data:image/...;base64 URI (JPEG or PNG).")


class GenerationFrame(_Body):
    type: Literal["generation"]
    id: str = Field(min_length=1, description="A completed generation of yours.")


Keyframe = Annotated[ImageFrame | GenerationFrame, Field(discriminator="type")]


class Keyframes(_Body):
    frame0: Keyframe | None = Field(default=None, description="Start: an image, or a generation to extend.")
    frame1: Keyframe | None = Field(
        default=None, description="End: an image, or a generation to lead into (reverse extend)."
    )


class Concept(_Body):
    key: str


class GenerationCreate(_Body):
    generation_type: Literal["video"] | None = None
    model: OfficialModel | None = Field(default=None, description="Default: the operator's default model.")
    prompt: str | None = Field(default=None, max_length=PROMPT_MAX_CHARS)
    aspect_ratio: AspectRatio | None = Field(default=None, description="Default 16:9.")
    loop: bool | None = None
    keyframes: Keyframes | None = None
    callback_url: str | None = Field(default=None, description="POSTed the Generation on every state change.")
    resolution: str | None = Field(default=None, description="540p, 720p (default), 1080p or 4k.")
    duration: str | None = Field(default=None, description="5s (default) or 9s.")
    concepts: list[Concept] | None = Field(default=None, description="Not supported: must be empty.")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"model": "ray-2", "prompt": "a paper boat on a rainy street", "aspect_ratio": "16:9"},
                {
                    "model": "ray-2",
                    "prompt": "the boat sails on",
                    "keyframes": {"frame0": {"type": "generation", "id": "<id of a completed generation>"}},
                },
            ]
        }
    )


# ---- the rest of the Dream Machine API (lumaai SDK request types) -----------------------------------

PhotonModel = Literal["photon-1", "photon-flash-1"]
VideoEditModel = Literal["ray-2", "ray-flash-2"]
ImageFormat = Literal["jpg", "png"]
ModifyMode = Literal[
    "adhere_1",
    "adhere_2",
    "adhere_3",
    "flex_1",
    "flex_2",
    "flex_3",
    "reimagine_1",
    "reimagine_2",
    "reimagine_3",
]
MediaURL = Annotated[str, Field(min_length=1, max_length=4_000_000, description="http(s) URL or data URI.")]
Weight = Annotated[float, Field(ge=0, le=1)]
Position = Annotated[int, Field(ge=-16384, le=16384)]


class ImageReference(_Body):
    url: MediaURL
    weight: Weight | None = None


class CharacterIdentity(_Body):
    images: list[MediaURL] = Field(min_length=1, max_length=PHOTON_CHARACTER_IMAGES_MAX)


class CharacterReference(_Body):
    identity0: CharacterIdentity


class ImageCreate(_Body):
    generation_type: Literal["image"] | None = None
    model: PhotonModel = "photon-1"
    prompt: str = Field(min_length=1, max_length=PROMPT_MAX_CHARS)
    aspect_ratio: AspectRatio | None = Field(default=None, description="Default 16:9.")
    format: ImageFormat | None = Field(default=None, description="jpg (default) or png.")
    image_ref: list[ImageReference] | None = Field(default=None, max_length=PHOTON_IMAGE_REFS_MAX)
    style_ref: list[ImageReference] | None = Field(default=None, max_length=PHOTON_STYLE_REFS_MAX)
    character_ref: CharacterReference | None = None
    modify_image_ref: ImageReference | None = None
    sync: bool | None = Field(default=None, description="Accepted; the generation is always asynchronous.")
    sync_timeout: float | None = None
    callback_url: str | None = None


class Media(_Body):
    url: MediaURL


class _Reframe(_Body):
    aspect_ratio: AspectRatio
    media: Media
    prompt: str | None = Field(default=None, max_length=PROMPT_MAX_CHARS)
    grid_position_x: Position | None = None
    grid_position_y: Position | None = None
    resized_width: Position | None = None
    resized_height: Position | None = None
    x_start: Position | None = None
    x_end: Position | None = None
    y_start: Position | None = None
    y_end: Position | None = None
    callback_url: str | None = None


class VideoReframeCreate(_Reframe):
    generation_type: Literal["reframe_video"]
    model: VideoEditModel
    first_frame: Media | None = None


class ImageReframeCreate(_Reframe):
    generation_type: Literal["reframe_image"]
    model: PhotonModel
    format: ImageFormat | None = None


class ModifyCreate(_Body):
    generation_type: Literal["modify_video"]
    model: VideoEditModel
    mode: ModifyMode
    media: Media
    first_frame: Media | None = None
    prompt: str | None = Field(default=None, max_length=PROMPT_MAX_CHARS)
    callback_url: str | None = None


class UpscaleCreate(_Body):
    generation_type: Literal["upscale_video"] | None = None
    resolution: Literal["540p", "720p", "1080p", "4k"] | None = Field(
        default=None, description="Default 1080p."
    )
    callback_url: str | None = None


class AudioCreate(_Body):
    generation_type: Literal["add_audio"] | None = None
    prompt: str | None = Field(default=None, max_length=PROMPT_MAX_CHARS)
    negative_prompt: str | None = Field(default=None, max_length=PROMPT_MAX_CHARS)
    callback_url: str | None = None


# ---- responses (documentation of what the routes send) ---------------------------------------------


class Assets(BaseModel):
    video: str | None = None
    image: str | None = None
    progress_video: str | None = None


class GenerationRequestEcho(BaseModel):
    generation_type: Literal["video"]
    model: str
    prompt: str
    aspect_ratio: str
    loop: bool
    resolution: str
    duration: str
    keyframes: dict[str, dict[str, str]] | None = None
    callback_url: str | None = None


class Generation(BaseModel):
    id: str = Field(examples=["5f0c9f4e-8a37-4b53-a0a2-2d7b3a1c9e11"])
    generation_type: Literal["video", "image"]
    state: Literal["queued", "dreaming", "completed", "failed"]
    failure_reason: str | None
    created_at: str = Field(examples=["2025-05-01T09:00:00.000Z"])
    assets: Assets
    model: str = Field(examples=["ray-2"])
    request: GenerationRequestEcho | JsonObject = Field(
        description="The create request echoed (video, image, upscale, audio, reframe or modify)."
    )


class GenerationList(BaseModel):
    generations: list[Generation]
    count: int
    has_more: bool
    limit: int
    offset: int


class Credits(BaseModel):
    credit_balance: float = Field(
        description="The account's balance in DreamRelay credits.", examples=[100000]
    )


class Pong(BaseModel):
    message: Literal["pong"]


class Detail(BaseModel):
    detail: str = Field(examples=["Generation not found"])
