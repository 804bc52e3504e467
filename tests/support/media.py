"""Reading media the way a customer's player would: decode the MP4, open the JPEGs."""

from __future__ import annotations

import io
from dataclasses import dataclass

import av
import numpy as np
from PIL import Image


@dataclass
class DecodedVideo:
    codec: str
    width: int
    height: int
    duration: float
    frames: int
    first: np.ndarray
    last: np.ndarray


def decode_mp4(data: bytes) -> DecodedVideo:
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        assert isinstance(container, av.container.InputContainer)
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
        assert stream.duration is not None and stream.time_base is not None
        return DecodedVideo(
            codec=stream.codec_context.name,
            width=stream.codec_context.width,
            height=stream.codec_context.height,
            duration=round(float(stream.duration * stream.time_base), 6),
            frames=len(frames),
            first=frames[0],
            last=frames[-1],
        )


def open_jpeg(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    assert image.format == "JPEG"
    return image


def mean_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def picture(width: int, height: int, seed: int = 1, fmt: str = "PNG") -> bytes:
    """A distinctive test picture: bands and blocks, so 'starts on this image' is checkable."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 255, size=(6, 8, 3), dtype=np.uint8)
    image = Image.fromarray(blocks).resize((width, height), Image.Resampling.NEAREST)
    out = io.BytesIO()
    image.save(out, format=fmt, quality=95) if fmt == "JPEG" else image.save(out, format=fmt)
    return out.getvalue()
