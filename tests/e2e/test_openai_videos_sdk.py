"""The OpenAI Videos API (/v1/videos) through the unchanged `openai` Python SDK, on both stores: create
(multipart and JSON), create_and_poll, retrieve, list across pages, download the video and the thumbnail,
delete, each error as its SDK exception, another account's id, and the webhooks the SDK verifies."""

from __future__ import annotations

import base64
import io
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import openai
import pytest
from openai.types import Video
from PIL import Image

from tests.conftest import Relay, make_settings, relays_by_store, start_relay
from tests.support.media import decode_mp4, open_jpeg
from tests.support.receiver import running_receiver

# The SDK marks every video method deprecated (OpenAI's own endpoint closed); the shape lives on.
pytestmark = [pytest.mark.both_stores, pytest.mark.filterwarnings("ignore:The Sora API:DeprecationWarning")]


@pytest.fixture(scope="module")
def relays(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], Relay]]:
    data_dir = tmp_path_factory.mktemp("videos")
    with relays_by_store(
        data_dir, allow_private_urls="127.0.0.0/8", callback_retry_base_seconds=0.05
    ) as relay_for:
        yield relay_for


@pytest.fixture
def relay(relays: Callable[[str], Relay], store: str) -> Relay:
    return relays(store)


def sdk(relay: Relay, key: str | None = None, **options: object) -> openai.OpenAI:
    return openai.OpenAI(api_key=key or relay.key, base_url=f"{relay.url}/v1", timeout=120, **options)  # type: ignore[arg-type]


def png(color: tuple[int, int, int] = (20, 120, 220)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (96, 54), color).save(out, format="PNG")
    return out.getvalue()


def test_multipart_create_and_poll_then_download_video_and_thumbnail(relay: Relay) -> None:
    with sdk(relay) as client:
        done = client.videos.create_and_poll(
            prompt="a paper boat on a rainy street",
            model="ray-2",
            seconds="5",  # type: ignore[arg-type]
            size="960x540",  # type: ignore[arg-type]
            input_reference=("boat.png", png(), "image/png"),
            poll_interval_ms=200,
        )
        assert done.status == "completed", done.error
        assert (done.object, done.model, done.progress, done.seconds, done.size) == (
            "video",
            "ray-2",
            100,
            "5",
            "960x540",
        )
        assert done.error is None and done.completed_at is not None and done.completed_at >= done.created_at
        assert client.videos.retrieve(done.id) == done
        video = decode_mp4(client.videos.download_content(done.id).read())
        thumbnail = open_jpeg(client.videos.download_content(done.id, variant="thumbnail").read())
    assert video.codec == "h264" and abs(video.duration - 5.0) < 0.5
    assert thumbnail.width > 0


def test_json_create_list_across_pages_ranges_and_delete(relay: Relay) -> None:
    other = relay.new_key("videos-pager", balance=100_000)
    with sdk(relay, key=other) as client, httpx.Client(base_url=f"{relay.url}/v1") as raw:
        raw.headers["Authorization"] = f"Bearer {other}"
        made = []
        for n in range(3):
            answer = raw.post(
                "/videos", json={"prompt": f"lantern {n}", "model": "ray-flash-2", "size": "1280x720"}
            )
            assert answer.status_code == 200, answer.text
            made.append(Video.model_validate(answer.json()))
        assert {v.status for v in made} <= {"queued", "in_progress", "completed"}
        finished = [client.videos.poll(v.id, poll_interval_ms=200) for v in made]
        assert all(v.status == "completed" for v in finished)
        # The pager walks every page (limit 1: three requests and the last says has_more false).
        listed = [v.id for v in client.videos.list(limit=1)]
        assert listed == [v.id for v in reversed(made)]
        assert [v.id for v in client.videos.list(limit=2, order="asc")] == [v.id for v in made]
        # Byte ranges on the content.
        whole = raw.get(f"/videos/{made[0].id}/content")
        part = raw.get(f"/videos/{made[0].id}/content", headers={"Range": "bytes=0-99"})
        assert whole.headers["content-type"] == "video/mp4"
        assert part.status_code == 206 and part.content == whole.content[:100]
        deleted = client.videos.delete(made[0].id)
        assert (deleted.id, deleted.object, deleted.deleted) == (made[0].id, "video.deleted", True)
        with pytest.raises(openai.NotFoundError):
            client.videos.retrieve(made[0].id)
        with pytest.raises(openai.NotFoundError):
            client.videos.download_content(made[0].id)
        assert [v.id for v in client.videos.list()] == [made[2].id, made[1].id]


