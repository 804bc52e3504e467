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
