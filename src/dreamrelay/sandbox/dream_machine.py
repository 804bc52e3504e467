"""The rest of the official Dream Machine API in the sandbox: Photon images, upscale, add audio,
video and image reframe, video modify, and the concept / camera-motion lists.

Each request is checked as api.lumalabs.ai documents it (lumaai SDK types) and becomes a generation
like a video one (queued → dreaming → completed/failed, callbacks, prompt markers); the render is
real (sandbox/render.py): an upscale has more pixels, add_audio an AAC track, a reframe the asked
aspect ratio with the source where the request puts it, a modify the source's frames moved by the
mode, an image the asked format.
"""

from __future__ import annotations

import base64
import tempfile
import threading
import uuid
from pathlib import Path
from typing import Any

import anyio

from dreamrelay.domain.catalog import CAMERA_MOTIONS, CONCEPTS, POSITION_FIELDS, UPSCALE_RESOLUTIONS
from dreamrelay.domain.json_object import JsonObject
from dreamrelay.media import probe
from dreamrelay.sandbox import render
from dreamrelay.sandbox.core import GenerationRecord, SandboxCore
from dreamrelay.sandbox.render import EDIT_WEIGHTS, SourcePosition

IMAGE_MODELS = ("photon-1", "photon-flash-1")
VIDEO_MODELS = ("ray-2", "ray-flash-2")
ASPECT_RATIOS = ("1:1", "16:9", "9:16", "4:3", "3:4", "21:9", "9:21")
IMAGE_FORMATS = ("jpg", "png")
MODES = tuple(EDIT_WEIGHTS)
IMAGE_REFS_MAX = 4
STYLE_REFS_MAX = 1
CHARACTER_IMAGES_MAX = 4
MAX_MEDIA_BYTES = 100 * 1024 * 1024
MAX_SOURCE_SECONDS = 30.0
# generation_type of each request → what the Generation object calls its output.
IMAGE_TYPES = ("image", "reframe_image")
LISTS = {"concepts": CONCEPTS, "camera_motion": CAMERA_MOTIONS}


class Invalid(Exception):
    """The request breaks the API's rules (400 with this detail)."""


class RenderFailure(Exception):
    """The inputs could not be used (the generation fails with this reason)."""


# ---- validation -----------------------------------------------------------------------------------


def validate_image(body: JsonObject) -> JsonObject:
    _type(body, "image", required=False)
    request: JsonObject = {
        "generation_type": "image",
        "model": _choice(body, "model", IMAGE_MODELS, "photon-1"),
        "prompt": _prompt(body, required=True),
        "aspect_ratio": _choice(body, "aspect_ratio", ASPECT_RATIOS, "16:9"),
        "format": _choice(body, "format", IMAGE_FORMATS, "jpg"),
    }
    image_ref = _refs(body.get("image_ref"), "image_ref", IMAGE_REFS_MAX)
    style_ref = _refs(body.get("style_ref"), "style_ref", STYLE_REFS_MAX)
    if image_ref:
        request["image_ref"] = image_ref
    if style_ref:
        request["style_ref"] = style_ref
    if body.get("character_ref") is not None:
        request["character_ref"] = _character(body["character_ref"])
    if body.get("modify_image_ref") is not None:
        request["modify_image_ref"] = _ref(body["modify_image_ref"], "modify_image_ref")
    for flag in ("sync",):
        if body.get(flag) is not None and not isinstance(body[flag], bool):
            raise Invalid(f"{flag} must be a boolean")
    return _with_callback(request, body)


def validate_upscale(body: JsonObject, parent: GenerationRecord) -> JsonObject:
    _type(body, "upscale_video", required=False)
    resolution = _choice(body, "resolution", UPSCALE_RESOLUTIONS, "1080p")
    _check_video_parent(parent)
    before = parent.request.get("resolution", "720p")
    if UPSCALE_RESOLUTIONS.index(resolution) <= UPSCALE_RESOLUTIONS.index(before):
        raise Invalid(f"the generation is already {before}; upscale to a higher resolution")
    request = {
        "generation_type": "upscale_video",
        "resolution": resolution,
        "aspect_ratio": parent.request.get("aspect_ratio", "16:9"),
        "parent": parent.id,
    }
    return _with_callback(request, body)


