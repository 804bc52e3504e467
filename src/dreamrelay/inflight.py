"""In-flight tasks, mirrored in process memory for the read hot path.

Nearly every status read is of a task still generating, and such a task's body changes as it moves.
Each process keeps the tasks in flight that it knows of (bounded: the oldest go first), kept current
two ways:

- in this process, the one state writer (services/lifecycle.py) and the intake hand it every task they
  write, as soon as the write commits;
- across processes, a change feed: every write of a task raises its `change_seq` past every other row's
  (store/tasks.py), and once every `interval` seconds this process reads the rows changed since the
  last marker it saw (one indexed range read per interval, whatever the read rate).

A task that is not mirrored (created before this process started, or dropped for room) is read from the
store once and mirrored from then on. Finished and deleted tasks leave the mirror (finished bodies are
the body cache's, body_cache.py).

The bound: a read is answered from the mirror only while its last feed read *started* less than `bound`
seconds ago; otherwise (a slow or failing store, the feed not running) reads go to the store. So a read
never shows a task older than a change that committed `bound` seconds before it. On SQLite writes are
serialised, so markers commit in order; on PostgreSQL two writes may take the same marker or commit out
of order, so each feed read goes `lookback` seconds of markers back (re-reading a change costs one
version comparison), and a write that committed later than half that after taking its marker is marked
again by its writer (services/lifecycle.py::mark_again_if_late): no feed read passes a change unseen.

A reader never sees another account's task: an entry answers only its owner.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from dreamrelay.domain.task import Task
from dreamrelay.store import tasks as task_store
from dreamrelay.store.engine import Database
from dreamrelay.store.outage import Outage, is_outage

log = logging.getLogger(__name__)

Encoder = Callable[[Task], bytes]

FEED_PAGE = 5000  # rows a feed read takes at a time


@dataclass
class InFlightMirror:
    max_tasks: int  # 0: off
    interval: float = 0.25  # seconds between feed reads
    bound: float = 1.0  # how old the last feed read may be for the mirror to answer
    lookback: float = 0.0  # seconds of markers each feed read goes back (PostgreSQL)
    _tasks: OrderedDict[str, Task] = field(default_factory=OrderedDict)
    _encoded: dict[tuple[str, str], tuple[int, bytes]] = field(default_factory=dict)
    _names: set[str] = field(default_factory=set)  # the names `encoded` was given
    _cursor: int | None = None  # the highest marker read; None before the first feed read
    _synced_at: float = float("-inf")  # when the last successful feed read started (monotonic)
    _cursors: deque[tuple[float, int]] = field(default_factory=deque)  # (when, cursor) for the lookback

    @property
    def running(self) -> bool:
        """Whether the feed has started (before it, nothing is kept)."""
        return self._cursor is not None

    def fresh(self) -> bool:
        return time.monotonic() - self._synced_at <= self.bound

    def get(self, task_id: str, account_id: int) -> Task | None:
        """The in-flight task if mirrored, owned by `account_id` and within the bound."""
        task = self._tasks.get(task_id)
        if task is None or task.account_id != account_id or not self.fresh():
            return None
        return task

    def get_many(self, task_ids: Iterable[str], account_id: int) -> list[Task | None]:
        """`get` of each id (one clock read)."""
        if not self.fresh():
            return [None for _ in task_ids]
        found = self._tasks.get
        return [t if (t := found(i)) is not None and t.account_id == account_id else None for i in task_ids]

    def encoded(self, task: Task, name: str, encode: Encoder) -> bytes:
        """`encode(task)`, kept for this version of the task (a format other than the stored body's)."""
        key = (name, task.id)
        kept = self._encoded.get(key)
        if kept is not None and kept[0] == task.version:
            return kept[1]
        body = encode(task)
        if task.id in self._tasks:
            self._names.add(name)
            self._encoded[key] = (task.version, body)
        return body

    def keep(self, task: Task) -> None:
        """Mirror `task` as written or read (an older version than the one held is ignored); a finished
        or deleted task leaves the mirror. Nothing is kept before the feed runs."""
        if self._cursor is None:
            return
        held = self._tasks.get(task.id)
        if held is not None and held.version >= task.version:
            return
        if task.state.is_terminal or task.deleted_at is not None:
            if held is not None:
                self._drop(task.id)
            return
        if held is None and len(self._tasks) >= self.max_tasks:
            self._drop(next(iter(self._tasks)))
        self._tasks[task.id] = task

    async def sync(self, db: Database) -> int:
        """One feed read: every task changed since the last one (a window back on PostgreSQL), a page of
        FEED_PAGE rows at a time, so a burst of writes (a bulk load, a mass refund) never comes back as
        one huge result. The mirror counts as current only once a read reached the end of the feed: while
        it catches up, reads go to the store. How many rows it read."""
        started = time.monotonic()
        read = 0
        if self._cursor is None:
            async with db.reader() as conn:
                cursor = await task_store.last_change(conn)
        else:
            cursor, low = self._cursor, self._low(started)
            while True:
                async with db.reader() as conn:
                    changes = await task_store.changed_since(conn, low, FEED_PAGE)
                for _, task in changes:
                    self.keep(task)
                read += len(changes)
                if changes:
                    low = changes[-1][0]
                    cursor = max(cursor, low)
                if len(changes) < FEED_PAGE:
                    break
                await asyncio.sleep(0)  # a long catch-up leaves room for the requests it serves
        self._cursor = cursor
        self._synced_at = started
        if self.lookback:
            self._cursors.append((started, cursor))
        return read

    def _low(self, now: float) -> int:
        """Where a feed read starts: the cursor as it was `lookback` seconds ago (this process's clock)."""
        assert self._cursor is not None
        if not self.lookback:
            return self._cursor
        cutoff = now - self.lookback
        while len(self._cursors) > 1 and self._cursors[1][0] <= cutoff:
            self._cursors.popleft()
        return self._cursors[0][1]

    async def follow(self, db: Database, stop: asyncio.Event) -> None:
        """Read the feed every `interval` seconds until `stop`. Through a database outage the reads go to
        the store (and get its 503) until the feed is read again; the outage is logged once."""
        outage = Outage("the in-flight mirror")
        while not stop.is_set():
            try:
                await self.sync(db)
            except Exception as exc:
                if not is_outage(exc):
                    log.warning("in-flight mirror: reading the change feed failed", exc_info=True)
                else:
                    outage.note(exc)
            else:
                outage.over()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.interval)

    def _drop(self, task_id: str) -> None:
        self._tasks.pop(task_id, None)
        for name in self._names:
            self._encoded.pop((name, task_id), None)

    def __len__(self) -> int:
        return len(self._tasks)
