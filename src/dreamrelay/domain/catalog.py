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


# Seedance on Volcengine Ark, named as Ark names them: what each may be asked for.
@dataclass(frozen=True)
class SeedanceModel:
    name: str
    resolutions: tuple[str, ...]
    durations: tuple[int, int]  # seconds, both ends included
    roles: tuple[str, ...]  # the image roles it takes (first_frame, last_frame, reference_image)
    default_resolution: str = "720p"


# Seedance's output sizes per resolution and ratio (the 720p 16:9 frame is 1248×704).
SEEDANCE_SIZES: dict[str, dict[str, tuple[int, int]]] = {
    "480p": {
        "16:9": (864, 480), "4:3": (736, 544), "1:1": (640, 640), "3:4": (544, 736), "9:16": (480, 864),
        "21:9": (960, 416),
    },
    "720p": {
        "16:9": (1248, 704), "4:3": (1120, 832), "1:1": (960, 960), "3:4": (832, 1120), "9:16": (704, 1248),
        "21:9": (1504, 640),
    },
    "1080p": {
        "16:9": (1920, 1088), "4:3": (1664, 1248), "1:1": (1440, 1440), "3:4": (1248, 1664),
        "9:16": (1088, 1920), "21:9": (2176, 928),
    },
}  # fmt: skip
SEEDANCE_TOKENS_DIVISOR = 1024


def seedance_tokens(width: int, height: int, fps: int, seconds: float) -> int:
    """Ark's video tokens: width × height × fps × seconds ÷ 1024 (what `usage.completion_tokens` counts)."""
    return int(width * height * fps * seconds) // SEEDANCE_TOKENS_DIVISOR


def seedance_most_tokens(resolution: str, duration: int, fps: int) -> int:
    """The most tokens a clip of `resolution`, `duration` s and `fps` can use, whatever its ratio (an
    adaptive ratio is only known from the output): what its hold is priced on."""
    sizes = SEEDANCE_SIZES.get(resolution, SEEDANCE_SIZES["1080p"])
    return max(seedance_tokens(width, height, fps, duration) for width, height in sizes.values())


