"""Following one task upstream: apply a status, copy finished media to our storage, end stuck tasks."""

from __future__ import annotations

import contextlib
import logging
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

import aiohttp
import anyio

from dreamrelay import logs, metrics, netguard
from dreamrelay.domain.catalog import SEEDANCE_TOKENS_DIVISOR
from dreamrelay.domain.channel import Channel
from dreamrelay.domain.pricing import used_charge
from dreamrelay.domain.states import TaskState, can_move
from dreamrelay.domain.task import Task
from dreamrelay.domain.timings import FINISHING_RECHECK_SECONDS, STORAGE_RETRY_SECONDS, error_delay, task_kind
from dreamrelay.media import probe
from dreamrelay.media.storage import StorageError
from dreamrelay.netguard import URLPolicy, parse_networks
from dreamrelay.services import lifecycle, removal
from dreamrelay.services.lifecycle import Change
from dreamrelay.store import channels as channel_store
from dreamrelay.store import pricing
from dreamrelay.store import tasks as task_store
from dreamrelay.upstreams import kinds
from dreamrelay.upstreams.base import UpstreamStatus

if TYPE_CHECKING:
    import asyncio

    from dreamrelay.domain.timings import Durations
    from dreamrelay.netguard import IPAddress, URLPolicy
    from dreamrelay.settings import Settings


class Collaborators(removal.Collaborators, Protocol):
    """What following a task uses: removal's (a deleted task's copies go) and the media copy's parts."""

    settings: Settings
    url_policy: URLPolicy  # where upstream media may come from
    durations: Durations  # how long tasks take, learnt from the ones that finish
    finishing: set[str]  # tasks whose media this process is copying now
    media_copies: asyncio.Semaphore  # copies at once
    image_decodes: anyio.CapacityLimiter

    def guarded_session_for(self, policy: URLPolicy) -> aiohttp.ClientSession: ...

    async def sandbox_endpoints(self) -> list[tuple[IPAddress, int]]: ...


log = logging.getLogger(__name__)

MAX_VIDEO_BYTES = 2 * 1024**3
MAX_IMAGE_BYTES = 50 * 1024**2
GONE_STATUSES = (403, 404, 410)


class MediaCopyError(Exception):
    """Upstream said completed but its media could not be fetched or read (retried later)."""


class MediaGone(MediaCopyError):
    """The media URL answered 403/404/410: a presigned link that expired (or never was)."""


class MediaRefused(MediaCopyError):
    """URL safety refused the media URL (a private address the channel's media_networks do not name)."""


# The operator's words for a copy URL safety refused (the customer reads failures.py's sentence).
MEDIA_REFUSED = "media copy refused"


async def apply_status(
    rt: Collaborators, task: Task, status: UpstreamStatus, owner: str | None, *, poll_floor: float = 0.0
) -> Task | None:
    """Apply what upstream says. `owner` is the lease holder (None for an upstream callback)."""
    with logs.task_context(task.id):
        if status.raw_state != task.upstream_state:
            log.info(
                "task %s: %s says %s", task.id, "poll" if owner is not None else "callback", status.raw_state
            )
        return await _apply_status(rt, task, status, owner, poll_floor)


async def _apply_status(
    rt: Collaborators, task: Task, status: UpstreamStatus, owner: str | None, poll_floor: float
) -> Task | None:
    now = time.time()
    if status.state.is_terminal and not task.state.is_terminal:
        # Polled: it finished at most this long ago (since the last look saw it running). Called back:
        # the upstream told us as it finished.
        lag = now - task.updated_at if owner is not None else 0.0
        metrics.POLL_LAG.labels("poll" if owner is not None else "callback").observe(max(lag, 0.0))
    if status.state is TaskState.COMPLETED:
        if not (status.image_urls if task.makes_images else status.video_url):
            return await reschedule(rt, task, owner, errors=task.poll_errors + 1)
        if task.id in rt.finishing:
            # A callback and a poll crossed: this process copies the media once; the other waits.
            return None if owner is None else await postpone(rt, task, owner, FINISHING_RECHECK_SECONDS)
        rt.finishing.add(task.id)
        try:
            if task.state is TaskState.PENDING:
                # Done upstream at the first look: it shows processing while its media is copied.
                # Written as no lease holder: the lease (ours, or a poller's) stays where it is, so
                # nobody else polls and copies it meanwhile.
                moved = await _write(rt, task, None, Change(state=TaskState.PROCESSING))
                if moved is None:
                    return None
                task = moved
            return await _finish(rt, task, status, owner, now)
        finally:
            rt.finishing.discard(task.id)
    if status.state is TaskState.FAILED:
        reason = status.failure_reason or "upstream reported a failure without a reason"
        change = Change(state=TaskState.FAILED, failure_reason=reason, failure_code=status.failure_code)
        return await _write(rt, task, owner, change)
    polled = owner is not None  # a lease holder polled; None means upstream called us back
    change = Change(
        state=status.state if can_move(task.state, status.state) else None,
        upstream_state=status.raw_state,
        poll_count=task.poll_count + int(polled),
        poll_errors=0,
        next_poll_at=now + max(rt.durations.next_poll_delay(task, now), poll_floor),
    )
    return await _write(rt, task, owner, change)


