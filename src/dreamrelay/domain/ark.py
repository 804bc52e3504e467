"""Volcengine Ark's content-generation create body (Seedance), read as Ark reads it: `content[]` (text, and
`image_url` items with the roles first_frame, last_frame and reference_image), the parameters as top-level
fields or as text commands in the prompt (`--rs 720p --dur 5`; a top-level field wins), `null` as absent
(the SDK sends every key). Shared by the sandbox's Ark API and DreamRelay's own /api/v3 (which then checks
the result against the catalog's model).
"""

from __future__ import annotations

import random
import re
from typing import Any

from dreamrelay.domain.catalog import SEEDANCE_SIZES


class ArkInvalid(Exception):
    """What Ark answers 400 `InvalidParameter` to, naming the parameter."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(f"the parameter `{param}` {message}")
        self.param = param
        self.message = f"the parameter `{param}` {message}"


SIZES = SEEDANCE_SIZES
RESOLUTIONS = tuple(SIZES)
RATIOS = (*SIZES["720p"], "adaptive")
FRAME_RATES = (16, 24)
DURATION_RANGE = (2, 15)
FRAMES_RANGE = (29, 289)  # 25 + 4n
SEED_RANGE = (-1, 2**32 - 1)
EXPIRES_RANGE = (3600, 259200)
SERVICE_TIERS = ("default", "flex")
ROLES = ("first_frame", "last_frame", "reference_image")
STATUSES = ("queued", "running", "succeeded", "failed", "cancelled", "expired")
FINISHED = frozenset({"succeeded", "failed", "cancelled", "expired"})
PROMPT_MAX_CHARS = 5000
CONTENT_MAX_ITEMS = 12
MAX_IMAGE_BYTES = 10 * 1024 * 1024
PAGE_SIZE_MAX = 500
PAGE_NUM_MAX = 500

# Text commands: short and long names → the top-level field they set.
_COMMANDS = {
    "rs": "resolution", "resolution": "resolution", "rt": "ratio", "ratio": "ratio",
    "dur": "duration", "duration": "duration", "fps": "fps", "framepersecond": "fps",
    "wm": "watermark", "watermark": "watermark", "seed": "seed", "cf": "camera_fixed",
    "camerafixed": "camera_fixed", "frames": "frames",
}  # fmt: skip
_COMMAND = re.compile(r"(?:^|\s)--([a-z]+)\s+(\S+)")
_INTEGERS = frozenset({"duration", "fps", "seed", "frames"})
_BOOLEANS = frozenset({"watermark", "camera_fixed"})


def split_commands(text: str) -> tuple[str, dict[str, Any]]:
    """The prompt without its `--name value` commands, and the fields those commands set."""
    found: dict[str, Any] = {}
    for name, value in _COMMAND.findall(text):
        field = _COMMANDS.get(name)
        if field is None:
            continue
        if field in _INTEGERS:
            try:
                found[field] = int(value)
            except ValueError:
                raise ArkInvalid(field, "must be an integer") from None
        elif field in _BOOLEANS:
            if value.lower() not in ("true", "false"):
                raise ArkInvalid(field, "must be true or false")
            found[field] = value.lower() == "true"
        else:
            found[field] = value
    prompt = _COMMAND.sub(lambda m: "" if _COMMANDS.get(m.group(1)) else m.group(0), text).strip()
    return prompt, found


def _given(body: dict[str, Any], key: str) -> Any:
    return body.get(key)  # null and absent are the same (the SDK sends every key)


def _int_in(value: Any, param: str, bounds: tuple[int, int]) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not bounds[0] <= value <= bounds[1]:
        raise ArkInvalid(param, f"must be an integer from {bounds[0]} to {bounds[1]}")
    return value


def _flag(value: Any, param: str) -> bool:
    if not isinstance(value, bool):
        raise ArkInvalid(param, "must be true or false")
    return value


def validate(body: Any) -> dict[str, Any]:
    """A create body in Ark's words, checked as Ark checks it (any model); ArkInvalid for what Ark refuses."""
    if not isinstance(body, dict):
        raise ArkInvalid("body", "must be a JSON object")
    model = _given(body, "model")
    if not isinstance(model, str) or not 1 <= len(model) <= 128:
        raise ArkInvalid("model", "is required")
    content = _given(body, "content")
    if not isinstance(content, list) or not 1 <= len(content) <= CONTENT_MAX_ITEMS:
        raise ArkInvalid("content", f"must be a list of 1 to {CONTENT_MAX_ITEMS} items")
    texts: list[str] = []
    images: dict[str, str] = {}  # the first of each role
    items: list[tuple[str, str]] = []  # every image, in order
    for item in content:
        kind = item.get("type") if isinstance(item, dict) else None
        if kind == "text" and isinstance(item.get("text"), str):
            texts.append(item["text"])
        elif kind == "image_url":
            image = item.get("image_url")
            url = image.get("url") if isinstance(image, dict) else None
            role = item.get("role") or "first_frame"
            if not isinstance(url, str) or not url or role not in ROLES:
                raise ArkInvalid("content", "has an image_url item without a url or with an unknown role")
            images.setdefault(role, url)
            items.append((role, url))
        else:
            raise ArkInvalid("content", "items must be text or image_url")
    if "last_frame" in images and "first_frame" not in images:
        raise ArkInvalid("content", "has a last_frame without a first_frame")
    prompt, commands = split_commands(" ".join(texts))
    if len(prompt) > PROMPT_MAX_CHARS:
        raise ArkInvalid("content", f"text must be at most {PROMPT_MAX_CHARS} characters")
    if not prompt and not images:
        raise ArkInvalid("content", "needs a text or an image")
    fields = {**commands, **{k: v for k, v in body.items() if v is not None}}
    resolution = fields.get("resolution", "720p")
    if resolution not in RESOLUTIONS:
        raise ArkInvalid("resolution", f"must be one of {', '.join(RESOLUTIONS)}")
    ratio = fields.get("ratio", "adaptive" if images else "16:9")
    if ratio not in RATIOS:
        raise ArkInvalid("ratio", f"must be one of {', '.join(RATIOS)}")
    fps = fields.get("fps", 24)
    if fps not in FRAME_RATES:
        raise ArkInvalid("fps", f"must be one of {', '.join(map(str, FRAME_RATES))}")
    frames = fields.get("frames")
    if frames is not None:
        frames = _int_in(frames, "frames", FRAMES_RANGE)
        if (frames - 25) % 4:
            raise ArkInvalid("frames", "must be 25 + 4n")
        if fields.get("duration") is not None:
            raise ArkInvalid("frames", "and duration exclude one another")
        seconds = frames / fps
    else:
        seconds = _int_in(fields.get("duration", 5), "duration", DURATION_RANGE)
    seed = _int_in(fields.get("seed", -1), "seed", SEED_RANGE)
    callback_url = fields.get("callback_url")
    if callback_url is not None and not (
        isinstance(callback_url, str) and callback_url.startswith(("http://", "https://"))
    ):
        raise ArkInvalid("callback_url", "must be an http(s) URL")
    tier = fields.get("service_tier", "default")
    if tier not in SERVICE_TIERS:
        raise ArkInvalid("service_tier", f"must be one of {', '.join(SERVICE_TIERS)}")
    return {
        "model": model,
        "prompt": prompt,
        "images": images,
        "image_items": items,
        "resolution": resolution,
        "ratio": ratio,
        "fps": fps,
        "seconds": seconds,
        "frames": frames,
        "seed": seed if seed >= 0 else random.randrange(2**31),
        "camera_fixed": _flag(fields.get("camera_fixed", False), "camera_fixed"),
        "watermark": _flag(fields.get("watermark", False), "watermark"),
        "return_last_frame": _flag(fields.get("return_last_frame", False), "return_last_frame"),
        "generate_audio": _flag(fields.get("generate_audio", False), "generate_audio"),
        "service_tier": tier,
        "execution_expires_after": _int_in(
            fields.get("execution_expires_after", 172800), "execution_expires_after", EXPIRES_RANGE
        ),
        "callback_url": callback_url,
    }
