"""The sandbox's render primitives make real media: sizes, frame counts, keyframes, audio, placement."""

from __future__ import annotations

import io
import itertools
import threading
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from dreamrelay.sandbox import render
from dreamrelay.sandbox.render import RenderSpec, SourcePosition
from tests.support.media import mean_abs_diff

RED = (220, 30, 30)


def _solid_png(colour: tuple[int, int, int], size: tuple[int, int] = (64, 64)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, format="PNG")
    return out.getvalue()


def _clip(
    path: Path, *, frames: int = 25, size: tuple[int, int] = (160, 96), start: bytes | None = None
) -> Path:
    render.render_video(
        RenderSpec(
            prompt="a small test clip", width=size[0], height=size[1], frames=frames, start_image=start
        ),
        path,
    )
    return path


def _frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def _streams(path: Path) -> dict[str, str]:
    with av.open(str(path)) as container:
        return {s.type: s.codec_context.name for s in container.streams}


def test_clip_sizes_and_lengths() -> None:
    assert render.frame_count("5s") == 121
    assert render.frame_count("10s") == 241
    assert render.dimensions("360p", "16:9") == (640, 360)
    assert render.dimensions("360p", "9:16") == (360, 640)
    assert min(render.dimensions("360p", "21:9")) == 360
    assert render.dimensions("720p", "16:9") == (1360, 752)  # Luma's ray-2 size, unchanged


def test_videos_have_a_keyframe_every_gop(tmp_path: Path) -> None:
    clip = _clip(tmp_path / "a.mp4", frames=121)
    with av.open(str(clip)) as container:
        stream = container.streams.video[0]
        keyframes = [p.pts for p in container.demux(stream) if p.is_keyframe]
        assert stream.frames == 121
        assert stream.average_rate is not None and stream.time_base is not None
        step = round(render.GOP_FRAMES / (stream.average_rate * stream.time_base))
    assert len(keyframes) == 3  # frames 0, 48 and 96
    assert None not in keyframes
    assert [b - a for a, b in itertools.pairwise(keyframes)] == [step, step]  # type: ignore[operator]


def test_add_audio_adds_aac_and_keeps_the_video_packets(tmp_path: Path) -> None:
    source = _clip(tmp_path / "a.mp4")
    render.add_audio(source, tmp_path / "b.mp4", "rain on a tin roof")
    assert _streams(tmp_path / "b.mp4") == {"video": "h264", "audio": "aac"}
    with av.open(str(tmp_path / "b.mp4")) as container:
        audio = container.streams.audio[0]
        assert audio.sample_rate == render.AUDIO_RATE and audio.channels == 2
        assert audio.duration is not None and audio.time_base is not None
        audio_seconds = float(audio.duration * audio.time_base)
        samples = np.concatenate([f.to_ndarray()[0] for f in container.decode(audio=0)])
    assert abs(audio_seconds - 25 / 24) < 0.1
    assert np.abs(samples).max() > 0.05  # not silence
    before, after = _frames(source), _frames(tmp_path / "b.mp4")
    assert len(after) == len(before) and all(np.array_equal(a, b) for a, b in zip(before, after, strict=True))


def test_upscale_has_more_pixels_and_keeps_frames_and_audio(tmp_path: Path) -> None:
    render.add_audio(_clip(tmp_path / "a.mp4"), tmp_path / "b.mp4", "hum")
    size = render.upscaled_dimensions(160, 96, "540p")
    assert size == (900, 540)
    assert render.upscale_video(tmp_path / "b.mp4", tmp_path / "c.mp4", size) == 25
    frames = _frames(tmp_path / "c.mp4")
    assert frames[0].shape == (540, 900, 3) and len(frames) == 25
    assert _streams(tmp_path / "c.mp4") == {"video": "h264", "audio": "aac"}
    with pytest.raises(ValueError, match="not larger"):
        render.upscale_video(tmp_path / "b.mp4", tmp_path / "d.mp4", (160, 96))


def test_reframe_places_the_source_where_asked(tmp_path: Path) -> None:
    source = _clip(tmp_path / "a.mp4", start=_solid_png(RED))
    position = SourcePosition(x=0.0, y=0.5, w=1.0, h=0.5)  # bottom half of a portrait canvas
    assert render.reframe_video(source, tmp_path / "b.mp4", (96, 160), position, prompt="a beach") == 25
    frames = _frames(tmp_path / "b.mp4")
    assert frames[0].shape == (160, 96, 3) and len(frames) == 25
    inside, outside = frames[-1][120, 48], frames[-1][30, 48]
    assert np.abs(inside.astype(int) - RED).max() < 30
    assert np.abs(outside.astype(int) - RED).max() > 60


def test_the_default_position_fits_the_whole_source_in_the_middle() -> None:
    position = SourcePosition.centred_fit((1600, 900), (900, 1600))
    assert position.box((900, 1600)) == (0, 547, 900, 506)
    with pytest.raises(ValueError):
        SourcePosition(x=0.5, y=0, w=0, h=1)


