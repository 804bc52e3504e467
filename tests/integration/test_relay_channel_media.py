"""A relay channel to an upstream on the operator's own network (here another DreamRelay on loopback):
its media comes from the origin the operator configured and is copied with no setting; the task shows
processing while that copy runs (issue 29.1)."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import make_settings, start_relay
from tests.support.media import decode_mp4

pytestmark = pytest.mark.both_stores


def test_another_dreamrelay_on_loopback_as_a_channel_needs_no_media_setting(
    tmp_path: Path, store: str
) -> None:
    with start_relay(make_settings(tmp_path / "upstream")) as upstream:
        with start_relay(make_settings(tmp_path / "front", poll_error_base_seconds=0.1)) as front:
            with front.admin() as admin:
                assert admin.patch("/admin/channels/sandbox", json={"enabled": False}).status_code == 200
                added = admin.post(
                    "/admin/channels",
                    json={
                        "name": "other",
                        "kind": "relay",
                        "base_url": upstream.url,
                        "secret_key": upstream.key,
                    },
                )
                assert added.status_code == 201 and added.json()["media_networks"] == ""
            with front.client() as customer:
                made = customer.post(
                    "/luma/generations", json={"user_prompt": "a lan boat", "resolution": "540p"}
                )
                assert made.status_code == 200, made.text
                seen = [made.json()["state"]]
                deadline = time.monotonic() + 90
                while seen[-1] not in ("completed", "failed"):
                    assert time.monotonic() < deadline, seen
                    state = customer.get(f"/luma/generations/{made.json()['id']}").json()["state"]
                    if state != seen[-1]:
                        seen.append(state)
                    time.sleep(0.05)
                done = customer.get(f"/luma/generations/{made.json()['id']}").json()
            assert seen == ["pending", "processing", "completed"], done
            assert done["video"]["url"].startswith(front.url)  # copied: ours now
            video = decode_mp4(httpx.get(done["video"]["url"], timeout=30).content)
            assert video.codec == "h264"
