"""Seedance through the OpenAI Videos API (/v1/videos) with the unchanged `openai` Python SDK, on both
stores, through the default sandbox channel: `size` is one of Seedance's own frames, `seconds` within the
model's range, input_reference its first frame; charged by the tokens the clip used; a size or a length
the model cannot make is a 400 naming the parameter."""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterator

import httpx
import openai
import pytest
from PIL import Image

from dreamrelay.domain.catalog import seedance_tokens, token_charge
from tests.conftest import Relay, relays_by_store
from tests.integration.test_money import balance_and_ledger
from tests.support.media import decode_mp4, open_jpeg

pytestmark = [pytest.mark.both_stores, pytest.mark.filterwarnings("ignore:The Sora API:DeprecationWarning")]

PRO = "doubao-seedance-1-0-pro-250528"
LITE_T2V = "doubao-seedance-1-0-lite-t2v-250428"
FAST_2 = "doubao-seedance-2-0-fast-260128"
PRO_RATE = 500  # migration 0015's credits per million tokens


@pytest.fixture(scope="module")
def relays(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], Relay]]:
    with relays_by_store(tmp_path_factory.mktemp("videos-seedance")) as relay_for:
        yield relay_for


@pytest.fixture
def relay(relays: Callable[[str], Relay], store: str) -> Relay:
    return relays(store)


def sdk(relay: Relay, key: str) -> openai.OpenAI:
    return openai.OpenAI(api_key=key, base_url=f"{relay.url}/v1", timeout=120)


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (96, 54), (200, 60, 40)).save(out, format="PNG")
    return out.getvalue()


def test_a_seedance_video_from_a_first_frame_through_the_sdk_charged_by_its_tokens(relay: Relay) -> None:
    key = relay.new_key("videos-seedance", balance=10_000)
    with sdk(relay, key) as client:
        done = client.videos.create_and_poll(
            prompt="a red kite over dunes",
            model=PRO,
            seconds="4",
            size="640x640",  # type: ignore[arg-type]
            input_reference=("kite.png", png(), "image/png"),
            poll_interval_ms=200,
        )
        assert done.status == "completed", done.error
        assert (done.object, done.model, done.progress, done.seconds, done.size) == (
            "video",
            PRO,
            100,
            "4",
            "640x640",
        )
        assert client.videos.retrieve(done.id) == done
        video = decode_mp4(client.videos.download_content(done.id).read())
        thumbnail = open_jpeg(client.videos.download_content(done.id, variant="thumbnail").read())
    assert video.codec == "h264" and (video.width, video.height) == (640, 640)
    assert abs(video.duration - 4.0) < 0.2 and video.frames == 96
    assert thumbnail.width > 0
    # Billed by use: the hold priced the widest 480p frame, the capture the tokens the square clip used.
    charged = token_charge(seedance_tokens(640, 640, 24, 4), PRO_RATE)
    balance, rows = balance_and_ledger(relay.settings, "videos-seedance")
    mine = {r["kind"]: r["amount"] for r in rows if r["task_id"] == done.id}
    assert -mine["hold"] - mine.get("release", 0) == charged
    assert balance == 10_000 - charged


def test_sizes_lengths_and_images_a_seedance_model_cannot_take_are_400s_naming_them(relay: Relay) -> None:
    key = relay.new_key("videos-seedance-refused", balance=10_000)
    refused = {
        "size": {"model": PRO, "size": "1280x720"},  # Seedance's 720p 16:9 frame is 1248x704
        "seconds": {"model": PRO, "seconds": "13"},  # 1.0 pro makes 2 to 12 s
    }
    with sdk(relay, key) as client:
        for param, fields in refused.items():
            with pytest.raises(openai.BadRequestError) as error:
                client.videos.create(prompt="a kite", **fields)  # type: ignore[arg-type]
            assert error.value.status_code == 400 and error.value.param == param, error.value.body
            assert param in error.value.message
        with pytest.raises(openai.BadRequestError) as error:  # 2.0 fast makes no 1080p
            client.videos.create(prompt="a kite", model=FAST_2, size="1920x1088")  # type: ignore[arg-type]
        assert error.value.param == "size" and "1248x704" in error.value.message
        with pytest.raises(openai.BadRequestError) as error:  # lite t2v takes no image
            client.videos.create(
                prompt="a kite",
                model=LITE_T2V,
                input_reference=("kite.png", png(), "image/png"),
            )
        assert error.value.param == "input_reference"
    with httpx.Client(base_url=relay.url, headers={"Authorization": f"Bearer {key}"}) as raw:
        answer = raw.post("/v1/videos", json={"prompt": "a kite", "model": PRO, "seconds": "4.5"})
    assert answer.status_code == 400 and answer.json()["error"]["param"] == "seconds"
    balance, _rows = balance_and_ledger(relay.settings, "videos-seedance-refused")
    assert balance == 10_000


def test_a_seedance_video_through_the_own_format(relay: Relay) -> None:
    """`POST /luma/generations` with a Seedance model_name: aspect_ratio, resolution and duration "3s" are
    Seedance's ratio, resolution and seconds; what it cannot express is a 400 naming the field."""
    key = relay.new_key("own-seedance", balance=10_000)
    with httpx.Client(base_url=relay.url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as client:
        body = {"user_prompt": "a lighthouse", "model_name": PRO, "aspect_ratio": "9:16"}
        body["resolution"] = "480p"
        for field, bad in (("duration", "13s"), ("resolution", "4k"), ("aspect_ratio", "9:21")):
            refused = client.post("/luma/generations", json={**body, field: bad})
            assert refused.status_code == 400 and field in refused.text, refused.text
        made = client.post("/luma/generations", json={**body, "duration": "3s"})
        assert made.status_code in (200, 201), made.text
        task = made.json()
        until = time.monotonic() + 120
        while task["state"] not in ("completed", "failed") and time.monotonic() < until:
            time.sleep(0.3)
            task = client.get(f"/luma/generations/{task['id']}").json()
        assert task["state"] == "completed", task
        assert task["request"] == {"aspect_ratio": "9:16", "prompt": "a lighthouse"}
        video = decode_mp4(client.get(task["video"]["url"]).content)
    assert (video.width, video.height, video.frames) == (480, 864, 72)
    charged = token_charge(seedance_tokens(480, 864, 24, 3), PRO_RATE)
    balance, _rows = balance_and_ledger(relay.settings, "own-seedance")
    assert balance == 10_000 - charged
