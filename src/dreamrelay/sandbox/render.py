"""The sandbox's renderer: real H.264 MP4s that show what was asked for, made in about a second.

Text-to-video: a colour field derived from the prompt drifts while the prompt's words scroll by.
Image-to-video: the start image drifts sideways; an end image crossfades in; loop returns to frame one.
Images (Kling): the prompt's colour field with its caption, blended with the reference image if any.
"""

from __future__ import annotations

import hashlib
import io
import textwrap
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

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
_SECONDS = {"5s": 5, "9s": 9}


def dimensions(resolution: str, aspect_ratio: str) -> tuple[int, int]:
    width, height = _SIZES_720P.get(aspect_ratio, _SIZES_720P["16:9"])
    scale = _SCALE.get(resolution, 1.0)
    return _round16(width * scale), _round16(height * scale)


def frame_count(duration: str) -> int:
    return _SECONDS.get(duration, 5) * FPS + 1


def _round16(value: float) -> int:
    return max(16, round(value / 16) * 16)


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


def render_video(spec: RenderSpec, target: Path, cancel: threading.Event | None = None) -> None:
    """Write the MP4 for `spec` to `target` (atomically: a partial file never has the final name).

    Each render writes its own partial file, so two renders of one spec never share a file; a set
    `cancel` event stops the render between frames (RenderCancelled) and its partial file is removed.
    """
    frames = _Frames(spec)
    partial = target.with_name(f"{target.stem}.{uuid.uuid4().hex}.partial.mp4")
    try:
        with av.open(str(partial), mode="w", options={"movflags": "+faststart"}) as container:
            stream = container.add_stream("libx264", rate=spec.fps)
            stream.width, stream.height = spec.width, spec.height
            stream.pix_fmt = "yuv420p"
            stream.options = {"preset": "ultrafast", "crf": "26", "tune": "fastdecode"}
            for index in range(spec.frames):
                if cancel is not None and cancel.is_set():
                    raise RenderCancelled(f"render of {target.name} cancelled")
                frame = av.VideoFrame.from_ndarray(frames.frame(index), format="rgb24")
                container.mux(stream.encode(frame))
            container.mux(stream.encode(None))
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)


class _Frames:
    def __init__(self, spec: RenderSpec) -> None:
        self.spec = spec
        size = (spec.width, spec.height)
        self.start = _fit(open_image(spec.start_image), size) if spec.start_image else None
        self.end = _fit(open_image(spec.end_image), size) if spec.end_image else None
        if self.start is None:
            # A field twice as wide as the frame, so it can drift sideways for the whole clip.
            self.field = _prompt_field(spec.prompt, spec.width * 2, spec.height)
            self.caption = _caption(spec.prompt, spec.width, spec.height)

    def frame(self, index: int) -> np.ndarray:
        spec = self.spec
        progress = index / max(spec.frames - 1, 1)
        # A loop travels out and back, so its last frame is its first.
        travel = 1 - abs(1 - 2 * progress) if spec.loop else progress
        picture = self._image_frame(travel) if self.start is not None else self._text_frame(travel)
        if self.end is not None and not spec.loop:
            weight = round(min(max((progress - 0.4) / 0.6, 0.0), 1.0) * 256)
            if weight > 0:
                mixed = picture.astype(np.uint16) * (256 - weight) + self.end.astype(np.uint16) * weight
                picture = (mixed >> 8).astype(np.uint8)
        return np.ascontiguousarray(picture)

    def _image_frame(self, travel: float) -> np.ndarray:
        """The picture drifts left (edge pixels fill in behind it); frame one is the image itself."""
        assert self.start is not None
        width = self.spec.width
        shift = int(width * 0.08 * travel)
        if shift == 0:
            return self.start
        picture = np.empty_like(self.start)
        picture[:, : width - shift] = self.start[:, shift:]
        picture[:, width - shift :] = self.start[:, -1:]
        return picture

    def _text_frame(self, travel: float) -> np.ndarray:
        spec = self.spec
        offset = int(travel * spec.width)
        picture = self.field[:, offset : offset + spec.width].copy()
        mask, glyphs = self.caption
        shift = int((0.5 - travel) * spec.height * 0.3)
        rows = np.roll(mask, shift, axis=0)
        picture[rows] = glyphs
        return picture


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


# ---- Ray 3.2 and Uni-1 (the Agents API) ---------------------------------------------------------

# A Ray 3.2 resolution names the lines of the frame's short side (a 360p draft is 360 lines).
RAY32_LINES = {"360p": 360, "540p": 540, "720p": 720, "1080p": 1080, "4k": 2160}
RAY32_SECONDS = {"5s": 5, "10s": 10}


def ray32_dimensions(resolution: str, aspect_ratio: str) -> tuple[int, int]:
    """(width, height) of a Ray 3.2 clip: the short side has the resolution's lines, the long side
    the aspect ratio's share of them (even, as H.264 4:2:0 needs)."""
    lines = RAY32_LINES[resolution]
    across, down = (int(part) for part in aspect_ratio.split(":"))
    if across >= down:
        return _even(lines * across / down), lines
    return lines, _even(lines * down / across)


def ray32_frames(duration: str) -> int:
    """24 fps plus the closing frame: 5 s → 121 frames, 10 s → 241."""
    return RAY32_SECONDS[duration] * FPS + 1


def _even(value: float) -> int:
    return max(2, round(value / 2) * 2)