async def _finish(
    rt: Collaborators, task: Task, status: UpstreamStatus, owner: str | None, now: float
) -> Task | None:
    """Copy the finished media into our storage, then mark the task completed."""
    started = time.perf_counter()
    try:
        channel, source = await media_source(rt, task)
        if task.makes_images:
            media = await copy_images(rt, task, status.image_urls, source)
        else:
            media = await copy_media(rt, task, status.video_url or "", source)
        metrics.FINISH_SECONDS.labels("image" if task.is_image else "video").observe(
            time.perf_counter() - started
        )
    except MediaGone as exc:
        # A presigned output link that has died does not come back: such a task fails (and is refunded)
        # rather than ever completing with a dead link. Only where the channel's kind says links expire.
        if channel is None or not kinds.links_expire(channel, task.capability):
            log.warning("task %s: media copy failed: %s", task.id, exc)
            return await reschedule(rt, task, owner, errors=task.poll_errors + 1)
        log.warning("task %s: upstream's output link is dead: %s", task.id, exc)
        reason = "upstream's output link had expired before it could be copied"
        change = Change(state=TaskState.FAILED, failure_reason=reason, failure_code="output_not_found")
        return await _write(rt, task, owner, change)
    except MediaRefused as exc:
        if owner is None:  # a callback's word only: the next poll decides
            log.warning("task %s: media copy refused: %s", task.id, exc)
            return await reschedule(rt, task, owner, errors=task.poll_errors + 1)
        # The upstream itself (polled) names media URL safety refuses: no retry changes that. Fail now
        # (the hold is released), telling the operator which setting allows it.
        reason = (
            f"{MEDIA_REFUSED}: {exc}; if this upstream's media really lives there, name its network in "
            "the channel's media_networks (`dreamrelay channels update <name> --media-networks <CIDR>`)"
        )
        log.warning("task %s: %s", task.id, reason)
        return await _write(rt, task, owner, Change(state=TaskState.FAILED, failure_reason=reason))
    except MediaCopyError as exc:
        log.warning("task %s: media copy failed: %s", task.id, exc)
        return await reschedule(rt, task, owner, errors=task.poll_errors + 1)
    except StorageError as exc:
        # Our storage is down, not upstream: wait without counting it against the task (its
        # deadline still applies).
        log.error("task %s: media storage failed, trying again later: %s", task.id, exc)
        return await _write(rt, task, owner, Change(next_poll_at=now + STORAGE_RETRY_SECONDS))
    rt.durations.note(task_kind(task), now - task.created_at)
    tokens = used_tokens(task, status, media)
    charged = used_charge(task.price, task.token_rate, tokens)
    by_length = await charge_by_length(rt, task, channel, media)
    if by_length is not None:  # a kind that charges by what it delivered (Kling video's clip length)
        charged = min(by_length, task.price)
    change = Change(
        state=TaskState.COMPLETED,
        media=media,
        upstream_state=status.raw_state,
        usage_tokens=tokens,
        charged=charged,
    )
    done = await _write(rt, task, owner, change)
    if done is None:
        await _forget_if_deleted(rt, task.id, media)
    return done


def used_tokens(task: Task, status: UpstreamStatus, media: dict[str, Any]) -> int | None:
    """The tokens a task priced by use used: what upstream reports, or, when it reports none (a relay
    that drops `usage`), what our copy of the video counts (width × height × frames ÷ 1024)."""
    if task.token_rate is None:
        return status.usage_tokens
    if status.usage_tokens is not None:
        return status.usage_tokens
    video = media.get("video") or {}
    width, height, frames = (int(video.get(k) or 0) for k in ("width", "height", "frames"))
    return width * height * frames // SEEDANCE_TOKENS_DIVISOR


async def charge_by_length(
    rt: Collaborators, task: Task, channel: Channel | None, media: dict[str, Any]
) -> int | None:
    """What a finished task used, in credits, where its channel's kind charges by use (Kling video: the
    mode and the real length of the clip we copied); None: the hold is the charge."""
    priced = kinds.used_price(channel, task.capability) if channel is not None else None
    seconds = (media.get("video") or {}).get("duration")
    if priced is None or not isinstance(seconds, int | float):
        return None
    key = priced(task.request, float(seconds))
    async with rt.db.direct_reader() as tx:
        unit = await pricing.price_for(
            tx, model=task.model, resolution=key.resolution, duration=key.duration, action=task.action
        )
    return None if unit is None else unit.hold(key)


