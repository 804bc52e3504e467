"""Rough edge 1 of issue 29: a task its upstream finished at the first poll shows `processing`, not
`pending`, while its media is copied. The upstream is an own-format relay on loopback that completes at
the first poll and serves its video slowly (held until the test has looked)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import start_relay
from tests.integration.test_channels import add_channel, settings_for, submit
from tests.integration.test_luma_lifecycle import wait_for
from tests.support.media import decode_mp4
from tests.support.upstreams import FakeRelay, running, small_video

pytestmark = pytest.mark.both_stores


def test_a_task_done_at_the_first_poll_shows_processing_while_its_media_is_copied(tmp_path: Path) -> None:
    gate = threading.Event()
    fake = FakeRelay("ok", small_video(tmp_path / "v.mp4"), media_gate=gate)
    try:
        with (
            running(fake) as fake_url,
            start_relay(settings_for(tmp_path / "relay")) as relay,
            relay.client() as client,
        ):
            add_channel(relay, "slow-media", fake_url, priority=100)
            task = submit(client).json()
            assert task["state"] == "pending"
            deadline = time.monotonic() + 60
            while fake.count("GET", "/v.mp4") == 0:  # the first poll said completed; the copy began
                assert time.monotonic() < deadline, fake.requests
                time.sleep(0.05)
            seen = client.get(f"/luma/generations/{task['id']}").json()
            assert seen["state"] == "processing" and seen["video"] is None, seen
            batch = client.post("/luma/tasks", json={"ids": [task["id"]]}).json()
            assert [t["state"] for t in batch] == ["processing"]
            official = client.get(f"/dream-machine/v1/generations/{task['id']}").json()
            assert official["state"] == "dreaming", official
            gate.set()
            done = wait_for(client, task["id"], {"completed", "failed"})
            assert done["state"] == "completed", done
            assert done["video"]["url"].startswith(relay.url)  # our copy, not the upstream's
            decode_mp4(httpx.get(done["video"]["url"], timeout=30).content)
        assert fake.count("POST", "/luma/tasks") == 1  # it was done at the first poll
    finally:
        gate.set()
