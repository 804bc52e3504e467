"""Seedance through the unchanged Volcengine Ark SDK (`volcenginesdkarkruntime.Ark`, base_url
<relay>/api/v3, a DreamRelay key), on both stores: text to video, image to video with a first and a last
frame (one fetched over HTTP through netguard, one a data: URL), list with filters and pages, delete of a
queued task (cancelled, hold released) and of a finished one (gone with its media), and `usage` equal to
what the ledger captured."""

from __future__ import annotations

import base64
import http.server
import io
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image
from volcenginesdkarkruntime import Ark
from volcenginesdkarkruntime._exceptions import ArkNotFoundError

from dreamrelay.domain.catalog import seedance_tokens, token_charge
from tests.conftest import Relay, make_settings, relays_by_store, start_relay
from tests.integration.test_money import balance_and_ledger
from tests.support.media import decode_mp4, mean_abs_diff, open_jpeg, picture

pytestmark = pytest.mark.both_stores

LITE = "doubao-seedance-1-0-lite-t2v-250428"
PRO = "doubao-seedance-1-0-pro-250528"
PRO_RATE = 500  # migration 0015's credits per million tokens
LITE_RATE = 100_000  # the operator's own rule (set below): fine enough to see a few tokens' worth


@pytest.fixture(scope="module")
def relays(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], Relay]]:
    with relays_by_store(tmp_path_factory.mktemp("ark"), allow_private_urls="127.0.0.0/8") as relay_for:
        yield relay_for


@pytest.fixture
def relay(relays: Callable[[str], Relay], store: str) -> Relay:
    started = relays(store)
    rule = {"model": LITE, "action": "generate", "credits": LITE_RATE, "unit": "1m_tokens"}
    with started.admin() as admin:
        assert admin.put("/admin/prices", json=rule).json()["unit"] == "1m_tokens"
    return started


@pytest.fixture(scope="module")
def pictures() -> Iterator[str]:
    """A loopback HTTP server of test pictures (what a customer's image_url names)."""
    first = picture(320, 180, seed=3)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(first)))
            self.end_headers()
            self.wfile.write(first)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/first.png"
    server.shutdown()


def client_of(relay: Relay, key: str) -> Ark:
    return Ark(base_url=f"{relay.url}/api/v3", api_key=key, timeout=120)


def finished(client: Ark, task_id: str, timeout: float = 120) -> Any:
    until = time.monotonic() + timeout
    while time.monotonic() < until:
        task = client.content_generation.tasks.get(task_id=task_id)
        if task.status not in ("queued", "running"):
            return task
        time.sleep(0.3)
    raise AssertionError(f"task {task_id} did not finish: {task}")


def money(relay: Relay, account: str, task_id: str) -> dict[str, int]:
    _balance, rows = balance_and_ledger(relay.settings, account)
    found = {r["kind"]: r["amount"] for r in rows if r["task_id"] == task_id}
    return {"hold": -found.get("hold", 0), "release": found.get("release", 0)}


def test_text_to_video_with_text_commands_and_usage_as_captured(relay: Relay) -> None:
    key = relay.new_key("ark-t2v", balance=10_000)
    client = client_of(relay, key)
    created = client.content_generation.tasks.create(
        model=LITE,
        content=[{"type": "text", "text": "a paper boat on a rainy street --rs 480p --dur 2 --rt 1:1"}],
    )
    task = finished(client, created.id)
    assert task.status == "succeeded", task.error
    assert (task.model, task.resolution, task.ratio, task.duration, task.framespersecond) == (
        LITE,
        "480p",
        "1:1",
        2,
        24,
    )
    assert task.content.video_url.startswith(f"{relay.url}/media/tasks/{created.id}/")
    video = decode_mp4(httpx.get(task.content.video_url, timeout=60).content)
    assert (video.width, video.height, video.frames) == (640, 640, 48)
    tokens = seedance_tokens(640, 640, 24, 2)
    assert task.usage.completion_tokens == tokens == task.usage.total_tokens
    # The hold priced the widest 480p ratio; the capture is what the square clip used.
    charged = token_charge(tokens, LITE_RATE)
    extra = task.model_extra or {}
    held = extra["credits"]["held"]
    assert extra["credits"] == {"held": held, "charged": charged} and held > charged
    ledger = money(relay, "ark-t2v", created.id)
    assert ledger == {"hold": held, "release": held - charged}
    balance, _rows = balance_and_ledger(relay.settings, "ark-t2v")
    assert balance == 10_000 - charged


