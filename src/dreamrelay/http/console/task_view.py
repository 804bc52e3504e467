"""What the console shows of a task, whatever its kind: built from the row (action, request, media), never
from the shape of a format's task object, so a new kind of task (Kling images, Photon images, Agents API
generations, video edits) renders on every page without touching the templates.

Pure: no I/O. `TaskView.kind` is `video` (a video player) or `images` (a gallery); media URLs are ours.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from types import SimpleNamespace
from typing import Any, Protocol

from dreamrelay.domain.failures import public_reason

IMAGE_WORDS = ("image", "image_edit", "generate_image", "reframe_image")


class TaskLike(Protocol):
    """The columns a view needs; a `Task` or a row selected with these names (read-only)."""

    @property
    def id(self) -> str: ...
    @property
    def state(self) -> Any: ...
    @property
    def model(self) -> str: ...
    @property
    def action(self) -> str: ...
    @property
    def request(self) -> Any: ...
    @property
    def media(self) -> Any: ...
    @property
    def failure_reason(self) -> str | None: ...
    @property
    def created_at(self) -> float: ...


@dataclass(frozen=True)
class Picture:
    url: str
    width: int | None = None
    height: int | None = None


@dataclass(frozen=True)
class TaskView:
    id: str
    kind: str  # video | images
    state: str
    model: str
    action: str
    prompt: str
    aspect_ratio: str
    created_at: float
    failure_reason: str | None = None
    video: str | None = None
    poster: str | None = None
    width: int | None = None
    height: int | None = None
    duration: float | None = None
    images: list[Picture] = field(default_factory=list)
    details: list[str] = field(default_factory=list)  # model options worth a glance: 720p, 5s, n = 4, …

    @property
    def cover(self) -> str | None:
        """The picture a grid tile shows: the video's thumbnail or the first image."""
        return self.poster or (self.images[0].url if self.images else None)


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _prompt(request: dict[str, Any]) -> str:
    for name in ("prompt", "user_prompt"):
        if isinstance(request.get(name), str) and request[name]:
            return str(request[name])
    return ""


def _details(request: dict[str, Any]) -> list[str]:
    shown = []
    for name in ("resolution", "duration", "style", "format"):
        value = request.get(name)
        if isinstance(value, str | int | float) and not isinstance(value, bool) and value != "":
            shown.append(str(value))
    n = request.get("n")
    if isinstance(n, int) and not isinstance(n, bool) and n > 1:
        shown.append(f"n = {n}")
    if request.get("loop") is True:
        shown.append("loop")
    return shown


def task_view(task: TaskLike, media_base_url: str, *, customer: bool = False) -> TaskView:
    """The view of `task`; for a customer, the failure reason in our words only (domain/failures.py)."""
    request = task.request if isinstance(task.request, dict) else {}
    media = task.media if isinstance(task.media, dict) else {}
    state = getattr(task.state, "value", task.state)
    images = [
        Picture(f"{media_base_url}/{image['key']}", image.get("width"), image.get("height"))
        for image in media.get("images") or []
        if isinstance(image, dict) and isinstance(image.get("key"), str)
    ]
    makes_images = bool(images) or task.action in IMAGE_WORDS
    view = TaskView(
        id=task.id,
        kind="images" if makes_images else "video",
        state=str(state),
        model=task.model,
        action=task.action,
        prompt=_prompt(request),
        aspect_ratio=_text(request.get("aspect_ratio")) or "16:9",
        created_at=task.created_at,
        failure_reason=public_reason(task.failure_reason) if customer else task.failure_reason,
        images=images,
        details=_details(request),
    )
    video, thumbnail = media.get("video"), media.get("thumbnail")
    if isinstance(video, dict) and isinstance(video.get("key"), str):
        poster = thumbnail.get("key") if isinstance(thumbnail, dict) else None
        return replace(
            view,
            video=f"{media_base_url}/{video['key']}",
            poster=f"{media_base_url}/{poster}" if isinstance(poster, str) else None,
            width=video.get("width"),
            height=video.get("height"),
            duration=video.get("duration"),
        )
    return view


def operator_view(info: dict[str, Any], media_base_url: str) -> TaskView:
    """The view of a task as `services/channel_admin.py::show_task` describes it to the operator."""
    fields = {name: info.get(name) for name in ("id", "state", "model", "action", "request", "media")}
    row = SimpleNamespace(**fields, failure_reason=info.get("failure_reason"), created_at=0.0)
    return task_view(row, media_base_url)
