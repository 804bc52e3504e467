"""Submit and extend: validate, price, hold, keep the images and insert the task in one transaction,
then hand it to services/dispatch.py (idempotency in services/idempotency.py)."""

from __future__ import annotations

import logging
import secrets
import time
import uuid
from dataclasses import replace
from typing import Any, NamedTuple, Protocol

from sqlalchemy.exc import IntegrityError
from yarl import URL

from dreamrelay import metrics
from dreamrelay.domain.catalog import (
    IMAGE_MODELS,
    MODELS,
    RAY32,
    RAY32_ASPECT_RATIOS,
    normalise_duration,
    price_resolution,
)
from dreamrelay.domain.channel import Channel
from dreamrelay.domain.errors import (
    Forbidden,
    InsufficientBalance,
    InvalidRequest,
    PayloadTooLarge,
    RateLimited,
    TaskNotFound,
    TaskNotReady,
)
from dreamrelay.domain.ids import ID_MAX_CHARS
from dreamrelay.domain.inputs import GenerationInput, ImagesInput
from dreamrelay.domain.requests import ImagesRequest, PriceKey, SubmitRequest, VideoRequest
from dreamrelay.domain.states import TaskState
from dreamrelay.domain.task import IMAGE_ACTION, Task
from dreamrelay.domain.timings import DISPATCH_GRACE_SECONDS
from dreamrelay.netguard import UnsafeURL, check_url_syntax, resolve_checked
from dreamrelay.ratelimit import NO_LIMIT, effective_limit
from dreamrelay.services import agent_files, images, lifecycle
from dreamrelay.services import dispatch as dispatch_service
from dreamrelay.services.auth import Caller
from dreamrelay.services.dispatch import dispatch
from dreamrelay.services.idempotency import Idempotency, Replay, replayed
from dreamrelay.services.images import kept_for, store_image
from dreamrelay.store import channels as channel_store
from dreamrelay.store import idempotency, ledger, pricing
from dreamrelay.store import tasks as task_store
from dreamrelay.store.direct import Reads, Sql


class Collaborators(
    dispatch_service.Collaborators, images.Collaborators, agent_files.Collaborators, Protocol
):
    """What a submit uses: dispatch's and the image intake's collaborators (the database, the settings,
    storage, customer-URL checks); the Agents API's also reads the caller's files."""


log = logging.getLogger(__name__)

IN_FLIGHT_RETRY_AFTER_SECONDS = 5


_FIELD_NAMES = {
    "luma": ("notify_hook", "image_url", "image_end_url"),
    "official": ("callback_url", "keyframes.frame0.url", "keyframes.frame1.url"),
    "acedata": ("callback_url", "start_image_url", "end_image_url"),
}


async def submit(
    rt: Collaborators,
    caller: Caller,
    given: GenerationInput,
    api_format: str = "luma",
    idem: Idempotency | None = None,
) -> Task:
    if idem is not None and (earlier := await replayed(rt.db, caller, idem)) is not None:
        return earlier
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
    callback_url = await checked_callback(rt, given.callback_url, hook_field)
    request = VideoRequest(
        prompt=given.prompt,
        model=model,
        aspect_ratio=given.aspect_ratio or "16:9",
        resolution=resolution,
        duration=duration,
        loop=given.loop,
        expand_prompt=given.expand_prompt,
        start_generation=start.id if start else None,
        end_generation=end.id if end else None,
        extend_upstream_id=start.upstream_id if start else None,
        end_upstream_id=end.upstream_id if end else None,
    )
    action, parent_id = ("extend", parents[0].id) if parents else ("generate", None)
    task_id = str(uuid.uuid4())
    if (given.image and not start) or (given.end_image and not end):
        # Money and limits before any image is fetched; without images `insert` is the only check.
        await admit(rt, caller, action, model, request.price_key)
    try:
        async with kept_for(rt, task_id) as inputs:
            if given.image and not start:
                image_url = await store_image(rt, start_field, given.image, inputs)
                request = replace(request, start_image_url=image_url)
            if given.end_image and not end:
                image_url = await store_image(rt, end_field, given.end_image, inputs)
                request = replace(request, end_image_url=image_url)
            task, channels = await insert(
                rt, caller, action, parent_id, model, request, callback_url, api_format, idem, task_id
            )
    except Replay as replay:
        return await task_by_id(rt, replay.task_id)
    pinned = parents[0].channel_id if parents else None
    return await dispatch(rt, task, request, pinned_channel=pinned, channels=channels)


async def submit_images(
    rt: Collaborators, caller: Caller, given: ImagesInput, idem: Idempotency | None = None
) -> Task:
    if idem is not None and (earlier := await replayed(rt.db, caller, idem)) is not None:
        return earlier
    model = given.model or IMAGE_MODELS[0]
    if model not in IMAGE_MODELS:
        raise InvalidRequest(f"model must be one of {', '.join(IMAGE_MODELS)}")
    caller.check_model(model)
    callback_url = await checked_callback(rt, given.callback_url, "callback_url")
    request = ImagesRequest(
        prompt=given.prompt,
        model=model,
        aspect_ratio=given.aspect_ratio or "16:9",
        n=given.n,
        negative_prompt=given.negative_prompt,
        image_fidelity=given.image_fidelity,
    )
    task_id = str(uuid.uuid4())
    if given.image:  # money and limits before the image is fetched; otherwise `insert` checks them
        await admit(rt, caller, IMAGE_ACTION, model, request.price_key)
    try:
        async with kept_for(rt, task_id) as inputs:
            if given.image:
                try:
                    image_url = await store_image(rt, "image", given.image, inputs)
                except PayloadTooLarge as exc:  # a limit of the Kling table: 400 like the others
                    raise InvalidRequest(exc.message) from exc
                request = replace(request, image_url=image_url)
            task, channels = await insert(
                rt, caller, IMAGE_ACTION, None, model, request, callback_url, "kling", idem, task_id
            )
    except Replay as replay:
        return await task_by_id(rt, replay.task_id)
    return await dispatch(rt, task, request, pinned_channel=None, channels=channels)


