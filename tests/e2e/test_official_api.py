"""The official Dream Machine API on DreamRelay: the unchanged `lumaai` SDK, one task seen in both formats,
deletion and its money, `{"detail"}` errors, callbacks in the format the task was created with."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import lumaai
import numpy as np
import pytest
from lumaai.types import CreditGetResponse, Generation, GenerationListResponse, PingCheckResponse
from lumaai.types.generation import (
    RequestGenerationRequest,
    RequestGenerationRequestKeyframesFrame0ImageReference,
)
from PIL import Image
from pydantic import BaseModel

from dreamrelay.http.schemas.own import OwnTask
from tests.conftest import Relay, make_settings, start_relay
from tests.integration.test_luma_lifecycle import wait_for
from tests.support.media import decode_mp4, mean_abs_diff, open_jpeg, picture
from tests.support.receiver import running_receiver

Model = TypeVar("Model", bound=BaseModel)
OFFICIAL = "/dream-machine/v1"


def sdk(relay: Relay, key: str | None = None) -> lumaai.LumaAI:
    return lumaai.LumaAI(auth_token=key or relay.key, base_url=relay.url + OFFICIAL, max_retries=0)


def strict(model: type[Model], raw: Any) -> Model:
    """The SDK itself parses leniently; this validates the raw JSON against its typed model."""
    return model.model_validate(raw)


def get_strict(luma: lumaai.LumaAI, generation_id: str) -> Generation:
    raw = luma.generations.with_raw_response.get(generation_id)
    generation = raw.parse()
    assert strict(Generation, raw.http_response.json()) == generation
    return generation


def wait_generation(luma: lumaai.LumaAI, generation_id: str, timeout: float = 90) -> Generation:
    deadline = time.monotonic() + timeout
    generation = get_strict(luma, generation_id)
    while generation.state not in ("completed", "failed") and time.monotonic() < deadline:
        time.sleep(0.1)
        generation = get_strict(luma, generation_id)
    return generation


def data_uri(data: bytes, media_type: str = "image/png") -> str:
    return f"data:{media_type};base64,{base64.b64encode(data).decode()}"


@pytest.fixture
def luma(relay: Relay) -> Iterator[lumaai.LumaAI]:
    with sdk(relay) as client:
        yield client


def test_sdk_text_image_extend_list_delete_ping_credits(relay: Relay, luma: lumaai.LumaAI) -> None:
    assert luma.ping.check() == PingCheckResponse(message="pong")
    start_credits = luma.credits.get()
    assert isinstance(start_credits, CreditGetResponse) and start_credits.credit_balance == 100_000

    text = luma.generations.create(
        model="ray-2", prompt="a paper boat on a rainy street", aspect_ratio="16:9", resolution="540p"
    )
    assert text.state == "queued" and text.generation_type == "video" and text.model == "ray-2"
    assert isinstance(text.request, RequestGenerationRequest)
    assert (text.request.prompt or "").startswith("a paper")
    start_image = picture(640, 360, seed=7)
    from_image = luma.generations.create(
        model="ray-flash-2",
        prompt="the blocks drift",
        aspect_ratio="16:9",
        resolution="540p",
        keyframes={"frame0": {"type": "image", "url": data_uri(start_image)}},
    )
    assert isinstance(from_image.request, RequestGenerationRequest)
    assert from_image.request.keyframes is not None
    stored_frame = from_image.request.keyframes.frame0
    assert isinstance(stored_frame, RequestGenerationRequestKeyframesFrame0ImageReference)
    assert stored_frame.type == "image" and stored_frame.url.startswith(relay.url + "/media/inputs/")

    done_text = wait_generation(luma, text.id or "")
    done_image = wait_generation(luma, from_image.id or "")
    assert done_text.state == done_image.state == "completed"
    assert done_text.assets and done_text.assets.video and done_text.assets.image
    with httpx.Client(timeout=30) as plain:
        video = decode_mp4(plain.get(done_image.assets.video).content)  # type: ignore[union-attr,arg-type]
        open_jpeg(plain.get(done_text.assets.image).content)
    assert video.codec == "h264" and video.width == 1024  # 540p of 16:9 (1360·0.75, rounded to 16)
    # Image-to-video starts on the given picture.
    given = Image.open(io.BytesIO(start_image)).convert("RGB").resize((video.width, video.height))
    assert mean_abs_diff(video.first, np.asarray(given)) < 30

    extended = luma.generations.create(
        model="ray-2",
        prompt="and sails on",
        resolution="540p",
        keyframes={"frame0": {"type": "generation", "id": done_text.id or ""}},
    )
    assert extended.request.keyframes.frame0.id == done_text.id  # type: ignore[union-attr]
    done_extended = wait_generation(luma, extended.id or "")
    assert done_extended.state == "completed"
    with httpx.Client(timeout=30) as plain:
        parent = decode_mp4(plain.get(done_text.assets.video).content)
        child = decode_mp4(plain.get(done_extended.assets.video).content)  # type: ignore[union-attr,arg-type]
    assert mean_abs_diff(child.first, parent.last) < 12  # the continuation starts where the parent ended

    raw_list = luma.generations.with_raw_response.list(limit=2)
    page = raw_list.parse()
    assert strict(GenerationListResponse, raw_list.http_response.json()) == page
    assert [g.id for g in page.generations] == [extended.id, from_image.id]  # newest first
    assert (page.count, page.has_more, page.limit, page.offset) == (2, True, 2, 0)
    rest = luma.generations.list(limit=2, offset=2)
    assert [g.id for g in rest.generations] == [text.id] and rest.has_more is False

    spent = start_credits.credit_balance - luma.credits.get().credit_balance
    assert spent > 0
    luma.generations.delete(done_text.id or "")
    with pytest.raises(lumaai.NotFoundError):
        luma.generations.get(done_text.id or "")
    assert [g.id for g in luma.generations.list().generations] == [extended.id, from_image.id]
    # A completed task stays paid for when deleted.
    assert start_credits.credit_balance - luma.credits.get().credit_balance == spent


def test_delete_running_task_fails_it_releases_the_hold_and_hides_it(
    tmp_path: Path, store_url: str | None
) -> None:
    settings = make_settings(tmp_path, database_url=store_url, sandbox_queued_seconds=30)
    with start_relay(settings) as relay, sdk(relay) as luma:
        before = luma.credits.get().credit_balance
        running = luma.generations.create(model="ray-2", prompt="never mind", resolution="540p")
        held = before - luma.credits.get().credit_balance
        assert held > 0
        luma.generations.delete(running.id or "")
        assert luma.credits.get().credit_balance == before
        with pytest.raises(lumaai.NotFoundError):
            luma.generations.get(running.id or "")
        with pytest.raises(lumaai.NotFoundError):
            luma.generations.delete(running.id or "")
        with relay.client() as client:
            assert client.get(f"/luma/generations/{running.id}").status_code == 404
            assert client.post("/luma/tasks", json={"ids": [running.id]}).json() == []
        with relay.admin() as admin:
            ledger = admin.get("/admin/ledger", params={"task_id": running.id}).json()
        kinds = sorted((row["kind"], row["amount"]) for row in ledger)
        assert kinds == [("hold", -held), ("release", held)]
        assert "deleted by the customer" in next(r["note"] for r in ledger if r["kind"] == "release")


def test_one_task_two_formats_agree(relay: Relay, luma: lumaai.LumaAI) -> None:
    with relay.client() as client:
        own = client.post("/luma/generations", json={"user_prompt": "a fox in snow", "resolution": "540p"})
        assert own.status_code == 200
        own_id = own.json()["id"]
        first_seen = get_strict(luma, own_id)
        assert first_seen.state in ("queued", "dreaming", "completed")
        official = luma.generations.create(model="ray-flash-2", prompt="an owl at dusk", resolution="540p")

        for task_id in (own_id, official.id or ""):
            own_done = wait_for(client, task_id, {"completed"})
            OwnTask.model_validate(own_done)  # what /openapi.json documents
            generation = get_strict(luma, task_id)
            assert generation.state == own_done["state"] == "completed"
            assert generation.assets is not None
            assert generation.assets.video == own_done["video"]["url"] == own_done["video_raw"]["url"]
            assert generation.assets.image == own_done["thumbnail"]["url"]
            assert generation.created_at is not None
            assert (
                generation.created_at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
                == (own_done["created_at"])
            )
            assert own_done["request"]["prompt"] == generation.request.prompt  # type: ignore[union-attr]
        batch = client.post("/luma/tasks", json={"ids": [own_id, official.id]}).json()
        assert [t["id"] for t in batch] == [own_id, official.id]
        assert get_strict(luma, own_id).model == "ray-2"  # own ray-v2 shown by its official name


def test_errors_are_detail_objects_with_official_statuses(relay: Relay, luma: lumaai.LumaAI) -> None:
    with pytest.raises(lumaai.AuthenticationError) as unauthorised:
        sdk(relay, key="dr-not-a-key").ping.check()
    assert isinstance(unauthorised.value.body, dict) and set(unauthorised.value.body) == {"detail"}
    with pytest.raises(lumaai.NotFoundError) as missing:
        luma.generations.get("00000000-0000-0000-0000-000000000000")
    assert isinstance(missing.value.body["detail"], str)  # type: ignore[index]
    with pytest.raises(lumaai.BadRequestError) as unknown_parent:
        luma.generations.create(
            model="ray-2", prompt="x", keyframes={"frame0": {"type": "generation", "id": "nope"}}
        )
    assert "not found" in unknown_parent.value.body["detail"]  # type: ignore[index]

    stranger = relay.new_key("stranger", balance=10_000)
    with relay.client() as client:
        mine = client.post("/luma/generations", json={"user_prompt": "mine", "resolution": "540p"}).json()
        with httpx.Client(base_url=relay.url + OFFICIAL, timeout=30) as raw:
            auth = {"Authorization": f"Bearer {relay.key}"}
            cases = [
                raw.post(
                    "/generations",
                    json={"model": "ray-2", "aspect_ratio": "2:1", "prompt": "x"},
                    headers=auth,
                ),
                raw.post("/generations/video", json={"model": "ray-2"}, headers=auth),
                raw.post("/generations", content=b"{not json", headers=auth),
                raw.post(
                    "/generations", json={"model": "ray-1-6", "prompt": "x", "duration": "9s"}, headers=auth
                ),
                raw.post(
                    "/generations",
                    json={"model": "ray-2", "prompt": "x", "concepts": [{"key": "pan"}]},
                    headers=auth,
                ),
                raw.get("/generations", params={"limit": 0}, headers=auth),
            ]
            for response in cases:
                assert response.status_code == 400, response.text
                assert set(response.json()) == {"detail"} and isinstance(response.json()["detail"], str)
            foreign = raw.get(f"/generations/{mine['id']}", headers={"Authorization": f"Bearer {stranger}"})
            assert foreign.status_code == 404 and set(foreign.json()) == {"detail"}
            assert raw.get("/credits").status_code == 401
            with sdk(relay, key=stranger) as other:
                assert other.generations.list().generations == []
                assert other.credits.get().credit_balance == 10_000


def test_callbacks_of_official_tasks_post_generations(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, allow_private_urls="127.0.0.0/8", callback_retry_base_seconds=0.05)
    with running_receiver() as receiver, start_relay(settings) as relay, sdk(relay) as luma:
        created = luma.generations.create(
            model="ray-2", prompt="a kite", resolution="540p", callback_url=f"{receiver.url}/hook"
        )
        done = wait_generation(luma, created.id or "")
        received = receiver.wait_for(1)
        while json.loads(received[-1].body)["state"] != "completed":
            received = receiver.wait_for(len(received) + 1)
        last = get_strict(luma, created.id or "")
    payloads = [json.loads(r.body) for r in received]
    # One POST per state change seen, as the official API: dreaming (if seen), completed.
    assert [p["state"] for p in payloads] in (["dreaming", "completed"], ["completed"])
    assert strict(Generation, payloads[-1]) == last == done


def test_reverse_extend_and_interpolate_by_generation_keyframes(relay: Relay, luma: lumaai.LumaAI) -> None:
    first = luma.generations.create(model="ray-2", prompt="dawn over a harbour", resolution="540p")
    second = luma.generations.create(model="ray-2", prompt="dusk over a harbour", resolution="540p")
    a, b = wait_generation(luma, first.id or ""), wait_generation(luma, second.id or "")
    reverse = luma.generations.create(
        model="ray-2",
        prompt="what came before",
        resolution="540p",
        keyframes={"frame1": {"type": "generation", "id": b.id or ""}},
    )
    between = luma.generations.create(
        model="ray-2",
        prompt="the day passes",
        resolution="540p",
        keyframes={
            "frame0": {"type": "generation", "id": a.id or ""},
            "frame1": {"type": "generation", "id": b.id or ""},
        },
    )
    assert between.request.keyframes.frame1.id == b.id  # type: ignore[union-attr]
    done_reverse, done_between = (
        wait_generation(luma, reverse.id or ""),
        wait_generation(luma, between.id or ""),
    )
    with httpx.Client(timeout=30) as plain:
        video_a, video_b, video_reverse, video_between = (
            decode_mp4(plain.get(g.assets.video).content)  # type: ignore[union-attr,arg-type]
            for g in (a, b, done_reverse, done_between)
        )
    assert mean_abs_diff(video_reverse.last, video_b.first) < 12  # leads into b
    assert mean_abs_diff(video_between.first, video_a.last) < 12  # continues a ...
    assert mean_abs_diff(video_between.last, video_b.first) < 12  # ... and arrives at b
    with relay.client() as client:  # the own format sees them as ordinary tasks
        assert wait_for(client, between.id or "", {"completed"})["request"]["prompt"] == "the day passes"


def test_the_async_client_works_too(relay: Relay, luma: lumaai.LumaAI) -> None:
    created = luma.generations.create(model="ray-2", prompt="a lantern", resolution="540p")

    async def use() -> tuple[PingCheckResponse, GenerationListResponse, Generation]:
        async with lumaai.AsyncLumaAI(auth_token=relay.key, base_url=relay.url + OFFICIAL) as client:
            return (
                await client.ping.check(),
                await client.generations.list(limit=1),
                await client.generations.get(created.id or ""),
            )

    pong, page, fetched = asyncio.run(use())
    assert pong.message == "pong" and [g.id for g in page.generations] == [created.id]
    assert fetched.id == created.id and fetched.state in ("queued", "dreaming", "completed")
