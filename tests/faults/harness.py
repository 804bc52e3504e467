"""What the fault tests share: DreamRelay as subprocesses on a store, a paced load of submits and polls
that records every answer, and the checks every fault ends with (terminal once, ledger exact)."""

from __future__ import annotations

import asyncio
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from dreamrelay.runtime import Runtime
from dreamrelay.settings import Settings
from dreamrelay.store.schema import ledger, outbox, tasks
from tests.conftest import make_settings
from tests.support.processes import SCRIPT, Process, environment

SANDBOX_KEY = "sandbox-local-key"
TERMINAL = {"completed", "failed"}
OK = {200, 201}  # the official API answers a create 201


def relay_settings(
    data_dir: Path, database_url: str | None, sandbox_url: str, **overrides: object
) -> Settings:
    """A relay for subprocesses: the recorded sandbox upstream, no limits in the way, quick retries."""
    values: dict[str, object] = {
        "database_url": database_url,
        "sandbox_url": sandbox_url,
        "sandbox_key": SANDBOX_KEY,
        "allow_private_urls": "127.0.0.0/8",
        "admin_token": "faults-test-admin-token",
        "rate_limit_rpm": 1_000_000,
        "rate_limit_batch_rpm": 1_000_000,
        "rate_limit_in_flight": 100_000,
        "poll_error_base_seconds": 0.2,
        "callback_retry_base_seconds": 0.2,
        "callback_timeout_seconds": 2.0,
        "lease_seconds": 4.0,
        "shutdown_grace_seconds": 3.0,
        "task_deadline_seconds": 600.0,
        "upstream_timeout_seconds": 60.0,
    }
    values.update(overrides)
    return make_settings(data_dir, **values)


def wait_until(
    check: Callable[[], bool], timeout: float, what: str, why: Callable[[], object] = lambda: ""
) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"gave up waiting: {what} {why()}"
        time.sleep(0.25)


def in_flight(settings: Settings, ids: list[str] | None = None) -> list[dict[str, Any]]:
    """The tasks not terminal yet (of `ids`, if given), with what says why (for a failing wait's message)."""
    columns = [
        tasks.c[n] for n in ("id", "state", "upstream_id", "next_poll_at", "poll_errors", "lease_owner")
    ]
    query = select(*columns, tasks.c.lease_until).where(tasks.c.state.not_in(TERMINAL))
    found = rows(settings, query if ids is None else query.where(tasks.c.id.in_(ids)))
    return [{**r, "now": time.time()} for r in found[:5]] + [{"count": len(found)}]


def rows(settings: Settings, query: Any) -> list[dict[str, Any]]:
    async def read() -> list[dict[str, Any]]:
        async with Runtime.from_settings(settings) as rt, rt.db.reader() as conn:
            return [dict(r._mapping) for r in await conn.execute(query)]

    return asyncio.run(read())


@dataclass(frozen=True)
class Answer:
    """One answer the load got: which request, its status and JSON body (None if not JSON)."""

    what: str  # "submit own", "submit official", "get own", "get official", "batch"
    status: int
    body: Any
    retry_after: str | None
    at: float  # time.time() when it came


@dataclass
class Load:
    """`count` submits (every fourth through the official API) at about `rate` a second, each accepted
    one read back through both families while the rest go on; every answer recorded. Runs in a thread."""

    url: str
    key: str
    count: int = 200
    rate: float = 25.0
    hook: str | None = None
    # One prompt: the sandbox renders it once and serves the file to every task (a render per task
    # would make the machine's CPU, not the fault, the subject).
    prompt: Callable[[int], str] = lambda i: "fault load"
    answers: list[Answer] = field(default_factory=list)
    accepted: dict[str, str] = field(default_factory=dict)  # task id → its prompt
    transport_errors: list[str] = field(default_factory=list)
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> Load:
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), name="fault-load")
        self._thread.start()
        return self

    def join(self, timeout: float = 180) -> None:
        assert self._thread is not None
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the load did not finish"

    def accepted_count(self) -> int:
        with self._lock:
            return len(self.accepted)

    def first_ok_after(self, moment: float) -> float | None:
        """Seconds from `moment` to the first answer that worked after it (a figure, never asserted)."""
        with self._lock:
            times = [a.at for a in self.answers if a.status in OK and a.at >= moment]
        return min(times) - moment if times else None

    def errors(self) -> list[Answer]:
        with self._lock:
            return [a for a in self.answers if a.status not in OK]

    def _note(self, what: str, answer: httpx.Response) -> Any:
        try:
            body = answer.json()
        except ValueError:
            body = None
        with self._lock:
            retry_after = answer.headers.get("retry-after")
            self.answers.append(Answer(what, answer.status_code, body, retry_after, time.time()))
        return body

    async def _run(self) -> None:
        headers = {"Authorization": f"Bearer {self.key}"}
        async with httpx.AsyncClient(base_url=self.url, headers=headers, timeout=60) as client:
            jobs = []
            for i in range(self.count):
                jobs.append(asyncio.create_task(self._one(client, i)))
                await asyncio.sleep(1 / self.rate)
            await asyncio.gather(*jobs)

    async def _one(self, client: httpx.AsyncClient, i: int) -> None:
        prompt = self.prompt(i)
        official = i % 4 == 3
        try:
            if official:
                body: dict[str, Any] = {"prompt": prompt, "model": "ray-2", "resolution": "540p"}
                if self.hook:
                    body["callback_url"] = self.hook
                answer = await client.post("/dream-machine/v1/generations", json=body)
            else:
                body = {"user_prompt": prompt, "resolution": "540p"}
                if self.hook:
                    body["notify_hook"] = self.hook
                answer = await client.post("/luma/generations", json=body)
            created = self._note("submit official" if official else "submit own", answer)
            if answer.status_code not in OK or not isinstance(created, dict):
                return
            task_id = str(created["id"])
            with self._lock:
                self.accepted[task_id] = prompt
            for _ in range(3):
                await asyncio.sleep(0.3)
                self._note("get own", await client.get(f"/luma/generations/{task_id}"))
                self._note("get official", await client.get(f"/dream-machine/v1/generations/{task_id}"))
                self._note("batch", await client.post("/luma/tasks", json={"ids": [task_id]}))
        except httpx.HTTPError as exc:
            at, request = time.strftime("%H:%M:%S"), exc.request
            what = f"{at} {type(exc).__name__} on {request.method} {request.url.path}: {exc}"
            with self._lock:
                self.transport_errors.append(what)