def test_image_to_video_first_and_last_frame(relay: Relay, pictures: str) -> None:
    key = relay.new_key("ark-i2v", balance=10_000)
    client = client_of(relay, key)
    last = "data:image/png;base64," + base64.b64encode(picture(320, 180, seed=9)).decode()
    created = client.content_generation.tasks.create(
        model=PRO,
        content=[
            {"type": "text", "text": "the boat sails"},
            {"type": "image_url", "image_url": {"url": pictures}, "role": "first_frame"},
            {"type": "image_url", "image_url": {"url": last}, "role": "last_frame"},
        ],
        resolution="480p",
        duration=2,
        return_last_frame=True,
    )
    task = finished(client, created.id)
    assert task.status == "succeeded", task.error
    assert task.ratio == "16:9"  # adaptive: the ratio nearest the first image's
    video = decode_mp4(httpx.get(task.content.video_url, timeout=60).content)
    size = (video.width, video.height)
    start, end = (
        np.asarray(Image.open(io.BytesIO(picture(320, 180, seed=seed))).convert("RGB").resize(size))
        for seed in (3, 9)
    )
    assert mean_abs_diff(video.first, start) < mean_abs_diff(video.first, end)
    assert mean_abs_diff(video.last, end) < mean_abs_diff(video.last, start)
    frame = open_jpeg(httpx.get(task.content.last_frame_url, timeout=60).content)
    assert frame.size == size
    assert task.usage.completion_tokens == seedance_tokens(*size, 24, 2)


def test_list_with_filters_and_pages(relay: Relay) -> None:
    key = relay.new_key("ark-list", balance=10_000)
    client = client_of(relay, key)
    tasks = client.content_generation.tasks
    done = [
        tasks.create(model=LITE, content=[{"type": "text", "text": f"clip {n} --rs 480p --dur 2"}])
        for n in range(3)
    ]
    failed = tasks.create(
        model=LITE, content=[{"type": "text", "text": "bad [sandbox:fail] --rs 480p --dur 2"}]
    )
    for task in (*done, failed):
        finished(client, task.id)
    everything = tasks.list(page_size=10)
    assert everything.total == 4 and [t.id for t in everything.items] == [
        failed.id,
        *[t.id for t in done][::-1],
    ]
    ok = tasks.list(status="succeeded")
    assert ok.total == 3 and {t.status for t in ok.items} == {"succeeded"}
    bad = tasks.list(status="failed")
    assert [t.id for t in bad.items] == [failed.id] and bad.items[0].error.code
    assert tasks.list(model=PRO).total == 0
    assert [t.id for t in tasks.list(task_ids=[done[0].id, done[2].id]).items] == [done[2].id, done[0].id]
    second = tasks.list(page_num=2, page_size=2)
    assert second.total == 4 and [t.id for t in second.items] == [done[1].id, done[0].id]
    # Another account's tasks are not listed, nor readable.
    other = client_of(relay, relay.new_key("ark-list-other", balance=10))
    assert other.content_generation.tasks.list().total == 0
    with pytest.raises(ArkNotFoundError):
        other.content_generation.tasks.get(task_id=done[0].id)


def test_delete_cancels_a_queued_task_and_deletes_a_finished_one(
    relays: Callable[[str], Relay], store: str
) -> None:
    relay = relays(store)
    key = relay.new_key("ark-delete", balance=10_000)
    client = client_of(relay, key)
    tasks = client.content_generation.tasks
    done = tasks.create(model=LITE, content=[{"type": "text", "text": "keep --rs 480p --dur 2"}])
    task = finished(client, done.id)
    tasks.delete(task_id=done.id)
    with pytest.raises(ArkNotFoundError):
        tasks.get(task_id=done.id)
    assert httpx.get(task.content.video_url, timeout=30).status_code == 404
    # A queued one (the sandbox keeps it queued): cancelled, its whole hold released, still listed.
    queued = _queued_task(relay, key)
    tasks.delete(task_id=queued)
    cancelled = tasks.get(task_id=queued)
    assert cancelled.status == "cancelled" and cancelled.model_extra["credits"]["charged"] == 0
    ledger = money(relay, "ark-delete", queued)
    assert ledger["hold"] > 0 and ledger["release"] == ledger["hold"]
    assert [t.id for t in tasks.list(status="cancelled").items] == [queued]


