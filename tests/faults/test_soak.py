"""Fault 5: a soak with kill -9. API and worker processes are SIGKILLed in a loop while tasks run with
callbacks, some of which the receiver refuses (retries). Afterwards: RSS of the processes that lived
through the run flat, every callback event delivered at least once and in order per task, the ledger
exact. `make test` runs 60 s (DREAMRELAY_SOAK_SECONDS); `make soak` runs 600 s and prints the figures."""

from __future__ import annotations

import asyncio
import os
import random
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from dreamrelay.sandbox.generations import NO_CALLBACK
from dreamrelay.settings import Settings
from dreamrelay.store.schema import outbox, tasks
from tests.conftest import Relay, make_settings
from tests.faults.harness import (
    SANDBOX_KEY,
    TERMINAL,
    alive,
    in_flight,
    ledger_verifies,
    money_settled_once,
    relay_settings,
    rows,
    wait_until,
)
from tests.support.ports import free_port
from tests.support.private_servers import private_postgres
from tests.support.processes import Process, environment, stopped_at_exit, wait_healthy
from tests.support.receiver import Receiver, running_receiver

pytestmark = [pytest.mark.postgres, pytest.mark.heavy(seconds=90)]

SECONDS = float(os.environ.get("DREAMRELAY_SOAK_SECONDS", "60"))
RATE = 3.0  # submits a second
KILL_EVERY = (3.0, 7.0)  # seconds between kills, drawn uniformly
# Submits in flight at most: on a machine too busy to keep up the load slows down instead of piling
# requests onto the API past its per-address cap (256: a 429, another test's subject). A 600 s soak at
# load 28 (other jobs) met it on SQLite.
IN_FLIGHT = 64


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


@dataclass
class Client:
    """Submits at RATE through whichever API port answers, each with an Idempotency-Key it repeats
    until it gets an answer, so every task it created is known even when a kill cut the connection."""

    urls: list[str]
    key: str
    hook: str
    accepted: dict[str, str] = field(default_factory=dict)  # id → prompt
    refused: list[str] = field(default_factory=list)  # answers other than 200, 429 and 503
    retries: int = 0
    # 503 (the pool waited too long: the machine too busy) and 429 answers, sent again after their
    # Retry-After with the same Idempotency-Key, as dreamrelay-client does: what the customer saw.
    busy: Counter[int] = field(default_factory=Counter)

    async def run(self, stop: threading.Event, rng: random.Random) -> None:
        headers = {"Authorization": f"Bearer {self.key}"}
        slots = asyncio.Semaphore(IN_FLIGHT)

        async def one(client: httpx.AsyncClient, prompt: str, url: str) -> None:
            try:
                await self._one(client, prompt, url)
            finally:
                slots.release()

        async with httpx.AsyncClient(headers=headers, timeout=60) as client:
            jobs = []
            i = 0
            while not stop.is_set():
                i += 1
                fail = i % 5 == 0
                prompt = ("[sandbox:fail] soak" if fail else "soak") + (f" {NO_CALLBACK}" if i % 2 else "")
                await slots.acquire()
                jobs.append(asyncio.create_task(one(client, prompt, rng.choice(self.urls))))
                await asyncio.sleep(1 / RATE)
            await asyncio.gather(*jobs)

    async def _one(self, client: httpx.AsyncClient, prompt: str, url: str) -> None:
        body = {"user_prompt": prompt, "resolution": "540p", "notify_hook": self.hook}
        idem = {"Idempotency-Key": uuid.uuid4().hex}
        for attempt in range(200):
            target = self.urls[(self.urls.index(url) + attempt) % len(self.urls)]
            try:
                answer = await client.post(f"{target}/luma/generations", json=body, headers=idem)
            except httpx.HTTPError:
                self.retries += 1
                await asyncio.sleep(0.5)
                continue
            if answer.status_code in (429, 503) and "retry-after" in answer.headers:
                self.busy[answer.status_code] += 1
                await asyncio.sleep(float(answer.headers["retry-after"]))
                continue
            if answer.status_code == 200:
                self.accepted[answer.json()["id"]] = prompt
            else:
                self.refused.append(f"{answer.status_code} {answer.text[:200]}")
            return
        self.refused.append("no API answered for 100 s")


@dataclass
class Figures:
    seconds: float
    kills: dict[str, int]
    tasks: int
    interrupted: int
    events: int
    deliveries: int
    refused_by_receiver: int
    busy: dict[int, int]  # 429/503 answers the load retried
    duplicates: int
    rss_kib: dict[str, tuple[int, int, int]]  # process → (after warm-up, max, at the end)
    settle_seconds: float

    def show(self) -> str:
        lines = [
            f"soak {self.seconds:.0f} s: kills {self.kills}, tasks {self.tasks} "
            f"({self.interrupted} cut mid-dispatch, settled after the dispatch grace), "
            f"busy answers retried by the client {self.busy or 'none'}",
            f"callbacks: {self.events} events, {self.deliveries} deliveries, {self.refused_by_receiver} "
            f"refused by the receiver and retried, {self.duplicates} sent twice after a kill, 0 lost",
            f"settled {self.settle_seconds:.1f} s after the last kill",
        ]
        for name, (warm, top, end) in self.rss_kib.items():
            lines.append(
                f"RSS {name}: {warm / 1024:.1f} MiB after warm-up, max {top / 1024:.1f}, end {end / 1024:.1f}"
            )
        return "\n".join(lines)


