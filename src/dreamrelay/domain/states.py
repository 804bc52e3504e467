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


def can_move(current: TaskState, target: TaskState) -> bool:
    """Whether a task in `current` may move to `target` (a stale upstream report may not)."""
    return target in _ALLOWED[current]


def check_transition(current: TaskState, target: TaskState) -> None:
    """Raise IllegalTransition unless `can_move`: the writer's guard, on the same table."""
    if not can_move(current, target):
        raise IllegalTransition(f"{current} -> {target} is not allowed")


class Settlement(StrEnum):
    """What a state change does to the task's hold on the customer's credits."""

    CAPTURE = "capture"  # completed: the hold (or the part used, `settled`) becomes the charge
    RELEASE = "release"  # failed (or refunded, or deleted while running): the hold goes back


def settlement(target: TaskState) -> Settlement | None:
    """The ledger effect of moving into `target`; None while the task is still running."""
    if target is TaskState.COMPLETED:
        return Settlement.CAPTURE
    if target is TaskState.FAILED:
        return Settlement.RELEASE
    return None


def settled(hold: int, charge: int | None) -> tuple[int, int]:
    """How a completed task's hold splits: (captured, released). The capture is what the task used
    (`charge`, e.g. from upstream's usage), never more than the hold; the rest goes back in the same
    settlement. None: the task costs its whole hold (a fixed price)."""
    hold = max(hold, 0)
    captured = hold if charge is None else min(max(charge, 0), hold)
    return captured, hold - captured


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