def validate_audio(body: JsonObject, parent: GenerationRecord) -> JsonObject:
    _type(body, "add_audio", required=False)
    _check_video_parent(parent)
    request = {
        "generation_type": "add_audio",
        "prompt": _prompt(body, required=False),
        "negative_prompt": _prompt(body, required=False, field="negative_prompt"),
        "parent": parent.id,
    }
    return _with_callback(request, body)


def validate_reframe(body: JsonObject, kind: str) -> JsonObject:
    _type(body, kind, required=True)
    models = IMAGE_MODELS if kind == "reframe_image" else VIDEO_MODELS
    if "model" not in body:
        raise Invalid("model is required")
    if "aspect_ratio" not in body:
        raise Invalid("aspect_ratio is required")
    request: JsonObject = {
        "generation_type": kind,
        "model": _choice(body, "model", models, models[0]),
        "aspect_ratio": _choice(body, "aspect_ratio", ASPECT_RATIOS, "16:9"),
        "media": _media(body.get("media"), "media"),
        "prompt": _prompt(body, required=False),
    }
    if kind == "reframe_image":
        request["format"] = _choice(body, "format", IMAGE_FORMATS, "jpg")
    if body.get("first_frame") is not None:
        request["first_frame"] = _media(body["first_frame"], "first_frame")
    for field in POSITION_FIELDS:
        value = body.get(field)
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or not -16384 <= value <= 16384:
            raise Invalid(f"{field} must be an integer between -16384 and 16384")
        request[field] = value
    return _with_callback(request, body)


def validate_modify(body: JsonObject) -> JsonObject:
    _type(body, "modify_video", required=True)
    for field in ("model", "mode"):
        if field not in body:
            raise Invalid(f"{field} is required")
    request: JsonObject = {
        "generation_type": "modify_video",
        "model": _choice(body, "model", VIDEO_MODELS, "ray-2"),
        "mode": _choice(body, "mode", MODES, "flex_1"),
        "media": _media(body.get("media"), "media"),
        "prompt": _prompt(body, required=False),
    }
    if body.get("first_frame") is not None:
        request["first_frame"] = _media(body["first_frame"], "first_frame")
    return _with_callback(request, body)


def _type(body: JsonObject, expected: str, *, required: bool) -> None:
    given = body.get("generation_type")
    if given is None and not required:
        return
    if given != expected:
        raise Invalid(f"generation_type must be '{expected}'")


def _choice(body: JsonObject, field: str, allowed: tuple[str, ...], default: str) -> str:
    value = body.get(field, default)
    if value is None:
        return default
    if value not in allowed:
        raise Invalid(f"{field} must be one of {', '.join(allowed)}")
    return str(value)


def _prompt(body: JsonObject, *, required: bool, field: str = "prompt") -> str:
    value = body.get(field)
    if value is None or value == "":
        if required:
            raise Invalid(f"{field} is required")
        return ""
    if not isinstance(value, str) or len(value) > 5000:
        raise Invalid(f"{field} must be a string of at most 5000 characters")
    return value


