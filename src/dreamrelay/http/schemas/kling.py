"""Kling image generation (the seed's parameter table): the request body and the envelope answered."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from dreamrelay.domain.catalog import (
    IMAGE_COUNT_MAX,
    IMAGE_NEGATIVE_PROMPT_MAX_CHARS,
    IMAGE_PROMPT_MAX_CHARS,
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
