"""Synchronous answers: wait until a task has finished, up to a bound, then read it as it stands.

Every wait holds a client's connection, so waits are bounded four ways (issue 26 items 5 and 13):
- in time: never longer than `sync_wait_seconds`;
- in number: at most `sync_waits_per_key` at once per API key and `sync_waits_per_account` per account,
  in this process; one more is a 429 before anything is submitted;
- in work: the waits on one task share one poll of it (a replayed request, same Idempotency-Key, joins
  the wait already polling its task instead of starting another);
- by the client: a wait ends as soon as its client hangs up (ClientDisconnect, logged in one quiet
  line); the task goes on, and is charged once, as any task;
- by the server: when it shuts down (`end_all`, from the connection guard), every wait answers at once
  with its task as it stands, instead of holding the shutdown until it is cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import weakref
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from starlette.requests import ClientDisconnect

from dreamrelay.domain.errors import RateLimited
from dreamrelay.domain.task import Task
from dreamrelay.services import reads
from dreamrelay.services.auth import Caller

if TYPE_CHECKING:
    from dreamrelay.settings import Settings

POLL_SECONDS = 0.25  # a read of the task row (or the body cache) this often while waiting
# A refused wait's connection is not kept alive: the client's next try opens a new one.
REFUSED_HEADERS = {"Retry-After": "5", "Connection": "close"}

Receive = Callable[[], Awaitable[Any]]  # an ASGI receive: what tells us the client hung up


class Collaborators(reads.Collaborators, Protocol):
    settings: Settings  # sync_wait_seconds
    waits: Waits


class TooManyWaits(RateLimited):
    code = "too_many_waits"


@dataclass
class _Watch:
    """One poll of one task, shared by every wait on it."""

    done: asyncio.Future[Task]
    latest: Task | None = None
    waiters: int = 0
    poller: asyncio.Task[None] | None = None


@dataclass(eq=False)  # compared (and hashed, in `_ALL`) by identity
class Waits:
    """The synchronous waits of this process: how many per key and per account, and the polls."""

    per_key: int
    per_account: int
    _keys: dict[int, int] = field(default_factory=dict)
    _accounts: dict[int, int] = field(default_factory=dict)
    _watches: dict[tuple[int, str], _Watch] = field(default_factory=dict)
    _ended: asyncio.Future[None] | None = None  # done once the server shuts down

    def __post_init__(self) -> None:
        _ALL.add(self)

    def ended(self) -> asyncio.Future[None]:
        if self._ended is None:
            self._ended = asyncio.get_running_loop().create_future()
        return self._ended

    def end(self) -> None:
        """Every wait, now and from now on, answers at once with its task as it stands (called on the
        loop of the waits)."""
        ended = self.ended()
        if not ended.done():
            ended.set_result(None)

    def waits_on(self, loop: asyncio.AbstractEventLoop) -> bool:
        return self._ended is not None and self._ended.get_loop() is loop

    @contextlib.contextmanager
    def slot(self, caller: Caller) -> Iterator[None]:
        """Hold one of the caller's wait slots, or raise TooManyWaits (429) if none is free."""
        key, account = caller.key_id, caller.account_id
        if self.per_key and self._keys.get(key, 0) >= self.per_key:
            raise TooManyWaits(
                f"this API key already has {self.per_key} synchronous waits open; let one end, or "
                "submit without waiting and poll the task",
                headers=REFUSED_HEADERS,
            )
        if self.per_account and self._accounts.get(account, 0) >= self.per_account:
            raise TooManyWaits(
                f"this account already has {self.per_account} synchronous waits open; let one end, or "
                "submit without waiting and poll the task",
                headers=REFUSED_HEADERS,
            )
        self._keys[key] = self._keys.get(key, 0) + 1
        self._accounts[account] = self._accounts.get(account, 0) + 1
        try:
            yield
        finally:
            _decrement(self._keys, key)
            _decrement(self._accounts, account)

    def open(self) -> int:
        """Waits in progress in this process."""
        return sum(self._accounts.values())

    def polls(self) -> int:
        """Tasks being polled for those waits."""
        return len(self._watches)

    def join(self, rt: Collaborators, caller: Caller, task_id: str) -> tuple[tuple[int, str], _Watch]:
        key = (caller.account_id, task_id)
        watch = self._watches.get(key)
        if watch is None:
            watch = _Watch(done=asyncio.get_running_loop().create_future())
            watch.poller = asyncio.create_task(_poll(rt, caller, task_id, watch), name=f"wait-{task_id}")
            self._watches[key] = watch
        watch.waiters += 1
        return key, watch

    def leave(self, key: tuple[int, str], watch: _Watch) -> None:
        watch.waiters -= 1
        if watch.waiters == 0:
            self._watches.pop(key, None)
            if watch.poller is not None:
                watch.poller.cancel()
            if watch.done.done() and not watch.done.cancelled():
                watch.done.exception()  # seen: an error of a poll nobody waits for is not "never retrieved"


_ALL: weakref.WeakSet[Waits] = weakref.WeakSet()


def end_all() -> None:
    """The server of the running loop is shutting down: each of its waits answers now (`Waits.end`).
    Waits served by another loop (another server in this process, as in tests) are left alone."""
    loop = asyncio.get_running_loop()
    for waits in list(_ALL):
        if waits.waits_on(loop):
            waits.end()


def _decrement(counts: dict[int, int], key: int) -> None:
    left = counts[key] - 1
    if left:
        counts[key] = left
    else:
        del counts[key]


async def _poll(rt: Collaborators, caller: Caller, task_id: str, watch: _Watch) -> None:
    try:
        while True:
            task = await reads.get_task(rt, caller, task_id)
            watch.latest = task
            if task.state.is_terminal:
                watch.done.set_result(task)
                return
            await asyncio.sleep(POLL_SECONDS)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        if not watch.done.done():
            watch.done.set_exception(exc)


async def _hung_up(receive: Receive) -> None:
    """Returns when the client has disconnected (its request body already read)."""
    while (await receive())["type"] != "http.disconnect":
        pass


async def until_finished(
    rt: Collaborators,
    caller: Caller,
    task_id: str,
    at_most: float | None = None,
    *,
    receive: Receive | None = None,
) -> Task:
    """The task once completed or failed, or as it is after `at_most` seconds (never more than the
    server's `sync_wait_seconds`). With `receive`, raises ClientDisconnect as soon as the client hangs
    up. The caller holds a `Waits.slot` around the submit and this wait."""
    bound = rt.settings.sync_wait_seconds
    limit = bound if at_most is None else max(0.0, min(at_most, bound))
    deadline = time.monotonic() + limit
    waits = rt.waits
    key, watch = waits.join(rt, caller, task_id)
    hung_up = asyncio.create_task(_hung_up(receive)) if receive is not None else None
    try:
        watching: set[asyncio.Future[Any]] = {watch.done, waits.ended()}
        if hung_up is not None:
            watching.add(hung_up)
        await asyncio.wait(
            watching, timeout=max(0.0, deadline - time.monotonic()), return_when="FIRST_COMPLETED"
        )
        if watch.done.done():
            return watch.done.result()
        if hung_up is not None and hung_up.done():
            raise ClientDisconnect
        return watch.latest if watch.latest is not None else await reads.get_task(rt, caller, task_id)
    finally:
        if hung_up is not None:
            hung_up.cancel()
        waits.leave(key, watch)
