"""The OpenAI Videos API's bodies (/v1/videos), for the OpenAPI document and the JSON create body."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from dreamrelay.domain.catalog import PROMPT_MAX_CHARS

URL_MAX_CHARS = 2048


class InputReference(BaseModel):
    model_config = ConfigDict(extra="forbid")

    image_url: str | None = Field(default=None, max_length=14_000_000, description="URL or data: URL")
    file_id: str | None = Field(default=None, max_length=200)


class VideoCreate(BaseModel):
    """POST /v1/videos as JSON (multipart has the same fields; `input_reference` may be a file part)."""

    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(min_length=1, max_length=PROMPT_MAX_CHARS)
    model: str | None = Field(default=None, max_length=64, examples=["ray-2"])
    seconds: str | int | None = Field(default=None, examples=["5"])
    size: str | None = Field(default=None, max_length=16, examples=["1280x720"])
    input_reference: InputReference | str | None = None
    callback_url: str | None = Field(
        default=None,
        max_length=URL_MAX_CHARS,
        description="DreamRelay: where to post video.completed / video.failed (Standard Webhooks signed)",
    )


class VideoReference(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(max_length=64, description="A completed video of yours")


class VideoRemix(BaseModel):
    """POST /v1/videos/{video_id}/remix."""

    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(min_length=1, max_length=PROMPT_MAX_CHARS)


class VideoEdit(VideoRemix):
    """POST /v1/videos/edits (multipart: `video[id]` as a text part)."""

    video: VideoReference
    callback_url: str | None = Field(default=None, max_length=URL_MAX_CHARS)


class VideoExtend(VideoEdit):
    """POST /v1/videos/extensions (multipart: `video[id]` as a text part)."""

    seconds: str | int | None = Field(default=None, examples=["5"])


class VideoError(BaseModel):
    code: str
    message: str


class Video(BaseModel):
    id: str
    object: Literal["video"]
    model: str
    status: Literal["queued", "in_progress", "completed", "failed"]
    progress: int
    created_at: int
    completed_at: int | None
    expires_at: int | None
    prompt: str | None
    seconds: str
    size: str
    remixed_from_video_id: str | None
    error: VideoError | None


class VideoList(BaseModel):
    object: Literal["list"]
    data: list[Video]
    first_id: str | None
    last_id: str | None
    has_more: bool


class VideoDeleted(BaseModel):
    id: str
    object: Literal["video.deleted"]
    deleted: bool


class OpenAIError(BaseModel):
    message: str
    type: str
    param: str | None
    code: str


class OpenAIErrorBody(BaseModel):
    """Every error under /v1/videos (the SDK maps the status to its exception class)."""

    error: OpenAIError
