"""Submit and extend: validate, keep the images, insert the task, hand it to an upstream channel."""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
import uuid
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection
from yarl import URL

from dreamrelay import logs, metrics
from dreamrelay.domain.catalog import (
    IMAGE_MODELS,
    MODELS,
    RAY32,
    RAY32_ASPECT_RATIOS,
    normalise_duration,
    price_resolution,
)
from dreamrelay.domain.errors import (
    Conflict,
    Forbidden,
    InsufficientBalance,
    InvalidRequest,
    NoChannelAvailable,
    PayloadTooLarge,
    RateLimited,
    TaskNotFound,
    TaskNotReady,
    UpstreamError,
    UpstreamRejected,
)
from dreamrelay.domain.states import TaskState
from dreamrelay.netguard import UnsafeURL, check_url_syntax, resolve_checked
from dreamrelay.ratelimit import NO_LIMIT, effective_limit
from dreamrelay.services import lifecycle
from dreamrelay.services.auth import Caller
from dreamrelay.services.images import kept_for, store_image
from dreamrelay.services.routing import candidates
from dreamrelay.store import channels as channel_store
from dreamrelay.store import idempotency, ledger, pricing
from dreamrelay.store import tasks as task_store
from dreamrelay.store.channels import Channel
from dreamrelay.store.schema import accounts, api_keys
from dreamrelay.store.tasks import IMAGE_ACTION, TaskRow
from dreamrelay.upstreams.base import (
    AgentsRequest,
    DreamMachineRequest,
    ImageRequest,
    UpstreamOutcomeUnknown,
    UpstreamRefused,
    UpstreamRequest,
    UpstreamUnavailable,
)

if TYPE_CHECKING:
    from dreamrelay.runtime import Runtime

log = logging.getLogger(__name__)

# A task still pending without an upstream id this long after creation was interrupted mid-dispatch.
DISPATCH_GRACE_SECONDS = 300.0
FIRST_POLL_DELAY_SECONDS = 0.5
# Channels that call us back are still polled, rarely, in case a callback is lost.
CALLBACK_SAFETY_POLL_SECONDS = 20.0
IN_FLIGHT_RETRY_AFTER_SECONDS = 5
IDEMPOTENCY_KEY_MAX_CHARS = 255


@dataclass(frozen=True)
class Idempotency:
    """An Idempotency-Key and the fingerprint of the request it was sent with."""

    key: str
    request_hash: str

    @classmethod
    def from_header(cls, header: str | None, operation: str, body: object) -> Idempotency | None:
        if header is None:
            return None
        key = header.strip()
        if not key or len(key) > IDEMPOTENCY_KEY_MAX_CHARS:
            raise InvalidRequest(f"Idempotency-Key must be 1 to {IDEMPOTENCY_KEY_MAX_CHARS} characters")
        canonical = orjson.dumps([operation, body], option=orjson.OPT_SORT_KEYS)
        return cls(key=key, request_hash=hashlib.sha256(canonical).hexdigest())


class _Replay(Exception):
    def __init__(self, task_id: str) -> None:
        self.task_id = task_id


_FIELD_NAMES = {
    "luma": ("notify_hook", "image_url", "image_end_url"),
    "official": ("callback_url", "keyframes.frame0.url", "keyframes.frame1.url"),
    "acedata": ("callback_url", "start_image_url", "end_image_url"),
}


@dataclass(frozen=True)
class GenerationInput:
    """A generation request in our own vocabulary, whatever API format it arrived in.

    `start_generation` / `end_generation` are task ids whose video this one continues from (extend)
    or leads into (reverse extend); both together interpolate between two videos.
    """

    prompt: str
    aspect_ratio: str | None = None
    model: str | None = None
    resolution: str | None = None
    duration: str | None = None
    loop: bool = False
    expand_prompt: bool = False
    image: str | None = None
    end_image: str | None = None
    callback_url: str | None = None
    start_generation: str | None = None
    end_generation: str | None = None


