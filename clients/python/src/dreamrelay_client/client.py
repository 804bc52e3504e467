"""Client and AsyncClient: the same operations (`_ops.py`), driven by httpx's sync or async client."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import httpx

from dreamrelay_client import _ops, errors
from dreamrelay_client.models import Task

T = TypeVar("T")
ProgressHook = Callable[[int, int | None], None]  # bytes so far, total (None when unknown)
UpdateHook = Callable[[list[Task]], None]


def _headers(opts: _ops.Options) -> dict[str, str]:
    return {"Authorization": f"Bearer {opts.api_key}", "User-Agent": "dreamrelay-client/0.1.0"}


def _one(tasks: list[Task], raise_on_failure: bool) -> list[Task]:
    if raise_on_failure:
        for task in tasks:
            if task.failed:
                raise errors.TaskFailed(task)
    return tasks


class Client:
    """DreamRelay over HTTP. Key and base URL from the arguments or DREAMRELAY_API_KEY / DREAMRELAY_BASE_URL.

    Every request is retried on 429 (after Retry-After), 5xx and lost connections; submits carry an
    Idempotency-Key (made here unless given), the same on every retry, so a retry never pays twice.
    """

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        *,
        timeout: float = 60.0,
        max_retries: int = 4,
        max_retry_wait: float = 120.0,
        transport: httpx.BaseTransport | None = None,
    ):
        self.options = _ops.options(
            api_key, base_url, timeout=timeout, max_retries=max_retries, max_retry_wait=max_retry_wait
        )
        self._http = httpx.Client(
            base_url=self.options.base_url,
            headers=_headers(self.options),
            timeout=timeout,
            transport=transport,
        )
        self._media = httpx.Client(timeout=timeout, follow_redirects=True, transport=transport)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()
        self._media.close()

    def _send(self, call: _ops.Call) -> httpx.Response:
        return self._http.request(
            call.method, call.path, json=call.json, params=call.params, headers=call.headers
        )

    def _run(self, op: _ops.Op[T]) -> T:
        return _ops.drive_sync(op, self._send)

    def submit(self, prompt: str, **options: Any) -> Task:
        """A new video task (state `pending`). Options: image, end_image (path, bytes, URL or data URI),
        model, resolution, duration, aspect_ratio, loop, expand_prompt, callback_url, idempotency_key."""
        return self._run(_ops.submit(self.options, prompt, **options))

    def extend(self, task: str | Task, prompt: str, **options: Any) -> Task:
        """Continue a completed task's video (a new task on the same channel)."""
        return self._run(_ops.extend(self.options, task, prompt, **options))

    def get(self, task: str | Task) -> Task:
        return self._run(_ops.get(self.options, task))

    def batch(self, ids: Sequence[str | Task]) -> list[Task]:
        return self._run(_ops.batch(self.options, ids))

    def wait(
        self,
        task: str | Task,
        *,
        timeout: float = 900.0,
        interval: float = 1.0,
        max_interval: float = 10.0,
        on_update: UpdateHook | None = None,
        raise_on_failure: bool = True,
    ) -> Task:
        """Block until the task is finished; TaskFailed if it failed (unless told not to), WaitTimeout."""
        return self.wait_all(
            [task],
            timeout=timeout,
            interval=interval,
            max_interval=max_interval,
            on_update=on_update,
            raise_on_failure=raise_on_failure,
        )[0]

    def wait_all(
        self,
        tasks: Sequence[str | Task],
        *,
        timeout: float = 900.0,
        interval: float = 1.0,
        max_interval: float = 10.0,
        on_update: UpdateHook | None = None,
        raise_on_failure: bool = True,
    ) -> list[Task]:
        """Wait for many tasks with one batch query per round for all of them."""
        op = _ops.wait(
            self.options,
            tasks,
            timeout=timeout,
            interval=interval,
            max_interval=max_interval,
            on_update=on_update,
        )
        return _one(self._run(op), raise_on_failure)

    def download(
        self, task: str | Task, path: str | Path, *, on_progress: ProgressHook | None = None
    ) -> Path:
        """Stream the finished video to `path` (written to a .part file, renamed when complete)."""
        url = self._run(_ops.video_url(self.options, task))
        target = Path(path)
        part = target.with_name(target.name + ".part")
        try:
            with self._media.stream("GET", url) as response:
                if response.status_code >= 400:
                    response.read()
                    raise errors.from_response(response)
                total = (
                    int(response.headers["content-length"]) if "content-length" in response.headers else None
                )
                done = 0
                with part.open("wb") as out:
                    for chunk in response.iter_bytes(64 * 1024):
                        out.write(chunk)
                        done += len(chunk)
                        if on_progress is not None:
                            on_progress(done, total)
        except httpx.TransportError as exc:
            part.unlink(missing_ok=True)
            raise errors.APIConnectionError(f"download of {url}: {exc!r}") from exc
        part.replace(target)
        return target

    def account(self) -> dict[str, Any]:
        """The account: name, balance, task counts."""
        return self._run(_ops.account(self.options))

    def balance(self) -> int:
        return int(self.account()["balance"])

    def running(self, *, states: str = "pending,processing", limit: int = 100) -> list[Task]:
        return self._run(_ops.running(self.options, states=states, limit=limit))

    def redeem(self, code: str) -> dict[str, Any]:
        """Add a credit code's credits: {"amount", "balance", "redeemed_at"}; Conflict if used."""
        return self._run(_ops.redeem(self.options, code))