async def extend(
    rt: Collaborators,
    caller: Caller,
    parent_id: str,
    given: GenerationInput,
    api_format: str = "luma",
    idem: Idempotency | None = None,
) -> Task:
    """Own-format extend: continue a completed task with its model, frame size and aspect ratio."""
    if idem is not None and (earlier := await replayed(rt.db, caller, idem)) is not None:
        return earlier
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
    rt: Collaborators, caller: Caller, frame: str, task_id: str | None
) -> Task | None:
    """The caller's completed video task a generation keyframe names (400 otherwise)."""
    if task_id is None:
        return None
    async with rt.db.reader() as conn:
        task = await task_store.get_task(conn, task_id, caller.account_id)
    if task is None or task.is_image:
        raise InvalidRequest(f"keyframes.{frame}: generation {task_id[:ID_MAX_CHARS]} not found")
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
    rt: Collaborators, model: str | None, resolution: str | None, duration: str | None
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


async def checked_callback(rt: Collaborators, url: str | None, field: str = "notify_hook") -> str | None:
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


async def insert(
    rt: Collaborators,
    caller: Caller,
    action: str,
    parent_id: str | None,
    model: str,
    request: SubmitRequest,
    callback_url: str | None,
    api_format: str,
    idem: Idempotency | None,
    task_id: str | None = None,
) -> Inserted:
    """One transaction: price, hold, in-flight cap, task row (keeping `request.stored()`), idempotency
    record — or nothing at all; it also reads the channels the dispatch will route over."""
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
        "request": request.stored(),
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
    task = Task(**values)
    values["body"] = lifecycle.encode_body(task, rt.media_base_url)
    try:
        async with rt.db.direct_transaction() as tx:
            price = await _price(tx, action, model, request.price_key)
            values["price"] = price
            try:
                await ledger.hold(
                    tx, account_id=caller.account_id, key_id=caller.key_id, task_id=task.id, amount=price
                )
            except ledger.BalanceTooLow as exc:
                raise _too_poor(price) from exc
            except ledger.SpendCapReached as exc:
                raise _capped() from exc
            await _check_in_flight(rt, tx, caller)
            await task_store.insert_task(tx, values)
            if idem is not None:
                await idempotency.remember(tx, caller.account_id, idem.key, idem.request_hash, task.id)
            channels = await channel_store.list_channels_on(tx)
    except IntegrityError:
        # A concurrent request with the same Idempotency-Key won the insert: answer with its task.
        if idem is None:
            raise
        earlier = await replayed(rt.db, caller, idem)
        if earlier is None:
            raise
        raise Replay(earlier.id) from None
    return Inserted(task.with_values({"body": values["body"], "price": values["price"]}), channels)


class Inserted(NamedTuple):
    task: Task
    channels: list[Channel]  # as the insert saw them: what the dispatch routes over


async def _price(tx: Reads, action: str, model: str, key: PriceKey) -> int:
    """What the task costs. Images are priced per image, whatever their size; videos by resolution and
    duration."""
    resolution = price_resolution(key.resolution, key.hdr)
    unit_price = await pricing.price_for(
        tx, model=model, resolution=resolution, duration=key.duration, action=action
    )
    if unit_price is None:
        raise InvalidRequest(f"{model} at {resolution}/{key.duration} has no price")
    return unit_price * key.n


_BALANCE = Sql.of("SELECT balance FROM accounts WHERE id = ?")
_SPEND_CAP = Sql.of("SELECT spend_cap, spent FROM api_keys WHERE id = ?")


async def admit(rt: Collaborators, caller: Caller, action: str, model: str, priced: PriceKey) -> None:
    """Price, balance, spending cap and in-flight cap, read before anything costly (fetching and decoding
    images): a request that will be refused is refused first. `insert` checks them again, atomically."""
    async with rt.db.direct_reader() as tx:
        price = await _price(tx, action, model, priced)
        if price > 0:
            balance = await tx.rows(_BALANCE, caller.account_id)
            if not balance or balance[0][0] < price:
                raise _too_poor(price)
            key = await tx.rows(_SPEND_CAP, caller.key_id)
            if key and key[0][0] is not None and key[0][1] + price > key[0][0]:
                raise _capped()
        await _check_in_flight(rt, tx, caller)


def _too_poor(price: int) -> InsufficientBalance:
    return InsufficientBalance(f"this task costs {price} credits; the balance is too low")


def _capped() -> Forbidden:
    return Forbidden("this API key has reached its spending cap")


async def _check_in_flight(rt: Collaborators, tx: Reads, caller: Caller) -> None:
    cap = effective_limit(caller.max_in_flight, rt.settings.rate_limit_in_flight)
    if cap == NO_LIMIT:
        return
    if await task_store.count_in_flight(tx, caller.key_id, up_to=cap) >= cap:
        metrics.RATE_LIMITED.labels("in_flight").inc()
        raise RateLimited(
            f"this API key already has {cap} tasks in flight; wait for one to finish",
            headers={"Retry-After": str(IN_FLIGHT_RETRY_AFTER_SECONDS)},
        )


async def task_by_id(rt: Collaborators, task_id: str) -> Task:
    async with rt.db.reader() as conn:
        task = await task_store.get_task(conn, task_id)
    if task is None:
        raise TaskNotFound(f"task {task_id} not found")
    return task
