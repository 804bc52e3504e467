"""What customers may ask for: models, aspect ratios, resolutions and durations."""

from __future__ import annotations

from dataclasses import dataclass

ASPECT_RATIOS = ("16:9", "1:1", "9:16", "4:3", "3:4", "21:9", "9:21")
RESOLUTIONS = ("540p", "720p", "1080p", "4k")
DURATIONS = ("5s", "9s", "10s")
PROMPT_MAX_CHARS = 5000
# Ray 3.2 (Agents API): 360p is the draft tier; a resolution names the short side's lines.
RAY32_RESOLUTIONS = ("360p", "540p", "720p", "1080p")


@dataclass(frozen=True)
class ModelSpec:
    name: str  # own-format name (model_name)
    official: str  # official Dream Machine model id
    resolutions: tuple[str, ...]
    durations: tuple[str, ...]
    takes_resolution: bool  # whether the official API accepts resolution/duration for it


MODELS: dict[str, ModelSpec] = {
    "ray-v1": ModelSpec("ray-v1", "ray-1-6", ("720p",), ("5s",), takes_resolution=False),
    "ray-v2": ModelSpec("ray-v2", "ray-2", RESOLUTIONS, ("5s", "9s"), takes_resolution=True),
    "ray-flash-2": ModelSpec("ray-flash-2", "ray-flash-2", RESOLUTIONS, ("5s", "9s"), takes_resolution=True),
    # Luma's Agents API model; reached through `luma-agents` channels (and the sandbox's Agents API).
    "ray-3.2": ModelSpec("ray-3.2", "ray-3.2", RAY32_RESOLUTIONS, ("5s", "10s"), takes_resolution=True),
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


# Luma's Agents API (agents.lumalabs.ai/v1): Ray 3.2 video and Uni-1 images.
RAY32 = "ray-3.2"
UNI_MODELS = ("uni-1", "uni-1-max")
AGENTS_MODELS = (RAY32, *UNI_MODELS)
AGENTS_TYPES = ("image", "image_edit", "video", "video_edit", "video_reframe")
AGENTS_VIDEO_TYPES = ("video", "video_edit", "video_reframe")
RAY32_ASPECT_RATIOS = ("9:16", "3:4", "1:1", "4:3", "16:9", "21:9")
UNI_ASPECT_RATIOS = ("3:1", "2:1", "21:9", "16:9", "4:3", "3:2", "1:1", "3:4", "2:3", "9:16", "1:2", "1:3")
AGENTS_PROMPT_MAX_CHARS = 5000
IMAGE_REFS_MAX = {"image": 9, "image_edit": 8}
KEYFRAMES_MAX = 64
EDIT_STRENGTHS = tuple(f"{kind}_{n}" for kind in ("adhere", "flex", "reimagine") for n in (1, 2, 3))
AGENTS_FAILURE_CODES = (
    "content_moderated",
    "generation_failed",
    "budget_exhausted",
    "output_not_found",
    "image_too_large",
    "unsupported_format",
    "corrupt_input",
    "invalid_request",
    "rate_limited",
)


def uses_agents_api(model: str) -> bool:
    """Whether upstream makes `model` through Luma's Agents API (not the Dream Machine API)."""
    return model in AGENTS_MODELS


def price_resolution(resolution: str, hdr: bool) -> str:
    """The price list's resolution key: HDR clips are priced apart ('1080p+hdr')."""
    return f"{resolution}+hdr" if hdr else resolution
