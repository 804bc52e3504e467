"""Finishing a task: what the relay's CPU pays per finished video (download from the upstream, probe,
thumbnail, last frame, palette, the two JPEGs, storing the files) — `services/follow.py::_copy_media`
itself, on videos the sandbox renders (H.264, a keyframe every 2 s).

The video is served by a separate process (`python -m http.server`), so the CPU read here (this
process, every thread, from getrusage) is the relay's alone. Same-run baseline: the same copy with
the last frame found by decoding every frame (how `media/probe.py` did it before issue 15; kept
here as `_every_frame_first_and_last`), in alternated rounds.
"""

from __future__ import annotations

import asyncio
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import av
from PIL import Image

from bench import servers
from bench.options import Options
from dreamrelay.domain.task import Task
from dreamrelay.media import probe
from dreamrelay.netguard import parse_networks
from dreamrelay.runtime import Runtime
from dreamrelay.sandbox import render
from dreamrelay.services import follow
from dreamrelay.settings import Settings

VIDEOS = (("5 s 720p", "720p", "5s"), ("10 s 1080p", "1080p", "10s"))
ROUNDS = 5


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _every_frame_first_and_last(path: Path) -> tuple[Image.Image, Image.Image]:
    """The baseline: decode the whole video once, keep the first and the last frame."""
    first: Image.Image | None = None
    last = None
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            if first is None:
                first = frame.to_image()  # type: ignore[no-untyped-call]
            last = frame
    assert first is not None and last is not None
    return first, last.to_image()  # type: ignore[no-untyped-call]


def _frames(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(container.streams.video[0]))


def run(opts: Options, work: Path) -> dict[str, Any]:
    media = work / "finishing-media"
    media.mkdir(parents=True, exist_ok=True)
    port = servers.free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", servers.HOST, "--directory", str(media)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    out: dict[str, Any] = {"rounds": ROUNDS}
    try:
        for label, resolution, duration in VIDEOS:
            width, height = render.dimensions(resolution, "16:9")
            name = f"{resolution}-{duration}.mp4"
            spec = render.RenderSpec(f"finishing {label}", width, height, render.frame_count(duration))
            render.render_video(spec, media / name)
            out[label] = asyncio.run(_measure(work, f"http://{servers.HOST}:{port}/{name}", media / name))
            f = out[label]
            print(
                f"[finishing] {label} ({width}×{height}, {f['frames']} frames, {f['bytes']:,} bytes): "
                f"{f['copy_cpu_ms_median']:.1f} ms CPU per finished video; with every frame decoded "
                f"(before) {f['every_frame_cpu_ms_median']:.1f} ms",
                flush=True,
            )
    finally:
        server.terminate()
        server.wait(timeout=10)
    return out


async def _measure(work: Path, url: str, path: Path) -> dict[str, Any]:
    settings = Settings(data_dir=work / "finishing-relay")
    current = probe.first_and_last_frames
    sides: dict[str, list[float]] = {"now": [], "every frame": []}
    size = await asyncio.to_thread(lambda: path.stat().st_size)
    async with Runtime.from_settings(settings) as rt:
        # The video server is on loopback: allowed as a channel's `media_networks` would allow it.
        policy = rt.url_policy.with_networks(parse_networks("127.0.0.0/8"))
        source = follow.MediaSource(rt.guarded_session_for(policy), policy)
        for turn in range(ROUNDS + 1):  # the first round is a warm-up
            order = ("now", "every frame") if turn % 2 == 0 else ("every frame", "now")
            for side in order:
                probe.first_and_last_frames = current if side == "now" else _every_frame_first_and_last
                task = cast(Task, SimpleNamespace(id=f"finishing-{turn}-{time.time_ns()}"))
                before = _cpu()
                try:
                    await follow.copy_media(rt, task, url, source)
                finally:
                    probe.first_and_last_frames = current
                if turn:
                    sides[side].append((_cpu() - before) * 1000)
    return {
        "frames": await asyncio.to_thread(_frames, path),
        "bytes": size,
        "copy_cpu_ms": [round(x, 1) for x in sides["now"]],
        "copy_cpu_ms_median": round(statistics.median(sides["now"]), 1),
        "every_frame_cpu_ms": [round(x, 1) for x in sides["every frame"]],
        "every_frame_cpu_ms_median": round(statistics.median(sides["every frame"]), 1),
    }
