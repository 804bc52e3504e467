"""A task as every layer sees it: what the store keeps about one generation, and questions about it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dreamrelay.domain.api_format import IMAGE_ACTION as IMAGE_ACTION  # re-exported: what makes a Kling task
from dreamrelay.domain.api_format import SHARED_FORMATS
from dreamrelay.domain.catalog import DM_IMAGE_ACTIONS, capability_of
from dreamrelay.domain.states import TaskState

# Actions whose result is pictures rather than a video: Kling images, Photon images and reframes,
# Uni-1 images and edits.
IMAGE_ACTIONS = (IMAGE_ACTION, "image_edit", *DM_IMAGE_ACTIONS)


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
    failure_code: str | None = None  # the Agents API's failure_code, when upstream gave one
    token_rate: int | None = None  # credits per million tokens, when priced by what it uses
    usage_tokens: int | None = None  # what upstream said it used (Ark's usage.completion_tokens)
    charged: int | None = None  # the credits its completion captured (≤ price; the rest released)

    @property
    def is_image(self) -> bool:
        """An image task (Kling format) rather than a video one (own and official formats)."""
        return self.action == IMAGE_ACTION and self.api_format in SHARED_FORMATS

    @property
    def makes_images(self) -> bool:
        """Its result is pictures (Kling, Photon and Uni-1 images, image reframes), not a video."""
        return self.action in IMAGE_ACTIONS

    @property
    def capability(self) -> str:
        """What a channel must make to take it (domain/catalog.py, from its action and model): which
        adapter of the channel's kind sends, polls and cancels it."""
        return capability_of(self.action, self.model)

    def with_values(self, values: dict[str, Any]) -> Task:
        data = {**self.__dict__, **values}
        data["state"] = TaskState(data["state"])
        return Task(**data)
