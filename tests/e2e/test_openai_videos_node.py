"""The unchanged openai Node SDK (7.55.0, pinned by tests/node/openai_videos/package-lock.json) against
DreamRelay's /v1/videos: create with a file as the first frame, poll as openai-poll-after-ms says, then
downloadContent of the video (H.264 of the asked length) and of the thumbnail (a JPEG); then edit the video
by id (Ray 3.2). The Node SDK 7.55.0 has no `videos.createAndPoll` (only the Python SDK has it), so the
script polls with retrieve, as a Node customer does (docs/customers.md).

`npm ci` installs the locked SDK into that folder on first use. Without node or npm the test is skipped
with the reason, except under CI=true, where it must run.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from openai.types import Video
from PIL import Image

from tests.conftest import Relay
from tests.support.media import decode_mp4, open_jpeg

FOLDER = Path(__file__).resolve().parents[1] / "node" / "openai_videos"


def _node_sdk() -> Path:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        if os.environ.get("CI") == "true":
            pytest.fail("node and npm are needed for the Node openai SDK test under CI=true")
        pytest.skip("node/npm not installed: the Node openai SDK test needs them (apt-get nodejs npm)")
    if not (FOLDER / "node_modules" / "openai" / "package.json").is_file():
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=FOLDER,
            check=True,
            capture_output=True,
            timeout=300,
        )
    return FOLDER


def test_the_node_sdk_creates_polls_and_downloads(relay: Relay, tmp_path: Path) -> None:
    sdk = _node_sdk()
    frame = io.BytesIO()
    Image.new("RGB", (96, 54), (30, 160, 90)).save(frame, format="PNG")
    (tmp_path / "frame.png").write_bytes(frame.getvalue())
    result = subprocess.run(
        ["node", str(sdk / "videos_check.js"), f"{relay.url}/v1", relay.key, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=sdk,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    video = out["video"]  # (the Python SDK's strict model knows only Sora's four sizes)
    assert set(video) == set(Video.model_fields)
    assert tuple(video[k] for k in ("status", "model", "seconds", "size", "progress")) == (
        "completed",
        "ray-2",
        "5",
        "960x540",
        100,
    )
    assert out["not_found"] == "NotFoundError 404"
    assert out["helpers"] == []  # 7.55.0 has no videos.createAndPoll: the day it has, this test uses it
    edited = out["edited"]
    assert (edited["status"], edited["model"], edited["seconds"], edited["size"]) == (
        "completed",
        "ray-3.2",
        "5",
        "960x540",
    )
    clip = decode_mp4((tmp_path / "video.mp4").read_bytes())
    assert clip.codec == "h264" and abs(clip.duration - 5.0) < 0.5
    assert open_jpeg((tmp_path / "thumbnail.jpg").read_bytes()).width > 0


def test_the_node_example_of_the_customer_docs_runs_as_written(relay: Relay, tmp_path: Path) -> None:
    """docs/customers.md §7's Node block, as an ES module with the locked SDK: it writes an H.264 file."""
    sdk = _node_sdk()
    page = (Path(__file__).resolve().parents[2] / "docs" / "customers.md").read_text()
    (source,) = re.findall(r"```js\n(.*?)```", page, re.DOTALL)
    (tmp_path / "node_modules").symlink_to(sdk / "node_modules")
    (tmp_path / "example.mjs").write_text(source)
    env = {**os.environ, "DREAMRELAY_API_KEY": relay.key, "DREAMRELAY_BASE_URL": relay.url}
    result = subprocess.run(
        ["node", "example.mjs"], capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env
    )
    assert result.returncode == 0, result.stderr[-2000:]
    clip = decode_mp4((tmp_path / "lantern.mp4").read_bytes())
    assert clip.codec == "h264" and abs(clip.duration - 5.0) < 0.5
