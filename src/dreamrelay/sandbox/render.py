"""The sandbox's renderer: real media that show what was asked for, made cheaply (2 shared cores).

Every MP4 is H.264 (yuv420p, 24 fps) with a keyframe every `GOP_SECONDS`, so a player (or a probe
that wants only the last frame) can seek and decode one group of pictures.

- Text-to-video: a colour field derived from the prompt drifts while the prompt's words scroll by.
- Image-to-video: the start image drifts sideways; an end image crossfades in; loop returns to frame one.
- Upscale: the source's frames at a larger size (its audio kept).
- Add audio: the source's video packets copied untouched, plus an AAC track made from the prompt.
- Reframe: a canvas of the new size (the prompt's colour field) with the source scaled into the
  rectangle a `Placement` names; images the same way.
- Edit / modify: every source frame, blended towards the prompt's look (or a given first frame)
  as strongly as the mode asks; same size, frame count and audio as the source.
- Images: the prompt's colour field with its caption, reference images showing through by weight,
  as PNG or JPEG.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import math
import textwrap
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
from av.container import OutputContainer
from PIL import Image, ImageDraw, ImageFont

from dreamrelay.media.probe import open_image

FPS = 24
# Luma's ray-2 output sizes at 720p; other resolutions scale them (rounded to multiples of 16).
_SIZES_720P = {
    "16:9": (1360, 752),
    "9:16": (752, 1360),
    "1:1": (1024, 1024),
    "4:3": (1168, 880),
    "3:4": (880, 1168),
    "21:9": (1568, 672),
    "9:21": (672, 1568),
}
_SCALE = {"540p": 0.75, "720p": 1.0, "1080p": 1.5, "4k": 3.0}
_SECONDS = {"5s": 5, "9s": 9, "10s": 10}
DRAFT_LINES = 360  # 360p draft clips: the short side is exactly 360 lines
GOP_SECONDS = 2  # a keyframe every 2 s (and on frame one)
GOP_FRAMES = GOP_SECONDS * FPS
AUDIO_RATE = 48_000


def dimensions(resolution: str, aspect_ratio: str) -> tuple[int, int]:
    """Frame size of a clip: Luma's ray-2 sizes scaled by resolution; 360p has a 360-line short side."""
    width, height = _SIZES_720P.get(aspect_ratio, _SIZES_720P["16:9"])
    if resolution == "360p":
        across, down = _ratio(aspect_ratio)
        scale = DRAFT_LINES / min(across, down)
        return _round2(across * scale), _round2(down * scale)
    scale = _SCALE.get(resolution, 1.0)
    return _round16(width * scale), _round16(height * scale)


def frame_count(duration: str) -> int:
    """5 s → 121 frames, 9 s → 217, 10 s → 241 (24 fps, both ends included)."""
    return _SECONDS.get(duration, 5) * FPS + 1


def _round16(value: float) -> int:
    return max(16, round(value / 16) * 16)


def _round2(value: float) -> int:
    return max(2, round(value / 2) * 2)


def _ratio(aspect_ratio: str) -> tuple[int, int]:
    across, _, down = aspect_ratio.partition(":")
    try:
        return max(1, int(across)), max(1, int(down))
    except ValueError:
        return 16, 9


@dataclass(frozen=True)
class RenderSpec:
    prompt: str
    width: int
    height: int
    frames: int
    fps: int = FPS
    loop: bool = False
    start_image: bytes | None = None
    end_image: bytes | None = None

    @property
    def cache_key(self) -> str:
        digest = hashlib.sha256()
        for part in (self.prompt, self.width, self.height, self.frames, self.fps, self.loop):
            digest.update(repr(part).encode())
        for image in (self.start_image, self.end_image):
            digest.update(hashlib.sha256(image).digest() if image else b"-")
        return digest.hexdigest()[:32]


class RenderCancelled(Exception):
    """The render was asked to stop (its generation was deleted or the sandbox is stopping)."""


