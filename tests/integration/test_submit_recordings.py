"""Every submit route, recorded: the customer's answer, the stored task row and the body each upstream
got, byte for byte (ids, times, ports and tokens normalised), compared with the golden files under
tests/fixtures/recordings/. The engine's intake may be rebuilt freely; what a customer or an upstream
sees of a submit may not change. `DREAMRELAY_RECORD=1` writes the files afresh (review the diff).

The sandbox runs standalone behind a recorder that keeps every POST it gets and holds every GET (polls,
media) while a submit is being recorded, so the row read after the answer is the one the submit left.
Its URL policy lets it reach nothing private: no callbacks move a recorded task either.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from dreamrelay.runtime import Runtime
from dreamrelay.sandbox.app import create_sandbox_app
from dreamrelay.sandbox.core import SandboxConfig
from tests.conftest import Relay, make_settings, start_relay
from tests.support.live_server import live_server
from tests.support.media import picture

GOLDEN = Path(__file__).resolve().parent.parent / "fixtures" / "recordings"
RECORD = os.environ.get("DREAMRELAY_RECORD") == "1"
SANDBOX_KEY = "recordings-sandbox-key"


async def _body(receive: Any) -> bytes:
    data = b""
    while True:
        message = await receive()
        data += bytes(message.get("body", b""))
        if not message.get("more_body"):
            return data


@dataclass
class Recorder:
    """The sandbox behind a tap: POST bodies kept in order; GETs wait while `hold` is set."""

    app: Any
    posts: list[tuple[str, bytes]] = field(default_factory=list)
    hold: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["method"] == "POST":
            data = await _body(receive)
            with self._lock:
                self.posts.append((scope["path"], data))
            sent = False

            async def replay() -> dict[str, Any]:
                nonlocal sent
                if sent:
                    return {"type": "http.disconnect"}
                sent = True
                return {"type": "http.request", "body": data, "more_body": False}

            await self.app(scope, replay, send)
            return
        while self.hold.is_set():  # noqa: ASYNC110 - set and cleared from the test's thread
            await asyncio.sleep(0.02)
        await self.app(scope, receive, send)

    def taken(self) -> list[tuple[str, bytes]]:
        with self._lock:
            return list(self.posts)


@dataclass
class World:
    relay: Relay
    recorder: Recorder
    sandbox_url: str
    client: httpx.Client
    ids: dict[str, str] = field(default_factory=dict)  # name → task id of a finished parent


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("recordings")
    config = SandboxConfig(
        data_dir=root / "sandbox", api_key=SANDBOX_KEY, queued_seconds=0, dreaming_seconds=0
    )
    recorder = Recorder(create_sandbox_app(config))
    with live_server(recorder) as sandbox:
        settings = make_settings(
            root / "relay",
            sandbox_url=f"{sandbox}/dream-machine/v1",
            sandbox_key=SANDBOX_KEY,
            allow_private_urls="127.0.0.0/8",
            sync_wait_seconds=0.0,
        )
        with start_relay(settings) as relay, relay.client() as client:
            yield World(relay, recorder, sandbox, client)


def _png(seed: int) -> str:
    return "data:image/png;base64," + base64.b64encode(picture(320, 320, seed)).decode()


def _row(relay: Relay, task_id: str) -> dict[str, Any]:
    async def read() -> dict[str, Any]:
        async with Runtime.from_settings(relay.settings) as rt, rt.db.reader() as conn:
            found = (await conn.execute(text("SELECT * FROM tasks WHERE id = :id"), {"id": task_id})).one()
        return dict(found._mapping)

    return asyncio.run(read())


# Columns that say when, or who holds the task's lease, or where the task stands in the change feed of
# every process's in-flight mirror (`change_seq`, a global order): not what the submit made.
_SCHEDULING = {
    "change_seq",
    "created_at",
    "updated_at",
    "finished_at",
    "deadline_at",
    "next_poll_at",
    "lease_owner",
    "lease_until",
    "poll_count",
    "poll_errors",
}
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)?")
_TIME_NUMBER = re.compile(r'"(\w*(?:_at|At|_time|Time))":\s*-?[\d.]+')
_REQUEST_ID = re.compile(r"request id [0-9a-f]+")
_HEX32 = re.compile(r"\b[0-9a-f]{32}\b")  # request (trace) ids; the Agents API's user_id (a keyed hash)


def _normalised(text_: str, names: dict[str, str], known: dict[str, str]) -> str:
    for value, name in known.items():
        text_ = text_.replace(value, name)

    def uuid_name(match: re.Match[str]) -> str:
        return names.setdefault(match.group(0), f"<id-{len(names)}>")

    text_ = _UUID.sub(uuid_name, text_)
    text_ = _ISO.sub("<time>", text_)
    text_ = _TIME_NUMBER.sub(lambda m: f'"{m.group(1)}":"<time>"', text_)
    text_ = _REQUEST_ID.sub("request id <rid>", text_)
    return _HEX32.sub("<hex>", text_)


def _recording(
    world: World, answer: httpx.Response, task_id: str | None, posts: list[tuple[str, bytes]]
) -> str:
    names: dict[str, str] = {}
    known = {world.relay.url: "<relay>", world.sandbox_url: "<sandbox>"}
    shown: dict[str, Any] | None = None
    if task_id is not None:
        row = _row(world.relay, task_id)
        if row.get("upstream_token"):
            known[str(row["upstream_token"])] = "<token>"
        shown = {}
        for name in sorted(row):
            if name in _SCHEDULING:
                continue
            value = row[name]
            if isinstance(value, bytes | memoryview):
                value = bytes(value).decode()
            shown[name] = _normalised(value, names, known) if isinstance(value, str) else value
    recording = {
        "status": answer.status_code,
        "answer": _normalised(answer.content.decode(), names, known),
        "row": shown,
        "upstream": [
            {"path": _normalised(path, names, known), "body": _normalised(body.decode(), names, known)}
            for path, body in posts
        ],
    }
    return json.dumps(recording, ensure_ascii=False, indent=1) + "\n"


def _wait_finished(world: World, task_id: str) -> None:
    for _ in range(1200):
        answer = world.client.get(f"/dream-machine/v1/generations/{task_id}")
        if answer.status_code == 404:
            answer = world.client.get(f"/agents/v1/generations/{task_id}")
        if answer.json().get("state") in ("completed", "failed"):
            assert answer.json()["state"] == "completed", answer.text
            return
        time.sleep(0.1)
    raise AssertionError(f"task {task_id} never finished")


@dataclass(frozen=True)
class Case:
    name: str
    path: str  # may name a parent: {video}, {agents_video}
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    keep_as: str | None = None  # finish the task and remember it under this name


def _task_id(answer: httpx.Response) -> str | None:
    data = answer.json()
    if not isinstance(data, dict):
        return None
    if isinstance(data.get("data"), dict):  # Kling's envelope, AceData's result
        inner = data["data"]
        found = inner.get("task_id") or inner.get("id")
        return str(found) if found else None
    found = data.get("id") or data.get("task_id")
    return str(found) if found else None


HOOK = "http://127.0.0.1:9/hook"
CASES = (
    Case(
        "own_generate",
        "/luma/generations",
        {"user_prompt": "a paper boat", "resolution": "540p"},
        keep_as="video",
    ),
    Case(
        "own_generate_everything",
        "/luma/generations",
        {
            "user_prompt": "a lantern",
            "model_name": "ray-v2",
            "resolution": "720p",
            "duration": "9s",
            "aspect_ratio": "9:16",
            "loop": True,
            "expand_prompt": True,
            "notify_hook": HOOK,
            "image_url": _png(1),
        },
    ),
    Case(
        "own_generate_idempotent",
        "/luma/generations",
        {"user_prompt": "a kite"},
        headers={"Idempotency-Key": "recording-1"},
    ),
    Case(
        "own_generate_replayed",
        "/luma/generations",
        {"user_prompt": "a kite"},
        headers={"Idempotency-Key": "recording-1"},
    ),
    Case("own_generate_sync", "/luma/generations_sync", {"user_prompt": "a river", "resolution": "540p"}),
    Case("own_extend", "/luma/generations/{video}/extend", {"user_prompt": "further", "notify_hook": HOOK}),
    Case("own_refused_model", "/luma/generations", {"user_prompt": "x", "model_name": "nope"}),
    Case("acedata_generate", "/luma/videos", {"prompt": "a lighthouse", "async": True, "callback_url": HOOK}),
    Case(
        "acedata_generate_image",
        "/luma/videos",
        {"prompt": "a ship", "async": True, "start_image_url": _png(2), "aspect_ratio": "1:1"},
    ),
    Case("acedata_extend", "/luma/videos", {"action": "extend", "video_id": "{video}", "prompt": "more"}),
    Case("acedata_wait", "/luma/videos", {"prompt": "a dune"}),
    Case(
        "official_generate",
        "/dream-machine/v1/generations",
        {"prompt": "a kite", "model": "ray-2", "resolution": "540p", "duration": "5s", "callback_url": HOOK},
        keep_as="official",
    ),
    Case(
        "official_generate_video_path",
        "/dream-machine/v1/generations/video",
        {
            "prompt": "a cat",
            "model": "ray-flash-2",
            "aspect_ratio": "4:3",
            "keyframes": {"frame0": {"type": "image", "url": _png(3)}},
        },
        headers={"Idempotency-Key": "recording-2"},
    ),
    Case(
        "official_keyframe_generation",
        "/dream-machine/v1/generations",
        {"prompt": "onwards", "keyframes": {"frame0": {"type": "generation", "id": "{official}"}}},
    ),
    Case("official_refused", "/dream-machine/v1/generations", {"prompt": "x", "resolution": "8k"}),
    Case(
        "official_image",
        "/dream-machine/v1/generations/image",
        {
            "prompt": "a lighthouse",
            "model": "photon-flash-1",
            "aspect_ratio": "1:1",
            "image_ref": [{"url": _png(4), "weight": 0.5}],
        },
    ),
    Case(
        "official_image_reframe",
        "/dream-machine/v1/generations/image/reframe",
        {
            "generation_type": "reframe_image",
            "prompt": "wider",
            "model": "photon-1",
            "aspect_ratio": "16:9",
            "media": {"url": _png(5)},
        },
    ),
    Case(
        "official_video_reframe",
        "/dream-machine/v1/generations/video/reframe",
        {
            "generation_type": "reframe_video",
            "prompt": "taller",
            "model": "ray-2",
            "aspect_ratio": "9:16",
            "media": {"url": "{official_video_url}"},
        },
    ),
    Case(
        "official_video_modify",
        "/dream-machine/v1/generations/video/modify",
        {
            "generation_type": "modify_video",
            "prompt": "at night",
            "model": "ray-2",
            "mode": "flex_1",
            "media": {"url": "{official_video_url}"},
        },
    ),
    Case("official_upscale", "/dream-machine/v1/generations/{official}/upscale", {"resolution": "1080p"}),
    Case(
        "official_audio",
        "/dream-machine/v1/generations/{official}/audio",
        {"prompt": "waves", "callback_url": HOOK},
    ),
    Case(
        "kling_images", "/kling/v1/images/generations", {"prompt": "a red fox", "n": 2, "aspect_ratio": "1:1"}
    ),
    Case(
        "kling_images_with_image",
        "/kling/v1/images/generations",
        {"prompt": "a fox", "image": _png(6), "negative_prompt": "blur", "callback_url": HOOK},
    ),
    Case(
        "kling_text2video",
        "/kling/v1/videos/text2video",
        {
            "model_name": "kling-v1-6",
            "prompt": "a paper boat",
            "mode": "pro",
            "duration": "10",
            "aspect_ratio": "9:16",
            "negative_prompt": "blur",
            "cfg_scale": 0.3,
            "camera_control": {"type": "simple", "config": {"zoom": 5}},
            "callback_url": HOOK,
        },
    ),
    Case(
        "kling_image2video",
        "/kling/v1/videos/image2video",
        {
            "model": "kling-v1-6",
            "prompt": "",
            "image": _png(8)[22:],
            "image_tail": _png(9)[22:],
            "duration": "5",
        },
    ),
    Case("agents_image", "/agents/v1/generations", {"prompt": "a kite", "type": "image", "model": "uni-1"}),
    Case(
        "agents_video",
        "/agents/v1/generations",
        {"prompt": "a dune", "type": "video", "video": {"duration": "5s", "resolution": "540p"}},
        keep_as="agents_video",
    ),
    Case(
        "agents_video_continued",
        "/agents/v1/generations",
        {
            "prompt": "on",
            "type": "video",
            "video": {"resolution": "540p", "start_frame": {"generation_id": "{agents_video}"}},
        },
    ),
    Case(
        "agents_image_edit",
        "/agents/v1/generations",
        {
            "prompt": "bluer",
            "type": "image_edit",
            "source": {"data": _png(7)[22:], "media_type": "image/png"},
        },
    ),
)


def _filled(value: Any, world: World) -> Any:
    if isinstance(value, str):
        for name, task_id in world.ids.items():
            value = value.replace("{" + name + "}", task_id)
        if "{official_video_url}" in value:
            value = f"{world.relay.url}/media/tasks/{world.ids['official']}/video.mp4"
        return value
    if isinstance(value, dict):
        return {k: _filled(v, world) for k, v in value.items()}
    if isinstance(value, list):
        return [_filled(v, world) for v in value]
    return value


def _record(world: World, case: Case) -> str:
    world.recorder.hold.set()
    try:
        before = len(world.recorder.taken())
        answer = world.client.post(
            _filled(case.path, world), json=_filled(case.body, world), headers=case.headers
        )
        task_id = _task_id(answer) if answer.status_code < 300 else None
        recording = _recording(world, answer, task_id, world.recorder.taken()[before:])
    finally:
        world.recorder.hold.clear()
    if case.keep_as is not None:
        assert task_id is not None, answer.text
        _wait_finished(world, task_id)
        world.ids[case.keep_as] = task_id
    return recording


def test_every_submit_route_answers_stores_and_sends_what_it_did(world: World) -> None:
    differing = []
    for case in CASES:
        recorded = _record(world, case)
        golden = GOLDEN / f"{case.name}.json"
        if RECORD:
            golden.parent.mkdir(parents=True, exist_ok=True)
            golden.write_text(recorded)
        elif not golden.exists() or golden.read_text() != recorded:
            (GOLDEN.parent / "recordings-new").mkdir(exist_ok=True)
            (GOLDEN.parent / "recordings-new" / golden.name).write_text(recorded)
            differing.append(case.name)
    assert differing == [], f"recordings differ (new ones in tests/fixtures/recordings-new/): {differing}"
