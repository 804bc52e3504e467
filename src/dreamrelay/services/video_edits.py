"""`POST /v1/videos/edits`: Ray 3.2's video edit (the Agents API's `video_edit`) of a finished video of the
caller's, whatever model made it, or of an uploaded MP4; its motion, frame and length kept, the look changed
as the prompt says. Upstream gets our copy's URL, so the task goes to any channel serving Ray 3.2."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

from dreamrelay.domain import agents as agents_rules
from dreamrelay.domain.catalog import RAY32, RAY32_ASPECT_RATIOS, RAY32_RESOLUTIONS
from dreamrelay.domain.errors import InvalidRequest, StorageUnavailable
from dreamrelay.domain.requests import AgentsRequest, UpstreamRef
from dreamrelay.formats import videos as fmt
from dreamrelay.formats.families import VIDEOS
from dreamrelay.media import probe
from dreamrelay.media.storage import StorageError
from dreamrelay.services import intake, submit
from dreamrelay.services.agents import MAX_EDIT_SOURCE_SECONDS
from dreamrelay.services.auth import Caller
from dreamrelay.services.idempotency import Idempotency
from dreamrelay.services.images import TaskInputs
from dreamrelay.services.videos import Collaborators, finished_parent, progress

EDIT_KIND = "video_edit"  # the Agents API's type, and the price list's action


@dataclass(frozen=True)
class EditSource:
    """What an edit starts from: our copy of the video (a finished one of the caller's, or an upload)."""

    url: str
    seconds: float
    width: int
    height: int
    resolution: str  # the Ray 3.2 resolution it is edited at


async def edit(
    rt: Collaborators,
    caller: Caller,
    video: str | bytes,
    prompt: str,
    callback_url: str | None,
    idem: Idempotency | None,
) -> bytes:
    """A new video: Ray 3.2's edit of `video` (the id of a finished video of the caller's, or an uploaded
    MP4) as `prompt` says, its motion, frame and length kept (the Agents API's `video_edit`, sent our copy).
    Priced as Ray 3.2 at the source's length."""
    if not prompt.strip():
        raise InvalidRequest("prompt must not be empty", param="prompt")

    async def prepare(admit: intake.Admit, inputs: TaskInputs) -> intake.Order:
        caller.check_model(RAY32)
        source = await _uploaded(video) if isinstance(video, bytes) else await _finished(rt, caller, video)
        if source.seconds > MAX_EDIT_SOURCE_SECONDS:
            raise InvalidRequest(
                f"the video is {source.seconds:.1f} s long; "
                f"Ray 3.2 edits at most {MAX_EDIT_SOURCE_SECONDS:.0f} s",
                param="video",
            )
        request = AgentsRequest(
            kind=EDIT_KIND,
            model=RAY32,
            prompt=prompt,
            aspect_ratio=_nearest_ratio(source.width, source.height),
            source=UpstreamRef(url=source.url, media_type="video/mp4"),
            video={"resolution": source.resolution},
            duration=agents_rules.priced_duration(source.seconds),
        )
        await admit(EDIT_KIND, RAY32, request.price_key)  # before an upload is stored
        checked = await submit.checked_callback(rt, callback_url, "callback_url")
        if isinstance(video, bytes):
            key = inputs.next_key("mp4")
            try:
                await rt.storage.put_bytes(key, video)
            except StorageError as exc:
                raise StorageUnavailable("video: the upload could not be stored; try again shortly") from exc
            request = replace(
                request, source=UpstreamRef(url=f"{rt.media_base_url}/{key}", media_type="video/mp4")
            )
        return intake.Order(EDIT_KIND, RAY32, request, checked)

    task = await intake.intake(rt, caller, VIDEOS.format, idem, prepare)
    return fmt.encode_video(task, progress(rt, task, time.time()))


async def _finished(rt: Collaborators, caller: Caller, video_id: str) -> EditSource:
    parent = await finished_parent(rt, caller, video_id, "video")
    video = (parent.media or {})["video"]
    return EditSource(
        url=f"{rt.media_base_url}/{video['key']}",
        seconds=float(video["duration"]),
        width=int(video["width"]),
        height=int(video["height"]),
        resolution=_edit_resolution(parent.request.get("resolution")),
    )


async def _uploaded(data: bytes) -> EditSource:
    """An uploaded video, checked to be one (its URL is set once it is stored)."""
    try:
        facts = await probe.probe_video_off_loop(data)
    except probe.MediaError as exc:
        raise InvalidRequest(f"video: not a playable video ({exc})", param="video") from exc
    lines = min(facts.width, facts.height)
    fitting = [r for r in RAY32_RESOLUTIONS if fmt.LINES[r] <= lines]
    resolution = fitting[-1] if fitting else RAY32_RESOLUTIONS[0]
    return EditSource("", facts.duration, facts.width, facts.height, resolution)


def _nearest_ratio(width: int, height: int) -> str:
    """The Ray 3.2 aspect ratio nearest a source's frame (an edit keeps the frame)."""
    shape = width / max(height, 1)
    return min(RAY32_ASPECT_RATIOS, key=lambda r: abs(int(r.split(":")[0]) / int(r.split(":")[1]) - shape))


def _edit_resolution(resolution: str | None) -> str:
    """The source's resolution when Ray 3.2 has it; a 4K source is edited at Ray 3.2's highest."""
    if resolution in RAY32_RESOLUTIONS:
        return str(resolution)
    return RAY32_RESOLUTIONS[-1] if resolution == "4k" else "720p"
