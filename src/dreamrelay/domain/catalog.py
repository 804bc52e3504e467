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


# The rest of the Dream Machine API (/dream-machine/v1): Photon images, and actions on videos.
PHOTON_MODELS = ("photon-1", "photon-flash-1")
# Task actions (the price list's `action`) and which of them make a picture rather than a video.
GENERATE_IMAGE = "generate_image"
REFRAME_IMAGE = "reframe_image"
UPSCALE_VIDEO = "upscale_video"
ADD_AUDIO = "add_audio"
REFRAME_VIDEO = "reframe_video"
MODIFY_VIDEO = "modify_video"
DM_IMAGE_ACTIONS = (GENERATE_IMAGE, REFRAME_IMAGE)
DM_VIDEO_ACTIONS = (UPSCALE_VIDEO, ADD_AUDIO, REFRAME_VIDEO, MODIFY_VIDEO)
DM_ACTIONS = DM_IMAGE_ACTIONS + DM_VIDEO_ACTIONS
IMAGE_FORMATS = ("jpg", "png")
MODIFY_MODES = tuple(f"{kind}_{n}" for kind in ("adhere", "flex", "reimagine") for n in (1, 2, 3))
UPSCALE_RESOLUTIONS = ("540p", "720p", "1080p", "4k")
PHOTON_IMAGE_REFS_MAX = 4
PHOTON_STYLE_REFS_MAX = 1
PHOTON_CHARACTER_IMAGES_MAX = 4
SOURCE_VIDEO_MAX_SECONDS = 30.0
# Where a reframe puts the source, in pixels of the new frame (official API fields).
POSITION_FIELDS = (
    "grid_position_x",
    "grid_position_y",
    "resized_width",
    "resized_height",
    "x_start",
    "x_end",
    "y_start",
    "y_end",
)
# A source video's length as the price list sees it (reframe, modify): the first bucket it fits.
SOURCE_DURATION_BUCKETS = (("5s", 5.5), ("10s", 10.5), ("30s", SOURCE_VIDEO_MAX_SECONDS + 0.5))


def source_duration(seconds: float) -> str | None:
    """The price bucket of a source video `seconds` long; None when it is too long."""
    return next((name for name, most in SOURCE_DURATION_BUCKETS if seconds <= most), None)


# Camera concepts (GET /generations/concepts/list) and the older camera motions.
CONCEPTS = (
    "truck_left", "truck_right", "pan_left", "pan_right", "tilt_up", "tilt_down", "pedestal_up",
    "pedestal_down", "push_in", "pull_out", "orbit_left", "orbit_right", "crane_up", "crane_down",
    "dolly_zoom", "zoom_in", "zoom_out", "handheld", "static", "aerial", "aerial_drone", "bolt_cam",
    "elevator_doors", "ground_level", "low_angle", "high_angle", "overhead", "over_the_shoulder",
    "pov", "selfie", "tiny_planet",
)  # fmt: skip
CAMERA_MOTIONS = (
    "Static", "Move Left", "Move Right", "Move Up", "Move Down", "Push In", "Pull Out", "Zoom In",
    "Zoom Out", "Pan Left", "Pan Right", "Orbit Left", "Orbit Right", "Crane Up", "Crane Down",
)  # fmt: skip


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


# What a channel kind can make (upstreams/kinds.py): a task's family; every model needs one of them.
VIDEO = "video"  # the Dream Machine API (and own-format relays)
IMAGE = "image"  # Kling's image API
AGENTS = "agents"  # Luma's Agents API


def capability(model: str) -> str:
    """What a channel must make to serve `model`."""
    if model in IMAGE_MODELS:
        return IMAGE
    return AGENTS if uses_agents_api(model) else VIDEO
