"""The transition table: where a task may go from each state, and what a move does to the money."""

from __future__ import annotations

import pytest

from dreamrelay.domain.states import (
    ACTIVE_STATES,
    TERMINAL_STATES,
    IllegalTransition,
    Settlement,
    TaskState,
    can_move,
    check_transition,
    parse_upstream_state,
    settlement,
)

P, R, C, F = TaskState.PENDING, TaskState.PROCESSING, TaskState.COMPLETED, TaskState.FAILED
ALLOWED = {(P, R), (P, C), (P, F), (R, C), (R, F)}


@pytest.mark.parametrize("current", list(TaskState))
@pytest.mark.parametrize("target", list(TaskState))
def test_the_table_allows_only_forward_moves(current: TaskState, target: TaskState) -> None:
    allowed = (current, target) in ALLOWED
    assert can_move(current, target) is allowed
    if allowed:
        check_transition(current, target)
    else:
        with pytest.raises(IllegalTransition, match=f"{current} -> {target}"):
            check_transition(current, target)


def test_finished_states_are_final_and_the_others_are_active() -> None:
    assert frozenset({C, F}) == TERMINAL_STATES
    assert frozenset({P, R}) == ACTIVE_STATES
    assert all(s.is_terminal for s in TERMINAL_STATES)
    assert not any(s.is_terminal for s in ACTIVE_STATES)
    assert not any(can_move(done, other) for done in TERMINAL_STATES for other in TaskState)


def test_completing_captures_the_hold_and_failing_releases_it() -> None:
    assert settlement(C) is Settlement.CAPTURE
    assert settlement(F) is Settlement.RELEASE
    assert settlement(P) is None and settlement(R) is None


@pytest.mark.parametrize(
    ("word", "state"),
    [
        ("queued", P),
        ("dreaming", R),
        (" Completed ", C),
        ("failure", F),
        ("not_start", P),
        ("in_progress", R),
        ("succeed", C),
        ("SUCCESS", C),
    ],
)
def test_upstream_state_words_map_to_ours(word: str, state: TaskState) -> None:
    assert parse_upstream_state(word) is state


@pytest.mark.parametrize("word", ["", "paused", None, 3, ["queued"]])
def test_unknown_upstream_state_words_map_to_nothing(word: object) -> None:
    assert parse_upstream_state(word) is None