@contextmanager
def separate_sandbox(data_dir: Path, logs: Path) -> Iterator[tuple[str, Process]]:
    """`dreamrelay sandbox` in a process of its own (in the test's process it competed with the load, the
    receiver and the checks for one GIL, and a 600 s soak once found it too slow at the end check)."""
    port = free_port()
    settings = make_settings(
        data_dir,
        sandbox_key=SANDBOX_KEY,
        allow_private_urls="127.0.0.0/8",  # its callbacks go to the relay on loopback
        sandbox_queued_seconds=0.2,
        sandbox_dreaming_seconds=1.5,
    )
    process = Process(("sandbox", "--port", str(port)), environment(settings), logs / "sandbox.log")
    with stopped_at_exit([process]):
        process.start()
        url = f"http://127.0.0.1:{port}/dream-machine/v1"
        wait_until(lambda: _answers(f"{url}/ping") and alive(process), 60, "the sandbox listening")
        yield url, process


def _answers(url: str) -> bool:
    try:
        return (
            httpx.get(url, headers={"Authorization": f"Bearer {SANDBOX_KEY}"}, timeout=2).status_code == 200
        )
    except httpx.HTTPError:
        return False


def soak(tmp_path: Path, database_url: str | None, seconds: float) -> Figures:
    rng = random.Random(29)
    # The receiver refuses one delivery in four: those are retried (base 0.2 s, doubling).
    script = ["ok", "ok", "fail", "ok"] * 100_000
    logs = tmp_path / "logs"
    logs.mkdir()
    with (
        separate_sandbox(tmp_path / "upstream", logs) as (sandbox_url, upstream),
        running_receiver(script) as receiver,
    ):
        # The product's PostgreSQL connections per process, not the tests' 6 for the machine's shared
        # server: the private cluster has room (4 processes × 20 of its 200), and 3 pooled connections
        # for the API's SQLAlchemy side made submits wait past the pool timeout (503).
        settings = relay_settings(tmp_path / "relay", database_url, sandbox_url, database_connections=20)
        env = environment(settings)
        ports = {"api-steady": settings.port, "api-killed": free_port()}
        count: defaultdict[str, int] = defaultdict(int)

        def api(name: str) -> Process:
            count[name] += 1
            api_env = {**env, "DREAMRELAY_PORT": str(ports[name])}
            return Process(("serve", "--no-worker"), api_env, logs / f"{name}-{count[name]}.log")

        def worker(name: str) -> Process:
            count[name] += 1
            return Process(("worker",), env, logs / f"{name}-{count[name]}.log")

        live = {
            "api-steady": api("api-steady"),
            "api-killed": api("api-killed"),
            "worker-steady": worker("worker-steady"),
            "worker-killed": worker("worker-killed"),
        }
        spawned = [upstream, *live.values()]
        urls = [f"http://127.0.0.1:{port}" for port in ports.values()]
        with stopped_at_exit(spawned):
            for name, process in live.items():
                process.start()
                if name.startswith("api"):
                    wait_healthy(f"http://127.0.0.1:{ports[name]}", process)
            key = Relay(url=urls[0], settings=settings, key="").new_key("soak", balance=10**9)
            client = Client(urls, key, f"{receiver.url}/hook")
            stop = threading.Event()
            load = threading.Thread(target=lambda: asyncio.run(client.run(stop, rng)), name="soak-load")
            kills: dict[str, int] = defaultdict(int)
            samples: dict[str, list[int]] = defaultdict(list)
            started = time.monotonic()
            load.start()
            next_kill = started + rng.uniform(*KILL_EVERY)
            try:
                while time.monotonic() - started < seconds:
                    time.sleep(0.5)
                    for name in ("api-steady", "worker-steady"):
                        samples[name].append(rss_kib(live[name].pid))
                    if time.monotonic() >= next_kill:
                        victim = rng.choice(["api-killed", "worker-killed"])
                        live[victim].kill()
                        kills[victim] += 1
                        live[victim] = (api if victim.startswith("api") else worker)(victim).start()
                        spawned.append(live[victim])
                        next_kill = time.monotonic() + rng.uniform(*KILL_EVERY)
            finally:
                stop.set()
                load.join(timeout=200)
            last_kill = time.monotonic()
            wait_healthy(urls[1], live["api-killed"])
            wait_until(
                lambda: not _unsettled(settings),
                240,
                "every task terminal (or cut mid-dispatch)",
                lambda: in_flight(settings),
            )
            wait_until(
                lambda: not rows(settings, select(outbox.c.id).where(outbox.c.status != "delivered")),
                120,
                "every callback event delivered",
            )
            settle = time.monotonic() - last_kill
            for name in ("api-steady", "worker-steady"):
                samples[name].append(rss_kib(live[name].pid))
            codes = {name: process.terminate() for name, process in live.items()}
            # uvicorn ends a clean shutdown by re-raising the SIGTERM it handled: -15 for `serve`.
            clean = {
                name: code in ((0, -15) if name.startswith("api") else (0,)) for name, code in codes.items()
            }
            assert all(clean.values()), (codes, {n: p.log()[-1500:] for n, p in live.items()})

        assert client.refused == [], client.refused[:5]
        assert kills["api-killed"] >= 1 and kills["worker-killed"] >= 1, kills
        interrupted = _check_tasks_and_money(settings, client.accepted)
        ledger_verifies(settings)
        events, deliveries, duplicates = _check_callbacks(settings, receiver)
        rss: dict[str, tuple[int, int, int]] = {}
        # Warm-up: the first half (imports, PyAV on the first media copy, pools and caches filling).
        # Flat: the second half never goes more than 15 % (plus 16 MiB of allocator slack) above it. In the
        # 60 s run of `make test` the warm-up is most of the run (a loaded machine reached the first media
        # copies late, 161 -> 212 MiB once), so there it only guards against a gross leak; `make soak`'s
        # 600 s run holds the tight bound.
        growth, slack = (1.15, 16 * 1024) if seconds >= 300 else (1.4, 48 * 1024)
        for name, values in samples.items():
            warm = max(values[: max(len(values) // 2, 1)])
            rss[name] = (warm, max(values), values[-1])
            assert max(values) <= warm * growth + slack, (name, "MiB", [v // 1024 for v in values])
        return Figures(
            seconds=seconds,
            kills=dict(kills),
            tasks=len(client.accepted),
            interrupted=interrupted,
            events=events,
            deliveries=deliveries,
            refused_by_receiver=sum(1 for r in receiver.received if r.answered == "fail"),
            busy=dict(client.busy),
            duplicates=duplicates,
            rss_kib=rss,
            settle_seconds=settle,
        )


def _unsettled(settings: Settings) -> list[dict[str, object]]:
    """Tasks still in flight, other than those a kill cut mid-dispatch (no upstream id yet)."""
    found = rows(settings, select(tasks.c.id, tasks.c.state, tasks.c.upstream_id))
    return [r for r in found if r["state"] not in TERMINAL and r["upstream_id"] is not None]


def _check_tasks_and_money(settings: Settings, accepted: dict[str, str]) -> int:
    """Each task ended as its prompt said, settled once; returns how many wait out the dispatch grace."""
    found = {r["id"]: r for r in rows(settings, select(tasks.c.id, tasks.c.state, tasks.c.upstream_id))}
    expected = {}
    interrupted = 0
    for task_id, prompt in accepted.items():
        if found[task_id]["upstream_id"] is None and found[task_id]["state"] != "completed":
            # A kill (or a 503) between the task's insert and its dispatch record: the client's retry got
            # this task back; it waits out the dispatch grace (5 min), then fails with its hold released.
            interrupted += 1
            continue
        expected[task_id] = "failed" if "[sandbox:fail]" in prompt else "completed"
    money_settled_once(settings, expected)
    return interrupted


def _check_callbacks(settings: Settings, receiver: Receiver) -> tuple[int, int, int]:
    """Every event delivered at least once, and each task's first deliveries in sequence order."""
    events = rows(settings, select(outbox.c.message_id, outbox.c.task_id, outbox.c.sequence, outbox.c.status))
    assert {e["status"] for e in events} == {"delivered"}
    sequence = {e["message_id"]: (e["task_id"], e["sequence"]) for e in events}
    first_seen: dict[str, float] = {}
    deliveries = 0
    for received in receiver.delivered():
        deliveries += 1
        first_seen.setdefault(received.headers["webhook-id"], received.at)
    assert set(sequence) <= set(first_seen), "callback events lost"
    by_task: dict[str, list[tuple[float, int]]] = defaultdict(list)
    for message_id, (task_id, seq) in sequence.items():
        by_task[task_id].append((first_seen[message_id], seq))
    for task_id, seen in by_task.items():
        in_arrival_order = [seq for _, seq in sorted(seen)]
        assert in_arrival_order == sorted(in_arrival_order), (task_id, in_arrival_order)
    return len(events), deliveries, deliveries - len(first_seen)


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_soak_with_kill_minus_nine(tmp_path: Path, kind: str) -> None:
    # PostgreSQL: a private cluster. On the machine's server (max_connections 100, shared with the other
    # xdist workers' tests) four relay processes and their restarts met "too many clients already".
    with private_postgres() if kind == "postgres" else nullcontext() as pg:
        figures = soak(tmp_path, pg.url if pg is not None else None, SECONDS)
    shown = f"[{kind}] " + figures.show()
    print("\n" + shown)
    report = os.environ.get("DREAMRELAY_SOAK_REPORT")  # `make soak` prints it (xdist keeps stdout)
    if report:
        with Path(report).open("a") as handle:
            handle.write(shown + "\n")
