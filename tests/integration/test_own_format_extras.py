"""The optional own-format routes: file_upload (a real signed upload target in our media store whose
public_url works as image_url), generations_sync, and the /luma/v1 compatibility paths."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import numpy as np
from PIL import Image

from tests.conftest import Relay, make_settings, start_relay
from tests.integration.test_client_shapes import dooy_wait
from tests.support.media import decode_mp4, mean_abs_diff, picture


def data_uri(data: bytes, media_type: str = "image/png") -> str:
    return f"data:{media_type};base64,{base64.b64encode(data).decode()}"


def test_file_upload_then_submit_with_public_url_completes_on_that_image(relay: Relay) -> None:
    image = picture(640, 360, seed=7)
    with relay.client() as client:
        answer = client.post("/luma/generations/file_upload", json={"url": data_uri(image)})
        assert answer.status_code == 200, answer.text
        uploaded = answer.json()
        assert list(uploaded) == ["id", "presigned_url", "public_url"]
        assert uploaded["public_url"].startswith(relay.url + "/media/uploads/")
        assert httpx.get(uploaded["public_url"]).content == image  # served by DreamRelay itself

        task = client.post(
            "/luma/generations", json={"user_prompt": "it moves", "image_url": uploaded["public_url"]}
        )
        assert task.status_code == 200, task.text
        done, _ = dooy_wait(client, task.json()["id"])
        assert done["state"] == "completed"
        video = decode_mp4(httpx.get(done["video"]["url"]).content)
        source = np.asarray(Image.open(io.BytesIO(image)).convert("RGB").resize((video.width, video.height)))
        assert mean_abs_diff(video.first, source) < 8  # the video starts on the uploaded picture


def test_presigned_url_is_a_real_signed_expiring_upload_target(relay: Relay) -> None:
    png, jpeg = picture(64, 64, seed=3), picture(64, 64, seed=4, fmt="JPEG")
    with relay.client() as client:
        slot = client.post("/luma/generations/file_upload", json={"filename": "frame.png"}).json()
        assert httpx.get(slot["public_url"]).status_code == 404  # nothing uploaded yet
        refused = client.post("/luma/tasks", json={})  # (unrelated 400 keeps its shape)
        assert refused.status_code == 400
        early = client.post("/luma/generations", json={"user_prompt": "x", "image_url": slot["public_url"]})
        assert early.status_code == 400 and "no file was uploaded" in early.json()["error"]["message"]

    put_url = slot["presigned_url"]
    query = parse_qs(urlsplit(put_url).query)
    assert int(query["expires"][0]) > 0 and len(query["signature"][0]) == 64
    forged = put_url.replace(query["signature"][0], "0" * 64)
    assert httpx.put(forged, content=png).status_code == 403
    later = put_url.replace(f"expires={query['expires'][0]}", f"expires={int(query['expires'][0]) + 3600}")
    assert httpx.put(later, content=png).status_code == 403  # the expiry is signed too
    assert httpx.put(put_url, content=jpeg).status_code == 400  # a .png slot takes a PNG
    assert httpx.put(put_url, content=b"not an image").status_code == 400
    stored = httpx.put(put_url, content=png, headers={"Content-Type": "image/png"})
    assert stored.status_code == 200, stored.text
    got = httpx.get(slot["public_url"])
    assert got.content == png and got.headers["content-type"] == "image/png"
    other = slot["presigned_url"].replace(slot["id"], "0" * 32)
    assert httpx.put(other, content=png).status_code == 403  # a signature is for one slot only


def test_file_upload_rules(relay: Relay) -> None:
    with relay.client() as client:
        assert httpx.post(relay.url + "/luma/generations/file_upload", json={}).status_code == 401
        loopback = client.post("/luma/generations/file_upload", json={"url": relay.url + "/healthz"})
        assert loopback.status_code == 400  # fetched through netguard: no private addresses
        assert (
            client.post(
                "/luma/generations/file_upload", json={"url": "data:image/png;base64,AAAA"}
            ).status_code
            == 400
        )
        assert client.post("/luma/generations/file_upload", json={"filename": "x.gif"}).status_code == 400
        assert client.post("/luma/generations/file_upload", json={"url": 5}).status_code == 400


def test_generations_sync_answers_as_the_get_once_finished(relay: Relay) -> None:
    with relay.client() as client:
        answer = client.post("/luma/generations_sync/", json={"user_prompt": "wait for me"})
        assert answer.status_code == 200, answer.text
        task = answer.json()
        assert task["state"] == "completed" and task["video"]["download_url"]
        assert client.get(f"/luma/generations/{task['id']}").json() == task


def test_generations_sync_gives_up_waiting_at_the_bound(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, sandbox_dreaming_seconds=30.0, sync_wait_seconds=0.5)
    with start_relay(settings) as relay, relay.client() as client:
        task = client.post("/luma/generations_sync", json={"user_prompt": "slow"}).json()
        assert task["state"] in ("pending", "processing") and task["video"] is None


def test_luma_v1_compatibility_paths(relay: Relay) -> None:
    with relay.client() as client:
        made = client.post("/luma/v1/generations", json={"user_prompt": "compat"})
        assert made.status_code == 200 and made.json()["prompt"] == "compat"
        task_id = made.json()["id"]
        done, _ = dooy_wait(client, task_id)
        for prefix in ("/luma/v1", "/luma/V1"):
            assert client.get(f"{prefix}/generations/{task_id}").json() == done
            assert client.get(f"{prefix}/generations/{task_id}/").json() == done
            url = client.get(f"{prefix}/generations/{task_id}/download_video_url").json()
            assert url == {"url": done["video"]["download_url"]}
            assert client.post(f"{prefix}/tasks", json={"ids": [task_id]}).json() == [done]
        extended = client.post(f"/luma/v1/generations/{task_id}/extend", json={"user_prompt": "on"})
        assert extended.status_code == 200
