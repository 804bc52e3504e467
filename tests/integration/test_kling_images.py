"""Kling image generation: every limit of the seed's table at its edge, n real images, priced per image."""

from __future__ import annotations

import base64
import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from dreamrelay.http.schemas.kling import KlingEnvelope
from tests.conftest import Relay, make_settings, start_relay
from tests.support.live_server import live_server
from tests.support.media import mean_abs_diff, open_jpeg, picture
from tests.support.receiver import running_receiver

PATH = "/kling/v1/images/generations"
TEN_MB = 10 * 1024 * 1024
IMAGE_PRICE = 5  # credits per image (migration 0005)


def padded_png(size: int) -> bytes:
    """A valid PNG of exactly `size` bytes (bytes after IEND are ignored by decoders)."""
    data = picture(64, 64, seed=3)
    return data + b"\0" * (size - len(data))


def gif() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 32), (200, 30, 30)).save(out, format="GIF")
    return out.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class ImageServer:
    """Serves one JPEG at /ref.jpg, like a customer's CDN."""

    def __init__(self, body: bytes) -> None:
        self.body = body

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        head = [(b"content-type", b"image/jpeg"), (b"content-length", str(len(self.body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": head})
        await send({"type": "http.response.body", "body": self.body})


@pytest.fixture
def kling_relay(tmp_path: Path) -> Iterator[Relay]:
    with start_relay(make_settings(tmp_path, allow_private_urls="127.0.0.0/8")) as relay:
        yield relay


def wait_done(client: httpx.Client, task_id: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        answer = client.get(f"{PATH}/{task_id}")
        assert answer.status_code == 200, answer.text
        data = KlingEnvelope.model_validate(answer.json()).data.model_dump()  # as /openapi.json documents
        if data["task_status"] in ("succeed", "failed") or time.monotonic() > deadline:
            return data
        time.sleep(0.1)


def balance(client: httpx.Client) -> int:
    return int(client.get("/account").json()["balance"])


def test_each_limit_at_its_edge(kling_relay: Relay) -> None:
    key = kling_relay.new_key("edges", balance=1_000_000, rpm=10_000, max_in_flight=1_000)
    good = picture(64, 64, seed=5, fmt="JPEG")
    with live_server(ImageServer(good)) as cdn:
        cases: list[tuple[str, dict[str, Any], int]] = [
            ("prompt of 500 characters", {"prompt": "p" * 500}, 200),
            ("prompt of 501 characters", {"prompt": "p" * 501}, 400),
            ("empty prompt", {"prompt": ""}, 400),
            ("no prompt", {"n": 1}, 400),
            ("negative_prompt of 200", {"prompt": "x", "negative_prompt": "n" * 200}, 200),
            ("negative_prompt of 201", {"prompt": "x", "negative_prompt": "n" * 201}, 400),
            ("n = 0", {"prompt": "x", "n": 0}, 400),
            ("n = 1", {"prompt": "x", "n": 1}, 200),
            ("n = 9", {"prompt": "x", "n": 9}, 200),
            ("n = 10", {"prompt": "x", "n": 10}, 400),
            ("n = 2.5", {"prompt": "x", "n": 2.5}, 400),
            ("fidelity -0.01", {"prompt": "x", "image": b64(good), "image_fidelity": -0.01}, 400),
            ("fidelity 0", {"prompt": "x", "image": b64(good), "image_fidelity": 0}, 200),
            ("fidelity 1", {"prompt": "x", "image": b64(good), "image_fidelity": 1}, 200),
            ("fidelity 1.01", {"prompt": "x", "image": b64(good), "image_fidelity": 1.01}, 400),
            ("image of 10 MB", {"prompt": "x", "image": b64(padded_png(TEN_MB))}, 200),
            ("image of 10 MB + 1", {"prompt": "x", "image": b64(padded_png(TEN_MB + 1))}, 400),
            ("a GIF", {"prompt": "x", "image": b64(gif())}, 400),
            ("not base64", {"prompt": "x", "image": "%%%"}, 400),
            ("image URL", {"prompt": "x", "image": f"{cdn}/ref.jpg"}, 200),
            ("data URI", {"prompt": "x", "image": "data:image/jpeg;base64," + b64(good)}, 200),
            ("model kling-image", {"prompt": "x", "model": "kling-image"}, 200),
            ("another model", {"prompt": "x", "model": "kling-v9"}, 400),
            ("ratio 21:9", {"prompt": "x", "aspect_ratio": "21:9"}, 400),
            *[
                (f"ratio {ratio}", {"prompt": "x", "aspect_ratio": ratio}, 200)
                for ratio in ("16:9", "9:16", "1:1", "4:3", "3:4", "3:2", "2:3")
            ],
        ]
        with kling_relay.client(key) as client:
            start = balance(client)
            outcome = {name: client.post(PATH, json=body) for name, body, _ in cases}
            charged = sum(body.get("n", 1) for name, body, status in cases if status == 200) * IMAGE_PRICE
            after = balance(client)
    wrong = {
        name: outcome[name].status_code for name, _, status in cases if outcome[name].status_code != status
    }
    assert wrong == {}
    for name, _, status in cases:
        answer = outcome[name].json()
        if status == 400:
            assert answer["error"]["code"] == "invalid_request", name
        else:
            assert list(answer) == ["code", "message", "request_id", "data"], name
            assert answer["code"] == 0 and answer["data"]["task_status"] == "submitted", name
    assert start - after == charged  # refused requests charge nothing


def test_n_images_delivered_priced_per_image_and_follow_the_reference(kling_relay: Relay) -> None:
    reference = picture(900, 600, seed=11, fmt="JPEG")
    with kling_relay.client() as client:
        before = balance(client)
        plain = client.post(PATH, json={"prompt": "a lantern at night", "n": 3, "aspect_ratio": "3:2"}).json()
        guided = client.post(
            PATH,
            json={
                "prompt": "a lantern at night",
                "image": b64(reference),
                "image_fidelity": 1,
                "aspect_ratio": "3:2",
            },
        ).json()
        assert before - balance(client) == 4 * IMAGE_PRICE  # held at submit
        done = wait_done(client, plain["data"]["task_id"])
        done_guided = wait_done(client, guided["data"]["task_id"])
        pictures = [
            open_jpeg(httpx.get(image["url"], timeout=30).content) for image in done["task_result"]["images"]
        ]
        guided_picture = open_jpeg(
            httpx.get(done_guided["task_result"]["images"][0]["url"], timeout=30).content
        )
        # A Kling task is not a Luma task, and the other way round.
        assert client.get(f"/luma/generations/{plain['data']['task_id']}").status_code == 404
        assert client.get(f"/dream-machine/v1/generations/{plain['data']['task_id']}").status_code == 404
        video = client.post("/luma/generations", json={"user_prompt": "v", "resolution": "540p"}).json()
        assert client.get(f"{PATH}/{video['id']}").status_code == 404
        assert client.post("/luma/tasks", json={"ids": [plain["data"]["task_id"]]}).json() == []
        paid = before - balance(client)
        with kling_relay.admin() as admin:
            ledger = admin.get("/admin/ledger", params={"task_id": plain["data"]["task_id"]}).json()

    assert done["task_status"] == "succeed" and done["task_status_msg"] == ""
    assert [image["index"] for image in done["task_result"]["images"]] == [0, 1, 2]
    assert all(
        image["url"].startswith(kling_relay.url + "/media/tasks/") for image in done["task_result"]["images"]
    )
    assert {p.size for p in pictures} == {(1248, 832)} and guided_picture.size == (1248, 832)
    arrays = [np.asarray(p.convert("RGB")) for p in pictures]
    assert mean_abs_diff(arrays[0], arrays[1]) > 5  # n different pictures
    fitted = Image.open(io.BytesIO(reference)).convert("RGB").resize((1248, 832))
    assert mean_abs_diff(np.asarray(guided_picture.convert("RGB")), np.asarray(fitted)) < 15
    assert mean_abs_diff(arrays[0], np.asarray(fitted)) > 30
    assert done["updated_at"] >= done["created_at"] > 1_700_000_000_000
    assert sorted(row["kind"] for row in ledger) == ["capture", "hold"]
    assert next(r["amount"] for r in ledger if r["kind"] == "hold") == -3 * IMAGE_PRICE
    assert paid > 4 * IMAGE_PRICE  # the images and the video


def test_failed_image_task_is_refunded(kling_relay: Relay) -> None:
    with kling_relay.client() as client:
        before = balance(client)
        created = client.post(PATH, json={"prompt": "doomed [sandbox:fail]", "n": 2}).json()
        done = wait_done(client, created["data"]["task_id"])
        assert balance(client) == before
        refused = client.post(PATH, json={"prompt": "no [sandbox:reject]"})
    assert done["task_status"] == "failed"
    assert done["task_status_msg"] == "the upstream could not complete this task"  # never upstream's words
    assert done["task_result"] == {"images": []}
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "invalid_request"


def test_callbacks_post_the_kling_envelope(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, allow_private_urls="127.0.0.0/8", callback_retry_base_seconds=0.05)
    with running_receiver() as receiver, start_relay(settings) as relay, relay.client() as client:
        created = client.post(PATH, json={"prompt": "a kite", "n": 2, "callback_url": f"{receiver.url}/k"})
        task_id = created.json()["data"]["task_id"]
        done = wait_done(client, task_id)
        received = receiver.wait_for(1)
        while KlingEnvelope.model_validate_json(received[-1].body).data.task_status != "succeed":
            received = receiver.wait_for(len(received) + 1)
        unknown = client.get(f"{PATH}/00000000-0000-0000-0000-000000000000")
    bodies = [KlingEnvelope.model_validate_json(r.body) for r in received]
    # One POST per state change seen (the worker may see submitted → succeed in one poll).
    assert [b.data.task_status for b in bodies] in (["processing", "succeed"], ["succeed"])
    assert bodies[-1].data.model_dump() == done and bodies[-1].data.task_id == task_id
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "task_not_found"
