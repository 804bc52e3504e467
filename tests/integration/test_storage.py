"""Media in an S3-compatible bucket (moto's S3 server on loopback) or the local directory: written by
the worker and the image intake, served at stable /media URLs by streaming (with byte ranges) or by
redirecting to a presigned URL."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from moto.server import ThreadedMotoServer

from tests.conftest import Relay, free_port, make_settings, start_relay
from tests.integration.test_luma_lifecycle import wait_for
from tests.support.media import decode_mp4, open_jpeg, picture

CREDENTIALS = {"aws_access_key_id": "relay-test", "aws_secret_access_key": "relay-test-secret"}


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """A real S3 API (moto's server mode) on a free loopback port."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def bucket(s3_endpoint: str) -> Any:
    """A fresh, empty bucket (boto3's view of it: checks go through a client that is not ours)."""
    s3 = boto3.resource("s3", endpoint_url=s3_endpoint, region_name="us-east-1", **CREDENTIALS)
    made = s3.create_bucket(Bucket=f"media-{uuid.uuid4().hex[:10]}")
    return made


def s3_settings(tmp_path: Path, endpoint: str, bucket: Any, **overrides: object) -> dict[str, object]:
    return {
        "media_url": f"s3://{bucket.name}/relay",
        "media_endpoint": endpoint,
        "media_region": "us-east-1",
        "media_access_key_id": CREDENTIALS["aws_access_key_id"],
        "media_secret_access_key": CREDENTIALS["aws_secret_access_key"],
        **overrides,
    }


def completed_task(relay: Relay, **body: Any) -> dict[str, Any]:
    with relay.client() as client:
        created = client.post(
            "/luma/generations", json={"user_prompt": "a lighthouse", "resolution": "540p", **body}
        )
        assert created.status_code == 200, created.text
        task = wait_for(client, created.json()["id"], {"completed", "failed"})
    assert task["state"] == "completed", task["failure_reason"]
    return task


def bucket_bytes(bucket: Any, key: str) -> bytes:
    return bytes(bucket.Object(key).get()["Body"].read())


def test_completed_media_lands_in_the_bucket_and_streams_with_ranges(
    tmp_path: Path, s3_endpoint: str, bucket: Any
) -> None:
    settings = make_settings(tmp_path, **s3_settings(tmp_path, s3_endpoint, bucket))
    image = picture(1024, 560, seed=3)
    with start_relay(settings) as relay:
        task = completed_task(relay, image_url="data:image/png;base64," + base64.b64encode(image).decode())
        prefix = f"relay/tasks/{task['id']}/"
        keys = sorted(o.key for o in bucket.objects.all())
        inputs = [k for k in keys if k.startswith("relay/inputs/")]
        assert [k for k in keys if k.startswith(prefix)] == [
            prefix + "last_frame.jpg",
            prefix + "thumbnail.jpg",
            prefix + "video.mp4",
        ]
        assert len(inputs) == 1 and inputs[0].endswith(".png")
        assert bucket_bytes(bucket, inputs[0]) == image  # the customer's image, which upstream fetched
        assert not (tmp_path / "media").exists()  # nothing was written to the local media directory

        video = bucket_bytes(bucket, prefix + "video.mp4")
        decoded = decode_mp4(video)
        assert decoded.codec == "h264" and (decoded.width, decoded.height) == (1024, 560)
        assert bucket.Object(prefix + "video.mp4").content_type == "video/mp4"
        thumbnail = bucket_bytes(bucket, prefix + "thumbnail.jpg")
        assert open_jpeg(thumbnail).size == (1024, 560)
        assert open_jpeg(bucket_bytes(bucket, prefix + "last_frame.jpg")).size == (1024, 560)

        # Served by us at the URLs of the task object: whole, and in byte ranges.
        assert task["video"]["url"] == f"{relay.url}/media/tasks/{task['id']}/video.mp4"
        whole = httpx.get(task["video"]["url"])
        assert whole.status_code == 200 and whole.content == video
        assert whole.headers["content-type"] == "video/mp4" and whole.headers["accept-ranges"] == "bytes"
        assert httpx.get(task["thumbnail"]["url"]).content == thumbnail
        check_ranges(task["video"]["url"], video)


def test_local_media_streams_with_the_same_ranges(relay: Relay) -> None:
    task = completed_task(relay)
    video = (relay.settings.data_dir / "media" / "tasks" / task["id"] / "video.mp4").read_bytes()
    assert decode_mp4(video).codec == "h264"
    check_ranges(task["video"]["url"], video)
    (relay.settings.data_dir / "outside.mp4").write_bytes(video)  # beside the media directory
    assert httpx.get(f"{relay.url}/media/%2E%2E/outside.mp4").status_code == 404


def check_ranges(url: str, video: bytes) -> None:
    size = len(video)
    first = httpx.get(url, headers={"Range": "bytes=0-99"})
    assert first.status_code == 206 and first.content == video[:100]
    assert first.headers["content-range"] == f"bytes 0-99/{size}" and first.headers["content-length"] == "100"
    middle = httpx.get(url, headers={"Range": f"bytes=1000-{size + 50}"})  # past the end: cut at the end
    assert middle.status_code == 206 and middle.content == video[1000:]
    assert middle.headers["content-range"] == f"bytes 1000-{size - 1}/{size}"
    tail = httpx.get(url, headers={"Range": "bytes=-10"})
    assert tail.status_code == 206 and tail.content == video[-10:]
    several = httpx.get(url, headers={"Range": "bytes=0-1,5-6"})  # several ranges: the whole file
    assert several.status_code == 200 and several.content == video
    everything = httpx.get(url, headers={"Range": "bytes=0-"})  # a range, even of everything: 206
    assert everything.status_code == 206 and everything.content == video
    assert everything.headers["content-range"] == f"bytes 0-{size - 1}/{size}"
    outside = httpx.get(url, headers={"Range": f"bytes={size}-"})
    assert outside.status_code == 416
    assert outside.headers["content-range"] == f"bytes */{size}"
    assert outside.json()["error"]["code"] == "range_not_satisfiable"
    head = httpx.head(url)
    assert head.status_code == 200 and head.headers["content-length"] == str(size) and head.content == b""
    etag = head.headers["etag"]
    assert httpx.get(url, headers={"If-None-Match": etag}).status_code == 304
    stale = httpx.get(url, headers={"Range": "bytes=0-9", "If-Range": '"another-version"'})
    assert stale.status_code == 200 and stale.content == video
    assert httpx.get(url.replace("video.mp4", "nothing.mp4")).status_code == 404
    assert httpx.get(url.replace("video.mp4", "video.txt")).status_code == 404


def test_presign_mode_redirects_to_a_url_that_fetches_the_object(
    tmp_path: Path, s3_endpoint: str, bucket: Any
) -> None:
    # Customers reach the bucket by another name than we do (here: localhost, we use 127.0.0.1).
    public = s3_endpoint.replace("127.0.0.1", "localhost")
    overrides = s3_settings(
        tmp_path,
        s3_endpoint,
        bucket,
        media_serve="presign",
        media_presign_seconds=120,
        media_presign_endpoint=public,
    )
    with start_relay(make_settings(tmp_path, **overrides)) as relay:
        # Upstream fetches the customer's image from our /media URL, following the redirect.
        image = picture(1024, 560, seed=5)
        task = completed_task(relay, image_url="data:image/png;base64," + base64.b64encode(image).decode())
        assert [o.key for o in bucket.objects.filter(Prefix="relay/inputs/")] != []
        for field, name in (
            ("video", "video.mp4"),
            ("thumbnail", "thumbnail.jpg"),
            ("last_frame", "last_frame.jpg"),
        ):
            url = task[field]["url"]
            assert url == f"{relay.url}/media/tasks/{task['id']}/{name}"  # the task keeps our stable URL
            answer = httpx.get(url)
            assert answer.status_code == 307
            location = answer.headers["location"]
            assert location.startswith(f"{public}/{bucket.name}/relay/tasks/{task['id']}/{name}?")
            assert "X-Amz-Signature=" in location and "X-Amz-Expires=120" in location
            assert answer.headers["cache-control"] == "private, max-age=60"
            fetched = httpx.get(location)
            assert fetched.status_code == 200
            assert fetched.content == bucket_bytes(bucket, f"relay/tasks/{task['id']}/{name}")
        assert decode_mp4(httpx.get(task["video"]["url"], follow_redirects=True).content).codec == "h264"
        missing = httpx.get(f"{relay.url}/media/tasks/{task['id']}/nothing.mp4")
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


def test_media_settings_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="needs media on S3"):
        make_settings(tmp_path, media_serve="presign")
    with pytest.raises(ValueError, match="a directory path or s3://bucket"):
        make_settings(tmp_path, media_url="gs://bucket/media")
    with pytest.raises(ValueError, match="needs a bucket name"):
        make_settings(tmp_path, media_url="s3://")


def test_an_unreachable_bucket_answers_503_and_changes_nothing(tmp_path: Path) -> None:
    dead = free_port()  # nobody listens there
    overrides = {"media_url": "s3://media/relay", "media_endpoint": f"http://127.0.0.1:{dead}"}
    with start_relay(make_settings(tmp_path, **overrides)) as relay, relay.client() as client:
        image = "data:image/png;base64," + base64.b64encode(picture(64, 64)).decode()
        before = client.get("/account").json()
        refused = client.post("/luma/generations", json={"user_prompt": "a boat", "image_url": image})
        assert refused.status_code == 503
        assert refused.json()["error"]["code"] == "storage_unavailable"
        assert client.get("/account").json() == before
        assert [e["kind"] for e in client.get("/account/ledger").json()] == ["topup"]
        media = httpx.get(f"{relay.url}/media/tasks/some-task/video.mp4")
        assert media.status_code == 503 and media.json()["error"]["code"] == "storage_unavailable"
