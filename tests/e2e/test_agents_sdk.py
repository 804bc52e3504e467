"""The unchanged `luma-agents` SDK (0.5.0) against DreamRelay's /agents/v1, the sandbox behind it.

The SDK is configured only the way its README says: LUMA_BASE_URL and LUMA_AGENTS_API_KEY.
Drafts (360p) keep the renders fast wherever the point is not the resolution.
"""
# The SDK types its parameters as TypedDicts; the tests pass the same shapes as plain dicts.
# mypy: disable-error-code="arg-type,list-item"

from __future__ import annotations

import base64
import io
import time
from collections.abc import Iterator

import httpx
import luma_agents
import numpy as np
import pytest
from luma_agents.types import CreateFileResponse, File, Generation
from PIL import Image

from tests.conftest import Relay
from tests.support.media import DecodedVideo, decode_mp4, mean_abs_diff, picture

DRAFT = {"resolution": "360p"}
PNG = picture(640, 360, seed=5)


def sdk(relay: Relay, monkeypatch: pytest.MonkeyPatch, key: str | None = None) -> luma_agents.Luma:
    monkeypatch.setenv("LUMA_BASE_URL", relay.url + "/agents/v1")
    monkeypatch.setenv("LUMA_AGENTS_API_KEY", key or relay.key)
    return luma_agents.Luma(max_retries=0)


@pytest.fixture
def luma(relay: Relay, monkeypatch: pytest.MonkeyPatch) -> Iterator[luma_agents.Luma]:
    with sdk(relay, monkeypatch) as client:
        yield client


def finish(luma: luma_agents.Luma, created: Generation, timeout: float = 90) -> Generation:
    assert created.state == "queued"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        generation = luma.generations.get(created.id)
        if generation.state in ("completed", "failed"):
            assert generation.state == "completed", generation
            assert generation.output and generation.output[0].url.startswith("http")
            return generation
        time.sleep(0.1)
    raise AssertionError(f"generation {created.id} did not finish")


def video_of(generation: Generation) -> DecodedVideo:
    assert generation.output is not None and generation.output[0].type == "video"
    response = httpx.get(generation.output[0].url, timeout=30)
    assert response.status_code == 200 and response.headers["content-type"] == "video/mp4"
    return decode_mp4(response.content)


def image_of(generation: Generation) -> tuple[bytes, Image.Image]:
    assert generation.output is not None and generation.output[0].type == "image"
    data = httpx.get(generation.output[0].url, timeout=30).content
    return data, Image.open(io.BytesIO(data))


def as_data(image: bytes) -> dict[str, str]:
    return {"data": base64.b64encode(image).decode(), "media_type": "image/png"}


def rgb(image: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(image)).convert("RGB"))


def test_text_to_video_5s_and_10s(relay: Relay, luma: luma_agents.Luma) -> None:
    raw = luma.generations.with_raw_response.create(
        prompt="a kite", type="video", model="ray-3.2", video=DRAFT
    )
    assert raw.status_code == 201 and raw.headers["x-api-version"] == "2026-04-01"
    five = finish(luma, raw.parse())
    assert (five.model, five.type, five.failure_code) == ("ray-3.2", "video", None)
    clip = video_of(five)
    assert (clip.codec, clip.width, clip.height, clip.frames) == ("h264", 640, 360, 121)
    ten = finish(
        luma,
        luma.generations.create(
            prompt="a kite", type="video", aspect_ratio="9:16", video={**DRAFT, "duration": "10s"}
        ),
    )
    clip = video_of(ten)
    assert (clip.width, clip.height, clip.frames) == (360, 640, 241)
    assert clip.duration == pytest.approx(241 / 24, abs=0.05)


def test_image_to_video_by_start_frame_and_by_keyframes(luma: luma_agents.Luma) -> None:
    by_start = finish(
        luma, luma.generations.create(prompt="go", type="video", video={**DRAFT, "start_frame": as_data(PNG)})
    )
    assert mean_abs_diff(video_of(by_start).first, rgb(PNG)) < 12
    ending = picture(640, 360, seed=9)
    by_keys = finish(
        luma,
        luma.generations.create(
            prompt="go",
            type="video",
            video={**DRAFT, "keyframes": [as_data(PNG), as_data(ending)], "keyframe_indexes": [0, 120]},
        ),
    )
    clip = video_of(by_keys)
    assert mean_abs_diff(clip.first, rgb(PNG)) < 12
    assert mean_abs_diff(clip.last, rgb(ending)) < 12


