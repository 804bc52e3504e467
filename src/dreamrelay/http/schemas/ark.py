"""Volcengine Ark's content-generation bodies (/api/v3/contents/generations/tasks), for the OpenAPI document;
the create body itself is read by `domain/ark.py` as Ark reads it (text commands, `null` as absent)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

URL_MAX_CHARS = 2048


class ImageUrl(BaseModel):
    url: str = Field(
        max_length=14_000_000, description="An http(s) URL or a data: URL (fetched through netguard)"
    )


class ContentItem(BaseModel):
    type: Literal["text", "image_url"]
    text: str | None = Field(
        default=None, description="The prompt, with text commands such as --rs 720p --dur 5"
    )
    image_url: ImageUrl | None = None
    role: Literal["first_frame", "last_frame", "reference_image"] | None = None


class TaskCreate(BaseModel):
    model: str = Field(max_length=64, examples=["doubao-seedance-1-0-pro-250528"])
    content: list[ContentItem] = Field(min_length=1, max_length=12)
    callback_url: str | None = Field(default=None, max_length=URL_MAX_CHARS)
    return_last_frame: bool | None = None
    resolution: Literal["480p", "720p", "1080p"] | None = None
    ratio: str | None = Field(default=None, examples=["16:9", "adaptive"])
    duration: int | None = None
    fps: Literal[16, 24] | None = None
    seed: int | None = None
    camera_fixed: bool | None = None
    watermark: bool | None = None


class TaskId(BaseModel):
    id: str


class Content(BaseModel):
    video_url: str
    last_frame_url: str | None = None


class Usage(BaseModel):
    completion_tokens: int
    total_tokens: int


class TaskError(BaseModel):
    code: str
    message: str


class Credits(BaseModel):
    held: int
    charged: int | None = Field(description="What its completion captured (≤ held); 0 once failed")


class Task(BaseModel):
    id: str
    model: str
    status: Literal["queued", "running", "succeeded", "failed", "cancelled", "expired"]
    error: TaskError | None = None
    content: Content | None = None
    usage: Usage | None = None
    seed: int
    resolution: str
    ratio: str
    duration: int
    framespersecond: int
    service_tier: str
    execution_expires_after: int
    generate_audio: bool
    draft: bool
    created_at: int
    updated_at: int
    credits: Credits


class TaskList(BaseModel):
    total: int
    items: list[Task]


class ArkError(BaseModel):
    code: str
    message: str
    param: str
    type: str


class ArkErrorBody(BaseModel):
    error: ArkError
