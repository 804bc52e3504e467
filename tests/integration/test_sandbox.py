"""The standalone sandbox upstream over real loopback HTTP, as a client of the official Luma API sees it."""

from __future__ import annotations

import base64
import io
import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import av
import httpx
import numpy as np
import pytest
from PIL import Image

from dreamrelay.netguard import URLPolicy
from dreamrelay.sandbox.app import create_sandbox_app
from dreamrelay.sandbox.core import SandboxConfig
from dreamrelay.sandbox.render import dimensions, frame_count
from tests.support.live_server import live_server
from tests.support.media import decode_mp4, mean_abs_diff, open_jpeg, picture

API = "/dream-machine/v1"
KEY = "k"
GENERATION_KEYS = [
    "id",
    "generation_type",
    "state",
    "failure_reason",
    "created_at",
    "assets",
    "model",
    "request",
]
SMALL = {"resolution": "540p", "aspect_ratio": "1:1"}  # 768×768: renders in well under a second
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def config(data_dir: Path, **changes: Any) -> SandboxConfig:
    values: dict[str, Any] = {"queued_seconds": 0.2, "dreaming_seconds": 0.3}
    values.update(changes)
    # Callback receivers and image servers of these tests are on loopback.
    return SandboxConfig(
        data_dir=data_dir, api_key=KEY, url_policy=URLPolicy.from_setting("127.0.0.0/8"), **values
    )


@contextmanager
def sandbox_client(cfg: SandboxConfig) -> Iterator[httpx.Client]:
    """The standalone sandbox on a loopback port; a client already holding the right Bearer key."""
    with live_server(create_sandbox_app(cfg)) as url:
        headers = {"Authorization": f"Bearer {KEY}"}
        with httpx.Client(base_url=url + API, headers=headers, timeout=30) as client:
            yield client


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[httpx.Client]:
    with sandbox_client(config(tmp_path)) as client:
        yield client


def create(client: httpx.Client, body: dict[str, Any], path: str = "/generations") -> dict[str, Any]:
    response = client.post(path, json=body)
    assert response.status_code == 201, response.text
    generation: dict[str, Any] = response.json()
    return generation