def _url(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value.startswith(("http://", "https://", "data:")):
        raise Invalid(f"{field} must be an http(s) URL or a data URI")
    return value


def _weight(value: Any, field: str, default: float) -> float:
    if value is None:
        return default
    if not isinstance(value, int | float) or isinstance(value, bool) or not 0 <= value <= 1:
        raise Invalid(f"{field}.weight must be a number from 0 to 1")
    return float(value)


def _ref(value: Any, field: str, default_weight: float = 0.85) -> JsonObject:
    if not isinstance(value, dict) or "url" not in value:
        raise Invalid(f"{field} must be an object with a url")
    return {
        "url": _url(value["url"], f"{field}.url"),
        "weight": _weight(value.get("weight"), field, default_weight),
    }


def _refs(value: Any, field: str, most: int) -> list[JsonObject]:
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > most:
        raise Invalid(f"{field} must be a list of at most {most} references")
    return [_ref(item, f"{field}[{index}]") for index, item in enumerate(value)]


def _character(value: Any) -> JsonObject:
    identity = value.get("identity0") if isinstance(value, dict) else None
    images = identity.get("images") if isinstance(identity, dict) else None
    if not isinstance(images, list) or not 1 <= len(images) <= CHARACTER_IMAGES_MAX:
        raise Invalid(f"character_ref.identity0.images must list 1 to {CHARACTER_IMAGES_MAX} image URLs")
    return {"identity0": {"images": [_url(url, "character_ref.identity0.images") for url in images]}}


def _media(value: Any, field: str) -> dict[str, str]:
    if not isinstance(value, dict) or "url" not in value:
        raise Invalid(f"{field} must be an object with a url")
    return {"url": _url(value["url"], f"{field}.url")}


def _with_callback(request: JsonObject, body: JsonObject) -> JsonObject:
    callback_url = body.get("callback_url")
    if callback_url is not None:
        if not isinstance(callback_url, str) or not callback_url.startswith(("http://", "https://")):
            raise Invalid("callback_url must be an http(s) URL")
        request["callback_url"] = callback_url
    return request


def _check_video_parent(parent: GenerationRecord) -> None:
    if parent.request.get("generation_type", "video") in IMAGE_TYPES or not parent.video:
        if parent.state != "completed":
            raise Invalid(f"generation {parent.id} is not completed")
        raise Invalid(f"generation {parent.id} has no video")


# ---- rendering ------------------------------------------------------------------------------------


async def render_generation(
    sandbox: SandboxCore, request: JsonObject, cancel: threading.Event
) -> tuple[str | None, str | None]:
    """Render one generation; its (video file, image file) names in the sandbox's files."""
    kind = request["generation_type"]
    files = sandbox.files_dir
    name = uuid.uuid4().hex
    if kind in IMAGE_TYPES:
        data = await (_image(sandbox, request) if kind == "image" else _reframe_image(sandbox, request))
        image = f"{name}.{'png' if request['format'] == 'png' else 'jpg'}"
        (files / image).write_bytes(data)
        return None, image
    video = files / f"{name}.mp4"
    with tempfile.TemporaryDirectory(dir=files, prefix=".inputs-") as scratch:
        source = await _source(sandbox, request, Path(scratch))
        first = await _first_frame(sandbox, request)
        job = _video_job(request, source, video, cancel, first)
        try:
            await anyio.to_thread.run_sync(job, limiter=sandbox.limiter)
        except ValueError as exc:  # the source is no usable video, or the placement misses the canvas
            raise RenderFailure(str(exc)) from exc
        except probe.MediaError as exc:
            raise RenderFailure(f"an input image is unreadable: {exc}") from exc
    thumbnail = files / f"{name}.jpg"
    first_picture, _last = await anyio.to_thread.run_sync(probe.first_and_last_frames, video)
    thumbnail.write_bytes(probe.jpeg_bytes(first_picture))
    return video.name, thumbnail.name


def _video_job(
    request: JsonObject, source: Path, target: Path, cancel: threading.Event, first: bytes | None
) -> Any:
    kind = request["generation_type"]

    def run() -> None:
        _check_source(source)
        if kind == "upscale_video":
            size = render.dimensions(request["resolution"], request["aspect_ratio"])
            render.upscale_video(source, target, size, cancel)
        elif kind == "add_audio":
            render.add_audio(source, target, request["prompt"] or "ambient sound", cancel)
        elif kind == "modify_video":
            weight = EDIT_WEIGHTS[request["mode"]]
            render.edit_video(source, target, request["prompt"], weight, cancel, first_frame=first)
        else:  # reframe_video
            clip = render.source_clip(source)
            canvas = reframed_size((clip.width, clip.height), request["aspect_ratio"])
            position = placement(request, (clip.width, clip.height), canvas)
            render.reframe_video(
                source, target, canvas, position, cancel, prompt=request["prompt"], backdrop=first
            )

    return run


def _check_source(path: Path) -> None:
    clip = render.source_clip(path)
    if clip.frames / clip.fps > MAX_SOURCE_SECONDS:
        raise ValueError(f"the source video is longer than {MAX_SOURCE_SECONDS:.0f} s")


def reframed_size(source: tuple[int, int], aspect_ratio: str) -> tuple[int, int]:
    """A reframe keeps the source's short side and takes the new aspect ratio (even sizes)."""
    lines = min(source)
    across, _, down = aspect_ratio.partition(":")
    ratio = int(across) / int(down)
    if ratio >= 1:
        return _even(lines * ratio), _even(lines)
    return _even(lines), _even(lines / ratio)


def _even(value: float) -> int:
    return max(2, round(value / 2) * 2)


def placement(request: JsonObject, source: tuple[int, int], canvas: tuple[int, int]) -> SourcePosition:
    """Where the source goes, in canvas pixels: the crop box x_start..x_end × y_start..y_end, or
    the source resized to resized_width × resized_height with its top-left corner at
    (grid_position_x, grid_position_y) (centred when no position is given), else centred and as
    large as fits."""
    width, height = canvas
    box = [request.get(f) for f in ("x_start", "y_start", "x_end", "y_end")]
    if all(v is not None for v in box):
        x0, y0, x1, y1 = (int(v) for v in box)  # type: ignore[arg-type]
        if x1 <= x0 or y1 <= y0:
            raise ValueError("x_end and y_end must be beyond x_start and y_start")
        position = SourcePosition(x0 / width, y0 / height, (x1 - x0) / width, (y1 - y0) / height)
    elif request.get("resized_width") or request.get("resized_height"):
        w = request.get("resized_width") or round(source[0] * request["resized_height"] / source[1])
        h = request.get("resized_height") or round(source[1] * w / source[0])
        if w <= 0 or h <= 0:
            raise ValueError("resized_width and resized_height must be positive")
        x = request.get("grid_position_x", (width - w) // 2)
        y = request.get("grid_position_y", (height - h) // 2)
        position = SourcePosition(x / width, y / height, w / width, h / height)
    else:
        return SourcePosition.centred_fit(source, canvas)
    if position.x >= 1 or position.y >= 1 or position.x + position.w <= 0 or position.y + position.h <= 0:
        raise ValueError("the source would be placed outside the new frame")
    return position


async def _source(sandbox: SandboxCore, request: JsonObject, scratch: Path) -> Path:
    """The video the request starts from: a parent generation's file, or its media URL fetched."""
    parent_id = request.get("parent")
    if parent_id is not None:
        parent = sandbox.records.get(parent_id)
        if parent is None or not parent.video:
            raise RenderFailure(f"generation {parent_id} has no video")
        return sandbox.files_dir / str(parent.video)
    path = scratch / "source.mp4"
    path.write_bytes(await fetch(sandbox, request["media"]["url"]))
    return path


async def _first_frame(sandbox: SandboxCore, request: JsonObject) -> bytes | None:
    first = request.get("first_frame")
    return await fetch(sandbox, first["url"]) if first else None


async def fetch(sandbox: SandboxCore, url: str) -> bytes:
    if url.startswith("data:"):
        try:
            return base64.b64decode(url.split(",", 1)[1], validate=True)
        except (IndexError, ValueError) as exc:
            raise RenderFailure("a data URI is not valid base64") from exc
    try:  # through URL safety; one message whatever the cause (no port scanning through us)
        data = await sandbox.fetch_image(url, MAX_MEDIA_BYTES, "a source file")
    except RuntimeError as exc:
        raise RenderFailure(str(exc)) from None
    return data


async def _image(sandbox: SandboxCore, request: JsonObject) -> bytes:
    """A Photon image: the prompt's picture with every reference showing through by its weight
    (a modify_image_ref is the picture being modified: its weight is how much of it stays)."""
    weighted: list[tuple[str, float]] = [(r["url"], r["weight"] * 0.6) for r in request.get("image_ref", [])]
    weighted += [(r["url"], r["weight"] * 0.4) for r in request.get("style_ref", [])]
    faces = (request.get("character_ref") or {}).get("identity0", {}).get("images", [])
    weighted += [(url, 0.3 / len(faces)) for url in faces]
    modify = request.get("modify_image_ref")
    if modify is not None:
        weighted = [(u, w * (1 - modify["weight"])) for u, w in weighted] + [
            (modify["url"], modify["weight"])
        ]
    references = [(await fetch(sandbox, url), weight) for url, weight in weighted]
    width, height = render.image_dimensions(request["aspect_ratio"])
    try:
        return await anyio.to_thread.run_sync(
            lambda: render.render_picture(
                request["prompt"], width, height, references=references, fmt=request["format"]
            ),
            limiter=sandbox.limiter,
        )
    except probe.MediaError as exc:
        raise RenderFailure(f"a reference image is unreadable: {exc}") from exc


async def _reframe_image(sandbox: SandboxCore, request: JsonObject) -> bytes:
    data = await fetch(sandbox, request["media"]["url"])

    def run() -> bytes:
        size = probe.image_size(data)
        canvas = reframed_size(size, request["aspect_ratio"])
        position = placement(request, size, canvas)
        return render.reframe_image(data, canvas, position, prompt=request["prompt"], fmt=request["format"])

    try:
        return await anyio.to_thread.run_sync(run, limiter=sandbox.limiter)
    except (ValueError, probe.MediaError) as exc:
        raise RenderFailure(f"the image could not be reframed: {exc}") from exc
