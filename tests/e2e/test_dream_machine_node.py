"""The official Node `lumaai` SDK, unchanged, against DreamRelay's Dream Machine API: every new endpoint.

The package is installed with npm (pinned) into a cache folder on first use. Without node or npm the
test is skipped with the reason, except under CI=true, where it must run.
"""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import av
import httpx
import pytest
from lumaai.types import Generation
from PIL import Image

from tests.conftest import Relay, make_settings, start_relay
from tests.support.media import decode_mp4

NODE_SDK = "lumaai@1.19.1"
OFFICIAL = "/dream-machine/v1"

SCRIPT = r"""
const LumaAI = require('lumaai');
const [baseURL, authToken, redPng] = process.argv.slice(2);
const client = new LumaAI({ baseURL, authToken, maxRetries: 0 });
const red = 'data:image/png;base64,' + redPng;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function done(created) {
  for (let i = 0; i < 1200; i++) {
    const g = await client.generations.get(created.id);
    if (g.state === 'completed' || g.state === 'failed') return g;
    await sleep(100);
  }
  throw new Error('generation ' + created.id + ' never finished');
}
(async () => {
  const out = {};
  const g = client.generations;
  out.concepts = await g.concepts.list();
  out.image = await done(await g.image.create({
    model: 'photon-flash-1', prompt: 'a kite', aspect_ratio: '1:1', format: 'png',
    image_ref: [{ url: red, weight: 0.3 }],
  }));
  out.video = await done(await g.create({
    model: 'ray-2', prompt: 'red', aspect_ratio: '1:1', resolution: '540p',
    keyframes: { frame0: { type: 'image', url: red } },
  }));
  const source = { url: out.video.assets.video };
  out.upscale = await done(await g.upscale(out.video.id, {
    generation_type: 'upscale_video', resolution: '720p',
  }));
  out.audio = await done(await g.audio(out.video.id, { generation_type: 'add_audio', prompt: 'rain' }));
  out.reframe_video = await done(await g.video.reframe({
    generation_type: 'reframe_video', model: 'ray-2', aspect_ratio: '16:9', media: source,
  }));
  out.modify = await done(await g.video.modify({
    generation_type: 'modify_video', model: 'ray-flash-2', mode: 'flex_1', media: source, prompt: 'snow',
  }));
  out.reframe_image = await done(await g.image.reframe({
    generation_type: 'reframe_image', model: 'photon-1', aspect_ratio: '9:16',
    media: { url: out.image.assets.image }, format: 'jpg',
  }));
  try {
    await g.upscale('00000000-0000-4000-8000-000000000000', { resolution: '1080p' });
  } catch (e) {
    out.not_found = e.constructor.name + ' ' + e.status;
  }
  console.log(JSON.stringify(out));
})().catch((e) => { console.error(e); process.exit(1); });
"""


def _cache() -> Path:
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return root / "dreamrelay" / f"npm-{NODE_SDK.replace('@', '-')}"


def _node_sdk() -> Path:
    """A folder whose node_modules holds the pinned SDK (installed once, atomically)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        if os.environ.get("CI") == "true":
            pytest.fail("node and npm are needed for the Node lumaai SDK test under CI=true")
        pytest.skip(
            "node/npm not installed: the Node lumaai SDK test needs them (apt-get install nodejs npm)"
        )
    folder = _cache()
    if not (folder / "node_modules" / "lumaai" / "package.json").is_file():
        folder.parent.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".installing-"))
        try:
            subprocess.run(
                [
                    npm,
                    "install",
                    "--no-audit",
                    "--no-fund",
                    "--loglevel=error",
                    "--prefix",
                    str(scratch),
                    NODE_SDK,
                ],
                check=True,
                capture_output=True,
                timeout=300,
            )
            scratch.replace(folder) if not folder.exists() else shutil.rmtree(scratch)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    return folder


@pytest.fixture
def relay(tmp_path: Path) -> Iterator[Relay]:
    with start_relay(make_settings(tmp_path)) as running:
        yield running


def test_the_node_sdk_reaches_every_new_endpoint(relay: Relay, tmp_path: Path) -> None:
    sdk = _node_sdk()
    script = sdk / "dream_machine_check.js"
    script.write_text(SCRIPT)
    red = io.BytesIO()
    Image.new("RGB", (32, 32), (220, 30, 30)).save(red, format="PNG")
    result = subprocess.run(
        ["node", str(script), relay.url + OFFICIAL, relay.key, base64.b64encode(red.getvalue()).decode()],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=sdk,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert "dolly_zoom" in out["concepts"]
    for name in ("image", "video", "upscale", "audio", "reframe_video", "modify", "reframe_image"):
        generation = Generation.model_validate(out[name])
        assert generation.state == "completed", (name, generation.failure_reason)
    assert out["not_found"] == "NotFoundError 404"
    with httpx.Client(timeout=30) as plain:
        assert Image.open(io.BytesIO(plain.get(out["image"]["assets"]["image"]).content)).format == "PNG"
        assert (
            Image.open(io.BytesIO(plain.get(out["reframe_image"]["assets"]["image"]).content)).format
            == "JPEG"
        )
        upscaled = decode_mp4(plain.get(out["upscale"]["assets"]["video"]).content)
        assert (upscaled.width, upscaled.height) == (1024, 1024)
        with av.open(io.BytesIO(plain.get(out["audio"]["assets"]["video"]).content)) as container:
            assert [s.codec_context.name for s in container.streams.audio] == ["aac"]
        reframed = decode_mp4(plain.get(out["reframe_video"]["assets"]["video"]).content)
        assert (reframed.width, reframed.height) == (1366, 768)