class RenderCache:
    """This process's finished clips by `RenderSpec.cache_key`, within `budget` bytes (the least
    recently used go first; a clip over an eighth of it is not kept). A spec asked for again, by any
    sandbox of the process and any API family, is written from here: an encode costs about a second
    of CPU (0.7 s at 540p, 1.3 s at 720p), a copy next to nothing."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self._clips: OrderedDict[str, bytes] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def get(self, key: str) -> bytes | None:
        with self._lock:
            clip = self._clips.get(key)
            if clip is not None:
                self._clips.move_to_end(key)
            return clip

    def put(self, key: str, clip: bytes) -> None:
        if len(clip) > self.budget // 8:
            return
        with self._lock:
            replaced = self._clips.pop(key, None)
            self._size += len(clip) - (len(replaced) if replaced is not None else 0)
            self._clips[key] = clip
            while self._size > self.budget:
                _key, dropped = self._clips.popitem(last=False)
                self._size -= len(dropped)


RENDERS = RenderCache(budget=64 * 1024 * 1024)


def render_video(spec: RenderSpec, target: Path, cancel: threading.Event | None = None) -> None:
    """Write the MP4 for `spec` to `target` (atomically: a partial file never has the final name),
    from RENDERS when this process rendered the same spec before.

    Each render writes its own partial file, so two renders of one spec never share a file; a set
    `cancel` event stops the render between frames (RenderCancelled) and its partial file is removed.
    """
    key = spec.cache_key
    rendered = RENDERS.get(key)
    if rendered is not None:
        with _partial(target) as partial:
            partial.write_bytes(rendered)
        return
    frames = _Frames(spec)
    with _partial(target) as partial:
        with _mp4(partial) as container:
            stream = _h264(container, spec.width, spec.height, spec.fps)
            _encode(container, stream, (frames.frame(i) for i in range(spec.frames)), cancel, target)
        RENDERS.put(key, partial.read_bytes())


Planes = tuple[np.ndarray, np.ndarray, np.ndarray]  # Y, U and V of a yuv420p picture


class _Frames:
    """A clip's frames, made straight in the encoder's yuv420p: its pictures (the prompt's field and
    caption, the start and end images) are converted once and each frame is slices and blends of their
    planes. Converting every frame from RGB took two thirds of a render's CPU. Sideways moves go in steps
    of two pixels (chroma is half as wide)."""

    def __init__(self, spec: RenderSpec) -> None:
        self.spec = spec
        size = (spec.width, spec.height)
        self.start = _yuv420_planes(_fit(open_image(spec.start_image), size)) if spec.start_image else None
        self.end = _yuv420_planes(_fit(open_image(spec.end_image), size)) if spec.end_image else None
        if self.start is None:
            # A field twice as wide as the frame, so it can drift sideways for the whole clip.
            self.field = _yuv420_planes(_prompt_field(spec.prompt, spec.width * 2, spec.height))
            self.mask, glyphs = _caption(spec.prompt, spec.width, spec.height)
            glyph_y, glyph_u, glyph_v = _yuv420_planes(np.tile(glyphs, (2, 2, 1)))
            self.glyph = (glyph_y[0, 0], glyph_u[0, 0], glyph_v[0, 0])

    def frame(self, index: int) -> av.VideoFrame:
        spec = self.spec
        progress = index / max(spec.frames - 1, 1)
        # A loop travels out and back, so its last frame is its first.
        travel = 1 - abs(1 - 2 * progress) if spec.loop else progress
        planes = self._image_planes(travel) if self.start is not None else self._text_planes(travel)
        if self.end is not None and not spec.loop:
            weight = round(min(max((progress - 0.4) / 0.6, 0.0), 1.0) * 256)
            if weight > 0:
                y, u, v = (
                    ((plane.astype(np.uint16) * (256 - weight) + end.astype(np.uint16) * weight) >> 8).astype(
                        np.uint8
                    )
                    for plane, end in zip(planes, self.end, strict=True)
                )
                planes = (y, u, v)
        return _yuv420_frame(planes)

    def _image_planes(self, travel: float) -> Planes:
        """The picture drifts left (edge pixels fill in behind it); frame one is the image itself."""
        assert self.start is not None
        half = int(self.spec.width * 0.08 * travel) // 2
        if half == 0:
            return self.start
        y, u, v = self.start
        return _drifted(y, 2 * half), _drifted(u, half), _drifted(v, half)

    def _text_planes(self, travel: float) -> Planes:
        """The field drifts sideways under the caption, which scrolls up through the clip."""
        width, half = self.spec.width, int(travel * self.spec.width) // 2
        y, u, v = self.field
        luma = y[:, 2 * half : 2 * half + width].copy()
        blue = u[:, half : half + width // 2].copy()
        red = v[:, half : half + width // 2].copy()
        rows = np.roll(self.mask, int((0.5 - travel) * self.spec.height * 0.3), axis=0)
        luma[rows] = self.glyph[0]
        blue[rows[::2, ::2]] = self.glyph[1]
        red[rows[::2, ::2]] = self.glyph[2]
        return luma, blue, red


def _drifted(plane: np.ndarray, shift: int) -> np.ndarray:
    moved = np.empty_like(plane)
    moved[:, :-shift] = plane[:, shift:]
    moved[:, -shift:] = plane[:, -1:]
    return moved


def _yuv420_planes(picture: np.ndarray) -> Planes:
    """Y, U and V of an RGB picture (even sides), converted as the encoder would convert it."""
    rgb = av.VideoFrame.from_ndarray(np.ascontiguousarray(picture), format="rgb24")
    y, u, v = (
        np.frombuffer(memoryview(plane), np.uint8).reshape(plane.height, plane.line_size)[:, : plane.width]
        for plane in rgb.reformat(format="yuv420p").planes
    )
    return y, u, v


def _yuv420_frame(planes: Planes) -> av.VideoFrame:
    y, u, v = planes
    height, width = y.shape
    packed = np.concatenate((y.ravel(), u.ravel(), v.ravel())).reshape(height * 3 // 2, width)
    return av.VideoFrame.from_ndarray(packed, format="yuv420p")


def _fit(image: Image.Image, size: tuple[int, int]) -> np.ndarray:
    """Scale and centre-crop to cover `size`."""
    width, height = size
    scale = max(width / image.width, height / image.height)
    resized = image.resize(
        (max(width, round(image.width * scale)), max(height, round(image.height * scale))),
        Image.Resampling.BILINEAR,
    )
    left, top = (resized.width - width) // 2, (resized.height - height) // 2
    return np.asarray(resized.crop((left, top, left + width, top + height)).convert("RGB"))


def _prompt_field(prompt: str, width: int, height: int) -> np.ndarray:
    seed = hashlib.sha256(prompt.encode()).digest()
    left = np.array(list(seed[0:3]), dtype=np.float32)
    right = np.array(list(seed[3:6]), dtype=np.float32)
    across = np.linspace(0, 1, width, dtype=np.float32)[None, :, None]
    down = np.linspace(0, 1, height, dtype=np.float32)[:, None, None]
    waves = 0.5 + 0.5 * np.sin(across * np.pi * 6 + down * np.pi * (2 + seed[6] % 4))
    colours = left * (1 - across) + right * across
    picture = colours * (0.55 + 0.45 * waves)
    return np.clip(picture, 0, 255).astype(np.uint8)


def _caption(prompt: str, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """White prompt text (a mask and its colour) to lay over the drifting field."""
    font_size = max(16, height // 18)
    font = ImageFont.load_default(size=font_size)
    lines = textwrap.wrap(prompt or "(no prompt)", width=max(12, int(width / (font_size * 0.6))))[:6]
    layer = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(layer)
    top = (height - len(lines) * font_size * 1.3) / 2
    for number, line in enumerate(lines):
        draw.text((width * 0.06, top + number * font_size * 1.3), line, fill=255, font=font)
    mask = np.asarray(layer) > 127
    return mask, np.array([245, 245, 245], dtype=np.uint8)


# Kling's image sizes per aspect ratio (about one megapixel, exact ratios).
IMAGE_SIZES = {
    "1:1": (1024, 1024),
    "16:9": (1280, 720),
    "9:16": (720, 1280),
    "4:3": (1152, 864),
    "3:4": (864, 1152),
    "3:2": (1248, 832),
    "2:3": (832, 1248),
}


def render_image(
    prompt: str,
    aspect_ratio: str,
    index: int,
    *,
    reference: bytes | None = None,
    fidelity: float = 0.5,
) -> bytes:
    """One JPEG of a Kling image task: the prompt's colour field (varied per index) under its caption;
    a reference image shows through with `fidelity` as its weight (1 = the reference itself)."""
    width, height = IMAGE_SIZES[aspect_ratio]
    picture = _prompt_field(f"{prompt}\x00{index}", width, height).astype(np.float32)
    if reference is not None:
        fitted = _fit(open_image(reference), (width, height)).astype(np.float32)
        picture = fitted * fidelity + picture * (1 - fidelity)
    result = np.clip(picture, 0, 255).astype(np.uint8)
    if reference is None or fidelity < 1:
        mask, glyphs = _caption(prompt, width, height)
        result[mask] = glyphs
    out = io.BytesIO()
    Image.fromarray(result).save(out, format="JPEG", quality=88)
    return out.getvalue()


# ---- writing MP4s ---------------------------------------------------------------------------------


@contextlib.contextmanager
def _partial(target: Path) -> Iterator[Path]:
    """An MP4 file of its own to write, renamed to `target` only when the block completes."""
    partial = target.with_name(f"{target.stem}.{uuid.uuid4().hex}.partial.mp4")
    try:
        yield partial
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)


def _mp4(path: Path) -> OutputContainer:
    return av.open(str(path), mode="w", format="mp4", options={"movflags": "+faststart"})


@contextlib.contextmanager
def _output(target: Path) -> Iterator[OutputContainer]:
    """An MP4 written to its own partial file and renamed to `target` only when complete."""
    with _partial(target) as partial, _mp4(partial) as container:
        yield container


def _h264(container: OutputContainer, width: int, height: int, fps: int) -> av.VideoStream:
    stream = container.add_stream("libx264", rate=fps)
    stream.width, stream.height = width, height
    stream.pix_fmt = "yuv420p"
    stream.codec_context.gop_size = GOP_FRAMES
    stream.options = {
        "preset": "ultrafast",
        "crf": "26",
        "tune": "fastdecode",
        # Fixed groups of pictures: a keyframe every GOP_FRAMES frames, never one more or less.
        "x264-params": f"keyint={GOP_FRAMES}:min-keyint={GOP_FRAMES}:scenecut=0",
    }
    return stream


def _encode(
    container: OutputContainer,
    stream: av.VideoStream,
    pictures: Iterable[np.ndarray | av.VideoFrame],
    cancel: threading.Event | None,
    target: Path,
) -> None:
    for picture in pictures:
        if cancel is not None and cancel.is_set():
            raise RenderCancelled(f"render of {target.name} cancelled")
        if isinstance(picture, np.ndarray):
            picture = av.VideoFrame.from_ndarray(picture, format="rgb24")
        container.mux(stream.encode(picture))
    container.mux(stream.encode(None))


def _transcode(
    source: Path,
    target: Path,
    size: tuple[int, int],
    fps: int,
    pictures: Iterable[np.ndarray | av.VideoFrame],
    cancel: threading.Event | None,
) -> None:
    """Write `pictures` as the video of `target`; the source's audio packets, if any, are copied as
    they are (muxed first: the muxer interleaves them with the video by time)."""
    with av.open(str(source)) as reader, _output(target) as container:
        audio_in = reader.streams.audio[0] if reader.streams.audio else None
        audio_out = container.add_stream_from_template(audio_in) if audio_in is not None else None
        video = _h264(container, size[0], size[1], fps)  # every stream exists before the first packet
        if audio_in is not None:
            for packet in reader.demux(audio_in):
                if packet.dts is None:
                    continue
                assert audio_out is not None
                packet.stream = audio_out
                container.mux(packet)
        _encode(container, video, pictures, cancel, target)


# ---- reading a source clip ------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceClip:
    width: int
    height: int
    frames: int
    fps: int
    has_audio: bool

    @property
    def seconds(self) -> float:
        return max(self.frames - 1, 1) / self.fps


def source_clip(path: Path) -> SourceClip:
    with av.open(str(path)) as container:
        if not container.streams.video:
            raise ValueError("the source has no video stream")
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate or FPS
        frames = stream.frames
        if not frames:  # not in the header: count them
            frames = sum(1 for _ in container.demux(stream) if _.size)
        return SourceClip(
            width=stream.codec_context.width,
            height=stream.codec_context.height,
            frames=frames,
            fps=max(1, round(float(rate))),
            has_audio=bool(container.streams.audio),
        )


def _source_frames(path: Path, size: tuple[int, int] | None = None) -> Iterator[np.ndarray]:
    """Every frame of the source as RGB, scaled by libswscale to `size` when given."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            if size is None:
                yield frame.to_ndarray(format="rgb24")
            else:
                yield frame.reformat(width=size[0], height=size[1], format="rgb24").to_ndarray()


