"""One intake for every submit route: idempotency replay, admission, inputs kept only for an accepted
task, the insert (price, hold, in-flight cap, task row, idempotency record in one transaction) and the
dispatch. A product module (services/submit.py, dream_machine.py, agents.py) only checks its request and
builds the typed `Order`: `intake(rt, caller, api_format, idem, prepare)`.
"""

from __future__ import annotations

import contextlib
import secrets
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

from sqlalchemy.exc import IntegrityError

from dreamrelay import metrics
from dreamrelay.domain.api_format import ApiFormat
from dreamrelay.domain.catalog import price_resolution
from dreamrelay.domain.channel import Channel
from dreamrelay.domain.errors import Forbidden, InsufficientBalance, InvalidRequest, RateLimited, TaskNotFound
from dreamrelay.domain.pricing import Price
from dreamrelay.domain.requests import PriceKey, SubmitRequest
from dreamrelay.domain.states import TaskState
from dreamrelay.domain.task import Task
from dreamrelay.domain.timings import DISPATCH_GRACE_SECONDS
from dreamrelay.ratelimit import NO_LIMIT, effective_limit
from dreamrelay.services import agent_files, customer_urls, images, lifecycle
from dreamrelay.services import dispatch as dispatch_service
from dreamrelay.services.auth import Caller
from dreamrelay.services.dispatch import dispatch
from dreamrelay.services.idempotency import Idempotency, Replay, replayed
from dreamrelay.services.images import TaskInputs, kept_for
from dreamrelay.store import channels as channel_store
from dreamrelay.store import idempotency, ledger, pricing
from dreamrelay.store import tasks as task_store
from dreamrelay.store.direct import Reads


class Collaborators(
    dispatch_service.Collaborators,
    images.Collaborators,
    agent_files.Collaborators,
    customer_urls.Collaborators,
    Protocol,
):
    """What a submit uses: dispatch's and the image intake's collaborators (the database, the settings,
    storage, customer-URL checks); the Agents API's also reads the caller's files; source videos are
    fetched a few at a time (customer_urls)."""

    sources_fetching: Counter[int]  # per key: this process's submits fetching a source video now


IN_FLIGHT_RETRY_AFTER_SECONDS = 5


@dataclass(frozen=True)
class Order:
    """A checked submit, as its product module built it: what the intake inserts and dispatches."""

    action: str
    model: str
    request: SubmitRequest
    callback_url: str | None = None
    parent: Task | None = None  # the task it continues: its id is kept, its channel pinned


Admit = Callable[[str, str, PriceKey], Awaitable[None]]  # (action, model, price key): refused or not
Prepare = Callable[[Admit, TaskInputs], Awaitable[Order]]


async def intake(
    rt: Collaborators, caller: Caller, api_format: ApiFormat, idem: Idempotency | None, prepare: Prepare
) -> Task:
    """The task a submit makes (or the one its Idempotency-Key made first). `prepare` checks the request,
    calls `admit` before anything costly (fetching images: money and limits are refused first; without
    it the insert is the only check), keeps input images in `inputs` and builds the `Order`."""
    if idem is not None and (earlier := await replayed(rt.db, caller, idem)) is not None:
        return earlier

    async def admit(action: str, model: str, priced: PriceKey) -> None:
        await admission(rt, caller, action, model, priced)

    task_id = str(uuid.uuid4())
    try:
        async with kept_for(rt, task_id) as inputs:
            order = await prepare(admit, inputs)
            task, channels = await insert(rt, caller, order, api_format, idem, task_id)
    except Replay as replay:
        return await task_by_id(rt, replay.task_id)
    pinned = order.parent.channel_id if order.parent else None
    return await dispatch(rt, task, order.request, pinned_channel=pinned, channels=channels)


class Inserted(NamedTuple):
    task: Task
    channels: list[Channel]  # as the insert saw them: what the dispatch routes over