def test_extension_edit_and_reframe_chain_by_generation_id(luma: luma_agents.Luma) -> None:
    source = finish(luma, luma.generations.create(prompt="a red boat", type="video", video=DRAFT))
    first = video_of(source)
    extended = finish(
        luma,
        luma.generations.create(
            prompt="further", type="video", video={**DRAFT, "start_frame": {"generation_id": source.id}}
        ),
    )
    assert mean_abs_diff(video_of(extended).first, first.last) < 12
    edited = finish(
        luma,
        luma.generations.create(
            prompt="make it blue",
            type="video_edit",
            source={"generation_id": source.id},
            video={"resolution": "360p", "edit": {"strength": "adhere_1"}},
        ),
    )
    edit = video_of(edited)
    assert (edit.width, edit.height, edit.frames) == (640, 360, 121)
    assert mean_abs_diff(edit.first, first.first) < 30
    reframed = finish(
        luma,
        luma.generations.create(
            prompt="taller",
            type="video_reframe",
            aspect_ratio="9:16",
            source={"generation_id": source.id},
            video={"resolution": "360p"},
        ),
    )
    frame = video_of(reframed)
    assert (frame.codec, frame.width, frame.height, frame.frames) == ("h264", 360, 640, 121)


def test_image_and_image_edit_with_image_ref(luma: luma_agents.Luma) -> None:
    made = finish(
        luma,
        luma.generations.create(prompt="a fox", type="image", aspect_ratio="16:9", image_ref=[as_data(PNG)]),
    )
    data, image = image_of(made)
    assert (made.model, data[:8], image.size) == ("uni-1", b"\x89PNG\r\n\x1a\n", (1360, 768))
    edited = finish(
        luma,
        luma.generations.create(
            prompt="a fox at night",
            type="image_edit",
            output_format="jpeg",
            source={"generation_id": made.id},
            image_ref=[as_data(picture(64, 64, seed=2))],
        ),
    )
    data, image = image_of(edited)
    assert (data[:3], image.format, image.size) == (b"\xff\xd8\xff", "JPEG", (1360, 768))


def test_files_both_ways_list_get_delete_and_use(luma: luma_agents.Luma) -> None:
    # Inline: 0.5.0's files.create has no `file` argument, so the SDK's own client sends the multipart.
    inline = luma.post(
        "/files",
        body={"purpose": "input"},
        files=[("file", ("start.png", PNG, "image/png"))],
        options={"headers": {"Content-Type": "multipart/form-data"}},
        cast_to=CreateFileResponse,
    )
    assert (inline.state, inline.file.mime_type, inline.file.size_bytes) == ("ready", "image/png", len(PNG))
    assert (inline.upload, inline.file.filename) == (None, "start.png")
    jpeg = picture(640, 360, seed=7, fmt="JPEG")
    presigned = luma.files.create(
        mime_type="image/jpeg", size_bytes=len(jpeg), filename="b.jpg", user_id="u-1"
    )
    assert presigned.state == "pending" and presigned.upload is not None and presigned.upload.method == "PUT"
    put = httpx.put(presigned.upload.url, content=jpeg, headers=presigned.upload.headers or {})
    assert put.status_code == 200
    completed = luma.files.complete(presigned.id)
    assert (completed.state, completed.user_id, completed.filename) == ("ready", "u-1", "b.jpg")
    first_page = luma.files.list(limit=1)
    assert [f.id for f in first_page.data] == [presigned.id] and first_page.has_more
    second_page = luma.files.list(limit=1, cursor=first_page.next_cursor or "")
    assert [f.id for f in second_page.data] == [inline.id] and not second_page.has_more
    assert isinstance(luma.files.get(inline.id), File)
    clip = finish(
        luma,
        luma.generations.create(
            prompt="go", type="video", video={**DRAFT, "start_frame": {"file_id": inline.id}}
        ),
    )
    assert mean_abs_diff(video_of(clip).first, rgb(PNG)) < 12
    picture_made = finish(
        luma, luma.generations.create(prompt="x", type="image_edit", source={"file_id": presigned.id})
    )
    assert image_of(picture_made)[1].size == (1360, 768)
    luma.files.delete(presigned.id)
    assert luma.files.get(presigned.id).state == "deleted"
    assert [f.id for f in luma.files.list().data] == [inline.id]
    with pytest.raises(luma_agents.NotFoundError):
        luma.generations.create(prompt="x", type="image_edit", source={"file_id": presigned.id})