def test_edit_starts_from_the_source_frames_by_strength(tmp_path: Path) -> None:
    source = _clip(tmp_path / "a.mp4")
    render.edit_video(source, tmp_path / "light.mp4", "make it blue", render.EDIT_WEIGHTS["adhere_1"])
    render.edit_video(source, tmp_path / "heavy.mp4", "make it blue", render.EDIT_WEIGHTS["reimagine_3"])
    original, light, heavy = _frames(source), _frames(tmp_path / "light.mp4"), _frames(tmp_path / "heavy.mp4")
    assert len(light) == len(heavy) == len(original)
    assert light[0].shape == original[0].shape
    assert mean_abs_diff(light[0], original[0]) < mean_abs_diff(heavy[0], original[0])
    assert 1 < mean_abs_diff(light[0], original[0]) < 25


def test_a_cancelled_render_leaves_no_file(tmp_path: Path) -> None:
    source = _clip(tmp_path / "a.mp4")
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(render.RenderCancelled):
        render.edit_video(source, tmp_path / "b.mp4", "x", 0.4, cancel=cancel)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.mp4"]


@pytest.mark.parametrize(
    ("fmt", "magic", "kind"), [("png", b"\x89PNG", "PNG"), ("jpg", b"\xff\xd8\xff", "JPEG")]
)
def test_pictures_come_in_the_asked_format(fmt: str, magic: bytes, kind: str) -> None:
    width, height = render.image_dimensions("16:9", megapixels=0.05)
    data = render.render_picture("a lighthouse", width, height, fmt=fmt)
    assert data.startswith(magic)
    image = Image.open(io.BytesIO(data))
    assert (image.format, image.size) == (kind, (width, height))


def test_a_full_weight_reference_is_the_picture() -> None:
    data = render.render_picture("x", 64, 64, references=[(_solid_png(RED), 1.0)], fmt="png")
    pixels = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    assert np.abs(pixels.astype(int) - RED).max() <= 1


def test_image_reframe_places_the_source(tmp_path: Path) -> None:
    data = render.reframe_image(_solid_png(RED), (200, 100), SourcePosition(0.5, 0, 0.5, 1), fmt="png")
    pixels = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    assert pixels.shape == (100, 200, 3)
    assert tuple(pixels[50, 150]) == RED
    assert tuple(pixels[50, 40]) != RED


def test_an_edit_with_a_first_frame_takes_its_look(tmp_path: Path) -> None:
    source = _clip(tmp_path / "a.mp4")
    render.edit_video(source, tmp_path / "b.mp4", "x", 1.0, first_frame=_solid_png(RED))
    assert np.abs(_frames(tmp_path / "b.mp4")[0][48, 80].astype(int) - RED).max() < 30


def test_a_spec_rendered_before_in_this_process_is_written_from_the_cache(tmp_path: Path) -> None:
    spec = RenderSpec(prompt="rendered once, written twice", width=160, height=96, frames=25)
    render.render_video(spec, tmp_path / "first.mp4")
    assert render.RENDERS.get(spec.cache_key) == (tmp_path / "first.mp4").read_bytes()
    render.render_video(spec, tmp_path / "second.mp4")
    assert (tmp_path / "second.mp4").read_bytes() == (tmp_path / "first.mp4").read_bytes()
    with av.open(str(tmp_path / "second.mp4")) as container:
        assert sum(1 for _ in container.decode(video=0)) == 25
    assert sorted(p.name for p in tmp_path.iterdir()) == ["first.mp4", "second.mp4"]  # no partial left
    cancelled = RenderSpec(prompt="cancelled before its first frame", width=160, height=96, frames=25)
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(render.RenderCancelled):
        render.render_video(cancelled, tmp_path / "never.mp4", cancel)
    assert render.RENDERS.get(cancelled.cache_key) is None  # only finished clips are kept


def test_the_render_cache_keeps_the_most_recently_used_within_its_budget() -> None:
    cache = render.RenderCache(budget=400)  # a clip over 50 bytes is not kept
    for name in "abcdefgh":
        cache.put(name, name.encode() * 50)  # 400 bytes: full
    assert cache.get("a") == b"a" * 50  # now the most recently used
    cache.put("i", b"i" * 50)  # over the budget: "b", the least recently used, goes
    assert [name for name in "abcdefghi" if cache.get(name) is None] == ["b"]
    cache.put("big", b"x" * 51)
    assert cache.get("big") is None
    cache.put("a", b"A" * 10)  # replaced, counted once: 360 bytes
    cache.put("j", b"j" * 40)  # 400: nothing goes
    assert cache.get("a") == b"A" * 10
    assert [name for name in "acdefghij" if cache.get(name) is None] == []