def _queued_task(relay: Relay, key: str) -> str:
    """A task that stays queued (the sandbox's `[sandbox:queue]` marker), made under /seedance/v3."""
    with relay.client(key) as raw:
        answer = raw.post(
            "/seedance/v3/contents/generations/tasks",
            json={
                "model": LITE,
                "content": [{"type": "text", "text": "wait [sandbox:queue] --rs 480p --dur 2"}],
            },
        )
        assert answer.status_code == 200, answer.text
        return str(answer.json()["id"])


def test_errors_in_arks_shape(relay: Relay) -> None:
    with relay.client() as raw:
        path = "/api/v3/contents/generations/tasks"
        bad = raw.post(path, json={"model": "nope", "content": [{"type": "text", "text": "x"}]})
        assert bad.status_code == 400
        assert bad.json()["error"]["code"] == "InvalidParameter" and bad.json()["error"]["param"] == "model"
        long = raw.post(path, json={"model": LITE, "content": [{"type": "text", "text": "x --dur 99"}]})
        assert long.status_code == 400 and long.json()["error"]["param"] == "duration"
        missing = raw.get(path + "/nope")
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "ResourceNotFound"
        assert raw.get(path, params={"page_size": "0"}).status_code == 400
    anonymous = httpx.post(f"{relay.url}{path}", json={})
    assert anonymous.status_code == 401 and anonymous.json()["error"]["code"] == "AuthenticationError"
    assert (
        httpx.get(f"{relay.url}/seedance/v3/contents/generations/tasks/x").json()["error"]["type"]
        == "Unauthorized"
    )


def _only_channel(relay: Relay, **channel: str) -> None:
    with relay.admin() as admin:
        assert admin.patch("/admin/channels/sandbox", json={"enabled": False}).status_code == 200
        made = admin.post("/admin/channels", json={"name": "ark", "kind": "seedance", **channel})
        assert made.status_code == 201, made.text


def test_a_seedance_channel_against_the_sandbox(tmp_path: Path, store: str) -> None:
    """A `seedance` channel (Bearer key, base URL …/api/v3) pointed at the sandbox's Ark API: the SDK's task
    runs through it, its video copied, its usage what the sandbox counted."""
    settings = make_settings(tmp_path, sandbox_key="ark-sandbox-key", allow_private_urls="127.0.0.0/8")
    with start_relay(settings) as front:
        _only_channel(front, base_url=settings.sandbox_ark_url, secret_key="ark-sandbox-key")
        client = client_of(front, front.key)
        created = client.content_generation.tasks.create(
            model=PRO, content=[{"type": "text", "text": "through a seedance channel --rs 480p --dur 2"}]
        )
        task = finished(client, created.id)
        assert task.status == "succeeded", task.error
        assert task.content.video_url.startswith(f"{front.url}/media/")
        video = decode_mp4(httpx.get(task.content.video_url, timeout=60).content)
        assert task.usage.completion_tokens == seedance_tokens(video.width, video.height, 24, 2)
        with front.admin() as admin:
            shown = admin.get(f"/admin/tasks/{created.id}").json()
        assert shown["channel"] == "ark" and shown["upstream_id"].startswith("cgt-")


def test_a_chain_of_two_relays_over_seedance(relay: Relay, tmp_path: Path) -> None:
    """Relay a sends Seedance tasks to relay b (the module's) over b's /api/v3 (a `seedance` channel with a
    key of b): made there, copied here; a's customer reads b's usage and is charged by it at a's rate."""
    key_at_b = relay.new_key("relay-a-ark", balance=1_000_000)
    with start_relay(make_settings(tmp_path / "a", allow_private_urls="127.0.0.0/8")) as first:
        _only_channel(
            first, base_url=f"{relay.url}/api/v3", secret_key=key_at_b, media_networks="127.0.0.0/8"
        )
        client = client_of(first, first.key)
        created = client.content_generation.tasks.create(
            model=PRO,
            content=[{"type": "text", "text": "a lighthouse, relayed twice"}],
            resolution="480p",
            duration=2,
            ratio="4:3",
        )
        task = finished(client, created.id)
        assert task.status == "succeeded", task.error
        assert task.content.video_url.startswith(f"{first.url}/media/")
        at_b = client_of(relay, key_at_b).content_generation.tasks.list().items
        assert len(at_b) == 1 and at_b[0].usage.completion_tokens == task.usage.completion_tokens
        assert task.usage.completion_tokens == seedance_tokens(736, 544, 24, 2)
        charged = token_charge(task.usage.completion_tokens, PRO_RATE)
        assert (task.model_extra or {})["credits"]["charged"] == charged
        assert (
            money(first, "demo", created.id)["release"]
            == (task.model_extra or {})["credits"]["held"] - charged
        )