def test_files_are_checked_by_content_and_bounded(luma: luma_agents.Luma) -> None:
    with pytest.raises(luma_agents.BadRequestError):
        luma.post(
            "/files",
            body={},
            files=[("file", ("a.png", b"not an image at all", "image/png"))],
            options={"headers": {"Content-Type": "multipart/form-data"}},
            cast_to=CreateFileResponse,
        )
    with pytest.raises(luma_agents.APIStatusError) as too_big:
        luma.files.create(mime_type="image/png", size_bytes=10**9)
    assert too_big.value.status_code == 413
    with pytest.raises(luma_agents.BadRequestError):
        luma.files.create(mime_type="application/pdf", size_bytes=10)
    lying = luma.files.create(mime_type="image/png", size_bytes=len(PNG))
    assert lying.upload is not None
    jpeg_of_same_size = picture(640, 360, seed=1, fmt="JPEG")[: len(PNG)]
    httpx.put(lying.upload.url, content=jpeg_of_same_size.ljust(len(PNG), b"\0"))
    failed = luma.files.complete(lying.id)
    assert failed.state == "failed" and failed.failure_reason
    assert httpx.put(lying.upload.url, content=PNG).status_code == 404  # the upload URL is spent


def test_every_error_status_maps_to_its_sdk_exception(
    relay: Relay, luma: luma_agents.Luma, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(luma_agents.BadRequestError) as bad:
        luma.generations.create(prompt="x", type="video", model="uni-1")
    assert bad.value.status_code == 400 and "detail" in bad.value.body  # type: ignore[operator]
    with pytest.raises(luma_agents.UnprocessableEntityError):
        luma.generations.create(prompt="x", type="video", video={"loop": True, "duration": "10s"})
    with pytest.raises(luma_agents.NotFoundError):
        luma.generations.get("00000000-0000-0000-0000-000000000000")
    stalled = luma.generations.create(prompt="slow [sandbox:stall]", type="video", video=DRAFT)
    with pytest.raises(luma_agents.ConflictError):
        luma.generations.create(prompt="x", type="video_edit", source={"generation_id": stalled.id})
    with pytest.raises(luma_agents.InternalServerError) as unavailable:
        luma.generations.create(prompt="x [sandbox:error]", type="image")
    assert unavailable.value.status_code == 503
    with sdk(relay, monkeypatch, key="dr-wrong") as stranger, pytest.raises(luma_agents.AuthenticationError):
        stranger.generations.get(stalled.id)
    limited = relay.new_key("limited", balance=1000, allowed_models=["uni-1"], max_in_flight=1)
    with sdk(relay, monkeypatch, key=limited) as client:
        with pytest.raises(luma_agents.PermissionDeniedError):
            client.generations.create(prompt="x", type="video")
        client.generations.create(prompt="slow [sandbox:stall]", type="image")
        with pytest.raises(luma_agents.RateLimitError):
            client.generations.create(prompt="x", type="image")
    broke = relay.new_key("broke")
    with sdk(relay, monkeypatch, key=broke) as client, pytest.raises(luma_agents.APIStatusError) as payment:
        client.generations.create(prompt="x", type="image")
    assert payment.value.status_code == 402


def test_foreign_generation_and_file_ids_are_refused(
    relay: Relay, luma: luma_agents.Luma, monkeypatch: pytest.MonkeyPatch
) -> None:
    mine = finish(luma, luma.generations.create(prompt="mine", type="image"))
    upload = luma.files.create(mime_type="image/png", size_bytes=len(PNG))
    assert upload.upload is not None
    httpx.put(upload.upload.url, content=PNG)
    luma.files.complete(upload.id)
    other = relay.new_key("other", balance=1000)
    with sdk(relay, monkeypatch, key=other) as stranger:
        for call in (
            lambda: stranger.generations.get(mine.id),
            lambda: stranger.generations.create(
                prompt="x", type="image_edit", source={"generation_id": mine.id}
            ),
            lambda: stranger.generations.create(prompt="x", type="image_edit", source={"file_id": upload.id}),
            lambda: stranger.files.get(upload.id),
            lambda: stranger.files.delete(upload.id),
        ):
            with pytest.raises(luma_agents.NotFoundError):
                call()
        assert stranger.files.list().data == []
    assert luma.files.get(upload.id).state == "ready"
