"""The rest of the Dream Machine API on DreamRelay through the unchanged `lumaai` SDK: Photon images,
upscale, add audio, video and image reframe, modify, the concept lists; outputs probed, money settled."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import av
import httpx
import lumaai
import numpy as np
import pytest
from lumaai.types import Generation
from lumaai.types.generation import (
    RequestAudioGenerationRequest,
    RequestImageGenerationRequest,
    RequestUpscaleVideoGenerationRequest,
)
from PIL import Image

from dreamrelay.http.console.i18n import EN
from dreamrelay.local_secrets import ensure_sandbox_key
from tests.conftest import Relay, make_settings, start_relay
from tests.e2e.test_official_api import OFFICIAL, data_uri, sdk, strict, wait_generation
from tests.integration.test_console import csrf, signed_in
from tests.support.media import decode_mp4, mean_abs_diff, picture

RED = (220, 30, 30)


@pytest.fixture(scope="module")
def relay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Relay]:
    with start_relay(make_settings(tmp_path_factory.mktemp("relay"))) as running:
        yield running


@pytest.fixture(scope="module")
def luma(relay: Relay) -> Iterator[lumaai.LumaAI]:
    with sdk(relay) as client:
        yield client


@pytest.fixture(scope="module")
def red_video(luma: lumaai.LumaAI) -> Generation:
    """A completed 540p square ray-2 clip, red all over (started on a red picture)."""
    red = io.BytesIO()
    Image.new("RGB", (64, 64), RED).save(red, format="PNG")
    created = luma.generations.create(
        model="ray-2",
        prompt="red",
        aspect_ratio="1:1",
        resolution="540p",
        keyframes={"frame0": {"type": "image", "url": data_uri(red.getvalue())}},
    )
    done = wait_generation(luma, created.id or "")
    assert done.state == "completed", done.failure_reason
    return done


def fetch(url: str | None) -> bytes:
    assert url is not None
    response = httpx.get(url, timeout=30)
    assert response.status_code == 200
    return response.content


def finished(luma: lumaai.LumaAI, created: Generation) -> Generation:
    done = wait_generation(luma, created.id or "")
    assert done.state == "completed", done.failure_reason
    return done


def balance(luma: lumaai.LumaAI) -> float:
    return luma.credits.get().credit_balance


def test_photon_images_in_png_and_jpeg_with_references(relay: Relay, luma: lumaai.LumaAI) -> None:
    before = balance(luma)
    raw = luma.generations.image.with_raw_response.create(
        model="photon-1",
        prompt="a lighthouse at dusk",
        aspect_ratio="16:9",
        format="png",
        image_ref=[{"url": data_uri(picture(64, 36)), "weight": 0.4}],
        style_ref=[{"url": data_uri(picture(32, 32, seed=3)), "weight": 0.5}],
        character_ref={"identity0": {"images": [data_uri(picture(40, 40, seed=4))]}},
    )
    assert raw.http_response.status_code == 201
    created = strict(Generation, raw.http_response.json())
    assert (created.generation_type, created.state, created.model) == ("image", "queued", "photon-1")
    assert isinstance(created.request, RequestImageGenerationRequest)
    assert created.request.image_ref
    assert (created.request.image_ref[0].url or "").startswith(relay.url + "/media/inputs/")
    png = finished(luma, created)
    assert png.assets and png.assets.video is None and png.assets.image
    assert png.assets.image.startswith(relay.url + "/media/tasks/")
    image = Image.open(io.BytesIO(fetch(png.assets.image)))
    assert image.format == "PNG" and abs(image.width / image.height - 16 / 9) < 0.02

    flash = luma.generations.image.create(model="photon-flash-1", prompt="a fox", aspect_ratio="1:1")
    jpeg = Image.open(io.BytesIO(fetch(finished(luma, flash).assets.image)))  # type: ignore[union-attr]
    assert jpeg.format == "JPEG" and jpeg.width == jpeg.height
    assert before - balance(luma) == 8 + 2  # the default prices of photon-1 and photon-flash-1
    listed = [g.id for g in luma.generations.list(limit=2).generations]
    assert listed == [flash.id, created.id]


def test_modify_image_ref_at_full_weight_keeps_the_picture(luma: lumaai.LumaAI) -> None:
    red = io.BytesIO()
    Image.new("RGB", (64, 64), RED).save(red, format="PNG")
    created = luma.generations.image.create(
        model="photon-flash-1",
        prompt="keep it",
        format="png",
        modify_image_ref={"url": data_uri(red.getvalue()), "weight": 1.0},
    )
    pixels = np.asarray(Image.open(io.BytesIO(fetch(finished(luma, created).assets.image))).convert("RGB"))  # type: ignore[union-attr]
    assert np.abs(pixels[::101, ::101].astype(int) - RED).max() <= 2


def test_upscale_has_more_pixels_and_audio_is_aac(
    relay: Relay, luma: lumaai.LumaAI, red_video: Generation
) -> None:
    before = balance(luma)
    raw = luma.generations.with_raw_response.upscale(
        red_video.id or "", generation_type="upscale_video", resolution="720p"
    )
    upscale = strict(Generation, raw.http_response.json())
    assert (
        isinstance(upscale.request, RequestUpscaleVideoGenerationRequest)
        and upscale.request.resolution == "720p"
    )
    upscaled = decode_mp4(fetch(finished(luma, upscale).assets.video))  # type: ignore[union-attr]
    assert (upscaled.width, upscaled.height, upscaled.frames) == (1024, 1024, 121)  # from 768×768

    audio = luma.generations.audio(red_video.id or "", generation_type="add_audio", prompt="waves on a beach")
    assert (
        isinstance(audio.request, RequestAudioGenerationRequest)
        and audio.request.prompt == "waves on a beach"
    )
    sounded = fetch(finished(luma, audio).assets.video)  # type: ignore[union-attr]
    with av.open(io.BytesIO(sounded)) as container:
        assert [s.codec_context.name for s in container.streams.audio] == ["aac"]
        assert container.streams.video[0].frames == 121
    assert before - balance(luma) == 20 + 10  # upscale to 720p of 5 s, audio of 5 s
    with relay.admin() as admin:  # what probing our copies recorded
        probed = {t: admin.get(f"/admin/tasks/{t}").json()["media"]["video"] for t in (upscale.id, audio.id)}
    assert probed[upscale.id]["width"] == 1024 and probed[upscale.id]["audio_codec"] is None
    assert (probed[audio.id]["audio_codec"], probed[audio.id]["codec"], probed[audio.id]["frames"]) == (
        "aac",
        "h264",
        121,
    )

    with pytest.raises(lumaai.BadRequestError, match="higher resolution"):
        luma.generations.upscale(red_video.id or "", resolution="540p")
    with pytest.raises(lumaai.NotFoundError):
        luma.generations.audio("00000000-0000-4000-8000-000000000000", prompt="x")


def test_video_reframe_puts_the_source_where_asked(luma: lumaai.LumaAI, red_video: Generation) -> None:
    created = luma.generations.video.reframe(
        generation_type="reframe_video",
        model="ray-flash-2",
        aspect_ratio="9:16",
        media={"url": red_video.assets.video or ""},  # type: ignore[union-attr]
        prompt="a green meadow",
        resized_width=768,
        resized_height=768,
        grid_position_x=0,
        grid_position_y=0,
    )
    video = decode_mp4(fetch(finished(luma, created).assets.video))  # type: ignore[union-attr]
    assert (video.width, video.height, video.frames) == (768, 1366, 121)
    assert np.abs(video.last[300, 384].astype(int) - RED).max() < 30  # the source, at the top
    assert np.abs(video.last[1100, 384].astype(int) - RED).max() > 60  # outpainted below it


def test_image_reframe_and_video_modify(luma: lumaai.LumaAI, red_video: Generation) -> None:
    reframe = luma.generations.image.reframe(
        generation_type="reframe_image",
        model="photon-flash-1",
        aspect_ratio="16:9",
        media={"url": data_uri(picture(90, 90))},
        format="png",
    )
    image = Image.open(io.BytesIO(fetch(finished(luma, reframe).assets.image)))  # type: ignore[union-attr]
    assert (image.format, image.size) == ("PNG", (160, 90))

    modify = luma.generations.video.modify(
        generation_type="modify_video",
        model="ray-2",
        mode="adhere_1",
        media={"url": red_video.assets.video or ""},  # type: ignore[union-attr]
        prompt="make it night",
    )
    modified = decode_mp4(fetch(finished(luma, modify).assets.video))  # type: ignore[union-attr]
    source = decode_mp4(fetch(red_video.assets.video))  # type: ignore[union-attr]
    assert (modified.width, modified.height, modified.frames) == (768, 768, 121)
    assert 1 < mean_abs_diff(modified.first, source.first) < 30  # it starts from the source's frames


def test_concepts_and_camera_motions(relay: Relay, luma: lumaai.LumaAI) -> None:
    concepts = luma.generations.concepts.list()
    assert "dolly_zoom" in concepts and all(isinstance(c, str) for c in concepts)
    with relay.client() as client:
        motions = client.get(OFFICIAL + "/generations/camera_motion/list")
        assert motions.status_code == 200 and "Pan Left" in motions.json()
        assert (
            client.get(
                OFFICIAL + "/generations/concepts/list", headers={"Authorization": "Bearer no"}
            ).status_code
            == 401
        )


def test_a_failed_image_releases_its_hold(relay: Relay, luma: lumaai.LumaAI) -> None:
    before = balance(luma)
    created = luma.generations.image.create(model="photon-1", prompt="a vase [sandbox:fail]")
    assert balance(luma) == before - 8  # held at submit
    done = wait_generation(luma, created.id or "")
    assert done.state == "failed" and done.failure_reason
    assert balance(luma) == before  # released
    with relay.admin() as admin:
        task = admin.get(f"/admin/tasks/{created.id}").json()
    rows = sorted((row["kind"], row["amount"]) for row in task["ledger"])
    assert rows == [("hold", -8), ("release", 8)], task["ledger"]
    with pytest.raises(lumaai.BadRequestError):
        luma.generations.image.create(model="photon-1", prompt="no [sandbox:reject]")
    assert balance(luma) == before  # refused upstream: nothing kept


def test_the_operator_changes_the_new_prices(
    relay: Relay, luma: lumaai.LumaAI, red_video: Generation
) -> None:
    with relay.admin() as admin:
        for rule in (
            {"model": "photon-flash-1", "action": "generate_image", "credits": 3},
            {"model": "*", "resolution": "1080p", "duration": "5s", "action": "upscale_video", "credits": 7},
        ):
            assert admin.put("/admin/prices", json=rule).status_code == 200, rule
        listed = admin.get("/admin/prices").json()
        assert {
            "model": "*",
            "resolution": "*",
            "duration": "5s",
            "action": "add_audio",
            "credits": 10,
            "unit": "task",
        } in listed
    before = balance(luma)
    luma.generations.image.create(model="photon-flash-1", prompt="a priced kite")
    luma.generations.upscale(red_video.id or "", resolution="1080p")
    assert before - balance(luma) == 3 + 7


def test_foreign_and_bad_requests(relay: Relay, luma: lumaai.LumaAI, red_video: Generation) -> None:
    stranger = sdk(relay, relay.new_key("stranger", balance=1000))
    with pytest.raises(lumaai.NotFoundError):
        stranger.generations.upscale(red_video.id or "", resolution="1080p")
    with pytest.raises(lumaai.BadRequestError, match="no video of yours"):
        stranger.generations.video.modify(
            generation_type="modify_video",
            model="ray-2",
            mode="flex_1",
            media={"url": red_video.assets.video or ""},  # type: ignore[union-attr]
        )
    with relay.client() as client:
        for path, body in (
            ("/generations/image", {"prompt": ""}),
            ("/generations/image", {"prompt": "x", "image_ref": [{"url": "x"}] * 5}),
            (
                "/generations/image",
                {"prompt": "x", "modify_image_ref": {"url": "data:image/png;base64,AAAA"}},
            ),
            (
                "/generations/video/modify",
                {"generation_type": "modify_video", "model": "ray-2", "mode": "wild"},
            ),
            (
                "/generations/video/reframe",
                {
                    "generation_type": "reframe_video",
                    "model": "ray-2",
                    "aspect_ratio": "1:1",
                    "media": {"url": "ftp://x"},
                },
            ),
            ("/generations/image/reframe", [1, 2]),
            (f"/generations/{red_video.id}/upscale", {"resolution": "8k"}),
            (f"/generations/{red_video.id}/audio", {"prompt": 5}),
        ):
            response = client.post(OFFICIAL + path, json=body)
            assert response.status_code == 400, (path, response.text)
            assert list(response.json()) == ["detail"]


def test_the_console_grid_and_task_page_show_images_and_new_types(
    relay: Relay, luma: lumaai.LumaAI, red_video: Generation
) -> None:
    image = finished(luma, luma.generations.image.create(model="photon-flash-1", prompt="a console kite"))
    audio = finished(luma, luma.generations.audio(red_video.id or "", prompt="a console hum"))
    picture = image.assets.image or ""  # type: ignore[union-attr]
    browser = signed_in(relay, relay.key)
    try:
        grid = browser.get("/console/me")
        assert grid.status_code == 200
        assert f'<img src="{picture}"' in grid.text  # the picture is the tile
        assert EN["kind.add_audio"] in grid.text and EN["kind.generate_image"] in grid.text
        page = browser.get(f"/console/me/tasks/{image.id}")
        assert page.status_code == 200 and f'src="{picture}"' in page.text
        sounded = browser.get(f"/console/me/tasks/{audio.id}")
        assert sounded.status_code == 200 and (audio.assets.video or "") in sounded.text  # type: ignore[union-attr]
        assert browser.get(picture).headers["content-type"] == "image/jpeg"
    finally:
        browser.close()


def test_the_playground_offers_ray_3_2_and_uni_1(relay: Relay) -> None:
    browser = signed_in(relay, relay.key)
    try:
        page = browser.get("/console/me/playground")
        assert page.status_code == 200
        for option in (
            "<option>ray-3.2</option>",
            "<option>uni-1</option>",
            "<option>uni-1-max</option>",
            "<option>360p</option>",
        ):
            assert option in page.text, option
        headers = {"X-CSRF-Token": csrf(page)}
        made = browser.post(
            "/console/me/api/generations",
            json={"user_prompt": "a playground lantern", "model_name": "uni-1", "aspect_ratio": "1:1"},
            headers=headers,
        )
        assert made.status_code == 200, made.text
        generation = made.json()
        assert (generation["model"], generation["type"]) == ("uni-1", "image")
        polled = browser.get(f"/console/me/api/generations/{generation['id']}")
        assert polled.status_code == 200 and polled.json()["id"] == generation["id"]
        bad = browser.post(
            "/console/me/api/generations", json={"user_prompt": "", "model_name": "uni-1"}, headers=headers
        )
        assert bad.status_code == 400
    finally:
        browser.close()


def test_a_luma_channel_forwards_the_new_types(tmp_path: Path) -> None:
    """A `luma` channel (the adapter an api.lumalabs.ai channel uses) pointed at the sandbox's official
    API over HTTP, the built-in sandbox channel off: images and upscales go through it."""
    settings = make_settings(tmp_path)
    with start_relay(settings) as relay, relay.admin() as admin:
        channel = {
            "name": "luma-official",
            "kind": "luma",
            "base_url": relay.url + "/sandbox/dream-machine/v1",
            "secret_key": ensure_sandbox_key(settings),
        }
        assert admin.post("/admin/channels", json=channel).status_code == 201
        allowed = admin.patch("/admin/channels/luma-official", json={"media_networks": "127.0.0.0/8"})
        assert allowed.status_code == 200, allowed.text
        assert admin.patch("/admin/channels/sandbox", json={"enabled": False}).status_code == 200
        with sdk(relay) as luma:
            image = finished(luma, luma.generations.image.create(model="photon-flash-1", prompt="via luma"))
            assert Image.open(io.BytesIO(fetch(image.assets.image))).format == "JPEG"  # type: ignore[union-attr]
            video = finished(
                luma,
                luma.generations.create(model="ray-2", prompt="x", resolution="540p", aspect_ratio="1:1"),
            )
            upscaled = finished(luma, luma.generations.upscale(video.id or "", resolution="720p"))
            assert decode_mp4(fetch(upscaled.assets.video)).width == 1024  # type: ignore[union-attr]
        task = admin.get(f"/admin/tasks/{upscaled.id}").json()
        assert (task["channel"], task["action"], task["media"]["video"]["width"]) == (
            "luma-official",
            "upscale_video",
            1024,
        )
