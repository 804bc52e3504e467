"""A change re-encodes a task's stored body only when the body could differ: the own-format body of a
video task is kept byte for byte through a change of none of its columns (the dispatch's channel,
upstream id and next poll; a poll that moves nothing), and is exactly what encoding it again gives."""

from __future__ import annotations

from typing import Any

from dreamrelay.domain.states import TaskState
from dreamrelay.domain.task import IMAGE_ACTION
from dreamrelay.services.lifecycle import Change, _values, encode_body
from tests.unit.domain.test_timings import task as _task

BASE = "http://relay.example/media"
VIDEO = {"prompt": "a fox", "aspect_ratio": "16:9", "resolution": "720p", "duration": "5s"}


def _stored(**values: Any) -> Any:
    task = _task(**values)
    return task.with_values({"body": encode_body(task, BASE)})


def test_the_dispatch_and_a_quiet_poll_keep_the_body_as_stored() -> None:
    task = _stored(request=VIDEO)
    for change in (
        Change(channel_id=3, upstream_id="up-9", next_poll_at=2000.0),
        Change(upstream_state="dreaming", next_poll_at=2010.0, poll_count=4),
    ):
        values, moves = _values(task, change, BASE, None)
        assert not moves and "body" not in values
        assert encode_body(task.with_values(values), BASE) == task.body  # nothing it shows changed


def test_changes_the_body_shows_are_encoded() -> None:
    task = _stored(request=VIDEO)
    values, moves = _values(task, Change(state=TaskState.PROCESSING), BASE, None)
    assert moves and values["body"] != task.body and b'"processing"' in values["body"]
    values, _ = _values(task, Change(state=TaskState.FAILED, failure_reason="no"), BASE, None)
    assert values["body"] == encode_body(task.with_values(values), BASE)


def test_image_bodies_show_times_and_are_always_encoded() -> None:
    image = _stored(action=IMAGE_ACTION, model="kling-v1", api_format="kling", request={"prompt": "a fox"})
    values, _ = _values(image, Change(next_poll_at=2000.0), BASE, None)
    assert values["body"] == encode_body(image.with_values(values), BASE)