def states(url: str, key: str, ids: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:
        for start in range(0, len(ids), 100):
            answer = client.post("/luma/tasks", json={"ids": ids[start : start + 100]})
            assert answer.status_code == 200, answer.text
            found.update({t["id"]: t["state"] for t in answer.json()})
    return found


def alive(*processes: Process) -> bool:
    """Every process still runs (asserted: a process that ended makes the test fail at once)."""
    for process in processes:
        assert process.popen is not None and process.popen.poll() is None, process.log()[-4000:]
    return True


def all_terminal(url: str, key: str, ids: list[str]) -> bool:
    try:
        return set(states(url, key, ids).values()) <= TERMINAL
    except (AssertionError, httpx.HTTPError):
        return False


def unavailable_shape(answer: Answer, code: str) -> bool:
    """A 503 in its family's shape: `{"detail"}` on official routes, `{"error": {code}}` on the own."""
    if answer.status != 503 or answer.retry_after is None:
        return False
    if answer.what.endswith("official"):
        return isinstance(answer.body, dict) and isinstance(answer.body.get("detail"), str)
    return isinstance(answer.body, dict) and answer.body.get("error", {}).get("code") == code


def money_settled_once(settings: Settings, expected: dict[str, str]) -> None:
    """Every task in `expected` (id → completed/failed) holds once and settles once; every other task of
    the store (one whose submit answered an error after its row committed) is terminal and settled too."""
    found = rows(settings, select(tasks.c.id, tasks.c.state, tasks.c.upstream_id, tasks.c.next_poll_at))
    every = {r["id"]: r["state"] for r in found}
    wrong = {t: (every.get(t), want) for t, want in expected.items() if every.get(t) != want}
    assert wrong == {}, _reasons(settings, list(wrong)[:5], wrong)
    by_task: dict[str, list[str]] = {}
    for row in rows(settings, select(ledger.c.task_id, ledger.c.kind).order_by(ledger.c.id)):
        if row["task_id"] is not None:
            by_task.setdefault(row["task_id"], []).append(row["kind"])
    for row in found:
        task_id, state = row["id"], row["state"]
        if state in TERMINAL:
            wanted = ["hold", "capture" if state == "completed" else "release"]
        else:
            # The submit's row committed, then the database went before its dispatch was recorded: the
            # customer got the 503. It waits out the dispatch grace, then fails and releases its hold.
            assert task_id not in expected and row["upstream_id"] is None, row
            assert row["next_poll_at"] is not None, row
            wanted = ["hold"]
        assert by_task.get(task_id) == wanted, (task_id, state, by_task.get(task_id))
    leased = rows(settings, select(tasks.c.id).where(tasks.c.lease_owner.is_not(None)))
    assert leased == []


def _reasons(settings: Settings, ids: list[str], wrong: Mapping[str, object]) -> str:
    """Why these tasks ended otherwise than expected (a failing check's message)."""
    found = rows(
        settings, select(tasks.c.id, tasks.c.failure_reason, tasks.c.poll_errors).where(tasks.c.id.in_(ids))
    )
    return f"{len(wrong)} tasks (got, wanted): {list(wrong.items())[:5]}; {found}"


def ledger_verifies(settings: Settings) -> None:
    verify = subprocess.run(
        [str(SCRIPT), "ledger", "verify"],
        env=environment(settings),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr


def callbacks_delivered(settings: Settings, delivered_ids: set[str]) -> Counter[str]:
    """Every outbox event delivered and seen by the receiver; returns the events per task."""
    events = rows(settings, select(outbox.c.message_id, outbox.c.status, outbox.c.task_id))
    assert {e["status"] for e in events} <= {"delivered"}, Counter(e["status"] for e in events)
    assert {e["message_id"] for e in events} <= delivered_ids
    return Counter(e["task_id"] for e in events)