async def submit(
    rt: Runtime,
    caller: Caller,
    given: GenerationInput,
    api_format: str = "luma",
    idem: Idempotency | None = None,
) -> TaskRow:
    if idem is not None and (replayed := await _replayed(rt, caller, idem)) is not None:
        return replayed
    start = await _generation_keyframe(rt, caller, "frame0", given.start_generation)
    end = await _generation_keyframe(rt, caller, "frame1", given.end_generation)
    parents = [p for p in (start, end) if p is not None]
    if len({p.channel_id for p in parents}) > 1:
        raise InvalidRequest("both keyframe generations must come from the same upstream channel")
    model, resolution, duration = _options(rt, given.model, given.resolution, given.duration)
    caller.check_model(model)
    if model == RAY32:
        _check_ray32(given.aspect_ratio or "16:9", duration, given.loop)
    # Errors name the fields as the customer's format calls them.
    hook_field, start_field, end_field = _FIELD_NAMES.get(api_format, _FIELD_NAMES["luma"])
    callback_url = await _checked_callback(rt, given.callback_url, hook_field)
    request: dict[str, Any] = {
        "prompt": given.prompt,
        "aspect_ratio": given.aspect_ratio or "16:9",
        "model": model,
        "resolution": resolution,
        "duration": duration,
        "loop": given.loop,
        "expand_prompt": given.expand_prompt,
        "image_url": None,
        "image_end_url": None,
        "start_generation": start.id if start else None,
        "end_generation": end.id if end else None,
    }
    action, parent_id = ("extend", parents[0].id) if parents else ("generate", None)
    task_id = str(uuid.uuid4())
    await admit(rt, caller, action, model, request)  # money and limits before any image is touched
    try:
        async with kept_for(rt, task_id) as inputs:
            if given.image and not start:
                request["image_url"] = await store_image(rt, start_field, given.image, inputs)
            if given.end_image and not end:
                request["image_end_url"] = await store_image(rt, end_field, given.end_image, inputs)
            task = await _insert(
                rt, caller, action, parent_id, model, request, callback_url, api_format, idem, task_id
            )
    except _Replay as replay:
        return await _task(rt, replay.task_id)
    upstream_request = _upstream_request(
        request, start.upstream_id if start else None, end.upstream_id if end else None
    )
    pinned = parents[0].channel_id if parents else None
    return await _dispatch(rt, task, upstream_request, pinned_channel=pinned)


@dataclass(frozen=True)
class ImageInput:
    """An image generation request (Kling's parameters, already within the seed's limits)."""

    prompt: str
    n: int = 1
    model: str | None = None
    negative_prompt: str | None = None
    image: str | None = None
    image_fidelity: float | None = None
    aspect_ratio: str | None = None
    callback_url: str | None = None


async def submit_images(
    rt: Runtime, caller: Caller, given: ImageInput, idem: Idempotency | None = None
) -> TaskRow:
    if idem is not None and (replayed := await _replayed(rt, caller, idem)) is not None:
        return replayed
    model = given.model or IMAGE_MODELS[0]
    if model not in IMAGE_MODELS:
        raise InvalidRequest(f"model must be one of {', '.join(IMAGE_MODELS)}")
    caller.check_model(model)
    callback_url = await _checked_callback(rt, given.callback_url, "callback_url")
    request: dict[str, Any] = {
        "prompt": given.prompt,
        "negative_prompt": given.negative_prompt,
        "image_url": None,
        "image_fidelity": given.image_fidelity,
        "n": given.n,
        "aspect_ratio": given.aspect_ratio or "16:9",
    }
    task_id = str(uuid.uuid4())
    await admit(rt, caller, IMAGE_ACTION, model, request)  # money and limits before the image is touched
    try:
        async with kept_for(rt, task_id) as inputs:
            if given.image:
                try:
                    request["image_url"] = await store_image(rt, "image", given.image, inputs)
                except PayloadTooLarge as exc:  # a limit of the Kling table: 400 like the others
                    raise InvalidRequest(exc.message) from exc
            task = await _insert(
                rt, caller, IMAGE_ACTION, None, model, request, callback_url, "kling", idem, task_id
            )
    except _Replay as replay:
        return await _task(rt, replay.task_id)
    image_url = request["image_url"]
    upstream_request = ImageRequest(
        prompt=given.prompt,
        model=model,
        aspect_ratio=request["aspect_ratio"],
        n=given.n,
        negative_prompt=given.negative_prompt,
        image_url=image_url,
        image_fidelity=given.image_fidelity,
    )
    return await _dispatch(rt, task, upstream_request, pinned_channel=None)


async def extend(
    rt: Runtime,
    caller: Caller,
    parent_id: str,
    given: GenerationInput,
    api_format: str = "luma",
    idem: Idempotency | None = None,
) -> TaskRow:
    """Own-format extend: continue a completed task with its model, frame size and aspect ratio."""
    if idem is not None and (replayed := await _replayed(rt, caller, idem)) is not None:
        return replayed
    async with rt.db.reader() as conn:
        parent = await task_store.get_task(conn, parent_id, caller.account_id)
    if parent is None or parent.is_image:
        raise TaskNotFound(f"task {parent_id} not found")
    if parent.state is not TaskState.COMPLETED or parent.upstream_id is None:
        raise TaskNotReady(f"task {parent_id} is {parent.state}; only a completed task can be extended")
    base = parent.request
    continued = replace(
        given,
        model=base["model"],
        resolution=base["resolution"],
        aspect_ratio=base["aspect_ratio"],
        image=None,
        start_generation=parent.id,
    )
    return await submit(rt, caller, continued, api_format, idem)