def test_errors_are_openai_envelopes_mapped_to_sdk_exceptions(relay: Relay) -> None:
    stranger = relay.new_key("videos-stranger", balance=100_000)
    broke = relay.new_key("videos-broke", balance=0)
    with sdk(relay, max_retries=0) as client:
        mine = client.videos.create(prompt="a fox", model="ray-2", size="960x540")  # type: ignore[arg-type]
        for fields, param in (
            ({"model": "sora-2"}, "model"),
            ({"seconds": "7"}, "seconds"),
            ({"size": "1000x1000"}, "size"),
            ({"size": "640x360"}, "size"),  # 360p is Ray 3.2's draft tier only
            ({"model": "ray-3.2", "seconds": "9"}, "seconds"),
        ):
            with pytest.raises(openai.BadRequestError) as refused:
                client.videos.create(prompt="x", **fields)  # type: ignore[arg-type]
            assert refused.value.param == param and refused.value.code == "invalid_value", fields
            assert isinstance(refused.value.body, dict) and set(refused.value.body) == {
                "message",
                "type",
                "param",
                "code",
            }
        with pytest.raises(openai.BadRequestError) as empty:
            client.videos.create(prompt="")
        assert empty.value.param == "prompt"
    with sdk(relay, key="dr-not-a-key", max_retries=0) as bad, pytest.raises(openai.AuthenticationError):
        bad.videos.list()
    with sdk(relay, key=broke, max_retries=0) as poor, pytest.raises(openai.APIStatusError) as unpaid:
        poor.videos.create(prompt="x", model="ray-2")
    assert unpaid.value.status_code == 402
    with sdk(relay, key=stranger, max_retries=0) as other:
        with pytest.raises(openai.NotFoundError):
            other.videos.retrieve(mine.id)
        with pytest.raises(openai.NotFoundError):
            other.videos.delete(mine.id)
        with pytest.raises(openai.NotFoundError):
            other.videos.download_content(mine.id)
        assert [v.id for v in other.videos.list()] == []


