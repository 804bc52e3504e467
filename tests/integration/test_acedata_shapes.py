"""AceData's format beyond what its CLI sends: async answers, failures, extend by video_url, bad bodies."""

from __future__ import annotations

import pytest

from tests.conftest import Relay

pytestmark = pytest.mark.both_stores


def test_async_failure_extend_by_url_and_bad_bodies(relay: Relay) -> None:
    with relay.client() as client:
        started = client.post("/luma/videos", json={"prompt": "later", "async": True})
        assert started.status_code == 200
        body = started.json()
        assert "success" not in body and body["state"] in ("pending", "processing") and body["task_id"]

        failed = client.post(
            "/luma/videos", json={"action": "generate", "prompt": "no [sandbox:fail]"}
        ).json()
        assert failed["success"] is False and failed["state"] == "failed"
        assert failed["error"] == {
            "code": "generation_failed",
            "message": "the upstream could not complete this task",  # generic: no upstream words
        }

        done = client.post("/luma/videos", json={"prompt": "a boat", "enhancement": True}).json()
        more = client.post("/luma/videos", json={"action": "extend", "video_url": done["video_url"]}).json()
        assert more["success"] is True and more["prompt"] == "a boat"  # the parent's prompt carries on
        record = client.post("/luma/tasks", json={"action": "retrieve", "id": more["task_id"]}).json()
        assert record["request"]["video_id"] == done["video_id"] and record["request"]["action"] == "extend"
        ids = [more["task_id"], "nope", done["task_id"], more["task_id"]]
        batch = client.post("/luma/tasks", json={"action": "retrieve_batch", "ids": ids}).json()
        assert batch["count"] == 2 and [i["id"] for i in batch["items"]] == [more["task_id"], done["task_id"]]

        for bad in (
            {"action": "teleport", "prompt": "x"},
            {"prompt": ""},
            {"action": "extend"},
            {"action": "extend", "video_url": "https://elsewhere.example/v.mp4"},
        ):
            answer = client.post("/luma/videos", json=bad)
            assert answer.status_code == 400 and list(answer.json()) == ["error"], bad
        for bad in ({"action": "retrieve"}, {"action": "retrieve_batch", "ids": "x"}, {"action": "purge"}):
            answer = client.post("/luma/tasks", json=bad)
            assert answer.status_code == 400 and list(answer.json()) == ["error"], bad
        unknown = client.post(
            "/luma/tasks", json={"action": "retrieve", "id": "4665a07c-7641-4809-a133-10786201bb56"}
        )
        assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "task_not_found"