async def _forget_if_deleted(rt: Collaborators, task_id: str, media: dict[str, Any]) -> None:
    """The customer deleted the task while its media was being copied: what we just stored goes too."""
    async with rt.db.reader() as conn:
        current = await task_store.get_task(conn, task_id)
    if current is not None and current.deleted_at is not None:
        await removal.delete_media(rt, current.with_values({"media": media}))


async def postpone(rt: Collaborators, task: Task, owner: str, seconds: float) -> Task | None:
    """Upstream asked us to slow down: ask again later, without counting it against the task."""
    return await _write(rt, task, owner, Change(next_poll_at=time.time() + seconds))


async def reschedule(rt: Collaborators, task: Task, owner: str | None, *, errors: int) -> Task | None:
    if errors >= rt.settings.poll_error_limit:
        return await fail(rt, task, owner, "upstream stopped answering for this task")
    now = time.time()
    change = Change(
        poll_count=task.poll_count + 1,
        poll_errors=errors,
        next_poll_at=now + error_delay(errors, rt.settings.poll_error_base_seconds),
    )
    return await _write(rt, task, owner, change)


async def fail(rt: Collaborators, task: Task, owner: str | None, reason: str) -> Task | None:
    with logs.task_context(task.id):
        return await _write(rt, task, owner, Change(state=TaskState.FAILED, failure_reason=reason))


async def _write(rt: Collaborators, task: Task, owner: str | None, change: Change) -> Task | None:
    updated = await lifecycle.transition(rt, task, change, lease_owner=owner)
    if updated is None:
        log.info("task %s changed under us (lease lost or raced); dropping this result", task.id)
    return updated


@dataclass(frozen=True)
class MediaSource:
    """Where a task's finished media may be fetched from: URL safety's rules for its channel."""

    session: aiohttp.ClientSession
    policy: URLPolicy
    url_prefix: str = ""  # when set, every media URL must start with it (the sandbox's files)
    # (URL prefix, headers): the channel's key for media under its base URL (ChannelKind.media_key)
    keyed: tuple[str, dict[str, str]] | None = None

    def headers_for(self, url: str) -> dict[str, str] | None:
        if self.keyed is not None and url.startswith(self.keyed[0]):
            return self.keyed[1]
        return None


async def media_source(rt: Collaborators, task: Task) -> tuple[Channel | None, MediaSource]:
    """The task's channel, and where its media may come from: like any URL from outside, public
    addresses only, unless the operator allowed private networks for the channel (`media_networks`).
    A channel of a kind our own sandbox serves (`ChannelKind.own_media`) may reach the sandbox's
    listener, and there only its files: a forged report naming another port, or another path of that
    listener, is refused."""
    async with rt.db.reader() as conn:
        channel = await channel_store.get_channel(conn, task.channel_id) if task.channel_id else None
    policy, prefix = rt.url_policy, ""
    keyed = kinds.media_headers(channel) if channel is not None else None
    if channel is not None:
        policy = policy.with_networks(parse_networks(channel.media_networks))
        where = kinds.own_media(channel)
        if where is None and channel.base_url:
            # The listener of the API the operator configured (another DreamRelay on the LAN or on
            # loopback serves its media there): its own origin, nothing else of that network.
            with contextlib.suppress(ValueError):  # a bad port: that channel's calls fail on their own
                policy = policy.with_endpoints(await netguard.endpoints_of(channel.base_url))
        if where is not None:
            policy = policy.with_endpoints(await rt.sandbox_endpoints())
            prefix = where(rt.settings, task.capability)
    return channel, MediaSource(rt.guarded_session_for(policy), policy, prefix, keyed)


def _checked(source: MediaSource, url: str) -> str:
    if source.url_prefix:
        path = urlsplit(url).path
        if not url.startswith(source.url_prefix) or ".." in path or "%" in path or "//" in path[1:]:
            raise MediaCopyError("media URL is not one of the sandbox's files")
    return url


async def copy_media(rt: Collaborators, task: Task, video_url: str, source: MediaSource) -> dict[str, Any]:
    """Download the video, probe it, cut thumbnail and last frame; store all three as ours."""
    async with rt.media_copies:
        return await _copy_media(rt, task, video_url, source)


