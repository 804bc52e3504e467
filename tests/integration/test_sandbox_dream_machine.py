"""The sandbox's rest of the Dream Machine API over loopback HTTP: images, upscale, audio, reframes,
modify and the lists; every answer is a valid lumaai `Generation`, every output real media."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import httpx
import numpy as np
import pytest
from lumaai.types import Generation
from PIL import Image

from tests.integration.test_sandbox import (
    assert_detail,
    completed,
    config,
    data_uri,
    sandbox_client,
    wait_for,
)
from tests.support.media import decode_mp4, mean_abs_diff, picture

RED = (220, 30, 30)
SMALL = {"model": "ray-2", "resolution": "540p", "aspect_ratio": "1:1"}  # 768×768


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    with sandbox_client(config(tmp_path_factory.mktemp("sandbox"))) as client:
        yield client


@pytest.fixture(scope="module")
def red_clip(sandbox: httpx.Client) -> dict[str, Any]:
    """A completed 540p square clip that is red all over (an image keyframe of one colour)."""
    red = io.BytesIO()
    Image.new("RGB", (64, 64), RED).save(red, format="PNG")
    keyframes = {"frame0": {"type": "image", "url": data_uri(red.getvalue())}}
    return completed(sandbox, {**SMALL, "prompt": "red", "keyframes": keyframes})


def finish(client: httpx.Client, path: str, body: dict[str, Any], status: int = 201) -> dict[str, Any]:
    response = client.post(path, json=body)
    assert response.status_code == status, response.text
    Generation.model_validate(response.json())
    done = wait_for(client, response.json()["id"], {"completed", "failed"})
    assert done["state"] == "completed", done["failure_reason"]
    Generation.model_validate(done)
    return done


def fetch(url: str) -> bytes:
    return httpx.get(url, timeout=30).content


@pytest.mark.parametrize(("fmt", "kind"), [("png", "PNG"), ("jpg", "JPEG")])
def test_photon_images_come_in_the_asked_format(sandbox: httpx.Client, fmt: str, kind: str) -> None:
    body = {
        "model": "photon-flash-1",
        "prompt": "a lighthouse",
        "aspect_ratio": "21:9",
        "format": fmt,
        "image_ref": [{"url": data_uri(picture(64, 48)), "weight": 0.5}],
        "character_ref": {"identity0": {"images": [data_uri(picture(32, 32, seed=2))]}},
    }
    done = finish(sandbox, "/generations/image", body)
    assert (done["generation_type"], done["model"], done["assets"]["video"]) == (
        "image",
        "photon-flash-1",
        None,
    )
    image = Image.open(io.BytesIO(fetch(done["assets"]["image"])))
    assert image.format == kind and abs(image.width / image.height - 21 / 9) < 0.02


def test_a_full_weight_modify_image_ref_is_the_picture(sandbox: httpx.Client) -> None:
    red = io.BytesIO()
    Image.new("RGB", (64, 64), RED).save(red, format="PNG")
    body = {"prompt": "keep it", "aspect_ratio": "1:1", "format": "png"}
    done = finish(
        sandbox,
        "/generations/image",
        {**body, "modify_image_ref": {"url": data_uri(red.getvalue()), "weight": 1}},
    )
    pixels = np.asarray(Image.open(io.BytesIO(fetch(done["assets"]["image"]))).convert("RGB"))
    assert np.abs(pixels[::97, ::97].astype(int) - RED).max() <= 2


def test_upscale_has_more_pixels_and_audio_adds_aac(sandbox: httpx.Client, red_clip: dict[str, Any]) -> None:
    upscaled = finish(sandbox, f"/generations/{red_clip['id']}/upscale", {"resolution": "720p"}, status=200)
    assert upscaled["request"] == {
        "generation_type": "upscale_video",
        "resolution": "720p",
        "aspect_ratio": "1:1",
    }
    video = decode_mp4(fetch(upscaled["assets"]["video"]))
    assert (video.width, video.height, video.frames) == (1024, 1024, 121)
    sounded = finish(sandbox, f"/generations/{red_clip['id']}/audio", {"prompt": "waves"}, status=200)
    with av.open(io.BytesIO(fetch(sounded["assets"]["video"]))) as container:
        assert [s.codec_context.name for s in container.streams.audio] == ["aac"]
        assert container.streams.video[0].frames == 121
    same = sandbox.post(f"/generations/{red_clip['id']}/upscale", json={"resolution": "540p"})
    assert "higher resolution" in assert_detail(same, 400)
    assert_detail(sandbox.post("/generations/nope/audio", json={}), 404)


def test_video_reframe_places_the_source(sandbox: httpx.Client, red_clip: dict[str, Any]) -> None:
    body = {
        "generation_type": "reframe_video",
        "model": "ray-flash-2",
        "aspect_ratio": "9:16",
        "media": {"url": red_clip["assets"]["video"]},
        "prompt": "a green field",
        "resized_width": 768,
        "resized_height": 768,
        "grid_position_x": 0,
        "grid_position_y": 0,
    }
    done = finish(sandbox, "/generations/video/reframe", body)
    video = decode_mp4(fetch(done["assets"]["video"]))
    assert (video.width, video.height, video.frames) == (768, 1366, 121)
    assert np.abs(video.last[300, 384].astype(int) - RED).max() < 30  # inside the placed source (top)
    assert np.abs(video.last[1100, 384].astype(int) - RED).max() > 60  # outpainted below it


def test_image_reframe_and_modify(sandbox: httpx.Client, red_clip: dict[str, Any]) -> None:
    body = {
        "generation_type": "reframe_image",
        "model": "photon-1",
        "aspect_ratio": "16:9",
        "media": {"url": data_uri(picture(90, 90))},
        "format": "png",
    }
    done = finish(sandbox, "/generations/image/reframe", body)
    image = Image.open(io.BytesIO(fetch(done["assets"]["image"])))
    assert (image.format, image.size) == ("PNG", (160, 90))
    modify = {
        "generation_type": "modify_video",
        "model": "ray-2",
        "mode": "adhere_1",
        "media": {"url": red_clip["assets"]["video"]},
        "prompt": "make it night",
    }
    modified = decode_mp4(fetch(finish(sandbox, "/generations/video/modify", modify)["assets"]["video"]))
    source = decode_mp4(fetch(red_clip["assets"]["video"]))
    assert (modified.width, modified.height, modified.frames) == (768, 768, 121)
    assert 1 < mean_abs_diff(modified.first, source.first) < 30


@pytest.mark.parametrize(
    ("path", "body", "word"),
    [
        ("/generations/image", {"model": "photon-1"}, "prompt"),
        ("/generations/image", {"prompt": "x", "format": "gif"}, "format"),
        ("/generations/image", {"prompt": "x", "image_ref": [{"url": "ftp://x"}]}, "image_ref"),
        (
            "/generations/video/modify",
            {
                "generation_type": "modify_video",
                "model": "ray-2",
                "mode": "wild",
                "media": {"url": "http://x/a.mp4"},
            },
            "mode",
        ),
        (
            "/generations/video/reframe",
            {"generation_type": "reframe_video", "model": "ray-2", "media": {"url": "http://x/a.mp4"}},
            "aspect_ratio",
        ),
        (
            "/generations/image/reframe",
            {
                "generation_type": "reframe_video",
                "model": "photon-1",
                "aspect_ratio": "1:1",
                "media": {"url": "http://x"},
            },
            "generation_type",
        ),
    ],
)
def test_bad_requests_are_400(sandbox: httpx.Client, path: str, body: dict[str, Any], word: str) -> None:
    assert word in assert_detail(sandbox.post(path, json=body), 400)


def test_concepts_and_camera_motions_are_lists_of_strings(sandbox: httpx.Client) -> None:
    for path in ("/generations/concepts/list", "/generations/camera_motion/list"):
        names = sandbox.get(path).json()
        assert isinstance(names, list) and names and all(isinstance(n, str) for n in names)
    assert "dolly_zoom" in sandbox.get("/generations/concepts/list").json()


def test_a_fail_marker_fails_an_image(sandbox: httpx.Client, tmp_path: Path) -> None:
    response = sandbox.post("/generations/image", json={"prompt": "x [sandbox:fail]"})
    done = wait_for(sandbox, response.json()["id"], {"completed", "failed"})
    assert done["state"] == "failed" and "[sandbox:fail]" in done["failure_reason"]
