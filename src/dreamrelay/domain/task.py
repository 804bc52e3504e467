"""A task as every layer sees it: what the store keeps about one generation, and questions about it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dreamrelay.domain.catalog import IMAGE, VIDEO
from dreamrelay.domain.states import TaskState

IMAGE_ACTION = "image"
TASK_ID_MAX_CHARS = 64  # longer ids are nobody's task: answered "not found" without asking the store


def plausible_id(task_id: str) -> bool:
    """Whether `task_id` can name a task at all (an id of ours, or one a customer could have been given)."""
    return len(task_id) <= TASK_ID_MAX_CHARS


@dataclass(frozen=True)
class Task:
    id: str
    account_id: int
    api_key_id: int | None
    channel_id: int | None
    action: str
    parent_id: str | None
    model: str
    api_format: str
    request: dict[str, Any]
    state: TaskState
    version: int
    upstream_id: str | None
    upstream_state: str | None
    failure_reason: str | None
    callback_url: str | None
    media: dict[str, Any] | None
    body: bytes
    created_at: float
    updated_at: float
    finished_at: float | None
    deadline_at: float
    next_poll_at: float | None
    poll_count: int
    poll_errors: int
    lease_owner: str | None
    lease_until: float | None
    price: int
    upstream_token: str | None = None
    deleted_at: float | None = None

    @property
    def is_image(self) -> bool:
        """An image task (Kling format) rather than a video one (own and official formats)."""
        return self.action == IMAGE_ACTION

    @property
    def capability(self) -> str:
        """What a channel must be able to make to take this task."""
        return IMAGE if self.is_image else VIDEO

    def with_values(self, values: dict[str, Any]) -> Task:
        data = {**self.__dict__, **values}
        data["state"] = TaskState(data["state"])
        return Task(**data)