@dataclass(frozen=True)
class SourcePosition:
    """Where the source sits on a reframed canvas, as fractions of the canvas (may bleed off it)."""

    x: float
    y: float
    w: float
    h: float

    @classmethod
    def centred_fit(cls, source: tuple[int, int], canvas: tuple[int, int]) -> SourcePosition:
        """The default: the whole source, as large as fits, in the middle."""
        scale = min(canvas[0] / source[0], canvas[1] / source[1])
        w, h = source[0] * scale / canvas[0], source[1] * scale / canvas[1]
        return cls((1 - w) / 2, (1 - h) / 2, w, h)

    def box(self, canvas: tuple[int, int]) -> tuple[int, int, int, int]:
        """(left, top, width, height) in canvas pixels."""
        width, height = canvas
        return (
            round(self.x * width),
            round(self.y * height),
            max(1, round(self.w * width)),
            max(1, round(self.h * height)),
        )


def reframe_picture(picture: np.ndarray, canvas: tuple[int, int], position: SourcePosition) -> np.ndarray:
    """The source frame scaled into `position` on a canvas of the new size; the rest of the canvas is
    the source stretched over it, blurred and dimmed (what an outpainting model would have to fill)."""
    source = Image.fromarray(picture)
    backdrop = source.resize(canvas, Image.Resampling.BILINEAR).filter(ImageFilter.GaussianBlur(12))
    result = np.asarray(backdrop).astype(np.uint16) * 3 // 5
    left, top, width, height = position.box(canvas)
    placed = np.asarray(source.resize((width, height), Image.Resampling.BILINEAR))
    # Clip the placed source to the canvas (it may bleed off any edge).
    x0, y0 = max(left, 0), max(top, 0)
    x1, y1 = min(left + width, canvas[0]), min(top + height, canvas[1])
    if x0 < x1 and y0 < y1:
        result[y0:y1, x0:x1] = placed[y0 - top : y1 - top, x0 - left : x1 - left]
    return np.ascontiguousarray(result.astype(np.uint8))


# How far an edit moves away from its source frames, per Ray 3.2 strength.
EDIT_WEIGHTS = {
    **{f"adhere_{n}": 0.1 * n for n in (1, 2, 3)},
    **{f"flex_{n}": 0.3 + 0.1 * n for n in (1, 2, 3)},
    **{f"reimagine_{n}": 0.6 + 0.1 * n for n in (1, 2, 3)},
}


def edit_picture(picture: np.ndarray, field: np.ndarray, weight: float) -> np.ndarray:
    """A source frame pulled towards the prompt's colour field by `weight` (0 = the source itself)."""
    mixed = picture.astype(np.float32) * (1 - weight) + field.astype(np.float32) * weight
    return np.ascontiguousarray(np.clip(mixed, 0, 255).astype(np.uint8))


def transform_video(
    source: Path,
    target: Path,
    size: tuple[int, int],
    change: Callable[[int, np.ndarray], np.ndarray],
    cancel: threading.Event | None = None,
) -> int:
    """Decode `source`, pass each frame (index, RGB array) through `change`, encode the results at
    `size` as H.264 at the source's frame count and 24 fps; atomically, like render_video. Returns the
    number of frames written."""
    partial = target.with_name(f"{target.stem}.{uuid.uuid4().hex}.partial.mp4")
    written = 0
    try:
        with (
            av.open(str(source)) as reader,
            av.open(str(partial), mode="w", options={"movflags": "+faststart"}) as writer,
        ):
            stream = writer.add_stream("libx264", rate=FPS)
            stream.width, stream.height = size
            stream.pix_fmt = "yuv420p"
            stream.options = {"preset": "ultrafast", "crf": "26", "tune": "fastdecode"}
            for frame in reader.decode(video=0):
                if cancel is not None and cancel.is_set():
                    raise RenderCancelled(f"render of {target.name} cancelled")
                picture = change(written, frame.to_ndarray(format="rgb24"))
                writer.mux(stream.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")))
                written += 1
            writer.mux(stream.encode(None))
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    return written


def video_size(path: Path) -> tuple[int, int]:
    with av.open(str(path)) as container:
        context = container.streams.video[0].codec_context
        return int(context.width), int(context.height)


def reframe_video(
    source: Path,
    target: Path,
    canvas: tuple[int, int],
    position: SourcePosition | None = None,
    cancel: threading.Event | None = None,
) -> int:
    """The source's frames on a canvas of the new aspect ratio, placed where `position` says."""
    placed = position or SourcePosition.centred_fit(video_size(source), canvas)
    return transform_video(source, target, canvas, lambda _i, p: reframe_picture(p, canvas, placed), cancel)


def edit_video(
    source: Path, target: Path, prompt: str, weight: float, cancel: threading.Event | None = None
) -> int:
    """Each of the source's frames, in order, pulled towards the prompt by `weight`; same size and count."""
    width, height = video_size(source)
    field = _prompt_field(prompt, width, height)
    size = (width, height)
    return transform_video(source, target, size, lambda _i, p: edit_picture(p, field, weight), cancel)


# Uni-1 image sizes: about one megapixel (uni-1) at the requested aspect ratio; uni-1-max doubles
# the side. Both multiples of 16.
UNI_ASPECT_RATIOS = ("3:1", "2:1", "21:9", "16:9", "4:3", "3:2", "1:1", "3:4", "2:3", "9:16", "1:2", "1:3")


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
    out = io.BytesIO()
    if output_format == "jpeg":
        Image.fromarray(result).save(out, format="JPEG", quality=88)
    else:
        Image.fromarray(result).save(out, format="PNG", compress_level=1)
    return out.getvalue()