def wait_for(
    client: httpx.Client, generation_id: str, states: set[str], timeout: float = 30
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    generation: dict[str, Any] = {}
    while time.monotonic() < deadline:
        response = client.get(f"/generations/{generation_id}")
        assert response.status_code == 200, response.text
        generation = response.json()
        if generation["state"] in states:
            return generation
        time.sleep(0.05)
    raise AssertionError(f"generation {generation_id} never reached {states}; last: {generation}")


def completed(client: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    generation = wait_for(client, create(client, body)["id"], {"completed", "failed"})
    assert generation["state"] == "completed", generation["failure_reason"]
    return generation


def assert_detail(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert list(body) == ["detail"] and isinstance(body["detail"], str) and body["detail"]
    detail: str = body["detail"]
    return detail


def frames_of(url: str) -> tuple[np.ndarray, np.ndarray]:
    video = decode_mp4(httpx.get(url, timeout=30).content)
    return video.first, video.last


def rgb(data: bytes, size: tuple[int, int]) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB").resize(size))


def data_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode()


# ---- pure functions of the renderer -------------------------------------------------------------


def test_dimensions_and_frame_count_follow_luma_sizes() -> None:
    assert dimensions("720p", "16:9") == (1360, 752)
    assert dimensions("720p", "9:16") == (752, 1360)
    assert dimensions("720p", "1:1") == (1024, 1024)
    assert dimensions("540p", "1:1") == (768, 768)
    for resolution in ("540p", "720p", "1080p", "4k"):
        for aspect in ("16:9", "9:16", "1:1", "4:3", "3:4", "21:9", "9:21"):
            width, height = dimensions(resolution, aspect)
            assert width % 16 == 0 and height % 16 == 0, (resolution, aspect)
            across, down = (int(part) for part in aspect.split(":"))
            # Rounding to 16 keeps the shape close to the asked aspect ratio.
            assert width / height == pytest.approx(across / down, rel=0.06), (resolution, aspect)
        assert dimensions(resolution, "16:9")[0] > dimensions(resolution, "16:9")[1]
    assert dimensions("1080p", "16:9")[0] > dimensions("720p", "16:9")[0] > dimensions("540p", "16:9")[0]
    assert frame_count("5s") == 121
    assert frame_count("9s") == 217


# ---- auth, shape, validation ----------------------------------------------------------------------


def test_missing_or_wrong_bearer_is_401_with_detail(sandbox: httpx.Client) -> None:
    base = str(sandbox.base_url)
    body = {"prompt": "a boat", **SMALL}
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY}):
        with httpx.Client(base_url=base, headers=headers, timeout=10) as stranger:
            assert_detail(stranger.get("/ping"), 401)
            assert_detail(stranger.get("/credits"), 401)
            assert_detail(stranger.post("/generations", json=body), 401)
            assert_detail(stranger.post("/generations/video", json=body), 401)
            assert_detail(stranger.get("/generations"), 401)
            assert_detail(stranger.get("/generations/some-id"), 401)
            assert_detail(stranger.delete("/generations/some-id"), 401)
    # Nothing was created by the refused requests; the right key works.
    assert sandbox.get("/generations").json()["generations"] == []
    assert sandbox.get("/ping").json() == {"message": "pong"}
    assert sandbox.get("/credits").status_code == 200


@pytest.mark.parametrize("path", ["/generations", "/generations/video"])
def test_both_create_paths_answer_201_with_a_generation(sandbox: httpx.Client, path: str) -> None:
    body = {"prompt": "a paper boat [sandbox:stall]", "model": "ray-flash-2", **SMALL, "duration": "9s"}
    response = sandbox.post(path, json=body)
    assert response.status_code == 201
    generation = response.json()
    assert list(generation) == GENERATION_KEYS
    assert UUID.match(generation["id"])
    assert generation["generation_type"] == "video"
    assert generation["state"] == "queued"
    assert generation["failure_reason"] is None
    assert ISO.match(generation["created_at"])
    assert generation["assets"] == {"video": None, "image": None, "progress_video": None}
    assert generation["model"] == "ray-flash-2"
    assert generation["request"] == {
        "generation_type": "video",
        "model": "ray-flash-2",
        "prompt": body["prompt"],
        "aspect_ratio": "1:1",
        "loop": False,
        "resolution": "540p",
        "duration": "9s",
    }
    fetched = sandbox.get(f"/generations/{generation['id']}")
    assert fetched.status_code == 200
    assert fetched.json()["id"] == generation["id"]
    assert fetched.json()["created_at"] == generation["created_at"]


@pytest.mark.parametrize(
    ("body", "word"),
    [
        ({"prompt": "x", "model": "ray-9"}, "model"),
        ({"prompt": "x", "aspect_ratio": "5:4"}, "aspect_ratio"),
        ({"prompt": "x", "resolution": "8k"}, "resolution"),
        ({"prompt": "x", "duration": "7s"}, "duration"),
        ({"prompt": "x", "loop": "yes"}, "loop"),
        ({"prompt": "x", "callback_url": "ftp://example.invalid/"}, "callback_url"),
        ({"prompt": "x", "keyframes": {"frame2": {"type": "image", "url": "data:,"}}}, "keyframes"),
        ({"model": "ray-2"}, "prompt"),
    ],
)
def test_invalid_requests_are_400_with_detail(sandbox: httpx.Client, body: dict[str, Any], word: str) -> None:
    assert word in assert_detail(sandbox.post("/generations", json=body), 400)


def test_bodies_that_are_not_a_json_object_are_400(sandbox: httpx.Client) -> None:
    for content in (b"not json", b"", b'["a list"]', b'"a string"'):
        response = sandbox.post("/generations", content=content, headers={"Content-Type": "application/json"})
        assert_detail(response, 400)
    assert sandbox.get("/generations").json()["generations"] == []


# ---- a generation's life and its media ------------------------------------------------------------


def test_states_go_queued_dreaming_completed_and_the_media_is_real(sandbox: httpx.Client) -> None:
    generation = create(sandbox, {"prompt": "a red kite over the sea", **SMALL})
    seen = [generation["state"]]
    deadline = time.monotonic() + 30
    while seen[-1] not in ("completed", "failed") and time.monotonic() < deadline:
        time.sleep(0.03)
        state = sandbox.get(f"/generations/{generation['id']}").json()["state"]
        if state != seen[-1]:
            seen.append(state)
    assert seen == ["queued", "dreaming", "completed"]

    done = sandbox.get(f"/generations/{generation['id']}").json()
    assert list(done) == GENERATION_KEYS
    assert done["failure_reason"] is None
    assert done["created_at"] == generation["created_at"]
    assert done["assets"]["progress_video"] is None
    assert done["assets"]["video"].startswith(str(sandbox.base_url).rstrip("/") + "/files/")

    # Asset URLs are public, like Luma's CDN links: fetched without the key.
    video_response = httpx.get(done["assets"]["video"], timeout=30)
    assert video_response.status_code == 200
    assert video_response.headers["content-type"] == "video/mp4"
    video = decode_mp4(video_response.content)
    assert video.codec == "h264"
    assert (video.width, video.height) == dimensions("540p", "1:1") == (768, 768)
    assert video.frames == frame_count("5s") == 121
    assert video.duration == pytest.approx(121 / 24, abs=0.05)
    with av.open(io.BytesIO(video_response.content)) as container:
        assert container.streams.video[0].codec_context.pix_fmt == "yuv420p"
    # A drifting picture, not a still.
    assert mean_abs_diff(video.first, video.last) > 5

    image_response = httpx.get(done["assets"]["image"], timeout=30)
    assert image_response.status_code == 200
    thumbnail = open_jpeg(image_response.content)
    assert thumbnail.size == (768, 768)
    assert mean_abs_diff(np.asarray(thumbnail.convert("RGB")), video.first) < 8


def test_wider_and_longer_requests_render_at_their_own_size(sandbox: httpx.Client) -> None:
    done = completed(sandbox, {"prompt": "a long pan", "resolution": "540p", "aspect_ratio": "21:9"})
    video = decode_mp4(httpx.get(done["assets"]["video"], timeout=30).content)
    assert (video.width, video.height) == dimensions("540p", "21:9")
    assert video.width > 2 * video.height


# ---- prompt markers -------------------------------------------------------------------------------


def test_reject_and_error_markers_refuse_at_submit(sandbox: httpx.Client) -> None:
    assert "reject" in assert_detail(
        sandbox.post("/generations", json={"prompt": "no [sandbox:reject]"}), 400
    )
    assert_detail(sandbox.post("/generations", json={"prompt": "boom [sandbox:error]"}), 500)
    assert sandbox.get("/generations").json()["generations"] == []


def test_fail_marker_ends_failed_with_a_reason_and_stall_stays_dreaming(sandbox: httpx.Client) -> None:
    failing = create(sandbox, {"prompt": "please [sandbox:fail]", **SMALL})
    stalling = create(sandbox, {"prompt": "wait [sandbox:stall]", **SMALL})
    failed = wait_for(sandbox, failing["id"], {"completed", "failed"})
    assert failed["state"] == "failed"
    assert isinstance(failed["failure_reason"], str) and failed["failure_reason"]
    assert failed["assets"] == {"video": None, "image": None, "progress_video": None}

    wait_for(sandbox, stalling["id"], {"dreaming"})
    time.sleep(1.2)  # well past queued + dreaming + a render
    stalled = sandbox.get(f"/generations/{stalling['id']}").json()
    assert stalled["state"] == "dreaming"
    assert stalled["failure_reason"] is None
    assert stalled["assets"]["video"] is None


# ---- list and delete ------------------------------------------------------------------------------


def test_list_is_newest_first_and_pages_with_limit_and_offset(sandbox: httpx.Client) -> None:
    ids = [create(sandbox, {"prompt": f"number {n} [sandbox:stall]", **SMALL})["id"] for n in range(3)]
    newest_first = ids[::-1]

    everything = sandbox.get("/generations").json()
    assert [g["id"] for g in everything["generations"]] == newest_first
    assert everything["count"] == 3 and everything["has_more"] is False
    assert all(list(g) == GENERATION_KEYS for g in everything["generations"])

    first = sandbox.get("/generations", params={"limit": 2}).json()
    assert [g["id"] for g in first["generations"]] == newest_first[:2]
    assert (first["count"], first["has_more"], first["limit"], first["offset"]) == (2, True, 2, 0)

    rest = sandbox.get("/generations", params={"limit": 2, "offset": 2}).json()
    assert [g["id"] for g in rest["generations"]] == newest_first[2:]
    assert (rest["count"], rest["has_more"], rest["offset"]) == (1, False, 2)

    beyond = sandbox.get("/generations", params={"limit": 2, "offset": 5}).json()
    assert beyond["generations"] == [] and beyond["has_more"] is False

    for params in ({"limit": 0}, {"limit": "two"}, {"offset": -1}):
        assert_detail(sandbox.get("/generations", params=params), 400)


def test_delete_is_204_then_the_generation_is_gone(sandbox: httpx.Client) -> None:
    kept = create(sandbox, {"prompt": "keep me [sandbox:stall]", **SMALL})
    doomed = create(sandbox, {"prompt": "delete me", **SMALL})
    response = sandbox.delete(f"/generations/{doomed['id']}")
    assert response.status_code == 204
    assert response.content == b""
    assert "not found" in assert_detail(sandbox.get(f"/generations/{doomed['id']}"), 404).lower()
    assert_detail(sandbox.delete(f"/generations/{doomed['id']}"), 404)
    assert [g["id"] for g in sandbox.get("/generations").json()["generations"]] == [kept["id"]]
    # It does not come back when its (cancelled) schedule would have completed it.
    time.sleep(0.8)
    assert_detail(sandbox.get(f"/generations/{doomed['id']}"), 404)
    assert_detail(sandbox.get("/generations/no-such-id"), 404)


def test_deleting_mid_render_stops_the_render(sandbox: httpx.Client, tmp_path: Path) -> None:
    doomed = create(
        sandbox, {"prompt": "delete me while rendering", "resolution": "720p", "aspect_ratio": "1:1"}
    )
    files = tmp_path / "files"
    deadline = time.monotonic() + 20
    while not list(files.glob("*.partial.mp4")):
        assert time.monotonic() < deadline, "the render never started"
        time.sleep(0.01)
    assert sandbox.delete(f"/generations/{doomed['id']}").status_code == 204
    time.sleep(1.5)  # longer than the whole render would take
    # No video was finished for a generation that no longer exists, and nothing half-written stays.
    assert sorted(path.name for path in files.iterdir()) == []


# ---- keyframes ------------------------------------------------------------------------------------


def test_extend_starts_on_the_parents_last_frame_and_reverse_extend_ends_on_its_first(
    sandbox: httpx.Client,
) -> None:
    parent = completed(sandbox, {"prompt": "a red kite", **SMALL})
    parent_first, parent_last = frames_of(parent["assets"]["video"])
    assert mean_abs_diff(parent_first, parent_last) > 8

    forward = {"frame0": {"type": "generation", "id": parent["id"]}}
    backward = {"frame1": {"type": "generation", "id": parent["id"]}}
    extend = create(sandbox, {"prompt": "it flies away", **SMALL, "keyframes": forward})
    reverse = create(sandbox, {"prompt": "before that", **SMALL, "keyframes": backward})
    assert extend["request"]["keyframes"] == forward

    extended = wait_for(sandbox, extend["id"], {"completed", "failed"})
    assert extended["state"] == "completed", extended["failure_reason"]
    extend_first, _extend_last = frames_of(extended["assets"]["video"])
    assert mean_abs_diff(extend_first, parent_last) < 8
    assert mean_abs_diff(extend_first, parent_first) > 8  # a continuation, not a copy of the opening

    reversed_ = wait_for(sandbox, reverse["id"], {"completed", "failed"})
    assert reversed_["state"] == "completed", reversed_["failure_reason"]
    reverse_first, reverse_last = frames_of(reversed_["assets"]["video"])
    assert mean_abs_diff(reverse_last, parent_first) < 8
    assert mean_abs_diff(reverse_first, parent_first) > 8


def test_extend_of_an_unknown_or_unfinished_parent_is_400(sandbox: httpx.Client) -> None:
    unknown = {"prompt": "more", "keyframes": {"frame0": {"type": "generation", "id": "no-such-generation"}}}
    assert "no-such-generation" in assert_detail(sandbox.post("/generations", json=unknown), 400)
    pending = create(sandbox, {"prompt": "slow [sandbox:stall]", **SMALL})
    unfinished = {"prompt": "more", "keyframes": {"frame0": {"type": "generation", "id": pending["id"]}}}
    assert_detail(sandbox.post("/generations", json=unfinished), 400)
    assert [g["id"] for g in sandbox.get("/generations").json()["generations"]] == [pending["id"]]


def test_image_keyframe_as_data_uri_is_the_first_frame(sandbox: httpx.Client) -> None:
    image = picture(768, 768, seed=7)
    body = {"prompt": "pan", **SMALL, "keyframes": {"frame0": {"type": "image", "url": data_uri(image)}}}
    done = completed(sandbox, body)
    first, last = frames_of(done["assets"]["video"])
    source = rgb(image, (768, 768))
    assert mean_abs_diff(first, source) < 8
    assert mean_abs_diff(last, source) > 8  # the picture moves
    thumbnail = np.asarray(open_jpeg(httpx.get(done["assets"]["image"], timeout=30).content).convert("RGB"))
    assert mean_abs_diff(thumbnail, source) < 8


def test_image_keyframe_without_prompt_is_accepted(sandbox: httpx.Client) -> None:
    image = picture(400, 300, seed=3)  # cropped and scaled to cover the 768×768 frame
    body = {**SMALL, "keyframes": {"frame0": {"type": "image", "url": data_uri(image)}}}
    done = completed(sandbox, body)
    assert done["request"]["prompt"] == ""
    first, _last = frames_of(done["assets"]["video"])
    assert first.shape == (768, 768, 3)


def test_broken_image_keyframe_fails_the_generation(sandbox: httpx.Client) -> None:
    body = {"prompt": "x", **SMALL, "keyframes": {"frame0": {"type": "image", "url": data_uri(b"not a png")}}}
    failed = wait_for(sandbox, create(sandbox, body)["id"], {"completed", "failed"})
    assert failed["state"] == "failed"
    assert failed["failure_reason"]


def test_loop_returns_to_the_first_frame(sandbox: httpx.Client) -> None:
    first, last = frames_of(
        completed(sandbox, {"prompt": "round and round", **SMALL, "loop": True})["assets"]["video"]
    )
    assert mean_abs_diff(first, last) < 4
    # Without loop the same prompt ends somewhere else.
    first, last = frames_of(completed(sandbox, {"prompt": "round and round", **SMALL})["assets"]["video"])
    assert mean_abs_diff(first, last) > 8


def test_end_image_is_the_last_frame(sandbox: httpx.Client) -> None:
    end = picture(768, 768, seed=11)
    body = {
        "prompt": "towards the end",
        **SMALL,
        "keyframes": {"frame1": {"type": "image", "url": data_uri(end)}},
    }
    first, last = frames_of(completed(sandbox, body)["assets"]["video"])
    target = rgb(end, (768, 768))
    assert mean_abs_diff(last, target) < 8
    assert mean_abs_diff(first, target) > 20  # it starts on the prompt's picture, then crossfades


# ---- callbacks ------------------------------------------------------------------------------------


@dataclass
class Receiver:
    url: str
    posts: list[dict[str, Any]] = field(default_factory=list)
    methods: list[str] = field(default_factory=list)

    def wait(self, count: int, timeout: float = 10) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(self.posts) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return list(self.posts)


@contextmanager
def callback_receiver() -> Iterator[Receiver]:
    receiver = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            receiver.methods.append(f"POST {self.headers.get('Content-Type')}")
            receiver.posts.append(json.loads(self.rfile.read(length)))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, name="callback-receiver", daemon=True)
    thread.start()
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_callback_url_receives_each_state_change(sandbox: httpx.Client) -> None:
    with callback_receiver() as receiver:
        generation = create(sandbox, {"prompt": "call me", **SMALL, "callback_url": receiver.url})
        assert "callback_url" not in generation["request"]  # it carries the caller's secret
        done = wait_for(sandbox, generation["id"], {"completed", "failed"})
        posts = receiver.wait(2)
        time.sleep(0.2)  # nothing more arrives
        assert [post["state"] for post in receiver.posts] == ["dreaming", "completed"]
        assert set(receiver.methods) == {"POST application/json"}
        dreaming, final = posts
        assert dreaming["id"] == generation["id"]
        assert dreaming["assets"]["video"] is None
        assert list(dreaming) == GENERATION_KEYS
        assert final == done == sandbox.get(f"/generations/{generation['id']}").json()
        assert final["assets"]["video"]


