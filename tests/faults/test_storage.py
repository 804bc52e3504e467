"""Fault 3: media storage fails. The S3 server (moto's server mode) stops while finished tasks' media is
copied and comes back; a local media directory sits on a full filesystem (a 2 MB tmpfs)."""

from __future__ import annotations

import base64
import errno
import os
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from moto.server import ThreadedMotoServer

from tests.conftest import Relay, free_port, make_settings, start_relay
from tests.faults.harness import ledger_verifies, money_settled_once, wait_until
from tests.support.media import decode_mp4, picture

pytestmark = pytest.mark.both_stores

CREDENTIALS = {"aws_access_key_id": "relay-test", "aws_secret_access_key": "relay-test-secret"}
FAST = {"rate_limit_rpm": 0, "rate_limit_batch_rpm": 0, "rate_limit_in_flight": 0}


def _submit(client: httpx.Client, prompt: str, **extra: Any) -> httpx.Response:
    return client.post("/luma/generations", json={"user_prompt": prompt, "resolution": "540p", **extra})


def _task(client: httpx.Client, task_id: str) -> dict[str, Any]:
    found: dict[str, Any] = client.get(f"/luma/generations/{task_id}").json()
    return found


def _storage_errors(relay: Relay) -> float:
    text = httpx.get(f"{relay.url}/metrics", timeout=10).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("dreamrelay_media_storage_errors_total{")
    )


def test_the_bucket_stops_during_media_copies_and_comes_back(tmp_path: Path, store: str) -> None:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    s3 = boto3.resource("s3", endpoint_url=endpoint, region_name="us-east-1", **CREDENTIALS)
    bucket = s3.create_bucket(Bucket=f"media-{uuid.uuid4().hex[:10]}")
    settings = make_settings(
        tmp_path,
        media_url=f"s3://{bucket.name}/relay",
        media_endpoint=endpoint,
        media_region="us-east-1",
        media_access_key_id=CREDENTIALS["aws_access_key_id"],
        media_secret_access_key=CREDENTIALS["aws_secret_access_key"],
        sandbox_dreaming_seconds=1.0,
        **FAST,
    )
    try:
        with start_relay(settings) as relay, relay.client() as client:
            ids = [_submit(client, "a lighthouse in fog").json()["id"] for _ in range(3)]
            server.stop()  # the bucket goes away while the upstream renders
            wait_until(lambda: _storage_errors(relay) > 0, 120, "a media copy meets the stopped bucket")
            assert {_task(client, t)["state"] for t in ids} <= {"pending", "processing"}
            server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
            server.start()  # moto keeps its buckets in this process: the same bucket is back
            wait_until(
                lambda: {_task(client, t)["state"] for t in ids} == {"completed"}, 120, "every task completed"
            )
            for task_id in ids:
                video = httpx.get(_task(client, task_id)["video"]["url"], timeout=30)
                assert video.status_code == 200 and decode_mp4(video.content).frames > 0
        keys = sorted(o.key for o in bucket.objects.all())
        wanted = sorted(
            f"relay/tasks/{t}/{name}"
            for t in ids
            for name in ("video.mp4", "thumbnail.jpg", "last_frame.jpg")
        )
        assert keys == wanted  # nothing orphaned, nothing half-written
        assert list(bucket.multipart_uploads.all()) == []
        money_settled_once(settings, dict.fromkeys(ids, "completed"))
        ledger_verifies(settings)
    finally:
        server.stop()


@contextmanager
def tiny_filesystem(where: Path, size: str = "2m") -> Iterator[Path]:
    """A tmpfs of `size` mounted at `where` (needs root); skipped, with the reason, where not allowed."""
    where.mkdir(parents=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        message = f"cannot mount a tmpfs here ({mounted.stderr.strip()}); the full-disk fault needs it"
        if os.environ.get("CI", "").lower() == "true" and os.geteuid() == 0:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def _fill(folder: Path) -> Path:
    """Write a file until the filesystem is full; returns it."""
    filler = folder / "filler"
    with filler.open("wb") as handle:
        try:
            while True:
                handle.write(b"\0" * 65536)
                handle.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    return filler


def test_local_media_on_a_full_filesystem(tmp_path: Path, store: str) -> None:
    with tiny_filesystem(tmp_path / "media") as media:
        settings = make_settings(tmp_path / "relay", media_url=str(media), **FAST)
        with start_relay(settings) as relay, relay.client() as client:
            filler = _fill(media)
            before = client.get("/account").json()

            # An input image cannot be kept: a clear 503, no task, no hold.
            image = "data:image/png;base64," + base64.b64encode(picture(64, 64)).decode()
            refused = _submit(client, "a boat", image_url=image)
            assert refused.status_code == 503
            assert refused.json()["error"]["code"] == "storage_unavailable"
            assert client.get("/account").json() == before

            # A finished task's media cannot be copied: it stays processing (retried every 15 s, as
            # documented; its deadline still applies) and nothing of it is served meanwhile.
            task_id = _submit(client, "a lighthouse").json()["id"]
            wait_until(lambda: _storage_errors(relay) > 0, 60, "the copy meets the full disk")
            assert _task(client, task_id)["state"] in {"pending", "processing"}
            assert httpx.get(f"{relay.url}/media/tasks/{task_id}/video.mp4").status_code == 404
            assert [p.name for p in media.rglob(".tmp-*")] == []  # no half-written file holds the space

            filler.unlink()  # the operator frees space
            wait_until(
                lambda: _task(client, task_id)["state"] == "completed", 60, "completed once space is back"
            )
            done = _task(client, task_id)
            video = httpx.get(done["video"]["url"], timeout=30)
            assert video.status_code == 200 and decode_mp4(video.content).frames > 0
        assert [p.name for p in media.rglob(".tmp-*")] == []
        money_settled_once(settings, {task_id: "completed"})
        ledger_verifies(settings)
