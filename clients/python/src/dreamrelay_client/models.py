"""Typed views of DreamRelay's own-format task object."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

STATES = ("pending", "processing", "completed", "failed")
FINISHED = ("completed", "failed")


@dataclass(frozen=True)
class Media:
    url: str
    width: int | None = None
    height: int | None = None
    duration: float | None = None
    media_type: str | None = None

    @classmethod
    def from_json(cls, data: Any) -> Media | None:
        if not isinstance(data, dict) or not data.get("url"):
            return None
        return cls(
            url=str(data["url"]),
            width=data.get("width"),
            height=data.get("height"),
            duration=data.get("duration"),
            media_type=data.get("media_type"),
        )


@dataclass(frozen=True)
class Task:
    """One task as DreamRelay shows it; `raw` is the whole object."""

    id: str
    state: str
    created_at: str
    prompt: str | None = None
    failure_reason: str | None = None
    video: Media | None = None
    thumbnail: Media | None = None
    last_frame: Media | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Task:
        request = data.get("request") or {}
        return cls(
            id=str(data["id"]),
            state=str(data["state"]),
            created_at=str(data.get("created_at", "")),
            prompt=data.get("prompt", request.get("prompt")),
            failure_reason=data.get("failure_reason"),
            video=Media.from_json(data.get("video")),
            thumbnail=Media.from_json(data.get("thumbnail")),
            last_frame=Media.from_json(data.get("last_frame")),
            raw=data,
        )

    @property
    def finished(self) -> bool:
        return self.state in FINISHED

    @property
    def completed(self) -> bool:
        return self.state == "completed"

    @property
    def failed(self) -> bool:
        return self.state == "failed"

    @property
    def video_url(self) -> str | None:
        return self.video.url if self.video else None
