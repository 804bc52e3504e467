"""Own-format (seed family) request bodies."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from dreamrelay.domain.catalog import PROMPT_MAX_CHARS
from dreamrelay.domain.inputs import GenerationInput

# A 2×2 PNG as a data URI: examples that work without fetching anything.
TINY_PNG = (
    "data:image/png;base64,"
    "iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAFklEQVR4nGM8EaDBwMDAxMDAwMDAAAAPygFEiUmOcwAAAABJRU5ErkJggg=="
)

AspectRatio = Literal["16:9", "1:1", "9:16", "4:3", "3:4", "21:9", "9:21"]


class _Body(BaseModel):
    # Unknown fields are ignored, not rejected; JSON types must be right (no "true" for true).
    model_config = ConfigDict(extra="ignore", strict=True)


class OwnSubmit(_Body):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "user_prompt": "a paper boat on a rainy street",
                    "aspect_ratio": "16:9",
                    "model_name": "ray-v2",
                },
                {
                    "user_prompt": "the square glows",
                    "image_url": TINY_PNG,
                    "duration": "5s",
                },
            ]
        }
    )
    user_prompt: str = Field(min_length=1, max_length=PROMPT_MAX_CHARS, description="What to generate.")
    aspect_ratio: AspectRatio | None = Field(default=None, description="Default 16:9.")
    expand_prompt: bool | None = None
    loop: bool | None = Field(default=None, description="End where it began.")
    image_url: str | None = Field(default=None, description="Start frame: http(s) URL, data URI or base64.")
    image_end_url: str | None = Field(default=None, description="End frame: http(s) URL, data URI or base64.")
    model_name: str | None = Field(default=None, description="ray-v1, ray-v2 or ray-flash-2.")
    resolution: str | None = Field(default=None, description="540p, 720p, 1080p or 4k, as the model allows.")
    duration: str | None = Field(default=None, description='"5s" or "9s" ("5" accepted).')
    notify_hook: str | None = Field(default=None, description="Callback URL for state changes.")
    callback_url: str | None = Field(default=None, description="Alias of notify_hook.")

    def to_input(self) -> GenerationInput:
        return GenerationInput(
            prompt=self.user_prompt,
            aspect_ratio=self.aspect_ratio,
            model=self.model_name,
            resolution=self.resolution,
            duration=self.duration,
            loop=bool(self.loop),
            expand_prompt=bool(self.expand_prompt),
            image=self.image_url,
            end_image=self.image_end_url,
            callback_url=self.notify_hook or self.callback_url,
        )


class OwnExtend(_Body):
    model_config = ConfigDict(json_schema_extra={"examples": [{"user_prompt": "and the boat sails on"}]})
    user_prompt: str = Field(min_length=1, max_length=PROMPT_MAX_CHARS)
    expand_prompt: bool | None = None
    loop: bool | None = None
    image_end_url: str | None = None
    duration: str | None = None
    notify_hook: str | None = None
    callback_url: str | None = None


class FileUpload(_Body):
    model_config = ConfigDict(json_schema_extra={"examples": [{"url": TINY_PNG}]})
    url: str | None = Field(
        default=None,
        max_length=15_000_000,
        description="The image to store now: http(s) URL or data URI; without it the slot waits for a PUT.",
    )
    filename: str | None = Field(
        default=None,
        max_length=200,
        description="Without url: file.jpg (default) or file.png, the PUT's type.",
    )


class FileUploaded(BaseModel):
    id: str
    presigned_url: str = Field(description="PUT the file here (expires after 15 minutes).")
    public_url: str = Field(description="Where the file is served; use it as image_url / image_end_url.")


class BatchQuery(_Body):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"ids": ["4665a07c-7641-4809-a133-10786201bb56"]}]}
    )
    ids: list[str] = Field(max_length=1000, description="Task ids; unknown or foreign ids are left out.")


# ---- responses (documentation of what the routes send) ---------------------------------------------


class Palette(BaseModel):
    grid: str = Field(description="Base64 of a 5×5 grid of average RGB colours (75 bytes).")


class ImageMedia(BaseModel):
    height: int
    media_type: Literal["image"]
    palette: Palette | None
    url: str
    width: int


class VideoMedia(BaseModel):
    download_url: str
    height: int
    url: str
    width: int


class RawVideoMedia(BaseModel):
    duration: float
    height: int
    media_type: Literal["video"]
    url: str
    width: int


class Artifact(BaseModel):
    created_at: str
    last_frame: ImageMedia
    thumbnail: ImageMedia
    video: VideoMedia
    video_raw: RawVideoMedia


class TaskRequest(BaseModel):
    aspect_ratio: str
    prompt: str


class OwnTask(BaseModel):
    """The task object (the seed's keys, sorted, plus failure_reason); media are null until completed."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "artifact": None,
                    "created_at": "2025-03-02T10:15:22.481Z",
                    "failure_reason": None,
                    "id": "0b7e2a52-3d1c-4d8e-9a41-6f2d1c9e8a10",
                    "last_frame": None,
                    "request": {"aspect_ratio": "16:9", "prompt": "a paper boat on a rainy street"},
                    "state": "pending",
                    "thumbnail": None,
                    "video": None,
                    "video_raw": None,
                }
            ]
        }
    )

    artifact: Artifact | None
    created_at: str
    failure_reason: str | None
    id: str
    last_frame: ImageMedia | None
    request: TaskRequest
    state: Literal["pending", "processing", "completed", "failed"]
    thumbnail: ImageMedia | None
    video: VideoMedia | None
    video_raw: RawVideoMedia | None


class DownloadUrl(BaseModel):
    url: str


class ErrorInfo(BaseModel):
    message: str
    type: str = Field(examples=["invalid_request_error"])
    code: str = Field(examples=["invalid_request"])


class ErrorBody(BaseModel):
    """Every error outside the official routes."""

    error: ErrorInfo
