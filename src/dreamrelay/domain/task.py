"""A task as every layer sees it: what the store keeps about one generation, and questions about it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dreamrelay.domain.catalog import AGENTS, DM_IMAGE_ACTIONS, IMAGE, VIDEO, uses_agents_api
from dreamrelay.domain.states import TaskState

IMAGE_ACTION = "image"
# Actions whose result is pictures rather than a video: Kling images, Photon images and reframes,
# Uni-1 images and edits.
IMAGE_ACTIONS = (IMAGE_ACTION, "image_edit", *DM_IMAGE_ACTIONS)
AGENTS_FORMAT = "agents"  # tasks created through /agents/v1: their own family, shown only there


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

    @property
    def is_image(self) -> bool:
        """An image task (Kling format) rather than a video one (own and official formats)."""
        return self.action == IMAGE_ACTION and self.api_format != AGENTS_FORMAT

    @property
    def makes_images(self) -> bool:
        """Its result is pictures (Kling, Photon and Uni-1 images, image reframes), not a video."""
        return self.action in IMAGE_ACTIONS

    @property
    def is_agents(self) -> bool:
        """Created through the Agents API (/agents/v1); never shown by the other formats."""
        return self.api_format == AGENTS_FORMAT

    @property
    def family(self) -> str:
        """Which upstream API makes it: 'image' (Kling), 'agents' (Luma's Agents API) or 'video'."""
        if self.is_image:
            return IMAGE
        return AGENTS if uses_agents_api(self.model) else VIDEO

    def with_values(self, values: dict[str, Any]) -> Task:
        data = {**self.__dict__, **values}
        data["state"] = TaskState(data["state"])
        return Task(**data)