async def _generation_keyframe(
    rt: Runtime, caller: Caller, frame: str, task_id: str | None
) -> TaskRow | None:
    """The caller's completed video task a generation keyframe names (400 otherwise)."""
    if task_id is None:
        return None
    async with rt.db.reader() as conn:
        task = await task_store.get_task(conn, task_id, caller.account_id) if len(task_id) <= 64 else None
    if task is None or task.is_image:
        raise InvalidRequest(f"keyframes.{frame}: generation {task_id[:64]} not found")
    if task.state is not TaskState.COMPLETED or task.upstream_id is None:
        raise InvalidRequest(f"keyframes.{frame}: generation {task_id} is {task.state}, not completed")
    return task


def _check_ray32(aspect_ratio: str, duration: str, loop: bool) -> None:
    """What Ray 3.2 cannot do, said in the own and official formats' words (400)."""
    if aspect_ratio not in RAY32_ASPECT_RATIOS:
        raise InvalidRequest(f"aspect_ratio must be one of {', '.join(RAY32_ASPECT_RATIOS)} for {RAY32}")
    if loop and duration == "10s":
        raise InvalidRequest(f"{RAY32} cannot loop a 10s video")


def _options(
    rt: Runtime, model: str | None, resolution: str | None, duration: str | None
) -> tuple[str, str, str]:
    model = model or rt.settings.default_model
    spec = MODELS.get(model)
    if spec is None:
        raise InvalidRequest(f"model_name must be one of {', '.join(MODELS)}")
    resolution = resolution or "720p"
    if resolution not in spec.resolutions:
        raise InvalidRequest(f"resolution must be one of {', '.join(spec.resolutions)} for {model}")
    normalised = normalise_duration(duration or "5s")
    if normalised is None or normalised not in spec.durations:
        raise InvalidRequest(f"duration must be one of {', '.join(spec.durations)} for {model}")
    return model, resolution, normalised


async def _checked_callback(rt: Runtime, url: str | None, field: str = "notify_hook") -> str | None:
    if not url:
        return None
    try:
        check_url_syntax(url, rt.url_policy)
        host, port = _host_port(url)
        await resolve_checked(host, port, rt.url_policy)
    except UnsafeURL as exc:
        raise InvalidRequest(f"{field}: {exc}") from exc
    return url


def _host_port(url: str) -> tuple[str, int]:
    parsed = URL(url)
    return parsed.host or "", parsed.port or (443 if parsed.scheme == "https" else 80)


def _upstream_request(
    request: dict[str, Any], extend_upstream_id: str | None, end_upstream_id: str | None
) -> UpstreamRequest:
    return UpstreamRequest(
        prompt=request["prompt"],
        model=request["model"],
        aspect_ratio=request["aspect_ratio"],
        resolution=request["resolution"],
        duration=request["duration"],
        loop=request["loop"],
        expand_prompt=request["expand_prompt"],
        start_image_url=request["image_url"],
        end_image_url=request["image_end_url"],
        extend_upstream_id=extend_upstream_id,
        end_upstream_id=end_upstream_id,
    )