class AsyncClient:
    """The same as Client, for asyncio."""

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        *,
        timeout: float = 60.0,
        max_retries: int = 4,
        max_retry_wait: float = 120.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ):
        self.options = _ops.options(
            api_key, base_url, timeout=timeout, max_retries=max_retries, max_retry_wait=max_retry_wait
        )
        self._http = httpx.AsyncClient(
            base_url=self.options.base_url,
            headers=_headers(self.options),
            timeout=timeout,
            transport=transport,
        )
        self._media = httpx.AsyncClient(timeout=timeout, follow_redirects=True, transport=transport)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()
        await self._media.aclose()

    async def _run(self, op: _ops.Op[T]) -> T:
        try:
            step = next(op)
            while True:
                if isinstance(step, _ops.Pause):
                    await asyncio.sleep(step.seconds)
                    step = op.send(None)
                    continue
                try:
                    response = await self._http.request(
                        step.method, step.path, json=step.json, params=step.params, headers=step.headers
                    )
                except httpx.TransportError as exc:
                    step = op.throw(exc)
                    continue
                step = op.send(response)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]

    async def submit(self, prompt: str, **options: Any) -> Task:
        return await self._run(_ops.submit(self.options, prompt, **options))

    async def extend(self, task: str | Task, prompt: str, **options: Any) -> Task:
        return await self._run(_ops.extend(self.options, task, prompt, **options))

    async def get(self, task: str | Task) -> Task:
        return await self._run(_ops.get(self.options, task))

    async def batch(self, ids: Sequence[str | Task]) -> list[Task]:
        return await self._run(_ops.batch(self.options, ids))

    async def wait(self, task: str | Task, **options: Any) -> Task:
        return (await self.wait_all([task], **options))[0]

    async def wait_all(
        self,
        tasks: Sequence[str | Task],
        *,
        timeout: float = 900.0,  # noqa: ASYNC109 - a deadline for the whole wait, as in Client
        interval: float = 1.0,
        max_interval: float = 10.0,
        on_update: UpdateHook | None = None,
        raise_on_failure: bool = True,
    ) -> list[Task]:
        op = _ops.wait(
            self.options,
            tasks,
            timeout=timeout,
            interval=interval,
            max_interval=max_interval,
            on_update=on_update,
        )
        return _one(await self._run(op), raise_on_failure)

    async def download(
        self, task: str | Task, path: str | Path, *, on_progress: ProgressHook | None = None
    ) -> Path:
        url = await self._run(_ops.video_url(self.options, task))
        target = Path(path)
        part = target.with_name(target.name + ".part")
        try:
            async with self._media.stream("GET", url) as response:
                if response.status_code >= 400:
                    await response.aread()
                    raise errors.from_response(response)
                total = (
                    int(response.headers["content-length"]) if "content-length" in response.headers else None
                )
                done = 0
                with part.open("wb") as out:
                    async for chunk in response.aiter_bytes(64 * 1024):
                        out.write(chunk)
                        done += len(chunk)
                        if on_progress is not None:
                            on_progress(done, total)
        except httpx.TransportError as exc:
            part.unlink(missing_ok=True)
            raise errors.APIConnectionError(f"download of {url}: {exc!r}") from exc
        part.replace(target)
        return target

    async def account(self) -> dict[str, Any]:
        return await self._run(_ops.account(self.options))

    async def balance(self) -> int:
        return int((await self.account())["balance"])

    async def running(self, *, states: str = "pending,processing", limit: int = 100) -> list[Task]:
        return await self._run(_ops.running(self.options, states=states, limit=limit))

    async def redeem(self, code: str) -> dict[str, Any]:
        return await self._run(_ops.redeem(self.options, code))