def test_content_before_completion_is_a_conflict_and_retrieve_hints_the_next_poll(
    relays: Callable[[str], Relay], store: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    settings = make_settings(tmp_path_factory.mktemp("slow"), sandbox_queued_seconds=60)
    with start_relay(settings) as slow, sdk(slow, max_retries=0) as client:
        created = client.videos.create(prompt="slow", model="ray-2")
        with pytest.raises(openai.ConflictError) as early:
            client.videos.download_content(created.id)
        answer = client.videos.with_raw_response.retrieve(created.id)
    assert early.value.code == "video_not_ready"
    hint = int(answer.headers["openai-poll-after-ms"])
    assert 1000 <= hint <= 15_000
    assert answer.parse().status in ("queued", "in_progress")


def test_webhooks_are_video_events_the_sdk_unwraps(relay: Relay) -> None:
    with running_receiver() as receiver, sdk(relay) as client, relay.client() as raw:
        done = client.videos.create_and_poll(
            prompt="a kite",
            model="ray-2",
            size="960x540",  # type: ignore[arg-type]
            extra_body={"callback_url": f"{receiver.url}/hook"},
            poll_interval_ms=200,
        )
        received = receiver.wait_for(1)
        secret = raw.get("/account/callback_secret").json()["secret"]
        event = client.webhooks.unwrap(received[0].body.decode(), received[0].headers, secret=secret)
        with pytest.raises(openai.InvalidWebhookSignatureError):
            client.webhooks.unwrap(received[0].body.decode(), received[0].headers, secret="whsec_" + "A" * 44)
    assert done.status == "completed"
    assert len(received) == 1  # only the finished state is an event
    # The SDK has no class for video events: it parses them as its first union member (dispatch on type).
    assert str(event.type) == "video.completed" and getattr(event.data, "id", None) == done.id
    payload = json.loads(received[0].body)
    assert payload["object"] == "event" and abs(payload["created_at"] - time.time()) < 600


def test_remix_and_extension_of_a_finished_video(relay: Relay) -> None:
    with sdk(relay) as client, httpx.Client(base_url=f"{relay.url}/v1") as raw:
        raw.headers["Authorization"] = f"Bearer {relay.key}"
        first = client.videos.create_and_poll(
            prompt="a tram at dawn",
            model="ray-flash-2",
            size="960x540",  # type: ignore[arg-type]
            poll_interval_ms=200,
        )
        assert first.status == "completed", first.error
        remixed = client.videos.remix(first.id, prompt="the same tram at night")
        assert remixed.remixed_from_video_id == first.id and remixed.prompt == "the same tram at night"
        remixed = client.videos.poll(remixed.id, poll_interval_ms=200)
        assert remixed.status == "completed", remixed.error
        assert remixed.remixed_from_video_id == first.id
        assert decode_mp4(client.videos.download_content(remixed.id).read()).codec == "h264"
        # The Python SDK 3.51 cannot send video={"id": ...} itself (it raises before sending: it wants a
        # file); extra_body sends the video[id] part the Node SDK sends.
        by_sdk = client.videos.extend(
            prompt="on into the city",
            seconds="9",  # type: ignore[arg-type]
            video=openai.NOT_GIVEN,  # type: ignore[arg-type]
            extra_body={"video": {"id": first.id}},
        )
        answer = raw.post(
            "/videos/extensions",
            json={"prompt": "on into the city", "seconds": "9", "video": {"id": first.id}},
        )
        assert answer.status_code == 200, answer.text
        assert client.videos.poll(by_sdk.id, poll_interval_ms=200).status == "completed"
        extension = client.videos.poll(answer.json()["id"], poll_interval_ms=200)
        assert extension.status == "completed", extension.error
        assert (extension.seconds, extension.size) == ("9", "960x540")
        clip = decode_mp4(client.videos.download_content(extension.id).read())
        assert clip.codec == "h264" and abs(clip.duration - 9.0) < 0.5
        with pytest.raises(openai.NotFoundError) as missing:
            client.videos.remix("4f1c0a6e-0000-4000-8000-000000000000", prompt="x")
        assert missing.value.param == "video_id"
        bad = raw.post("/videos/extensions", json={"prompt": "x", "seconds": "7", "video": {"id": first.id}})
        assert bad.status_code == 400 and bad.json()["error"]["param"] == "seconds"


def test_idempotency_key_and_image_urls_through_url_safety(relay: Relay) -> None:
    with httpx.Client(base_url=f"{relay.url}/v1", timeout=60) as raw:
        raw.headers["Authorization"] = f"Bearer {relay.key}"
        body = {"prompt": "a heron", "model": "ray-2", "size": "960x540"}
        first = raw.post("/videos", json=body, headers={"Idempotency-Key": "heron-1"})
        again = raw.post("/videos", json=body, headers={"Idempotency-Key": "heron-1"})
        other = raw.post(
            "/videos", json={**body, "prompt": "a crane"}, headers={"Idempotency-Key": "heron-1"}
        )
        assert first.status_code == again.status_code == 200 and first.json()["id"] == again.json()["id"]
        assert other.status_code == 409 and other.json()["error"]["code"] == "idempotency_key_reused"
        data_url = "data:image/png;base64," + base64.b64encode(png()).decode()
        framed = raw.post("/videos", json={**body, "input_reference": {"image_url": data_url}})
        assert framed.status_code == 200, framed.text
        unsafe = raw.post("/videos", json={**body, "input_reference": {"image_url": "http://10.1.2.3/a.png"}})
        assert unsafe.status_code == 400 and unsafe.json()["error"]["message"].startswith("input_reference")


def test_a_chain_of_two_relays_over_v1_videos(relay: Relay, tmp_path: Path) -> None:
    """Relay a sends its tasks to relay b (the module's) over /v1/videos (an `openai-videos` channel): a
    video made there, copied here; the customer's media is on a."""
    key_at_b = relay.new_key("relay-a-videos", balance=10_000_000)
    with start_relay(make_settings(tmp_path / "a", allow_private_urls="127.0.0.0/8")) as first:
        with first.admin() as admin:
            assert admin.patch("/admin/channels/sandbox", json={"enabled": False}).status_code == 200
            made = admin.post(
                "/admin/channels",
                json={
                    "name": "b",
                    "kind": "openai-videos",
                    "base_url": relay.url,
                    "secret_key": key_at_b,
                    "media_networks": "127.0.0.0/8",
                },
            )
            assert made.status_code == 201, made.text
        with sdk(first) as client:
            done = client.videos.create_and_poll(
                prompt="a lighthouse, relayed twice",
                model="ray-2",
                seconds="9",  # type: ignore[arg-type]
                size="960x540",  # type: ignore[arg-type]
                input_reference=("frame.png", png((200, 90, 40)), "image/png"),
                poll_interval_ms=200,
            )
            assert done.status == "completed", done.error
            clip = decode_mp4(client.videos.download_content(done.id).read())
        with first.client() as own, first.admin() as admin:
            video_url = own.get(f"/luma/generations/{done.id}").json()["video"]["url"]
            info = admin.get(f"/admin/tasks/{done.id}").json()
    assert clip.codec == "h264" and abs(clip.duration - 9.0) < 0.5
    assert video_url.startswith(f"{first.url}/media/")
    assert info["channel"] == "b" and info["upstream_id"] != done.id
    with sdk(relay, key=key_at_b) as at_b:
        upstream = at_b.videos.retrieve(info["upstream_id"])
    assert (upstream.status, upstream.seconds, upstream.size) == ("completed", "9", "960x540")


def test_edit_of_a_finished_video_is_made_by_ray_3_2(relay: Relay) -> None:
    """POST /v1/videos/edits: Ray 3.2's video edit of any finished video (here a ray-flash-2 one), priced
    as Ray 3.2 at the source's length; its frame and length are the source's."""
    owner = relay.new_key("videos-editor", balance=100_000)
    with sdk(relay, key=owner) as client, relay.client(owner) as raw:
        first = client.videos.create_and_poll(
            prompt="a ferry leaving port",
            model="ray-flash-2",
            size="960x540",  # type: ignore[arg-type]
            poll_interval_ms=200,
        )
        assert first.status == "completed", first.error
        before = raw.get("/account").json()["balance"]
        # By id: the Python SDK 3.51 raises before sending video={"id": ...} (it wants a file); extra_body
        # sends the video[id] part the Node SDK sends for the same call.
        edited = client.videos.edit(
            prompt="the ferry in a snowstorm",
            video=openai.NOT_GIVEN,  # type: ignore[arg-type]
            extra_body={"video": {"id": first.id}},
        )
        assert (edited.model, edited.prompt, edited.seconds, edited.size) == (
            "ray-3.2",
            "the ferry in a snowstorm",
            "5",
            "960x540",
        )
        assert raw.get("/account").json()["balance"] == before - 40  # Ray 3.2, 540p, 5 s (default price)
        done = client.videos.poll(edited.id, poll_interval_ms=200)
        assert done.status == "completed", done.error
        source = decode_mp4(client.videos.download_content(first.id).read())
        clip = decode_mp4(client.videos.download_content(done.id).read())
        assert [v.id for v in client.videos.list(limit=2)] == [done.id, first.id]
        # JSON, as new-api forwards it; the same Idempotency-Key answers the same video.
        body = {"prompt": "at night", "video": {"id": first.id}}
        again = [raw.post("/v1/videos/edits", json=body, headers={"Idempotency-Key": "edit-1"}) for _ in "ab"]
        assert again[0].status_code == 200 and again[0].json()["id"] == again[1].json()["id"]
        refused = {
            "no video": raw.post("/v1/videos/edits", json={"prompt": "x"}),
            "unknown video": raw.post(
                "/v1/videos/edits",
                json={"prompt": "x", "video": {"id": "4f1c0a6e-0000-4000-8000-000000000000"}},
            ),
            "empty prompt": raw.post("/v1/videos/edits", json={"prompt": " ", "video": {"id": first.id}}),
            "seconds": raw.post(
                "/v1/videos/edits", json={"prompt": "x", "seconds": "5", "video": {"id": first.id}}
            ),
        }
    assert clip.codec == "h264" and abs(clip.duration - source.duration) < 0.1
    assert (clip.width, clip.height) == (source.width, source.height) and clip.frames == source.frames
    assert (clip.first != source.first).any()  # edited, not a copy
    assert {name: (a.status_code, a.json()["error"]["param"]) for name, a in refused.items()} == {
        "no video": (400, "video"),
        "unknown video": (404, "video"),
        "empty prompt": (400, "prompt"),
        "seconds": (400, "seconds"),
    }
    # An uploaded MP4, as the unchanged Python SDK sends a file: stored here, edited by Ray 3.2 (540 lines:
    # 540p, priced as such).
    with sdk(relay, key=owner) as client, relay.client(owner) as raw:
        source_bytes = client.videos.download_content(first.id).read()
        before = raw.get("/account").json()["balance"]
        uploaded = client.videos.edit(
            prompt="the ferry at dawn", video=("ferry.mp4", source_bytes, "video/mp4")
        )
        assert raw.get("/account").json()["balance"] == before - 40
        assert (uploaded.model, uploaded.seconds) == ("ray-3.2", "5")
        from_upload = client.videos.poll(uploaded.id, poll_interval_ms=200)
        assert from_upload.status == "completed", from_upload.error
        upload_clip = decode_mp4(client.videos.download_content(from_upload.id).read())
        with pytest.raises(openai.BadRequestError) as not_a_video:
            client.videos.edit(prompt="x", video=("ferry.mp4", b"not a video at all", "video/mp4"))
        with pytest.raises(openai.BadRequestError) as both:
            client.videos.edit(
                prompt="x",
                video=("ferry.mp4", source_bytes, "video/mp4"),
                extra_body={"video": {"id": first.id}},
            )
    assert (upload_clip.width, upload_clip.height, upload_clip.frames) == (
        source.width,
        source.height,
        source.frames,
    )
    assert not_a_video.value.param == "video" and both.value.param == "video"
    stranger = relay.new_key("videos-edit-stranger", balance=100_000)
    with sdk(relay, key=stranger, max_retries=0) as other, pytest.raises(openai.NotFoundError):
        other.videos.edit(prompt="x", video=openai.NOT_GIVEN, extra_body={"video": {"id": first.id}})  # type: ignore[arg-type]
