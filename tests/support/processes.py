"""DreamRelay as operators run it on one host: `dreamrelay serve` and `dreamrelay worker` subprocesses,
and a sandbox upstream that records who polled which generation when."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from dreamrelay.netguard import URLPolicy
from dreamrelay.runtime import INSTANCE_HEADER
from dreamrelay.sandbox.app import create_sandbox_app
from dreamrelay.sandbox.core import SandboxConfig
from dreamrelay.settings import Settings
from tests.support.live_server import live_server
from tests.support.upstreams import _read_body as read_body

SCRIPT = Path(sys.executable).with_name("dreamrelay")
NO_CALLBACK = "[soak:no-callback]"  # prompts with it get no upstream callbacks: only polls move them


def environment(settings: Settings) -> dict[str, str]:
    """The DREAMRELAY_* variables that give a subprocess exactly `settings`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DREAMRELAY_", "PROMETHEUS_"))}
    for name, value in settings.model_dump(exclude_none=True).items():
        env[f"DREAMRELAY_{name.upper()}"] = str(value)
    return env


@dataclass
class Process:
    """One `dreamrelay ARGS` subprocess, its output kept in a log file."""

    args: tuple[str, ...]
    env: dict[str, str]
    log_path: Path
    popen: subprocess.Popen[bytes] | None = None
    prefix: tuple[str, ...] = ()  # run under this command (`ip netns exec <name>`)

    def start(self) -> Process:
        command = [
            *self.prefix,
            *([str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "dreamrelay"]),
        ]
        with self.log_path.open("ab") as log:
            # A session of its own: killing it takes the API processes `serve --workers N` spawned too.
            self.popen = subprocess.Popen(
                [*command, *self.args],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def kill(self) -> None:
        """SIGKILL: no clean-up at all, as a crash or an OOM kill."""
        assert self.popen is not None
        _kill_group(self.popen)

    def terminate(self, timeout: float = 60) -> int:
        """SIGTERM and wait; returns the exit code."""
        assert self.popen is not None
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
        return self.popen.wait(timeout=timeout)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def wait_healthy(url: str, process: Process, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.popen is not None
        if process.popen.poll() is not None:
            raise AssertionError(f"{process.args} exited early:\n{process.log()}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} did not become ready:\n{process.log()}")


def _kill_group(popen: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process and every process it started (no clean-up at all, as a crash)."""
    try:
        os.killpg(popen.pid, signal.SIGKILL)
    except ProcessLookupError:
        popen.kill()
    popen.wait(timeout=20)


@contextmanager
def stopped_at_exit(processes: list[Process]) -> Iterator[list[Process]]:
    """Whatever happens in the block, no subprocess outlives it."""
    try:
        yield processes
    finally:
        for process in processes:
            if process.popen is not None and process.popen.poll() is None:
                _kill_group(process.popen)
                process.popen.wait(timeout=20)


@dataclass(frozen=True)
class Poll:
    generation_id: str
    poller: str
    started: float
    ended: float


@dataclass
class PollRecorder:
    """ASGI wrapper of the standalone sandbox: records every GET of a generation with its poller
    (and which processes submitted).

    It can also hold each poll for `poll_delay` seconds (work in hand at a shutdown; setting it lower
    later lets the polls held so far go on), and removes
    `callback_url` from generations whose prompt carries NO_CALLBACK.
    """

    app: Any
    poll_delay: float = 0.0
    polls: list[Poll] = field(default_factory=list)
    submitters: set[str] = field(default_factory=set)  # instances that created generations
    _lock: threading.Lock = field(default_factory=threading.Lock)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        prefix = "/dream-machine/v1/generations/"
        headers = {k.decode().lower(): v.decode() for k, v in scope.get("headers", [])}
        if scope["type"] == "http" and scope["method"] == "POST" and path.startswith(prefix[:-1]):
            self.submitters.add(headers.get(INSTANCE_HEADER.lower(), "?"))
            receive = await self._without_callback(receive)
        if not (scope["type"] == "http" and scope["method"] == "GET" and path.startswith(prefix)):
            await self.app(scope, receive, send)
            return
        started = time.time()
        # poll_delay is read again and again: a test lowers it (from its own thread) to let held polls go.
        while (left := self.poll_delay - (time.time() - started)) > 0:  # noqa: ASYNC110
            await asyncio.sleep(min(left, 0.1))
        try:
            await self.app(scope, receive, send)
        finally:
            poll = Poll(
                path.removeprefix(prefix), headers.get(INSTANCE_HEADER.lower(), "?"), started, time.time()
            )
            with self._lock:
                self.polls.append(poll)

    @staticmethod
    async def _without_callback(receive: Any) -> Any:
        body = await read_body(receive)
        try:
            data = json.loads(body)
        except ValueError:
            data = None
        if isinstance(data, dict) and NO_CALLBACK in (data.get("prompt") or ""):
            data.pop("callback_url", None)
            body = json.dumps(data).encode()
        sent = False

        async def replay() -> dict[str, Any]:
            nonlocal sent
            if sent:
                message: dict[str, Any] = await receive()
                return message
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        return replay

    def overlaps(self) -> list[tuple[Poll, Poll]]:
        """Pairs of polls of one generation by two different processes at the same moment."""
        by_generation: dict[str, list[Poll]] = defaultdict(list)
        with self._lock:
            for poll in self.polls:
                by_generation[poll.generation_id].append(poll)
        found = []
        for polls in by_generation.values():
            polls.sort(key=lambda p: p.started)
            for i, first in enumerate(polls):
                for second in polls[i + 1 :]:
                    if second.started >= first.ended:
                        break
                    if second.poller != first.poller:
                        found.append((first, second))
        return found


@contextmanager
def recorded_sandbox(data_dir: Path, api_key: str, **timings: Any) -> Iterator[tuple[str, PollRecorder]]:
    """The standalone sandbox on a loopback port behind a PollRecorder; yields its API base URL."""
    # Its callbacks go to relays on loopback ports of this machine.
    policy = URLPolicy.from_setting("127.0.0.0/8")
    config = SandboxConfig(data_dir=data_dir, api_key=api_key, url_policy=policy, **timings)
    recorder = PollRecorder(create_sandbox_app(config))
    with live_server(recorder) as url:
        yield f"{url}/dream-machine/v1", recorder
