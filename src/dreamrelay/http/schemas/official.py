"""Official Dream Machine API shapes (api.lumalabs.ai/dream-machine/v1): request bodies and responses."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from dreamrelay.domain.catalog import PROMPT_MAX_CHARS
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
    generation_type: Literal["video"]
    state: Literal["queued", "dreaming", "completed", "failed"]
    failure_reason: str | None
    created_at: str = Field(examples=["2025-05-01T09:00:00.000Z"])
    assets: Assets
    model: str = Field(examples=["ray-2"])
    request: GenerationRequestEcho


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
