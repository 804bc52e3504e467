"""Reading media we keep: video facts, first and last frames, the thumbnail palette, image sniffing."""

from __future__ import annotations

import base64
import ctypes
import io
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import av
from PIL import Image, UnidentifiedImageError

PALETTE_SIDE = 5
MAX_IMAGE_PIXELS = 50_000_000
# Customer images (keyframes, references): no upstream renders above 4K, so a larger picture is never
# needed; its decoded size is what memory pays (4096² RGBA = 64 MiB), not its upload size.
MAX_INPUT_SIDE = 4096
MAX_INPUT_PIXELS = MAX_INPUT_SIDE * MAX_INPUT_SIDE
# What a customer reads when PyAV or Pillow cannot decode their bytes: the libraries' own words name
# our scratch files, object addresses and library internals, so they stay in `MediaError.detail`.
UNREADABLE = "unreadable or damaged data"
TOO_MANY_PIXELS = "the image has too many pixels"

log = logging.getLogger(__name__)


class MediaError(Exception):
    """The bytes are not the media they claim to be, or cannot be decoded. Its text is always our own
    words (a customer may read it); `detail` is what the decoder said, for the operator."""

    def __init__(self, message: str, detail: str | None = None) -> None:
        super().__init__(message)
        self.detail = detail or message


def _undecodable(exc: BaseException, what: str) -> MediaError:
    detail = f"{type(exc).__name__}: {exc}"
    log.info("%s could not be decoded: %s", what, detail)
    if isinstance(exc, Image.DecompressionBombError):
        return MediaError(TOO_MANY_PIXELS, detail)
    return MediaError(UNREADABLE, detail)


@dataclass(frozen=True)
class VideoProbe:
    width: int
    height: int
    duration: float
    codec: str
    frames: int
    audio_codec: str | None = None  # e.g. "aac"; None when the file has no sound


def probe_video(path: Path) -> VideoProbe:
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise MediaError("no video stream")
            stream = container.streams.video[0]
            if container.duration is not None:
                duration = container.duration / av.time_base
            elif stream.duration is not None and stream.time_base is not None:
                duration = float(stream.duration * stream.time_base)
            else:
                duration = 0.0
            sound = container.streams.audio[0].codec_context.name if container.streams.audio else None
            return VideoProbe(
                width=stream.codec_context.width,
                height=stream.codec_context.height,
                duration=round(duration, 6),
                codec=stream.codec_context.name,
                frames=stream.frames,
                audio_codec=sound,
            )
    except av.FFmpegError as exc:
        raise _undecodable(exc, "a video") from exc


def probe_video_bytes(data: bytes) -> VideoProbe:
    """probe_video of a video held in memory (written to a scratch file first: PyAV reads files best)."""
    with tempfile.TemporaryDirectory(prefix="dreamrelay-probe-") as scratch:
        path = Path(scratch) / "video.mp4"
        path.write_bytes(data)
        return probe_video(path)


async def probe_video_off_loop(source: bytes | Path) -> VideoProbe:
    """`probe_video` of a file on disk, or `probe_video_bytes` of bytes, in a worker thread (decoding
    never holds the event loop); MediaError when it is no video."""
    if isinstance(source, Path):
        return await anyio.to_thread.run_sync(probe_video, source)
    return await anyio.to_thread.run_sync(probe_video_bytes, source)


def first_and_last_frames(path: Path) -> tuple[Image.Image, Image.Image]:
    """The first frame (the thumbnail) and the last (an extend continues from it).

    Only what is needed is decoded: the first frame, then, after a seek to the last keyframe, the
    last group of pictures. A video with one keyframe is decoded from the start, as before.
    """
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise MediaError("no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            first_frame = next(iter(container.decode(stream)), None)
            if first_frame is None:
                raise MediaError("the video has no frames")
            first = first_frame.to_image()  # type: ignore[no-untyped-call]
            last = _last_frame(container, stream) or first_frame
    except av.FFmpegError as exc:
        raise _undecodable(exc, "a video") from exc
    return first, last.to_image()  # type: ignore[no-untyped-call]


def _last_frame(container: av.container.InputContainer, stream: av.VideoStream) -> av.VideoFrame | None:
    """The last frame, decoded from the keyframe at or before the end (seek backward from there)."""
    end = stream.duration
    if end is None and container.duration is not None and stream.time_base is not None:
        end = int(container.duration / av.time_base / stream.time_base)
    last = None
    if end is not None:
        container.seek(end + (stream.start_time or 0), backward=True, any_frame=False, stream=stream)
    for frame in container.decode(stream):
        last = frame
    return last


def palette_grid(image: Image.Image) -> str:
    """Base64 of a 5×5 grid of average RGB colours: 75 bytes, 100 characters."""
    small = image.convert("RGB").resize((PALETTE_SIDE, PALETTE_SIDE), Image.Resampling.BOX)
    return base64.b64encode(small.tobytes()).decode("ascii")


def jpeg_bytes(image: Image.Image, quality: int = 85) -> bytes:
    out = io.BytesIO()
    image.convert("RGB").save(out, format="JPEG", quality=quality, optimize=True)
    return out.getvalue()


def sniff_image(data: bytes) -> str | None:
    """The media type by content (magic numbers), never by name or header."""
    if data[:3] == b"\xff\xd8\xff":
        return "image/jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "image/png"
    return None


def open_image(data: bytes) -> Image.Image:
    """Decode fully (so truncated files fail here, not later); refuse decompression bombs."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.width * image.height > MAX_IMAGE_PIXELS:
                raise MediaError(f"image has more than {MAX_IMAGE_PIXELS} pixels")
            image.load()
            return image.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise _undecodable(exc, "an image") from exc


def image_size(
    data: bytes, max_pixels: int = MAX_IMAGE_PIXELS, max_side: int | None = None
) -> tuple[int, int]:
    """(width, height) of an image that decodes in full, checked from its header before any pixel is
    decoded: larger than `max_pixels` (or `max_side` on a side) is refused without decoding it. The
    decoded pixels are dropped at once and the C heap trimmed, so the memory goes back."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            if max_side is not None and max(width, height) > max_side:
                raise MediaError(f"image is {width}×{height} pixels; at most {max_side} on a side")
            if width * height > max_pixels:
                raise MediaError(f"image is {width}×{height} pixels; at most {max_pixels} pixels")
            image.load()  # truncated or corrupt files fail here
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise _undecodable(exc, "an image") from exc
    finally:
        release_memory()
    return width, height


def release_memory() -> None:
    """Give freed heap back to the system (glibc keeps it otherwise, per thread arena)."""
    if _TRIM is not None:
        _TRIM(0)


def _malloc_trim() -> Any:
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc: nothing to trim
        return None


_TRIM = _malloc_trim()
