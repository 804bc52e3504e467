"""Issue 12 item 5: the console's view of a task comes from its row, whatever the kind (a video, Kling or
Photon images, an Agents API generation), never from one format's task object."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dreamrelay.domain.states import TaskState
from dreamrelay.http.console.task_view import task_view

BASE = "http://relay/media"


@dataclass
class Row:
    action: str
    request: Any
    media: Any = None
    state: Any = TaskState.PENDING
    id: str = "t1"
    model: str = "m"
    failure_reason: str | None = None
    created_at: float = 1.0


def test_a_video_task_shows_its_player_and_poster() -> None:
    media = {
        "video": {"key": "tasks/t1/video.mp4", "width": 1280, "height": 720, "duration": 5.04},
        "thumbnail": {"key": "tasks/t1/thumbnail.jpg"},
        "last_frame": {"key": "tasks/t1/last_frame.jpg"},
    }
    request = {"prompt": "a boat", "aspect_ratio": "9:16", "resolution": "720p", "duration": "5s"}
    view = task_view(Row("generate", request, media, TaskState.COMPLETED), BASE)
    assert (view.kind, view.state, view.prompt, view.aspect_ratio) == ("video", "completed", "a boat", "9:16")
    assert view.video == f"{BASE}/tasks/t1/video.mp4" and view.cover == f"{BASE}/tasks/t1/thumbnail.jpg"
    assert (view.width, view.height, view.duration, view.details) == (1280, 720, 5.04, ["720p", "5s"])


def test_image_tasks_show_a_gallery_before_and_after_they_finish() -> None:
    kling = {"prompt": "a fox", "negative_prompt": None, "n": 2, "aspect_ratio": "1:1"}
    pending = task_view(Row("image", kling), BASE)
    assert (pending.kind, pending.images, pending.video, pending.cover) == ("images", [], None, None)
    media = {"images": [{"key": "tasks/t1/image-0.png", "width": 1024, "height": 1024}, {"key": "x.jpg"}]}
    done = task_view(Row("image", kling, media, TaskState.COMPLETED), BASE)
    assert [p.url for p in done.images] == [f"{BASE}/tasks/t1/image-0.png", f"{BASE}/x.jpg"]
    assert done.cover == f"{BASE}/tasks/t1/image-0.png" and done.details == ["n = 2"]
    photon = task_view(Row("generate_image", {"prompt": "p"}), BASE)
    assert photon.kind == "images" and photon.aspect_ratio == "16:9"


def test_unknown_shapes_never_fail() -> None:
    for request in ({}, None, {"prompt": 5, "aspect_ratio": None, "n": True}, {"user_prompt": "own"}):
        for media in (None, {}, {"images": [None, {"key": 3}]}, {"video": "x"}):
            view = task_view(Row("video_edit", request, media, "failed", failure_reason="r"), BASE)
            assert view.kind == "video" and view.video is None and view.images == []
            assert view.state == "failed" and view.failure_reason == "r"
    assert task_view(Row("generate", {"user_prompt": "own"}), BASE).prompt == "own"
