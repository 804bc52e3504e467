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
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
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
