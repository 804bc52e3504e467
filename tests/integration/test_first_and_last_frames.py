"""The thumbnail and the last frame are the video's very first and last frames, whether the last one
is found by seeking to the last keyframe (several GOPs) or by decoding from the start (one GOP)."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from dreamrelay.media import probe
from dreamrelay.sandbox import render


def _every_frame(path: Path) -> list[av.VideoFrame]:
    with av.open(str(path)) as container:
        return list(container.decode(container.streams.video[0]))


def _one_gop(source: Path, target: Path) -> None:
    """The same frames re-encoded with a single keyframe."""
    frames = [f.to_ndarray(format="rgb24") for f in _every_frame(source)]
    with av.open(str(target), "w") as out:
        stream = out.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        stream.codec_context.gop_size = 10_000
        stream.options = {"x264-params": "keyint=10000:min-keyint=10000:scenecut=0"}
        for array in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


@pytest.mark.parametrize("gops", ["several", "one"])
def test_first_and_last_frames_are_the_videos_own(tmp_path: Path, gops: str) -> None:
    rendered = tmp_path / "rendered.mp4"
    width, height = render.dimensions("360p", "16:9")
    render.render_video(render.RenderSpec("frames", width, height, render.frame_count("5s")), rendered)
    video = rendered
    if gops == "one":
        video = tmp_path / "one-gop.mp4"
        _one_gop(rendered, video)
    frames = _every_frame(video)
    keyframes = sum(1 for f in frames if f.key_frame)
    assert keyframes == (1 if gops == "one" else 3)  # 121 frames, a keyframe every 48 when several
    first, last = probe.first_and_last_frames(video)
    assert np.array_equal(np.asarray(first), frames[0].to_ndarray(format="rgb24"))
    assert np.array_equal(np.asarray(last), frames[-1].to_ndarray(format="rgb24"))
    assert not np.array_equal(np.asarray(first), np.asarray(last))
