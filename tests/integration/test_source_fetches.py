"""Issue 26 item 4: source videos fetched by URL (Dream Machine modify and reframe, Agents edits) are
admitted before the fetch, streamed to a scratch file with a size cap, and fetched a few at a time.

A customer's server on loopback serves a real MP4 (or an endless stream) and counts requests; the relay
lets loopback URLs through (allow_private_urls) so that only our own rules can stop a fetch.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import anyio
import pytest

from dreamrelay.domain.keys import Caller
from dreamrelay.runtime import Runtime
from dreamrelay.services import dream_machine
from tests.conftest import Relay, relays_by_store
from tests.support.upstreams import running, small_video

pytestmark = pytest.mark.both_stores

CHUNK = b"\0" * (1 << 20)


class VideoServer:
    """`/clip.mp4`: a real MP4. `/endless.mp4`: chunked zeros without a length, `endless_mib` MiB."""

    def __init__(self, video: bytes, endless_mib: int) -> None:
        self.video = video
        self.endless_mib = endless_mib
        self.hits: list[str] = []
        self.sent = 0
        self.release = threading.Event()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                await send({"type": message["type"] + ".complete"})
                if message["type"] == "lifespan.shutdown":
                    return
        self.hits.append(scope["path"])
        if scope["path"] == "/slow.mp4":  # answers once the test lets it
            while not self.release.is_set():  # noqa: ASYNC110 (a thread's event)
                await asyncio.sleep(0.02)
        if scope["path"] == "/endless.mp4":
            await send(
                {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"video/mp4")]}
            )
            for _ in range(self.endless_mib):
                self.sent += len(CHUNK)
                await send({"type": "http.response.body", "body": CHUNK, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
            return
        headers = [(b"content-type", b"video/mp4"), (b"content-length", str(len(self.video)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": self.video})


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, VideoServer]]:
    video = small_video(tmp_path_factory.mktemp("video") / "v.mp4")
    found = VideoServer(video, endless_mib=dream_machine.MAX_SOURCE_VIDEO_BYTES // len(CHUNK) + 8)
    with running(found) as url:
        yield url, found


@pytest.fixture(scope="module")
def relays(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], Relay]]:
    data_dir = tmp_path_factory.mktemp("sources")
    with relays_by_store(data_dir, allow_private_urls="127.0.0.0/8", sandbox_queued_seconds=600) as relay_for:
        yield relay_for


@pytest.fixture
def relay(relays: Callable[[str], Relay], store: str) -> Relay:
    return relays(store)


def modify(url: str) -> dict[str, Any]:
    return {"generation_type": "modify_video", "model": "ray-2", "mode": "flex_1", "media": {"url": url}}


def inputs(relay: Relay) -> list[str]:
    folder = relay.settings.data_dir / "media" / "inputs"
    return sorted(p.name for p in folder.glob("*")) if folder.exists() else []


def test_a_source_larger_than_the_cap_is_a_413_read_no_further_and_kept_nowhere(
    relay: Relay, server: tuple[str, VideoServer]
) -> None:
    url, _found = server
    key = relay.new_key(f"big-{uuid.uuid4().hex[:6]}", balance=10_000)
    before = inputs(relay)
    with relay.client(key) as client:
        answer = client.post("/dream-machine/v1/generations/video/modify", json=modify(f"{url}/endless.mp4"))
        assert answer.status_code == 413, answer.text
        cap = dream_machine.MAX_SOURCE_VIDEO_BYTES
        assert answer.json()["detail"] == f"media.url: the video is larger than {cap} bytes"
        assert client.get("/account").json()["balance"] == 10_000
    assert inputs(relay) == before


def test_a_caller_without_money_or_room_is_refused_before_the_fetch(
    relay: Relay, server: tuple[str, VideoServer]
) -> None:
    url, found = server
    hits = len(found.hits)
    broke = relay.new_key(f"broke-{uuid.uuid4().hex[:6]}", balance=0)
    with relay.client(broke) as client:
        for path, body in (
            ("/dream-machine/v1/generations/video/modify", modify(f"{url}/clip.mp4")),
            (
                "/dream-machine/v1/generations/video/reframe",
                {**modify(f"{url}/clip.mp4"), "generation_type": "reframe_video", "aspect_ratio": "1:1"},
            ),
        ):
            assert client.post(path, json=body).status_code == 402, path
    assert len(found.hits) == hits  # never fetched


def test_an_accepted_modify_streams_its_source_and_keeps_it(
    relay: Relay, server: tuple[str, VideoServer]
) -> None:
    url, found = server
    key = relay.new_key(f"ok-{uuid.uuid4().hex[:6]}", balance=10_000)
    before = set(inputs(relay))
    with relay.client(key) as client:
        answer = client.post("/dream-machine/v1/generations/video/modify", json=modify(f"{url}/clip.mp4"))
    assert answer.status_code == 201, answer.text
    (added,) = set(inputs(relay)) - before
    assert (relay.settings.data_dir / "media" / "inputs" / added).read_bytes() == found.video


def test_a_submit_still_fetching_its_source_counts_against_the_in_flight_cap(
    relay: Relay, server: tuple[str, VideoServer]
) -> None:
    url, found = server
    found.release.clear()
    slow_before = found.hits.count("/slow.mp4")
    key = relay.new_key(f"one-{uuid.uuid4().hex[:6]}", balance=10_000, max_in_flight=1)
    path = "/dream-machine/v1/generations/video/modify"
    with relay.client(key) as client, ThreadPoolExecutor(1) as pool:
        first = pool.submit(client.post, path, json=modify(f"{url}/slow.mp4"))
        while found.hits.count("/slow.mp4") == slow_before:  # the first is fetching its source now
            assert not first.done(), first.result().text
            threading.Event().wait(0.02)
        clips = found.hits.count("/clip.mp4")
        second = client.post(path, json=modify(f"{url}/clip.mp4"))
        assert second.status_code == 429, second.text
        assert "already has 1 tasks in flight" in second.text
        assert found.hits.count("/clip.mp4") == clips  # refused before its fetch
        found.release.set()
        assert first.result().status_code == 201, first.result().text


def test_source_fetches_wait_for_the_process_wide_limiter(
    relay: Relay, server: tuple[str, VideoServer]
) -> None:
    """With every fetch slot taken, a source waits for one and is not even requested meanwhile."""
    url, found = server

    async def scenario() -> tuple[int, dream_machine.SourceVideo]:
        async with Runtime.from_settings(relay.settings) as rt:
            holders = [object() for _ in range(int(rt.source_fetches.total_tokens))]
            for holder in holders:
                await rt.source_fetches.acquire_on_behalf_of(holder)
            hits = len(found.hits)
            fetch = asyncio.ensure_future(
                dream_machine.source_video(rt, Caller(key_id=1, account_id=1), "media.url", f"{url}/clip.mp4")
            )
            while rt.source_fetches.statistics().tasks_waiting == 0:  # noqa: ASYNC110 (nothing to await)
                await asyncio.sleep(0.01)
            waited = len(found.hits) - hits
            assert not fetch.done()
            for holder in holders:
                rt.source_fetches.release_on_behalf_of(holder)
            return waited, await fetch

    waited, source = anyio.run(scenario)
    assert waited == 0
    assert source.seconds > 0 and source.url.startswith(f"{relay.url}/media/inputs/")
