"""What customers may ask for: models, aspect ratios, resolutions and durations."""

from __future__ import annotations

from dataclasses import dataclass

ASPECT_RATIOS = ("16:9", "1:1", "9:16", "4:3", "3:4", "21:9", "9:21")
RESOLUTIONS = ("540p", "720p", "1080p", "4k")
DURATIONS = ("5s", "9s")
PROMPT_MAX_CHARS = 5000


@dataclass(frozen=True)
class ModelSpec:
    name: str  # own-format name (model_name)
    official: str  # official Dream Machine model id
    resolutions: tuple[str, ...]
    durations: tuple[str, ...]
    takes_resolution: bool  # whether the official API accepts resolution/duration for it


MODELS: dict[str, ModelSpec] = {
    "ray-v1": ModelSpec("ray-v1", "ray-1-6", ("720p",), ("5s",), takes_resolution=False),
    "ray-v2": ModelSpec("ray-v2", "ray-2", RESOLUTIONS, DURATIONS, takes_resolution=True),
    "ray-flash-2": ModelSpec("ray-flash-2", "ray-flash-2", RESOLUTIONS, DURATIONS, takes_resolution=True),
}

OFFICIAL_TO_OWN = {spec.official: spec.name for spec in MODELS.values()}


def normalise_duration(value: str) -> str | None:
    """'5s' and '5' both mean 5 seconds; anything else outside DURATIONS is None."""
    text = value.strip().lower()
    if not text.endswith("s"):
        text += "s"
    return text if text in DURATIONS else None


# Kling image generation (the seed's parameter table).
IMAGE_MODELS = ("kling-image",)
IMAGE_ASPECT_RATIOS = ("16:9", "9:16", "1:1", "4:3", "3:4", "3:2", "2:3")
IMAGE_PROMPT_MAX_CHARS = 500
IMAGE_NEGATIVE_PROMPT_MAX_CHARS = 200
IMAGE_COUNT_MAX = 9

# What a channel kind can make (upstreams/kinds.py); every model needs one of them.
VIDEO = "video"
IMAGE = "image"


def capability(model: str) -> str:
    """What a channel must make to serve `model`."""
    return IMAGE if model in IMAGE_MODELS else VIDEO
