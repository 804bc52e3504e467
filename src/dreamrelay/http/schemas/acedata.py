"""AceData format (family C) request bodies: POST /luma/videos and POST /luma/tasks with `action`."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from dreamrelay.domain.catalog import PROMPT_MAX_CHARS
from dreamrelay.http.schemas.own import AspectRatio

TaskId = str


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True, populate_by_name=True)


class AceVideos(_Body):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"action": "generate", "prompt": "a paper boat on a rainy street", "aspect_ratio": "16:9"},
                {
                    "action": "extend",
                    "video_id": "4665a07c-7641-4809-a133-10786201bb56",
                    "prompt": "it sails on",
                },
            ]
        }
    )
    action: Literal["generate", "extend"] = "generate"
    prompt: str | None = Field(default=None, min_length=1, max_length=PROMPT_MAX_CHARS)
    aspect_ratio: AspectRatio | None = None
    loop: bool | None = None
    enhancement: bool | None = Field(default=None, description="Let the model expand the prompt.")
    start_image_url: str | None = Field(default=None, description="Start frame: http(s) URL or data URI.")
    end_image_url: str | None = Field(default=None, description="End frame: http(s) URL or data URI.")
    model: str | None = Field(
        default=None, description='"luma" (= the server default) or ray-v1/ray-v2/ray-flash-2.'
    )
    callback_url: str | None = None
    video_id: str | None = Field(
        default=None, max_length=64, description="extend: the video (task) to continue."
    )
    video_url: str | None = Field(default=None, max_length=2048, description="extend: its video URL instead.")
    timeout: float | None = Field(default=None, ge=0, description="Seconds to wait for the result at most.")
    run_async: bool | None = Field(default=None, alias="async", description="Answer at once with task_id.")


class AceRetrieve(_Body):
    action: Literal["retrieve"]
    id: TaskId = Field(max_length=64)


class AceRetrieveBatch(_Body):
    action: Literal["retrieve_batch"]
    ids: list[TaskId] = Field(max_length=1000)