def _scaled_frames(path: Path, size: tuple[int, int]) -> Iterator[av.VideoFrame]:
    """Every frame of the source scaled to `size`, staying in YUV (no RGB round trip: 5× cheaper)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            scaled = frame.reformat(width=size[0], height=size[1], format="yuv420p")
            scaled.pts = None
            yield scaled


# ---- video from a video ---------------------------------------------------------------------------


def transform_video(
    source: Path,
    target: Path,
    size: tuple[int, int],
    change: Callable[[int, np.ndarray], np.ndarray],
    cancel: threading.Event | None = None,
) -> int:
    """Each source frame (index, RGB array at the source's size) through `change`, encoded at `size`
    with the source's frame rate and audio; atomically, like render_video. Returns the frame count."""
    clip = source_clip(source)
    counted = 0

    def pictures() -> Iterator[np.ndarray]:
        nonlocal counted
        for index, frame in enumerate(_source_frames(source)):
            counted = index + 1
            yield change(index, frame)

    _transcode(source, target, size, clip.fps, pictures(), cancel)
    return counted


def video_size(path: Path) -> tuple[int, int]:
    clip = source_clip(path)
    return clip.width, clip.height


def upscale_video(
    source: Path, target: Path, size: tuple[int, int], cancel: threading.Event | None = None
) -> int:
    """The source's frames at `size` (more pixels), same frame count and frame rate, audio kept."""
    clip = source_clip(source)
    if size[0] * size[1] <= clip.width * clip.height:
        raise ValueError(f"{size[0]}x{size[1]} is not larger than the source's {clip.width}x{clip.height}")
    _transcode(source, target, size, clip.fps, _scaled_frames(source, size), cancel)
    return clip.frames


UPSCALE_LINES = {"540p": 540, "720p": 720, "1080p": 1080, "4k": 2160}


def upscaled_dimensions(width: int, height: int, resolution: str) -> tuple[int, int]:
    """The size an upscale to `resolution` gives a `width`×`height` clip: its short side gets the
    resolution's lines, its aspect ratio is kept (even sizes, as H.264 4:2:0 needs)."""
    scale = UPSCALE_LINES.get(resolution, 1080) / min(width, height)
    return _round2(width * scale), _round2(height * scale)


def add_audio(source: Path, target: Path, prompt: str, cancel: threading.Event | None = None) -> None:
    """The source's video packets copied as they are, plus an AAC stereo track as long as the video
    (any audio the source had is replaced). The sound is a chord picked from the prompt that swells
    and fades, so two prompts sound different."""
    clip = source_clip(source)
    with av.open(str(source)) as reader, _output(target) as container:
        video_in = reader.streams.video[0]
        audio = container.add_stream("aac", rate=AUDIO_RATE)
        audio.layout = "stereo"
        audio.bit_rate = 96_000
        video_out = container.add_stream_from_template(video_in)
        for samples in _tones(prompt, clip.frames / clip.fps):
            if cancel is not None and cancel.is_set():
                raise RenderCancelled(f"render of {target.name} cancelled")
            container.mux(audio.encode(samples))
        container.mux(audio.encode(None))
        for packet in reader.demux(video_in):
            if packet.dts is None:
                continue
            packet.stream = video_out
            container.mux(packet)


def _tones(prompt: str, seconds: float) -> Iterator[av.AudioFrame]:
    seed = hashlib.sha256(prompt.encode()).digest()
    base = 110.0 * 2 ** (seed[0] % 24 / 12)
    chord = [base, base * 2 ** (4 / 12 if seed[1] % 2 else 3 / 12), base * 1.5]
    total = int(seconds * AUDIO_RATE)
    chunk = 1024
    for start in range(0, total, chunk):
        moment = np.arange(start, min(start + chunk, total), dtype=np.float64) / AUDIO_RATE
        swell = np.sin(np.pi * np.clip(moment / seconds, 0, 1)) * 0.25
        wave = sum(np.sin(2 * np.pi * f * moment) for f in chord) / len(chord) * swell
        left = wave.astype(np.float32)
        right = (wave * 0.8).astype(np.float32)
        frame = av.AudioFrame.from_ndarray(np.stack([left, right]), format="fltp", layout="stereo")
        frame.sample_rate = AUDIO_RATE
        frame.pts = start
        yield frame


@dataclass(frozen=True)
class SourcePosition:
    """Where the source sits on a reframed canvas, as fractions of the canvas's width and height
    (the Agents API's `source_position`); it may bleed off the canvas, which then crops it."""

    x: float
    y: float
    w: float
    h: float

    def __post_init__(self) -> None:
        if not (self.w > 0 and self.h > 0):
            raise ValueError("source position needs a positive width and height")

    @classmethod
    def centred_fit(cls, source: tuple[int, int], canvas: tuple[int, int]) -> SourcePosition:
        """The default: the whole source, as large as fits, in the middle."""
        scale = min(canvas[0] / source[0], canvas[1] / source[1])
        w, h = source[0] * scale / canvas[0], source[1] * scale / canvas[1]
        return cls(x=(1 - w) / 2, y=(1 - h) / 2, w=w, h=h)

    def box(self, canvas: tuple[int, int]) -> tuple[int, int, int, int]:
        """(left, top, width, height) in canvas pixels (possibly partly off the canvas)."""
        width, height = canvas
        return (
            round(self.x * width),
            round(self.y * height),
            max(1, round(self.w * width)),
            max(1, round(self.h * height)),
        )


def _place(backdrop: np.ndarray, picture: Image.Image, position: SourcePosition) -> np.ndarray:
    """`picture` scaled into `position` on a copy of `backdrop`, cropped to the canvas."""
    height, width = backdrop.shape[:2]
    left, top, box_w, box_h = position.box((width, height))
    result = backdrop.copy()
    x0, y0, x1, y1 = max(left, 0), max(top, 0), min(left + box_w, width), min(top + box_h, height)
    if x0 < x1 and y0 < y1:
        placed = np.asarray(picture.convert("RGB").resize((box_w, box_h), Image.Resampling.BILINEAR))
        result[y0:y1, x0:x1] = placed[y0 - top : y1 - top, x0 - left : x1 - left]
    return result


def reframe_video(
    source: Path,
    target: Path,
    canvas: tuple[int, int],
    position: SourcePosition | None = None,
    cancel: threading.Event | None = None,
    *,
    prompt: str = "",
    backdrop: bytes | None = None,
) -> int:
    """A clip of size `canvas`: the source's frames placed where `position` says (default: centred,
    as large as fits) over the prompt's colour field (or the `backdrop` image, a first frame the
    customer gave), which stands for what an outpainting model adds."""
    clip = source_clip(source)
    placed = position or SourcePosition.centred_fit((clip.width, clip.height), canvas)
    around = _fit(open_image(backdrop), canvas) if backdrop else _prompt_field(prompt or "reframe", *canvas)
    left, top, box_w, box_h = placed.box(canvas)
    x0, y0 = max(left, 0), max(top, 0)
    x1, y1 = min(left + box_w, canvas[0]), min(top + box_h, canvas[1])

    def pictures() -> Iterator[np.ndarray]:
        # The source comes scaled to its box by libswscale; only the visible part is pasted.
        for frame in _source_frames(source, (box_w, box_h)):
            picture = around.copy()
            if x0 < x1 and y0 < y1:
                picture[y0:y1, x0:x1] = frame[y0 - top : y1 - top, x0 - left : x1 - left]
            yield picture

    _transcode(source, target, canvas, clip.fps, pictures(), cancel)
    return clip.frames


# How far an edit moves away from its source frames, per mode (Dream Machine modify `mode`, Agents API
# edit `strength`): adhere keeps the source recognisable, reimagine mostly replaces it.
EDIT_WEIGHTS = {
    **{f"adhere_{n}": 0.1 * n for n in (1, 2, 3)},
    **{f"flex_{n}": 0.3 + 0.1 * n for n in (1, 2, 3)},
    **{f"reimagine_{n}": 0.6 + 0.1 * n for n in (1, 2, 3)},
}


def edit_video(
    source: Path,
    target: Path,
    prompt: str,
    weight: float,
    cancel: threading.Event | None = None,
    *,
    first_frame: bytes | None = None,
) -> int:
    """Each source frame, in order, pulled towards the prompt's colour field (or `first_frame`, the
    look the customer gave for frame one) by `weight` (0 = the source itself); the source's size,
    frame count, frame rate and audio. Frame one is the source's frame one so moved: an edit visibly
    starts from the source."""
    size = video_size(source)
    look = _fit(open_image(first_frame), size) if first_frame else _prompt_field(prompt or "edit", *size)
    share = round(min(max(weight, 0.0), 1.0) * 256)
    tint = look.astype(np.uint16) * share

    def change(_index: int, picture: np.ndarray) -> np.ndarray:
        return ((picture.astype(np.uint16) * (256 - share) + tint) >> 8).astype(np.uint8)

    return transform_video(source, target, size, change, cancel)


# ---- still images ---------------------------------------------------------------------------------

IMAGE_FORMATS = {"png": "PNG", "jpg": "JPEG", "jpeg": "JPEG"}


def image_dimensions(aspect_ratio: str, megapixels: float = 1.0) -> tuple[int, int]:
    """About `megapixels` at exactly the ratio where multiples of 16 allow (Photon, Uni-1 images)."""
    across, down = _ratio(aspect_ratio)
    height = math.sqrt(megapixels * 1_048_576 * down / across)
    return _round16(height * across / down), _round16(height)


def encode_image(picture: np.ndarray, fmt: str) -> bytes:
    """`fmt`: png, jpg or jpeg."""
    out = io.BytesIO()
    kind = IMAGE_FORMATS[fmt.lower()]
    image = Image.fromarray(picture)
    if kind == "JPEG":
        image.save(out, format="JPEG", quality=88)
    else:
        image.save(out, format="PNG", compress_level=1)
    return out.getvalue()


def render_picture(
    prompt: str,
    width: int,
    height: int,
    *,
    references: Sequence[tuple[bytes, float]] = (),
    fmt: str = "jpg",
    variant: int = 0,
) -> bytes:
    """The prompt's colour field under its caption; each reference image shows through by its weight
    (0–1; weights are shared out so they never add to more than 1)."""
    picture = _prompt_field(f"{prompt}\x00{variant}", width, height).astype(np.float32)
    total = sum(max(0.0, min(w, 1.0)) for _, w in references)
    scale = 1 / total if total > 1 else 1.0
    for data, weight in references:
        share = max(0.0, min(weight, 1.0)) * scale
        if share > 0:
            fitted = _fit(open_image(data), (width, height)).astype(np.float32)
            picture = picture * (1 - share) + fitted * share
    result = np.clip(picture, 0, 255).astype(np.uint8)
    if total < 1:
        mask, glyphs = _caption(prompt, width, height)
        result[mask] = glyphs
    return encode_image(result, fmt)


def reframe_image(
    source: bytes,
    canvas: tuple[int, int],
    position: SourcePosition | None = None,
    *,
    prompt: str = "",
    fmt: str = "jpg",
) -> bytes:
    """An image of size `canvas`: the source placed where `position` says over the prompt's field."""
    image = open_image(source)
    placed = position or SourcePosition.centred_fit((image.width, image.height), canvas)
    return encode_image(_place(_prompt_field(prompt or "reframe", *canvas), image, placed), fmt)


# ---- Ray 3.2 and Uni-1 sizes (the Agents API) ---------------------------------------------------

# A Ray 3.2 resolution names the lines of the frame's short side (a 360p draft is 360 lines).
RAY32_LINES = {"360p": 360, "540p": 540, "720p": 720, "1080p": 1080, "4k": 2160}
RAY32_SECONDS = {"5s": 5, "10s": 10}


def ray32_dimensions(resolution: str, aspect_ratio: str) -> tuple[int, int]:
    """(width, height) of a Ray 3.2 clip: the short side has the resolution's lines, the long side
    the aspect ratio's share of them (even, as H.264 4:2:0 needs)."""
    lines = RAY32_LINES[resolution]
    across, down = (int(part) for part in aspect_ratio.split(":"))
    if across >= down:
        return _round2(lines * across / down), lines
    return lines, _round2(lines * down / across)


def ray32_frames(duration: str) -> int:
    """24 fps plus the closing frame: 5 s → 121 frames, 10 s → 241."""
    return RAY32_SECONDS[duration] * FPS + 1


# Uni-1 image sizes (aspect ratios: domain/catalog.py UNI_ASPECT_RATIOS): about one megapixel (uni-1)
# at the requested aspect ratio; uni-1-max doubles the side. Both multiples of 16.


def uni_dimensions(aspect_ratio: str, model: str) -> tuple[int, int]:
    across, down = (int(part) for part in aspect_ratio.split(":"))
    pixels = 1024 * 1024 * (4 if model == "uni-1-max" else 1)
    height = (pixels * down / across) ** 0.5
    return _round16(height * across / down), _round16(height)


def render_uni_image(
    prompt: str,
    size: tuple[int, int],
    *,
    output_format: str = "png",
    source: bytes | None = None,
    references: tuple[bytes, ...] = (),
) -> bytes:
    """A Uni-1 image: with a `source` (image_edit) the source itself pulled a little towards the
    prompt; otherwise the prompt's field with references blended in. PNG or JPEG as asked."""
    width, height = size
    field = _prompt_field(prompt, width, height).astype(np.float32)
    if source is not None:
        picture = _fit(open_image(source), size).astype(np.float32) * 0.7 + field * 0.3
    else:
        picture = field
        for reference in references:
            picture = picture * 0.7 + _fit(open_image(reference), size).astype(np.float32) * 0.3
    result = np.clip(picture, 0, 255).astype(np.uint8)
    mask, glyphs = _caption(prompt, width, height)
    result[mask] = glyphs
    return encode_image(result, output_format)