async def _insert(
    rt: Runtime,
    caller: Caller,
    action: str,
    parent_id: str | None,
    model: str,
    request: dict[str, Any],
    callback_url: str | None,
    api_format: str,
    idem: Idempotency | None,
    task_id: str | None = None,
) -> TaskRow:
    """One transaction: price, hold, in-flight cap, task row, idempotency record — or nothing at all."""
    now = time.time()
    values: dict[str, Any] = {
        "id": task_id or str(uuid.uuid4()),
        "account_id": caller.account_id,
        "api_key_id": caller.key_id,
        "channel_id": None,
        "action": action,
        "parent_id": parent_id,
        "model": model,
        "api_format": api_format,
        "request": request,
        "state": TaskState.PENDING,
        "version": 1,
        "upstream_id": None,
        "upstream_state": None,
        "failure_reason": None,
        "callback_url": callback_url,
        "media": None,
        "created_at": now,
        "updated_at": now,
        "finished_at": None,
        "deadline_at": now + rt.settings.task_deadline_seconds,
        "next_poll_at": now + DISPATCH_GRACE_SECONDS,
        "poll_count": 0,
        "poll_errors": 0,
        "lease_owner": None,
        "lease_until": None,
        "price": 0,
        "upstream_token": secrets.token_urlsafe(24),
        "body": b"",
    }
    task = TaskRow(**values)
    values["body"] = lifecycle.encode_body(task, rt.media_base_url)
    try:
        async with rt.db.transaction() as conn:
            price = await _price(conn, action, model, request)
            values["price"] = price
            try:
                await ledger.hold(
                    conn, account_id=caller.account_id, key_id=caller.key_id, task_id=task.id, amount=price
                )
            except ledger.BalanceTooLow as exc:
                raise _too_poor(price) from exc
            except ledger.SpendCapReached as exc:
                raise _capped() from exc
            await _check_in_flight(rt, conn, caller)
            await task_store.insert_task(conn, values)
            if idem is not None:
                await idempotency.remember(conn, caller.account_id, idem.key, idem.request_hash, task.id)
    except IntegrityError:
        # A concurrent request with the same Idempotency-Key won the insert: answer with its task.
        if idem is None:
            raise
        replayed = await _replayed(rt, caller, idem)
        if replayed is None:
            raise
        raise _Replay(replayed.id) from None
    return task.with_values({"body": values["body"], "price": values["price"]})


async def _price(conn: AsyncConnection, action: str, model: str, request: dict[str, Any]) -> int:
    """What the task costs. Images are priced per image, whatever their size; videos by resolution and
    duration."""
    hdr = bool(request.get("hdr"))
    resolution = price_resolution(request.get("resolution", pricing.WILDCARD), hdr)
    duration = request.get("duration", pricing.WILDCARD)
    unit_price = await pricing.price_for(
        conn, model=model, resolution=resolution, duration=duration, action=action
    )
    if unit_price is None:
        raise InvalidRequest(f"{model} at {resolution}/{duration} has no price")
    return unit_price * int(request.get("n", 1))


async def admit(rt: Runtime, caller: Caller, action: str, model: str, request: dict[str, Any]) -> None:
    """Price, balance, spending cap and in-flight cap, read before anything costly (fetching and decoding
    images): a request that will be refused is refused first. `_insert` checks them again, atomically."""
    async with rt.db.reader() as conn:
        price = await _price(conn, action, model, request)
        if price > 0:
            balance = await conn.scalar(select(accounts.c.balance).where(accounts.c.id == caller.account_id))
            if balance is None or balance < price:
                raise _too_poor(price)
            key = (
                await conn.execute(
                    select(api_keys.c.spend_cap, api_keys.c.spent).where(api_keys.c.id == caller.key_id)
                )
            ).one_or_none()
            if key is not None and key.spend_cap is not None and key.spent + price > key.spend_cap:
                raise _capped()
        await _check_in_flight(rt, conn, caller)


def _too_poor(price: int) -> InsufficientBalance:
    return InsufficientBalance(f"this task costs {price} credits; the balance is too low")


def _capped() -> Forbidden:
    return Forbidden("this API key has reached its spending cap")


async def _check_in_flight(rt: Runtime, conn: AsyncConnection, caller: Caller) -> None:
    cap = effective_limit(caller.max_in_flight, rt.settings.rate_limit_in_flight)
    if cap == NO_LIMIT:
        return
    if await task_store.count_in_flight(conn, caller.key_id) >= cap:
        metrics.RATE_LIMITED.labels("in_flight").inc()
        raise RateLimited(
            f"this API key already has {cap} tasks in flight; wait for one to finish",
            headers={"Retry-After": str(IN_FLIGHT_RETRY_AFTER_SECONDS)},
        )


async def _replayed(rt: Runtime, caller: Caller, idem: Idempotency) -> TaskRow | None:
    async with rt.db.reader() as conn:
        remembered = await idempotency.find(conn, caller.account_id, idem.key)
        if remembered is None:
            return None
        if remembered.request_hash != idem.request_hash:
            raise Conflict(
                "this Idempotency-Key was used with a different request in the last 24 hours",
                code="idempotency_key_reused",
            )
        return await task_store.get_task(conn, remembered.task_id)


async def _task(rt: Runtime, task_id: str) -> TaskRow:
    async with rt.db.reader() as conn:
        task = await task_store.get_task(conn, task_id)
    if task is None:
        raise TaskNotFound(f"task {task_id} not found")
    return task


