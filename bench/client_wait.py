"""Requests per task of `dreamrelay-client`'s wait(), beside a hand-written polling loop, same run.

A DreamRelay with the sandbox at its default timings (2 s queued, 5 s dreaming, plus the render) serves
three ways of getting `TASKS` videos done: the client's `wait()` per task (in threads), its
`wait_all()` for all of them, and the loop of docs/customers.md (GET every 2 s per task). Every request
that reaches the server is counted; also how long after the video was ready each way noticed it.
Run: `.venv/bin/python bench/client_wait.py [tasks] [dreaming seconds]` (the dreaming seconds default to
DREAMRELAY_SANDBOX_DREAMING_SECONDS, else 5).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

import httpx
from dreamrelay_client import Client, Task

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.servers import free_port, relay_env, start_relay

PROMPT = "a paper boat on a rainy street"


class Counter:
    def __init__(self) -> None:
        self.requests = 0
        self.lock = threading.Lock()

    def transport(self) -> httpx.HTTPTransport:
        """A transport of its own (a client closes its transport) that counts into this counter."""
        counter = self

        class Counting(httpx.HTTPTransport):
            def handle_request(self, request: httpx.Request) -> httpx.Response:
                with counter.lock:
                    counter.requests += 1
                return super().handle_request(request)

        return Counting()


TOOK: list[float] = []


def _took(task: Task) -> float:
    created = datetime.fromisoformat(task.created_at.replace("Z", "+00:00")).timestamp()
    return _ready_at(task) - created


def _ready_at(task: Task) -> float:
    """When our copy of the video was finished (the task turned completed right after)."""
    return datetime.fromisoformat(task.raw["artifact"]["created_at"].replace("Z", "+00:00")).timestamp()


def per_task_wait(url: str, key: str, tasks: int) -> tuple[float, list[float]]:
    counter, late = Counter(), []

    def one() -> None:
        with Client(key, url, transport=counter.transport()) as client:
            done = client.wait(client.submit(PROMPT, resolution="540p"))
            late.append(time.time() - _ready_at(done))
            TOOK.append(_took(done))

    threads = [threading.Thread(target=one) for _ in range(tasks)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return counter.requests / tasks, late


def wait_all(url: str, key: str, tasks: int) -> tuple[float, list[float]]:
    counter = Counter()
    with Client(key, url, transport=counter.transport()) as client:
        submitted = [client.submit(PROMPT, resolution="540p") for _ in range(tasks)]
        done = client.wait_all(submitted)
        now = time.time()
    return counter.requests / tasks, [now - _ready_at(t) for t in done]


def curl_loop(url: str, key: str, tasks: int) -> tuple[float, list[float]]:
    """docs/customers.md's loop: submit, then GET the task every 2 s until it is finished."""
    counter, late = Counter(), []

    def one() -> None:
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=url, headers=headers, transport=counter.transport()) as http:
            task = http.post("/luma/generations", json={"user_prompt": PROMPT, "resolution": "540p"}).json()
            assert "state" in task, task
            while task["state"] not in ("completed", "failed"):
                time.sleep(2)
                task = http.get(f"/luma/generations/{task['id']}").json()
            late.append(time.time() - _ready_at(Task.from_json(task)))

    threads = [threading.Thread(target=one) for _ in range(tasks)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return counter.requests / tasks, late


def main() -> None:
    tasks = int(sys.argv[1]) if len(sys.argv) > 1 else 8
    default_dreaming = os.environ.get("DREAMRELAY_SANDBOX_DREAMING_SECONDS", "5")
    dreaming = sys.argv[2] if len(sys.argv) > 2 else default_dreaming
    with tempfile.TemporaryDirectory() as tmp:
        env = relay_env(
            Path(tmp) / "data", free_port(), sandbox_queued_seconds="2", sandbox_dreaming_seconds=dreaming
        )
        relay = start_relay(env, Path(tmp) / "logs")  # first start: the sandbox channel
        run_env = {**os.environ, **env}
        dreamrelay = [sys.executable, "-m", "dreamrelay"]
        subprocess.run(
            [*dreamrelay, "accounts", "create", "bench", "--balance", "1000000"], env=run_env, check=True
        )
        made = subprocess.run(
            [*dreamrelay, "keys", "create", "--account", "bench"],
            env=run_env,
            check=True,
            capture_output=True,
        )
        key = made.stdout.decode().strip()
        try:
            print(f"{tasks} tasks, sandbox 2 s queued + {dreaming} s dreaming; load {os.getloadavg()[0]:.1f}")
            print(f"{'way':<28}{'requests/task':>14}{'noticed after (median s)':>28}")
            for name, way in (
                ("curl loop, GET every 2 s", curl_loop),
                ("client wait() per task", per_task_wait),
                ("client wait_all()", wait_all),
            ):
                requests, late = way(relay.url, key, tasks)
                print(f"{name:<28}{requests:>14.2f}{statistics.median(late):>28.2f}")
            print(f"tasks took {statistics.median(TOOK):.1f} s (median, submit to video ready)")
            print("requests/task include the submit (1); the client's polls are batch queries")
        finally:
            relay.stop()


if __name__ == "__main__":
    main()
