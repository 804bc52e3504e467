"""Issue 12 items 3 and 4: images are checked for money and limits before anything is fetched or
decoded, their decoded size is bounded, and a refused submit leaves no file behind (orphans are swept).

An image server on loopback counts every request, so "never fetched" is visible; the relay lets loopback
image URLs through (allow_private_urls) so that only the money and limit checks can stop a fetch.
"""

from __future__ import annotations

import asyncio
import base64
import io
import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from dreamrelay.runtime import Runtime
from dreamrelay.services.orphans import sweep_inputs
from tests.conftest import Relay, make_settings, relays_by_store, start_relay
from tests.support.media import picture
from tests.support.upstreams import running

pytestmark = pytest.mark.both_stores


class ImageServer:
    """Serves one PNG at any path and counts the requests."""

    def __init__(self, png: bytes) -> None:
        self.png = png
        self.hits = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                await send({"type": message["type"] + ".complete"})
                if message["type"] == "lifespan.shutdown":
                    return
        self.hits += 1
        headers = [(b"content-type", b"image/png"), (b"content-length", str(len(self.png)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": self.png})


def flat_png(side: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (side, side), (200, 40, 40)).save(buffer, "PNG", optimize=True)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def huge() -> bytes:
    return flat_png(7000)  # ≈ 143 kB on the wire, 49 megapixels decoded


@pytest.fixture
def images() -> Iterator[tuple[str, ImageServer]]:
    server = ImageServer(picture(640, 360, seed=2))
    with running(server) as url:
        yield url, server


@pytest.fixture(scope="module")
def relays(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], Relay]]:
    data_dir = tmp_path_factory.mktemp("intake")
    with relays_by_store(data_dir, allow_private_urls="127.0.0.0/8", sandbox_queued_seconds=600) as relay_for:
        yield relay_for


@pytest.fixture
def relay(relays: Callable[[str], Relay], store: str) -> Relay:
    """The module's relay on this test's store."""
    return relays(store)


def inputs(relay: Relay) -> list[str]:
    folder = relay.settings.data_dir / "media" / "inputs"
    return sorted(p.name for p in folder.glob("*")) if folder.exists() else []


def data_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode()


def message_of(answer: Any) -> str:
    body = answer.json()
    return str(body["detail"] if "detail" in body else body["error"]["message"])


def image_bodies(image: str) -> list[tuple[str, dict[str, Any], str]]:
    """(path, body, field) of every way a customer sends an image."""
    return [
        ("/luma/generations", {"user_prompt": "x", "resolution": "540p", "image_url": image}, "image_url"),
        (
            "/luma/generations",
            {"user_prompt": "x", "resolution": "540p", "image_end_url": image},
            "image_end_url",
        ),
        (
            "/dream-machine/v1/generations",
            {"prompt": "x", "resolution": "540p", "keyframes": {"frame0": {"type": "image", "url": image}}},
            "keyframes.frame0.url",
        ),
        ("/kling/v1/images/generations", {"prompt": "x", "image": image}, "image"),
    ]


def test_an_image_larger_than_any_upstream_takes_is_a_clear_400(relay: Relay, huge: bytes) -> None:
    key = relay.new_key(f"big-{uuid.uuid4().hex[:6]}", balance=10_000)
    before = inputs(relay)
    with relay.client(key) as client:
        for path, body, field_name in image_bodies(data_uri(huge)):
            answer = client.post(path, json=body)
            assert answer.status_code == 400, (path, answer.text)
            message = message_of(answer)
            assert message.startswith(field_name) and "7000×7000 pixels" in message and "4096" in message
        assert client.get("/account").json()["balance"] == 10_000
    assert inputs(relay) == before


def test_the_largest_accepted_image_is_taken(relay: Relay) -> None:
    key = relay.new_key(f"edge-{uuid.uuid4().hex[:6]}", balance=10_000)
    with relay.client(key) as client:
        answer = client.post(
            "/luma/generations",
            json={"user_prompt": "x", "resolution": "540p", "image_url": data_uri(flat_png(4096))},
        )
    assert answer.status_code == 200, answer.text


def test_no_money_or_no_room_is_refused_before_any_fetch(
    relay: Relay, images: tuple[str, ImageServer]
) -> None:
    url, server = images
    broke = relay.new_key(f"broke-{uuid.uuid4().hex[:6]}", balance=0)
    capped = relay.new_key(f"capped-{uuid.uuid4().hex[:6]}", balance=10_000, spend_cap=1)
    before = inputs(relay)
    for key, status in ((broke, 402), (capped, 403)):
        with relay.client(key) as client:
            for path, body, field_name in image_bodies(f"{url}/cat.png"):
                answer = client.post(path, json=body)
                assert answer.status_code == status, (path, field_name, answer.text)
    busy = relay.new_key(f"busy-{uuid.uuid4().hex[:6]}", balance=10_000, max_in_flight=1)
    with relay.client(busy) as client:
        first = client.post("/luma/generations", json={"user_prompt": "stays queued", "resolution": "540p"})
        assert first.status_code == 200, first.text
        for path, body, _field in image_bodies(f"{url}/cat.png"):
            assert client.post(path, json=body).status_code == 429, path
    assert server.hits == 0
    assert inputs(relay) == before  # item 4: a refused submit stores nothing


def test_an_accepted_submit_fetches_and_keeps_its_image(
    relay: Relay, images: tuple[str, ImageServer]
) -> None:
    """The control for the test above: with money and room the same request fetches once and stores it."""
    url, server = images
    key = relay.new_key(f"rich-{uuid.uuid4().hex[:6]}", balance=10_000)
    before = set(inputs(relay))
    with relay.client(key) as client:
        answer = client.post(
            "/luma/generations", json={"user_prompt": "x", "resolution": "540p", "image_url": f"{url}/c.png"}
        )
    assert answer.status_code == 200, answer.text
    assert server.hits == 1
    added = set(inputs(relay)) - before
    assert len(added) == 1 and next(iter(added)).startswith(answer.json()["id"] + "-")


def test_orphaned_inputs_are_swept_and_kept_ones_stay(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path, sandbox_queued_seconds=600, input_sweep_seconds=0.2, input_grace_seconds=60
    )
    with start_relay(settings) as relay:
        with relay.client() as client:
            kept = client.post(
                "/luma/generations",
                json={"user_prompt": "x", "resolution": "540p", "image_url": data_uri(picture(64, 64))},
            )
        assert kept.status_code == 200, kept.text
        folder = tmp_path / "media" / "inputs"
        (kept_file,) = folder.glob(f"{kept.json()['id']}-*")
        orphan = folder / f"{uuid.uuid4()}-0.png"
        fresh = folder / f"{uuid.uuid4()}-0.png"
        legacy = folder / f"{uuid.uuid4()}.png"
        for path in (orphan, fresh, legacy):
            path.write_bytes(picture(8, 8))
        long_ago = time.time() - 3600
        for path in (orphan, legacy, kept_file):
            os.utime(path, (long_ago, long_ago))
        deadline = time.monotonic() + 20
        while orphan.exists():
            assert time.monotonic() < deadline, "the worker never swept the orphan"
            time.sleep(0.1)
        assert kept_file.exists() and fresh.exists() and legacy.exists()


def test_the_sweep_on_its_own(tmp_path: Path) -> None:
    """One sweep: counts what it removed; nothing younger than the grace period goes."""
    settings = make_settings(tmp_path)

    async def sweep(grace: float) -> int:
        async with Runtime.from_settings(settings) as rt:
            return await sweep_inputs(rt, grace_seconds=grace)

    with start_relay(settings):
        pass  # migrated and seeded
    folder = tmp_path / "media" / "inputs"
    folder.mkdir(parents=True, exist_ok=True)
    for _ in range(3):
        (folder / f"{uuid.uuid4()}-0.jpg").write_bytes(b"x")
    assert asyncio.run(sweep(3600)) == 0
    assert asyncio.run(sweep(0)) == 3
    assert list(folder.glob("*")) == []