async def insert(
    rt: Collaborators,
    caller: Caller,
    order: Order,
    api_format: ApiFormat,
    idem: Idempotency | None,
    task_id: str,
) -> Inserted:
    """One transaction: price, hold and in-flight cap (store/ledger.py), task row (keeping
    `request.stored()`), idempotency record — or nothing at all; it also reads the channels the dispatch
    will route over."""
    now = time.time()
    values: dict[str, Any] = {
        "id": task_id,
        "account_id": caller.account_id,
        "api_key_id": caller.key_id,
        "channel_id": None,
        "action": order.action,
        "parent_id": order.parent.id if order.parent else None,
        "model": order.model,
        "api_format": api_format.value,
        "request": order.request.stored(),
        "state": TaskState.PENDING,
        "version": 1,
        "upstream_id": None,
        "upstream_state": None,
        "failure_reason": None,
        "callback_url": order.callback_url,
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
            rule = await _price(tx, order.action, order.model, order.request.price_key)
            price = values["price"] = rule.hold(order.request.price_key)
            values["token_rate"] = rule.token_rate
            with _refusals(price):
                await ledger.hold(
                    tx,
                    account_id=caller.account_id,
                    key_line=caller.chain,
                    task_id=task.id,
                    amount=price,
                    in_flight_cap=_in_flight_cap(rt, caller),
                )
            marked_at = time.monotonic()
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
    inserted = task.with_values(
        {"body": values["body"], "price": values["price"], "token_rate": values["token_rate"]}
    )
    rt.inflight.keep(inserted)
    await lifecycle.mark_again_if_late(rt, [task.id], marked_at)
    return Inserted(inserted, channels)


async def _price(tx: Reads, action: str, model: str, key: PriceKey) -> Price:
    """The rule that prices the task (`Price.hold`: what it holds). Images are priced per image, whatever
    their size; videos by resolution and duration, or by the tokens they use (Seedance)."""
    resolution = price_resolution(key.resolution, key.hdr)
    price = await pricing.price_for(
        tx, model=model, resolution=resolution, duration=key.duration, action=action
    )
    if price is None:
        raise InvalidRequest(f"{model} at {resolution}/{key.duration} has no price")
    return price


async def admission(rt: Collaborators, caller: Caller, action: str, model: str, priced: PriceKey) -> None:
    """Price, balance, spending caps and in-flight cap, read before anything costly (fetching and decoding
    images): a request that will be refused is refused first. `insert` checks them again, atomically."""
    async with rt.db.direct_reader() as tx:
        price = (await _price(tx, action, model, priced)).hold(priced)
        with _refusals(price):
            await ledger.admissible(
                tx,
                account_id=caller.account_id,
                key_line=caller.chain,
                price=price,
                in_flight_cap=_in_flight_cap(rt, caller),
            )


@contextlib.asynccontextmanager
async def fetching_source(rt: Collaborators, caller: Caller) -> AsyncIterator[None]:
    """A submit fetching a source video counts as in flight while it fetches (it has no task row yet):
    the key's in-flight cap bounds how many such fetches it can start at once (per process)."""
    rt.sources_fetching[caller.key_id] += 1  # before any await: concurrent submits see each other
    try:
        async with rt.db.direct_reader() as tx:
            with _refusals(0):
                await ledger.admissible(
                    tx,
                    account_id=caller.account_id,
                    key_line=caller.chain,
                    price=0,
                    in_flight_cap=_in_flight_cap(rt, caller),
                    also_in_flight=rt.sources_fetching[caller.key_id] - 1,
                )
        yield
    finally:
        rt.sources_fetching[caller.key_id] -= 1
        if rt.sources_fetching[caller.key_id] <= 0:
            del rt.sources_fetching[caller.key_id]


def _in_flight_cap(rt: Collaborators, caller: Caller) -> int | None:
    cap = effective_limit(caller.max_in_flight, rt.settings.rate_limit_in_flight)
    return None if cap == NO_LIMIT else cap


@contextlib.contextmanager
def _refusals(price: int) -> Iterator[None]:
    """The ledger's refusals as the customer reads them."""
    try:
        yield
    except ledger.BalanceTooLow as exc:
        raise InsufficientBalance(f"this task costs {price} credits; the balance is too low") from exc
    except ledger.SpendCapReached as exc:
        raise Forbidden("this API key (or a key above it) has reached its spending cap") from exc
    except ledger.TooManyInFlight as exc:
        metrics.RATE_LIMITED.labels("in_flight").inc()
        raise RateLimited(
            f"this API key already has {exc.cap} tasks in flight; wait for one to finish",
            headers={"Retry-After": str(IN_FLIGHT_RETRY_AFTER_SECONDS)},
        ) from exc


async def task_by_id(rt: Collaborators, task_id: str) -> Task:
    async with rt.db.reader() as conn:
        task = await task_store.get_task(conn, task_id)
    if task is None:
        raise TaskNotFound(f"task {task_id} not found")
    return task
