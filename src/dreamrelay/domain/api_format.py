"""The API families customers speak, and which tasks each shows (formats/families.py registers each)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

IMAGE_ACTION = "image"  # Kling's image tasks: the action every image-family task has


class ApiFormat(StrEnum):
    """A task's `api_format`: the family it was created through (its callbacks speak it)."""

    LUMA = "luma"  # the own ("seed") format, /luma
    ACEDATA = "acedata"  # AceData's /luma/videos
    OFFICIAL = "official"  # the Dream Machine API, /dream-machine/v1
    KLING = "kling"  # Kling's image API, /kling/v1
    AGENTS = "agents"  # Luma's Agents API, /agents/v1
    VIDEOS = "videos"  # the OpenAI Videos API, /v1/videos
    ARK = "ark"  # Volcengine Ark's content-generation tasks (Seedance), /api/v3 and /seedance/v3
    KLING_VIDEO = "kling-video"  # Kling's video API, /kling/v1/videos

    @property
    def private(self) -> bool:
        """Whether its tasks are shown by it alone (every other family shares the tasks it makes)."""
        return self in PRIVATE_FORMATS


PRIVATE_FORMATS = frozenset({ApiFormat.AGENTS, ApiFormat.ARK})
SHARED_FORMATS = frozenset(f for f in ApiFormat if f not in PRIVATE_FORMATS)


class Listed(Protocol):
    """What a listing rule reads of a task (`domain/task.py::Task` has both)."""

    @property
    def api_format(self) -> str: ...

    @property
    def action(self) -> str: ...


@dataclass(frozen=True)
class Listing:
    """Which of an account's tasks a family's reads and lists show: those created in `formats`, and of
    them Kling's image tasks (`images` True), the others (False) or both (None)."""

    formats: frozenset[ApiFormat]
    images: bool | None = None

    def shows(self, task: Listed) -> bool:
        if task.api_format not in self.formats:
            return False
        return self.images is None or (task.action == IMAGE_ACTION) is self.images


SHARED_VIDEOS = Listing(SHARED_FORMATS, images=False)  # own, AceData and official: the same video tasks
SHARED_IMAGES = Listing(SHARED_FORMATS, images=True)  # Kling's image tasks
