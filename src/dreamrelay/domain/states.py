"""Task states of the own format and the transitions allowed between them."""

from __future__ import annotations

from enum import StrEnum


class TaskState(StrEnum):
    PENDING = "pending"  # accepted by us; waiting for (or queued at) upstream
    PROCESSING = "processing"  # upstream is generating
    COMPLETED = "completed"  # media copied to our storage and probed
    FAILED = "failed"  # ended without media; failure_reason says why

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATES


TERMINAL_STATES = frozenset({TaskState.COMPLETED, TaskState.FAILED})
ACTIVE_STATES = frozenset({TaskState.PENDING, TaskState.PROCESSING})

_ALLOWED: dict[TaskState, frozenset[TaskState]] = {
    TaskState.PENDING: frozenset({TaskState.PROCESSING, TaskState.COMPLETED, TaskState.FAILED}),
    TaskState.PROCESSING: frozenset({TaskState.COMPLETED, TaskState.FAILED}),
    TaskState.COMPLETED: frozenset(),
    TaskState.FAILED: frozenset(),
}


class IllegalTransition(Exception):
    """A state change the table below does not allow (a bug or a stale writer)."""


def check_transition(current: TaskState, target: TaskState) -> None:
    if target not in _ALLOWED[current]:
        raise IllegalTransition(f"{current} -> {target} is not allowed")


def parse_upstream_state(value: object) -> TaskState | None:
    """Map any upstream's state word to ours: official, own format, new-api, Kling. None if unknown."""
    if not isinstance(value, str):
        return None
    return _UPSTREAM_WORDS.get(value.strip().lower())


_UPSTREAM_WORDS: dict[str, TaskState] = {
    # official Dream Machine API
    "queued": TaskState.PENDING,
    "dreaming": TaskState.PROCESSING,
    "completed": TaskState.COMPLETED,
    "failed": TaskState.FAILED,
    # own format
    "pending": TaskState.PENDING,
    "processing": TaskState.PROCESSING,
    # new-api task statuses
    "not_start": TaskState.PENDING,
    "submitted": TaskState.PENDING,
    "in_progress": TaskState.PROCESSING,
    "success": TaskState.COMPLETED,
    "failure": TaskState.FAILED,
    # Kling
    "succeed": TaskState.COMPLETED,
}


def can_move(current: TaskState, target: TaskState) -> bool:
    """Whether an upstream report of `target` may change a task in `current` (stale reports may not)."""
    return target in _ALLOWED[current]