async def _copy_media(rt: Collaborators, task: Task, video_url: str, source: MediaSource) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="dreamrelay-") as tmp:
        video_path = Path(tmp) / "video.mp4"
        await _download(source, video_url, video_path)
        try:
            facts = await anyio.to_thread.run_sync(_probe, video_path)
        except probe.MediaError as exc:
            raise MediaCopyError(f"upstream video is not playable: {exc.detail}") from exc
        prefix = f"tasks/{task.id}"
        await rt.storage.put_file(f"{prefix}/video.mp4", video_path)
        await rt.storage.put_bytes(f"{prefix}/thumbnail.jpg", facts.pop("thumbnail_jpeg"))
        await rt.storage.put_bytes(f"{prefix}/last_frame.jpg", facts.pop("last_frame_jpeg"))
    video, thumb = facts["video"], facts["thumbnail"]
    return {
        "completed_at": time.time(),
        "video": {"key": f"{prefix}/video.mp4", **video},
        "thumbnail": {"key": f"{prefix}/thumbnail.jpg", **thumb},
        "last_frame": {"key": f"{prefix}/last_frame.jpg", **facts["last_frame"]},
    }


async def copy_images(
    rt: Collaborators, task: Task, urls: Sequence[str], source: MediaSource
) -> dict[str, Any]:
    """Download each image, check it is a JPEG or PNG that decodes, and store it as ours."""
    images = []
    for index, url in enumerate(urls):
        data = await _download_bytes(source, url, MAX_IMAGE_BYTES)
        media_type = probe.sniff_image(data)
        if media_type is None:
            raise MediaCopyError(f"image {index} from upstream is neither JPEG nor PNG")
        try:
            width, height = await anyio.to_thread.run_sync(probe.image_size, data, limiter=rt.image_decodes)
        except probe.MediaError as exc:
            raise MediaCopyError(f"image {index} from upstream does not decode: {exc.detail}") from exc
        key = f"tasks/{task.id}/image-{index}.{'png' if media_type == 'image/png' else 'jpg'}"
        await rt.storage.put_bytes(key, data)
        images.append({"key": key, "width": width, "height": height, "media_type": media_type})
    return {"completed_at": time.time(), "images": images}


async def _download_bytes(source: MediaSource, url: str, limit: int) -> bytes:
    timeout = aiohttp.ClientTimeout(total=120, sock_connect=15)
    try:
        async with netguard.opened(
            source.session,
            _checked(source, url),
            source.policy,
            max_bytes=limit,
            limits=timeout,
            headers=source.headers_for(url),
        ) as response:
            # read(n) returns what has arrived so far, not n bytes: read to the end (or past the limit).
            data = bytearray()
            async for chunk in response.content.iter_chunked(1 << 16):
                data += chunk
                if len(data) > limit:
                    raise MediaCopyError(f"upstream image exceeds {limit} bytes")
    except (netguard.UnsafeURL, netguard.FetchError) as exc:
        raise _copy_error(url, exc) from exc
    return bytes(data)


def _copy_error(url: str, exc: netguard.UnsafeURL | netguard.FetchError) -> MediaCopyError:
    """Refused by URL safety or failed: try again later; gone at upstream (403/404/410): MediaGone."""
    if isinstance(exc, netguard.FetchError) and exc.status in GONE_STATUSES:
        return MediaGone(f"GET {url[:200]} answered {exc.status}")
    if isinstance(exc, netguard.UnsafeURL):
        return MediaRefused(f"GET {url[:200]} refused by URL safety: {exc}")
    return MediaCopyError(f"GET {url[:200]} failed: {exc.detail}")


def _probe(path: Path) -> dict[str, Any]:
    info = probe.probe_video(path)
    first, last = probe.first_and_last_frames(path)
    return {
        "video": {
            "width": info.width,
            "height": info.height,
            "duration": info.duration,
            "frames": info.frames,
            "codec": info.codec,
            "audio_codec": info.audio_codec,
        },
        "thumbnail": {"width": first.width, "height": first.height, "palette": probe.palette_grid(first)},
        "last_frame": {"width": last.width, "height": last.height},
        "thumbnail_jpeg": probe.jpeg_bytes(first),
        "last_frame_jpeg": probe.jpeg_bytes(last),
    }


async def _download(source: MediaSource, url: str, target: Path) -> None:
    timeout = aiohttp.ClientTimeout(total=600, sock_connect=15, sock_read=60)
    try:
        async with netguard.opened(
            source.session,
            _checked(source, url),
            source.policy,
            max_bytes=MAX_VIDEO_BYTES,
            limits=timeout,
            headers=source.headers_for(url),
        ) as response:
            size = 0
            async with await anyio.open_file(target, "wb") as handle:
                async for chunk in response.content.iter_chunked(1 << 20):
                    size += len(chunk)
                    if size > MAX_VIDEO_BYTES:
                        raise MediaCopyError("upstream video exceeds 2 GiB")
                    await handle.write(chunk)
    except (netguard.UnsafeURL, netguard.FetchError) as exc:
        raise _copy_error(url, exc) from exc
