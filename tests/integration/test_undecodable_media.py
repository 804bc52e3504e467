"""A customer's video or image that PyAV or Pillow cannot decode is refused in our own words.

The decoders' messages name our scratch files (`.../dreamrelay-probe-xxxx/video.mp4`), object addresses
and library internals; customers read only the field and "unreadable or damaged data". Every refusal
charges nothing and keeps nothing (no task, no stored input, no file).
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Relay, make_settings, start_relay
from tests.support.upstreams import _answer, _lifespan, running

pytestmark = pytest.mark.both_stores

# An MP4 by its first bytes (so it is probed, not refused by sniffing), then noise PyAV cannot read.
BAD_VIDEO = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + b"\xde\xad" * 500
# A PNG by its signature, then noise Pillow cannot read.
BAD_PNG = b"\x89PNG\r\n\x1a\n" + b"\xde\xad" * 500
UNREADABLE = "unreadable or damaged data"
# What the decoders' own messages carry, none of which a customer may read.
INTERNALS = ("dreamrelay-", "/tmp", "video.mp4", "Errno", "InvalidDataError", "BytesIO", " at 0x", "PIL")


async def serve_bad_video(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A customer's server: every path answers the undecodable video."""
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    await _answer(send, 200, BAD_VIDEO, b"video/mp4")


@dataclass
class Setup:
    relay: Relay
    client: httpx.Client
    bad_url: str


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    settings = make_settings(tmp_path, allow_private_urls="127.0.0.0/8")
    with (
        running(serve_bad_video) as server,
        start_relay(settings) as relay,
        relay.client() as client,
    ):
        yield Setup(relay, client, server + "/clip.mp4")


def stored_media(relay: Relay) -> list[str]:
    media = relay.settings.data_dir / "media"
    return (
        sorted(str(p.relative_to(media)) for p in media.rglob("*") if p.is_file()) if media.exists() else []
    )


def balance_and_tasks(relay: Relay) -> tuple[int, int]:
    with relay.admin() as admin:
        balance = int(admin.get("/admin/accounts/demo").json()["balance"])
        tasks = admin.get("/admin/tasks")
        assert tasks.status_code == 200, tasks.text
    body = tasks.json()
    return balance, len(body["data"] if isinstance(body, dict) else body)


def refused(answer: httpx.Response, detail: str) -> None:
    assert answer.status_code == 400, answer.text
    assert answer.json() == {"detail": detail}
    assert [s for s in INTERNALS if s in answer.text] == [], answer.text


def test_an_undecodable_video_is_refused_in_our_words_on_every_route_that_probes_videos(setup: Setup) -> None:
    relay, client = setup.relay, setup.client
    before = balance_and_tasks(relay)
    edit = {"prompt": "make it blue", "type": "video_edit"}
    video_data = base64.b64encode(BAD_VIDEO).decode()

    # Agents API: a source video given as base64 or by URL.
    for source in ({"data": video_data}, {"url": setup.bad_url}):
        answer = client.post(
            "/agents/v1/generations", json={**edit, "source": {**source, "media_type": "video/mp4"}}
        )
        refused(answer, f"source: the video cannot be decoded ({UNREADABLE})")

    # Agents API: a file uploaded inline (multipart).
    inline = client.post("/agents/v1/files", files={"file": ("clip.mp4", BAD_VIDEO, "video/mp4")})
    refused(inline, f"the video cannot be decoded ({UNREADABLE})")
    assert client.get("/agents/v1/files").json()["data"] == []

    # Dream Machine API: modify and reframe sources, fetched from the customer's URL.
    modify = client.post(
        "/dream-machine/v1/generations/video/modify",
        json={
            "generation_type": "modify_video",
            "model": "ray-2",
            "mode": "flex_1",
            "media": {"url": setup.bad_url},
        },
    )
    refused(modify, f"media.url: not a playable video ({UNREADABLE})")
    reframe = client.post(
        "/dream-machine/v1/generations/video/reframe",
        json={
            "generation_type": "reframe_video",
            "model": "ray-2",
            "aspect_ratio": "1:1",
            "media": {"url": setup.bad_url},
        },
    )
    refused(reframe, f"media.url: not a playable video ({UNREADABLE})")

    assert balance_and_tasks(relay) == before  # nothing charged, no task
    assert stored_media(relay) == []  # no input or file kept


def test_a_presigned_upload_that_does_not_decode_fails_in_our_words(setup: Setup) -> None:
    client = setup.client
    made = client.post("/agents/v1/files", json={"mime_type": "video/mp4", "size_bytes": len(BAD_VIDEO)})
    assert made.status_code == 201, made.text
    upload = made.json()["upload"]
    put = httpx.put(upload["url"], content=BAD_VIDEO, headers=upload["headers"])
    assert put.status_code == 200, put.text
    done = client.post(f"/agents/v1/files/{made.json()['id']}/complete")
    assert done.status_code == 200, done.text
    file = done.json()
    assert (file["state"], file["failure_reason"]) == (
        "failed",
        f"the video cannot be decoded ({UNREADABLE})",
    )
    assert client.get(f"/agents/v1/files/{file['id']}").json() == file


def test_an_undecodable_image_is_refused_in_our_words(setup: Setup) -> None:
    relay, client = setup.relay, setup.client
    before = balance_and_tasks(relay)
    data_uri = "data:image/png;base64," + base64.b64encode(BAD_PNG).decode()
    own = client.post("/luma/generations", json={"user_prompt": "a fox", "image_url": data_uri})
    assert own.status_code == 400, own.text
    assert own.json()["error"] == {
        "message": f"image_url: the image cannot be decoded ({UNREADABLE})",
        "type": "invalid_request_error",
        "code": "invalid_request",
    }
    assert [s for s in INTERNALS if s in own.text] == [], own.text
    image = client.post(
        "/agents/v1/generations",
        json={
            "prompt": "a fox",
            "type": "image_edit",
            "source": {"data": data_uri, "media_type": "image/png"},
        },
    )
    refused(image, f"source: the image cannot be decoded ({UNREADABLE})")
    inline = client.post("/agents/v1/files", files={"file": ("a.png", BAD_PNG, "image/png")})
    refused(inline, f"the image cannot be decoded ({UNREADABLE})")
    assert balance_and_tasks(relay) == before
    assert stored_media(relay) == []