# ---- restart --------------------------------------------------------------------------------------


def test_a_generation_queued_at_shutdown_completes_after_restart(tmp_path: Path) -> None:
    cfg = config(tmp_path, queued_seconds=1.5)
    with sandbox_client(cfg) as client:
        generation = create(client, {"prompt": "survive a restart", **SMALL})
        assert client.get(f"/generations/{generation['id']}").json()["state"] == "queued"
    on_disk = json.loads((tmp_path / "generations" / f"{generation['id']}.json").read_bytes())
    assert on_disk["state"] == "queued"  # the server stopped before the generation moved on

    with sandbox_client(cfg) as client:
        assert client.get(f"/generations/{generation['id']}").json()["state"] in ("queued", "dreaming")
        done = wait_for(client, generation["id"], {"completed", "failed"})
        assert done["state"] == "completed", done["failure_reason"]
        assert done["created_at"] == generation["created_at"]
        assert done["assets"]["video"].startswith(str(client.base_url).rstrip("/") + "/files/")
        video = decode_mp4(httpx.get(done["assets"]["video"], timeout=30).content)
        assert (video.width, video.height, video.frames) == (768, 768, 121)
        assert [g["id"] for g in client.get("/generations").json()["generations"]] == [generation["id"]]


def test_a_generation_dreaming_at_shutdown_completes_after_restart(tmp_path: Path) -> None:
    """Stopped in the middle of its render: the restarted sandbox renders it again, cleanly."""
    body = {"prompt": "survive a restart mid-render", "resolution": "720p", "aspect_ratio": "16:9"}
    cfg = config(tmp_path, queued_seconds=0.1, dreaming_seconds=0.2)
    with sandbox_client(cfg) as client:
        generation = create(client, body)
        deadline = time.monotonic() + 20
        while not list((tmp_path / "files").glob("*.partial.mp4")):
            assert time.monotonic() < deadline, "the render never started"
            time.sleep(0.01)
    on_disk = json.loads((tmp_path / "generations" / f"{generation['id']}.json").read_bytes())
    assert on_disk["state"] == "dreaming"

    with sandbox_client(cfg) as client:
        done = wait_for(client, generation["id"], {"completed", "failed"})
        assert done["state"] == "completed", done["failure_reason"]
        video = decode_mp4(httpx.get(done["assets"]["video"], timeout=30).content)
        assert (video.width, video.height, video.frames) == (1360, 752, 121)
        time.sleep(0.2)
    assert not list((tmp_path / "files").glob("*.partial.*"))  # no render was left behind
