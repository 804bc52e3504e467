"""Own-format (seed family) request bodies."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from dreamrelay.domain.catalog import PROMPT_MAX_CHARS
from dreamrelay.services.submit import GenerationInput

AspectRatio = Literal["16:9", "1:1", "9:16", "4:3", "3:4", "21:9", "9:21"]


class _Body(BaseModel):
    # Unknown fields are ignored, not rejected; JSON types must be right (no "true" for true).
    model_config = ConfigDict(extra="ignore", strict=True)


class OwnSubmit(_Body):
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
    user_prompt: str = Field(min_length=1, max_length=PROMPT_MAX_CHARS)
    expand_prompt: bool | None = None
    loop: bool | None = None
    image_end_url: str | None = None
    duration: str | None = None
    notify_hook: str | None = None
    callback_url: str | None = None


class BatchQuery(_Body):
    ids: list[str] = Field(max_length=1000, description="Task ids; unknown or foreign ids are left out.")
