"""Request and response bodies of the Agents API at /agents/v1 (luma-agents 0.5.0's types)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from dreamrelay.domain import inputs
from dreamrelay.domain.catalog import AGENTS_PROMPT_MAX_CHARS, KEYFRAMES_MAX
from dreamrelay.http.schemas.official import ModifyMode

AgentsType = Literal["image", "image_edit", "video", "video_edit", "video_reframe", "layering"]
AgentsModel = Literal["uni-1", "uni-1-max", "ray-3.2"]
AspectRatio = Literal["3:1", "2:1", "21:9", "16:9", "4:3", "3:2", "1:1", "3:4", "2:3", "9:16", "1:2", "1:3"]
EditStrength = ModifyMode  # the Agents API's video_edit strengths are the Dream Machine API's modify modes
ID_MAX = 64
URL_MAX = 4096
DATA_MAX = 40 * 1024 * 1024  # base64 of the largest inline input; the body limit applies first


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ImageRef(_Body):
    """Exactly one of url, data, generation_id, file_id (checked by the service)."""

    url: str | None = Field(default=None, max_length=URL_MAX)
    data: str | None = Field(default=None, max_length=DATA_MAX)
    generation_id: str | None = Field(default=None, max_length=ID_MAX)
    file_id: str | None = Field(default=None, max_length=ID_MAX)
    media_type: str | None = Field(default=None, max_length=100)

    def to_input(self) -> inputs.ImageRef:
        return inputs.ImageRef(
            url=self.url,
            data=self.data,
            generation_id=self.generation_id,
            file_id=self.file_id,
            media_type=self.media_type,
        )


def _refs(refs: list[ImageRef] | None) -> tuple[inputs.ImageRef, ...] | None:
    return None if refs is None else tuple(ref.to_input() for ref in refs)


def _indexes(indexes: list[int] | None) -> tuple[int, ...] | None:
    return None if indexes is None else tuple(indexes)


class SourcePosition(_Body):
    x_norm: float = Field(ge=-2, le=2)
    y_norm: float = Field(ge=-2, le=2)
    w_norm: float = Field(gt=0, le=2)
    h_norm: float = Field(gt=0, le=2)


class EditOptions(_Body):
    strength: EditStrength | None = None
    auto_controls: bool | None = None
    controls: dict[str, dict[str, bool | float | str | None] | None] | None = None
    keyframes: list[ImageRef] | None = Field(default=None, max_length=KEYFRAMES_MAX)
    keyframe_indexes: list[int] | None = Field(default=None, max_length=KEYFRAMES_MAX)

    def to_input(self) -> inputs.AgentsEdit:
        return inputs.AgentsEdit(
            strength=self.strength,
            auto_controls=self.auto_controls,
            controls=self.controls,
            keyframes=_refs(self.keyframes),
            keyframe_indexes=_indexes(self.keyframe_indexes),
        )


class VideoOptions(_Body):
    duration: Literal["5s", "10s"] | None = None
    resolution: Literal["360p", "540p", "720p", "1080p"] | None = None
    loop: bool | None = None
    hdr: bool | None = None
    exr_export: bool | None = None
    start_frame: ImageRef | None = None
    end_frame: ImageRef | None = None
    keyframes: list[ImageRef] | None = Field(default=None, max_length=KEYFRAMES_MAX)
    keyframe_indexes: list[int] | None = Field(default=None, max_length=KEYFRAMES_MAX)
    source_position: SourcePosition | None = None
    edit: EditOptions | None = None

    def to_input(self) -> inputs.AgentsVideo:
        return inputs.AgentsVideo(
            duration=self.duration,
            resolution=self.resolution,
            loop=self.loop,
            hdr=self.hdr,
            exr_export=self.exr_export,
            start_frame=self.start_frame.to_input() if self.start_frame else None,
            end_frame=self.end_frame.to_input() if self.end_frame else None,
            keyframes=_refs(self.keyframes),
            keyframe_indexes=_indexes(self.keyframe_indexes),
            source_position=self.source_position.model_dump() if self.source_position else None,
            edit=self.edit.to_input() if self.edit else None,
        )


class GenerationCreate(_Body):
    """POST /agents/v1/generations (GenerationCreateParams)."""

    prompt: str = Field(min_length=1, max_length=AGENTS_PROMPT_MAX_CHARS)
    type: AgentsType | None = None
    model: AgentsModel | None = None
    aspect_ratio: AspectRatio | None = None
    image_ref: list[ImageRef] | None = Field(default=None, max_length=9)
    source: ImageRef | None = None
    output_format: Literal["png", "jpeg"] | None = None
    style: Literal["auto", "manga"] | None = None
    user_id: str | None = Field(default=None, max_length=255)
    web_search: bool | None = None
    video: VideoOptions | None = None

    def to_input(self) -> inputs.AgentsInput:
        return inputs.AgentsInput(
            prompt=self.prompt,
            type=self.type,
            model=self.model,
            aspect_ratio=self.aspect_ratio,
            image_ref=_refs(self.image_ref) or (),
            source=self.source.to_input() if self.source else None,
            output_format=self.output_format,
            style=self.style,
            video=self.video.to_input() if self.video else None,
        )


class FileCreate(_Body):
    """POST /agents/v1/files as JSON: a presigned upload (FileCreateParams)."""

    mime_type: str = Field(max_length=100)
    size_bytes: int = Field(ge=1, le=5 * 1024**3)
    expires_at: str | None = Field(default=None, max_length=64)
    filename: str | None = Field(default=None, max_length=255)
    purpose: Literal["input", "reference"] = "input"
    user_id: str | None = Field(default=None, max_length=255)


class GenerationOutput(BaseModel):
    type: str
    url: str


class Generation(BaseModel):
    id: str
    created_at: str
    model: str
    state: Literal["queued", "processing", "completed", "failed"]
    type: AgentsType
    failure_code: str | None
    failure_reason: str | None
    output: list[GenerationOutput] | None


class File(BaseModel):
    id: str
    created_at: str
    mime_type: str
    purpose: Literal["input", "reference"]
    size_bytes: int
    state: Literal["pending", "ready", "failed", "deleted"]
    deleted_at: str | None
    expires_at: str | None
    failure_reason: str | None
    filename: str | None
    user_id: str | None


class PresignedUpload(BaseModel):
    url: str
    method: Literal["PUT"]
    headers: dict[str, str]
    expires_at: str


class CreateFileResponse(BaseModel):
    id: str
    state: str
    file: File
    upload: PresignedUpload | None


class FileList(BaseModel):
    data: list[File]
    has_more: bool
    next_cursor: str | None
