"""What the clients do, without I/O: each operation is a generator that yields the requests to send
and the pauses to take, and gets the responses back. Client and AsyncClient only drive them, so retries,
Retry-After, idempotency keys and wait()'s back-off are written once.
"""

from __future__ import annotations

import base64
import os
import time
import uuid
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx

from dreamrelay_client import errors
from dreamrelay_client.models import Task

T = TypeVar("T")
DEFAULT_BASE_URL = "http://127.0.0.1:8000"
RETRY_STATUSES = (429, 500, 502, 503, 504)
BATCH_MAX_IDS = 1000


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    json: Any = None
    params: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    retry: bool = True  # safe to send again (reads, and submits with their Idempotency-Key)


@dataclass(frozen=True)
class Pause:
    seconds: float


Step = Call | Pause
Op = Generator[Step, Any, T]


@dataclass(frozen=True)
class Options:
    api_key: str
    base_url: str
    timeout: float = 60.0
    max_retries: int = 4  # per request, for 429, 5xx and connection errors
    max_retry_wait: float = 120.0  # a longer Retry-After is raised instead of slept


def options(api_key: str | None, base_url: str | None, **rest: Any) -> Options:
    key = api_key or os.environ.get("DREAMRELAY_API_KEY")
    if not key:
        raise errors.DreamRelayError("no API key: pass api_key= or set DREAMRELAY_API_KEY")
    url = (base_url or os.environ.get("DREAMRELAY_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
    return Options(api_key=key, base_url=url, **rest)


def request(opts: Options, call: Call) -> Op[Any]:
    """One request with retries: Retry-After on 429, exponential back-off on 5xx and lost connections."""
    attempt = 0
    while True:
        try:
            response: httpx.Response = yield call
        except httpx.TransportError as exc:
            if not call.retry or attempt >= opts.max_retries:
                raise errors.APIConnectionError(f"{call.method} {call.path}: {exc!r}") from exc
            yield Pause(min(0.5 * 2**attempt, 8.0))
            attempt += 1
            continue
        if response.status_code < 400:
            return response.json() if response.content else None
        error = errors.from_response(response)
        if response.status_code not in RETRY_STATUSES or attempt >= opts.max_retries:
            raise error
        if response.status_code == 429:
            wait = errors.retry_after(response.headers) or 1.0
            if wait > opts.max_retry_wait:
                raise error
        elif call.retry:
            wait = min(0.5 * 2**attempt, 8.0)
        else:
            raise error
        yield Pause(wait)
        attempt += 1


def _image(value: str | bytes | Path) -> str:
    """An image to send: a URL or data URI as is; a path or bytes as base64 (JPEG or PNG)."""
    if isinstance(value, str) and value.startswith(("http://", "https://", "data:")):
        return value
    data = value if isinstance(value, bytes) else Path(value).read_bytes()
    kind = "png" if data[:8] == b"\x89PNG\r\n\x1a\n" else "jpeg"
    return f"data:image/{kind};base64," + base64.b64encode(data).decode()


def submit(
    opts: Options,
    prompt: str,
    *,
    image: str | bytes | Path | None = None,
    end_image: str | bytes | Path | None = None,
    model: str | None = None,
    resolution: str | None = None,
    duration: str | None = None,
    aspect_ratio: str | None = None,
    loop: bool | None = None,
    expand_prompt: bool | None = None,
    callback_url: str | None = None,
    idempotency_key: str | None = None,
) -> Op[Task]:
    body: dict[str, Any] = {"user_prompt": prompt}
    optional = {
        "model_name": model,
        "resolution": resolution,
        "duration": duration,
        "aspect_ratio": aspect_ratio,
        "loop": loop,
        "expand_prompt": expand_prompt,
        "notify_hook": callback_url,
        "image_url": _image(image) if image is not None else None,
        "image_end_url": _image(end_image) if end_image is not None else None,
    }
    body.update({k: v for k, v in optional.items() if v is not None})
    # One key for every retry of this submit: the server answers a resend with the first task.
    headers = {"Idempotency-Key": idempotency_key or str(uuid.uuid4())}
    data = yield from request(opts, Call("POST", "/luma/generations", json=body, headers=headers))
    return Task.from_json(data)


def extend(
    opts: Options,
    task: str | Task,
    prompt: str,
    *,
    duration: str | None = None,
    loop: bool | None = None,
    end_image: str | bytes | Path | None = None,
    callback_url: str | None = None,
    idempotency_key: str | None = None,
) -> Op[Task]:
    task_id = task.id if isinstance(task, Task) else task
    body: dict[str, Any] = {"user_prompt": prompt}
    optional = {
        "duration": duration,
        "loop": loop,
        "notify_hook": callback_url,
        "image_end_url": _image(end_image) if end_image is not None else None,
    }
    body.update({k: v for k, v in optional.items() if v is not None})
    headers = {"Idempotency-Key": idempotency_key or str(uuid.uuid4())}
    call = Call("POST", f"/luma/generations/{task_id}/extend", json=body, headers=headers)
    return Task.from_json((yield from request(opts, call)))


def get(opts: Options, task: str | Task) -> Op[Task]:
    task_id = task.id if isinstance(task, Task) else task
    return Task.from_json((yield from request(opts, Call("GET", f"/luma/generations/{task_id}"))))


def batch(opts: Options, ids: Sequence[str | Task]) -> Op[list[Task]]:
    """Many tasks in one request per 1000 ids (the server's batch query); unknown ids are left out."""
    wanted = [i.id if isinstance(i, Task) else i for i in ids]
    found: list[Task] = []
    for start in range(0, len(wanted), BATCH_MAX_IDS):
        chunk = wanted[start : start + BATCH_MAX_IDS]
        data = yield from request(opts, Call("POST", "/luma/tasks", json={"ids": chunk}))
        found += [Task.from_json(t) for t in data]
    return found


def wait(
    opts: Options,
    tasks: Sequence[str | Task],
    *,
    timeout: float,
    interval: float,
    max_interval: float,
    on_update: Callable[[list[Task]], None] | None,
) -> Op[list[Task]]:
    """Poll the batch query until every task is finished: one request per round for all of them,
    `interval` growing by half each round up to `max_interval`; WaitTimeout after `timeout` seconds."""
    ids = [t.id if isinstance(t, Task) else t for t in tasks]
    latest: dict[str, Task] = {t.id: t for t in tasks if isinstance(t, Task)}
    deadline = time.monotonic() + timeout
    pending = [i for i in ids if not (i in latest and latest[i].finished)]
    while pending:
        for task in (yield from batch(opts, pending)):
            latest[task.id] = task
        missing = [i for i in pending if i not in latest]
        if missing:
            raise errors.NotFound(
                f"task {missing[0]} not found", status=404, code="task_not_found", body=None, headers=None
            )
        if on_update is not None:
            on_update([latest[i] for i in ids])
        pending = [i for i in pending if not latest[i].finished]
        if not pending:
            break
        left = deadline - time.monotonic()
        if left <= 0:
            raise errors.WaitTimeout([latest[i] for i in ids], timeout)
        yield Pause(min(interval, left))
        interval = min(interval * 1.5, max_interval)
    return [latest[i] for i in ids]


def account(opts: Options) -> Op[dict[str, Any]]:
    return dict((yield from request(opts, Call("GET", "/account"))))


def running(opts: Options, *, states: str = "pending,processing", limit: int = 100) -> Op[list[Task]]:
    """The account's tasks in `states`, newest first (GET /account/tasks)."""
    call = Call("GET", "/account/tasks", params={"state": states, "limit": limit})
    data = yield from request(opts, call)
    return [Task.from_json(t) for t in data["data"]]


def redeem(opts: Options, code: str) -> Op[dict[str, Any]]:
    # Not resent after a lost answer: the code may have been used by the first try (409 would follow).
    return dict((yield from request(opts, Call("POST", "/account/redeem", json={"code": code}, retry=False))))


def video_url(opts: Options, task: str | Task) -> Op[str]:
    """The finished video's URL (from the task object; one request when only an id is given)."""
    if isinstance(task, Task) and task.video_url:
        return task.video_url
    task_id = task.id if isinstance(task, Task) else task
    data = yield from request(opts, Call("GET", f"/luma/generations/{task_id}/download_video_url"))
    return str(data["url"])


def drive_sync(op: Op[T], send: Callable[[Call], httpx.Response]) -> T:
    try:
        step = next(op)
        while True:
            if isinstance(step, Pause):
                time.sleep(step.seconds)
                step = op.send(None)
                continue
            try:
                response = send(step)
            except httpx.TransportError as exc:
                step = op.throw(exc)
                continue
            step = op.send(response)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