def opaque_user_id(rt: Runtime, account_id: int) -> str:
    """The customer account as upstreams see it (Agents API `user_id`): stable, not PII, not our id."""
    seed = f"{rt.settings.resolved_public_url}|account|{account_id}".encode()
    return "dr-" + hashlib.sha256(seed).hexdigest()[:32]


async def _dispatch(
    rt: Runtime,
    task: TaskRow,
    request: UpstreamRequest | ImageRequest | DreamMachineRequest | AgentsRequest,
    *,
    pinned_channel: int | None,
    kinds: tuple[str, ...] | None = None,
) -> TaskRow:
    """Try channels in routing order until one accepts; fail the task (and tell the caller) otherwise.
    With `kinds`, only channels of those kinds are tried."""
    with logs.task_context(task.id):
        what = f"{task.action} {task.model} ({task.api_format})"
        log.info("task %s: %s, holds %d credits", task.id, what, task.price)
        return await _dispatch_in_context(rt, task, request, pinned_channel=pinned_channel, kinds=kinds)


async def _dispatch_in_context(
    rt: Runtime,
    task: TaskRow,
    request: UpstreamRequest | ImageRequest | DreamMachineRequest | AgentsRequest,
    *,
    pinned_channel: int | None,
    kinds: tuple[str, ...] | None,
) -> TaskRow:
    async with rt.db.reader() as conn:
        channels = await channel_store.list_channels(conn)
    if kinds is not None:
        channels = [c for c in channels if c.kind in kinds]
    tried: list[str] = []
    request = replace(request, user_id=opaque_user_id(rt, task.account_id))
    for channel in candidates(channels, task.model, pinned_id=pinned_channel):
        logs.channel.set(channel.name)
        upstream = rt.upstream_for(channel, family=task.family)
        sent = request
        if rt.calls_back(upstream) and task.upstream_token:
            sent = replace(request, callback_url=upstream_callback_url(rt, task.id, task.upstream_token))
        try:
            upstream_id = await upstream.submit(sent)
        except UpstreamUnavailable as exc:
            log.warning("channel %s could not take task %s: %s", channel.name, task.id, exc)
            tried.append(f"{channel.name}: {exc}")
            await note_channel_failure(rt, channel, str(exc))
            continue
        except UpstreamRefused as exc:
            await _fail(rt, task, f"upstream refused the request: {exc}")
            raise UpstreamRejected(f"upstream refused the request: {exc}") from exc
        except UpstreamOutcomeUnknown as exc:
            # It may exist upstream; sending it elsewhere could run (and cost) it twice.
            await _fail(rt, task, f"upstream did not confirm the submission: {exc}")
            await note_channel_failure(rt, channel, str(exc))
            raise UpstreamError("upstream did not confirm the submission; nothing was charged") from exc
        first_poll = CALLBACK_SAFETY_POLL_SECONDS if sent.callback_url else FIRST_POLL_DELAY_SECONDS
        async with rt.db.transaction() as conn:
            if channel.failures:
                await channel_store.record_success(conn, channel.id)
            accepted = await lifecycle.update(
                conn,
                task,
                rt.media_base_url,
                channel_id=channel.id,
                upstream_id=upstream_id,
                next_poll_at=time.time() + first_poll,
            )
        rt.wake_worker.set()
        log.info("task %s: channel %s took it as upstream %s", task.id, channel.name, upstream_id)
        if accepted is None:  # the worker failed it meanwhile (deadline); show what it is now
            async with rt.db.reader() as conn:
                accepted = await task_store.get_task(conn, task.id)
        assert accepted is not None
        return accepted
    reason = "no channel can take this task" + (f" ({'; '.join(tried)})" if tried else "")
    await _fail(rt, task, reason)
    raise NoChannelAvailable(reason)


def upstream_callback_url(rt: Runtime, task_id: str, token: str) -> str:
    return f"{rt.settings.resolved_public_url}/upstream/callbacks/{task_id}/{token}"


async def note_channel_failure(rt: Runtime, channel: Channel, error: str) -> None:
    async with rt.db.transaction() as conn:
        benched = await channel_store.record_failure(
            conn,
            channel.id,
            error,
            threshold=rt.settings.channel_failure_threshold,
            bench_seconds=rt.settings.channel_bench_seconds,
        )
    if benched:
        log.warning(
            "channel %s benched for %.0f s after repeated failures",
            channel.name,
            rt.settings.channel_bench_seconds,
        )


async def _fail(rt: Runtime, task: TaskRow, reason: str) -> None:
    async with rt.db.transaction() as conn:
        await lifecycle.update(conn, task, rt.media_base_url, state=TaskState.FAILED, failure_reason=reason)
    rt.wake_deliverer.set()
