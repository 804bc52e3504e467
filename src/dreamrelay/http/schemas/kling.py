"""Kling image generation (the seed's parameter table): the request body and the envelope answered."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from dreamrelay.domain.catalog import (
    IMAGE_COUNT_MAX,
    IMAGE_NEGATIVE_PROMPT_MAX_CHARS,
    IMAGE_PROMPT_MAX_CHARS,
    KLING_VIDEO_PROMPT_MAX_CHARS,
)

ImageAspectRatio = Literal["16:9", "9:16", "1:1", "4:3", "3:4", "3:2", "2:3"]


class ImageCreate(BaseModel):
    model_config = ConfigDict(
        extra="ignore",
        strict=True,
        json_schema_extra={
            "examples": [
                {"prompt": "a red fox in fresh snow, watercolour", "n": 2, "aspect_ratio": "1:1"},
            ]
        },
    )

    model: Literal["kling-image"] | None = Field(default=None, description="Default kling-image.")
    prompt: str = Field(min_length=1, max_length=IMAGE_PROMPT_MAX_CHARS)
    negative_prompt: str | None = Field(default=None, max_length=IMAGE_NEGATIVE_PROMPT_MAX_CHARS)
    image: str | None = Field(
        default=None, description="Reference image: http(s) URL or base64 (data URI too); JPEG/PNG, ≤ 10 MB."
    )
    image_fidelity: float | None = Field(
        default=None, ge=0, le=1, description="How closely to follow the reference image (0–1)."
    )
    n: int = Field(default=1, ge=1, le=IMAGE_COUNT_MAX, description="Number of images.")
    aspect_ratio: ImageAspectRatio | None = Field(default=None, description="Default 16:9.")
    callback_url: str | None = Field(default=None, description="POSTed the envelope on every change.")


class KlingImage(BaseModel):
    index: int
    url: str


class KlingResult(BaseModel):
    images: list[KlingImage]


class KlingTask(BaseModel):
    task_id: str
    task_status: Literal["submitted", "processing", "succeed", "failed"]
    task_status_msg: str
    created_at: int = Field(description="Unix time in milliseconds.", examples=[1732500000000])
    updated_at: int = Field(description="Unix time in milliseconds.", examples=[1732500004000])
    task_result: KlingResult


class KlingEnvelope(BaseModel):
    code: Literal[0]
    message: str = Field(examples=["SUCCEED"])
    request_id: str
    data: KlingTask


# ---- Kling video (text2video, image2video) ---------------------------------------------------------------

IMAGE_MAX_CHARS = 14_000_000  # a 10 MB image as base64, with room for a data: prefix


class CameraConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    horizontal: float = Field(default=0, ge=-10, le=10)
    vertical: float = Field(default=0, ge=-10, le=10)
    pan: float = Field(default=0, ge=-10, le=10)
    tilt: float = Field(default=0, ge=-10, le=10)
    roll: float = Field(default=0, ge=-10, le=10)
    zoom: float = Field(default=0, ge=-10, le=10)


class CameraControl(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    type: Literal["simple", "down_back", "forward_up", "right_turn_forward", "left_turn_forward"]
    config: CameraConfig | None = Field(default=None, description="Only for `simple`: one value not 0.")


class VideoCreate(BaseModel):
    """Kling's text2video and image2video body. `model` is taken as `model_name` (Dooy's client sends
    it); an empty `image` or `image_tail` is no image."""

    model_config = ConfigDict(
        extra="ignore",
        strict=True,
        json_schema_extra={
            "examples": [
                {
                    "model_name": "kling-v1-6",
                    "prompt": "a paper boat on a rainy street",
                    "mode": "std",
                    "duration": "5",
                    "aspect_ratio": "16:9",
                },
            ]
        },
    )

    model_name: str | None = Field(default=None, max_length=64, description="Default kling-v1.")
    model: str | None = Field(default=None, max_length=64, description="Taken as model_name.")
    prompt: str | None = Field(default=None, max_length=KLING_VIDEO_PROMPT_MAX_CHARS)
    negative_prompt: str | None = Field(default=None, max_length=KLING_VIDEO_PROMPT_MAX_CHARS)
    cfg_scale: float | None = Field(default=None, ge=0, le=1, description="kling-v1.x only; default 0.5.")
    mode: Literal["std", "pro"] | None = Field(default=None, description="Default std (720p); pro is 1080p.")
    aspect_ratio: Literal["16:9", "9:16", "1:1"] | None = Field(
        default=None, description="text2video only (image2video takes the image's); default 16:9."
    )
    duration: Literal["5", "10", 5, 10] | None = Field(
        default=None, description='Seconds: "5" (default) or "10".'
    )
    camera_control: CameraControl | None = None
    image: str | None = Field(
        default=None, max_length=IMAGE_MAX_CHARS, description="image2video: the first frame, a URL or base64."
    )
    image_tail: str | None = Field(
        default=None, max_length=IMAGE_MAX_CHARS, description="The last frame, a URL or base64."
    )
    callback_url: str | None = Field(
        default=None, max_length=2048, description="POSTed the task on every change."
    )
    external_task_id: str | None = Field(default=None, max_length=64)


class KlingVideo(BaseModel):
    id: str
    url: str
    duration: str = Field(examples=["5.0"])


class KlingVideoResult(BaseModel):
    videos: list[KlingVideo]


class KlingVideoTask(BaseModel):
    task_id: str
    task_status: Literal["submitted", "processing", "succeed", "failed"]
    task_status_msg: str
    task_info: dict[str, str]
    created_at: int = Field(description="Unix time in milliseconds.", examples=[1732500000000])
    updated_at: int = Field(description="Unix time in milliseconds.", examples=[1732500004000])
    task_result: KlingVideoResult
    final_unit_deduction: str | None = Field(
        default=None, description="Once finished: the credits charged (0 when it failed)."
    )


class KlingVideoEnvelope(BaseModel):
    code: Literal[0]
    message: str = Field(examples=["SUCCEED"])
    request_id: str
    data: KlingVideoTask


class KlingVideoPage(BaseModel):
    code: Literal[0]
    message: str = Field(examples=["SUCCEED"])
    request_id: str
    data: list[KlingVideoTask]
