"""An `openai-videos` channel against the sandbox's own /v1/videos (the default set-up: the sandbox mounted
at /sandbox), on both stores: the unchanged SDK's video made over it, copied here, an extension pinned to
it, and the sandbox's answers in OpenAI's envelope."""

from __future__ import annotations

import io

import httpx
import openai
import pytest
from PIL import Image

from dreamrelay.local_secrets import ensure_sandbox_key
from tests.conftest import Relay
from tests.support.media import decode_mp4, open_jpeg

pytestmark = [pytest.mark.both_stores, pytest.mark.filterwarnings("ignore:The Sora API:DeprecationWarning")]


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (96, 54), (200, 60, 30)).save(out, format="PNG")
    return out.getvalue()


def test_an_openai_videos_channel_on_the_sandbox_makes_and_extends_videos(relay: Relay) -> None:
    sandbox_key = ensure_sandbox_key(relay.settings)
    base = f"{relay.url}/sandbox/openai"
    with relay.admin() as admin:
        assert admin.patch("/admin/channels/sandbox", json={"enabled": False}).status_code == 200
        made = admin.post(
            "/admin/channels",
            json={
                "name": "sandbox-videos",
                "kind": "openai-videos",
                "base_url": base,
                "secret_key": sandbox_key,
                "media_networks": "127.0.0.0/8",
            },
        )
        assert made.status_code == 201, made.text
        assert admin.post("/admin/channels/sandbox-videos/test").json()["ok"] is True
    with openai.OpenAI(api_key=relay.key, base_url=f"{relay.url}/v1", timeout=120) as client:
        done = client.videos.create_and_poll(
            prompt="a red kite over dunes",
            model="ray-2",
            seconds="9",  # type: ignore[arg-type]
            size="960x540",  # type: ignore[arg-type]
            input_reference=("kite.png", png(), "image/png"),
            poll_interval_ms=200,
        )
        assert done.status == "completed", done.error
        clip = decode_mp4(client.videos.download_content(done.id).read())
        thumbnail = open_jpeg(client.videos.download_content(done.id, variant="thumbnail").read())
        extension = client.videos.extend(
            prompt="on over the sea",
            seconds="5",  # type: ignore[arg-type]
            video=openai.NOT_GIVEN,  # type: ignore[arg-type]
            extra_body={"video": {"id": done.id}},
        )
        extended = client.videos.poll(extension.id, poll_interval_ms=200)
        assert extended.status == "completed", extended.error
        continued = decode_mp4(client.videos.download_content(extended.id).read())
    with relay.admin() as admin, relay.client() as own:
        info = admin.get(f"/admin/tasks/{done.id}").json()
        info_extension = admin.get(f"/admin/tasks/{extended.id}").json()
        video_url = own.get(f"/luma/generations/{done.id}").json()["video"]["url"]
    assert (done.model, done.seconds, done.size) == ("ray-2", "9", "960x540")
    assert clip.codec == "h264" and abs(clip.duration - 9.0) < 0.5 and thumbnail.width > 0
    assert continued.codec == "h264" and abs(continued.duration - 5.0) < 0.5
    assert (info["channel"], info_extension["channel"]) == ("sandbox-videos", "sandbox-videos")
    assert video_url.startswith(f"{relay.url}/media/")  # copied here before completing
    # What the sandbox itself holds: the upstream ids, in OpenAI's shape.
    with openai.OpenAI(api_key=sandbox_key, base_url=f"{base}/v1", max_retries=0) as upstream:
        there = upstream.videos.retrieve(info["upstream_id"])
        assert (there.status, there.seconds, there.size) == ("completed", "9", "960x540")
        assert {v.id for v in upstream.videos.list(limit=1)} <= {
            info["upstream_id"],
            info_extension["upstream_id"],
        }
        assert [v.id for v in upstream.videos.list(order="asc")] == [
            info["upstream_id"],
            info_extension["upstream_id"],
        ]
        with pytest.raises(openai.NotFoundError):
            upstream.videos.retrieve("no-such-video")
    with openai.OpenAI(api_key="wrong", base_url=f"{base}/v1", max_retries=0) as stranger:
        with pytest.raises(openai.AuthenticationError):
            stranger.videos.list()
    with httpx.Client(base_url=f"{base}/v1", headers={"Authorization": f"Bearer {sandbox_key}"}) as raw:
        refused = raw.post("/videos", json={"prompt": "x", "size": "1000x1000"})
        assert refused.status_code == 400 and refused.json()["error"]["param"] == "size"
        refused = raw.post("/videos", json={"prompt": "x", "seconds": "7"})
        assert refused.status_code == 400 and refused.json()["error"]["param"] == "seconds"