def token_charge(tokens: int, credits_per_million: int) -> int:
    """Credits for `tokens` at a price per million tokens, rounded up (a started credit is owed)."""
    return -(-max(tokens, 0) * max(credits_per_million, 0) // 1_000_000)


SEEDANCE_RATIOS = ("16:9", "4:3", "1:1", "3:4", "9:16", "21:9", "adaptive")
SEEDANCE_FRAME_RATES = (16, 24)
SEEDANCE_ROLES = ("first_frame", "last_frame", "reference_image")
SEEDANCE_REFERENCE_IMAGES_MAX = 4
_FRAMES = ("first_frame", "last_frame")
_ALL_RES = ("480p", "720p", "1080p")
SEEDANCE_MODELS: dict[str, SeedanceModel] = {
    spec.name: spec
    for spec in (
        SeedanceModel("doubao-seedance-1-0-pro-250528", _ALL_RES, (2, 12), _FRAMES, "1080p"),
        SeedanceModel("doubao-seedance-1-0-pro-fast-251015", _ALL_RES, (2, 12), ("first_frame",), "1080p"),
        SeedanceModel("doubao-seedance-1-0-lite-t2v-250428", _ALL_RES, (2, 12), ()),
        SeedanceModel("doubao-seedance-1-0-lite-i2v-250428", _ALL_RES, (2, 12), SEEDANCE_ROLES),
        SeedanceModel("doubao-seedance-1-5-pro-251215", _ALL_RES, (4, 12), _FRAMES),
        SeedanceModel("doubao-seedance-2-0-260128", _ALL_RES, (4, 15), SEEDANCE_ROLES),
        SeedanceModel("doubao-seedance-2-0-fast-260128", ("480p", "720p"), (4, 15), SEEDANCE_ROLES),
    )
}

# Kling video (text2video, image2video), named as Kling names them: what each may be asked for.
KLING_TEXT2VIDEO = "text2video"  # a Kling video task's action (and Kling's path word)
KLING_IMAGE2VIDEO = "image2video"
KLING_VIDEO_ACTIONS = (KLING_TEXT2VIDEO, KLING_IMAGE2VIDEO)
KLING_MODES = ("std", "pro")
KLING_DURATIONS = (5, 10)  # seconds; Kling's bodies send them as the strings "5" and "10"
KLING_VIDEO_RATIOS = ("16:9", "9:16", "1:1")
KLING_VIDEO_PROMPT_MAX_CHARS = 2500
KLING_CAMERA_TYPES = ("simple", "down_back", "forward_up", "right_turn_forward", "left_turn_forward")
KLING_CAMERA_AXES = ("horizontal", "vertical", "pan", "tilt", "roll", "zoom")
# The lines of a clip's short side per mode: std is 720p, pro 1080p.
KLING_MODE_LINES = {"std": 720, "pro": 1080}
KLING_MODE_RESOLUTIONS = {"std": "720p", "pro": "1080p"}
KLING_RESOLUTION_MODES = {resolution: mode for mode, resolution in KLING_MODE_RESOLUTIONS.items()}
KLING_DEFAULT_MODEL = "kling-v1"  # Kling's own default model_name


@dataclass(frozen=True)
class KlingVideoModel:
    name: str
    takes_cfg_scale: bool  # only the 1.x models use cfg_scale
    modes: tuple[str, ...] = KLING_MODES


KLING_VIDEO_MODELS: dict[str, KlingVideoModel] = {
    spec.name: spec
    for spec in (
        KlingVideoModel("kling-v1", takes_cfg_scale=True),
        KlingVideoModel("kling-v1-5", takes_cfg_scale=True),
        KlingVideoModel("kling-v1-6", takes_cfg_scale=True),
        KlingVideoModel("kling-v2-master", takes_cfg_scale=False),
        KlingVideoModel("kling-v2-1", takes_cfg_scale=False),
        KlingVideoModel("kling-v2-1-master", takes_cfg_scale=False),
    )
}


def kling_size(mode: str, aspect_ratio: str) -> tuple[int, int]:
    """A Kling clip's frame: the mode's lines on the short side, the ratio exact (pro 16:9: 1920×1080)."""
    short = KLING_MODE_LINES.get(mode, 720)
    across, _, down = aspect_ratio.partition(":")
    wide, high = int(across), int(down)
    if wide >= high:
        return short * wide // high, short
    return short, short * high // wide


def kling_used_duration(seconds: float) -> int:
    """The duration (5 or 10) a delivered clip of `seconds` is charged as: the shortest it reaches
    (Kling's 5 s clips last about 5.04–5.1 s)."""
    return next((d for d in KLING_DURATIONS if seconds <= d + 0.5), KLING_DURATIONS[-1])


# Every model a key's `allowed_models` may name (each is checked by the submit that makes it), and how
# many names such a list may hold.
KEY_MODELS = (*MODELS, *IMAGE_MODELS, *PHOTON_MODELS, *UNI_MODELS, *SEEDANCE_MODELS, *KLING_VIDEO_MODELS)
ALLOWED_MODELS_MAX = 32
# Every model a price rule may name: each model a key may be allowed (each is priced per task, or per
# million tokens for Seedance).
PRICED_MODELS = KEY_MODELS
# What a price rule's `resolution` names besides `*`: Luma's and Seedance's resolutions, Kling video's modes.
PRICED_RESOLUTIONS = tuple(dict.fromkeys((*RAY32_RESOLUTIONS, *RESOLUTIONS, *_ALL_RES, *KLING_MODES)))
MODEL_NAME_MAX_CHARS = 64


def price_resolution(resolution: str, hdr: bool) -> str:
    """The price list's resolution key: HDR clips are priced apart ('1080p+hdr')."""
    return f"{resolution}+hdr" if hdr else resolution


# What a channel kind can make (upstreams/kinds.py: each kind declares its capabilities, one adapter each):
# a task needs exactly one of them (`capability_of`).
VIDEO = "video"  # the Dream Machine API's video generations (and own-format relays)
IMAGE = "image"  # Kling's image API
AGENTS = "agents"  # Luma's Agents API
DREAM_MACHINE = "dream-machine"  # the rest of the Dream Machine API: Photon, reframes, modify, upscale, audio
SEEDANCE = "seedance"  # Volcengine Ark's content-generation tasks (Seedance)
KLING_VIDEO = "kling-video"  # Kling's video API (text2video, image2video)

# What a model's tasks make (a model's `family`).
MAKES_VIDEO = "video"
MAKES_IMAGES = "image"

# Channel kinds by name, as the catalog's models name them (upstreams/kinds.py registers them).
_DREAM_MACHINE_KINDS = ("sandbox", "luma")  # the official Dream Machine API
_VIDEO_KINDS = (*_DREAM_MACHINE_KINDS, "relay", "openai-videos")  # ... relays: own format, /v1/videos
_AGENTS_KINDS = ("sandbox", "luma-agents")
_KLING_KINDS = ("sandbox", "kling")
_SEEDANCE_KINDS = ("sandbox", "seedance")


@dataclass(frozen=True)
class CatalogModel:
    """One model customers may ask for: what it makes, what a channel must make to serve it, and the
    channel kinds that serve it (the kind's own declaration says which capabilities it has)."""

    name: str
    family: str  # MAKES_VIDEO or MAKES_IMAGES
    capability: str  # VIDEO, IMAGE, AGENTS, DREAM_MACHINE, SEEDANCE or KLING_VIDEO
    kinds: tuple[str, ...]


CATALOG: dict[str, CatalogModel] = {
    model.name: model
    for model in (
        *(CatalogModel(name, MAKES_VIDEO, VIDEO, _VIDEO_KINDS) for name in MODELS if name != RAY32),
        CatalogModel(RAY32, MAKES_VIDEO, AGENTS, _AGENTS_KINDS),
        *(CatalogModel(name, MAKES_IMAGES, AGENTS, _AGENTS_KINDS) for name in UNI_MODELS),
        *(CatalogModel(name, MAKES_IMAGES, IMAGE, _KLING_KINDS) for name in IMAGE_MODELS),
        *(CatalogModel(name, MAKES_IMAGES, DREAM_MACHINE, _DREAM_MACHINE_KINDS) for name in PHOTON_MODELS),
        *(CatalogModel(name, MAKES_VIDEO, SEEDANCE, _SEEDANCE_KINDS) for name in SEEDANCE_MODELS),
        *(CatalogModel(name, MAKES_VIDEO, KLING_VIDEO, _KLING_KINDS) for name in KLING_VIDEO_MODELS),
    )
}
# Actions that need more than their model's capability: the rest of the Dream Machine API.
ACTION_CAPABILITIES = dict.fromkeys(DM_ACTIONS, DREAM_MACHINE)


def capability_of(action: str, model: str) -> str:
    """What a channel must make to take a task of `action` on `model`."""
    found = ACTION_CAPABILITIES.get(action)
    if found is not None:
        return found
    spec = CATALOG.get(model)
    return spec.capability if spec is not None else VIDEO


def models_of(kind: str) -> tuple[str, ...]:
    """The catalog's models that channels of `kind` serve."""
    return tuple(name for name, spec in CATALOG.items() if kind in spec.kinds)


def uses_agents_api(model: str) -> bool:
    """Whether upstream makes `model` through Luma's Agents API (not the Dream Machine API)."""
    spec = CATALOG.get(model)
    return spec is not None and spec.capability == AGENTS
