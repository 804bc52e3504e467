"""What watching costs: metrics and logging per request, tracing when off, and /metrics itself at 1,000
tasks in flight.

Per-request costs are measured in process, as CPU time of one thread driving the same ASGI call
through (a) a bare app, (b) the bare app inside the metrics and request-id middleware, (c) the same plus
one JSON log line per request — so the figure is the middleware's own CPU, free of the load generator
and of whoever else shares the cores. Run alone: `.venv/bin/python -m bench.observability`.
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from starlette.types import ASGIApp, Receive, Scope, Send

from dreamrelay import logs, tracing
from dreamrelay.http.middleware import Metrics, RequestId
from dreamrelay.upstreams.base import UpstreamStatus
from dreamrelay.upstreams.instrumented import Instrumented

CALLS = 20_000
ROUNDS = 5
IN_FLIGHT = 1000


async def _bare(scope: Scope, receive: Receive, send: Send) -> None:
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]}
    )
    await send({"type": "http.response.body", "body": b'{"status":"ok"}'})


def _logged(app: ASGIApp) -> ASGIApp:
    log = logging.getLogger("dreamrelay.bench")

    async def with_a_line(scope: Scope, receive: Receive, send: Send) -> None:
        await app(scope, receive, send)
        log.info("answered %s %s", scope["method"], scope["path"])

    return with_a_line


def _cpu_per_call(app: Any, calls: int) -> float:
    """CPU seconds of this thread per ASGI request through `app`."""
    scope: Scope = {
        "type": "http",
        "method": "GET",
        "path": "/healthz",
        "headers": [(b"host", b"bench")],
        "state": {},
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(_message: dict[str, Any]) -> None:
        return None

    async def drive() -> float:
        started = time.thread_time()
        for _ in range(calls):
            await app(dict(scope, state={}), receive, send)
        return time.thread_time() - started

    return asyncio.run(drive()) / calls


class _Quiet:
    """A do-nothing upstream: what the instrumentation adds to one call is all that is measured."""

    batch_size = 1
    takes_callbacks = False

    async def submit(self, request: object) -> str:
        return "id"

    async def poll(self, upstream_ids: list[str]) -> dict[str, UpstreamStatus]:
        return {}

    async def cancel(self, upstream_id: str) -> None:
        return None


def _upstream_call_cost(calls: int) -> tuple[float, float]:
    """(µs per poll through the bare adapter, through Instrumented) with tracing off."""
    bare, wrapped = _Quiet(), Instrumented(_Quiet(), "bench")  # type: ignore[arg-type]

    async def drive(adapter: Any) -> float:
        started = time.thread_time()
        for _ in range(calls):
            await adapter.poll(["id"])
        return time.thread_time() - started

    return asyncio.run(drive(bare)) / calls * 1e6, asyncio.run(drive(wrapped)) / calls * 1e6


def per_request(calls: int = CALLS, rounds: int = ROUNDS) -> dict[str, Any]:
    assert not tracing.enabled(), "run without OTEL_EXPORTER_OTLP_ENDPOINT: this measures tracing off"
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    logs.configure("json", stream=io.StringIO())  # formatted and written, into memory
    try:
        stacks = {
            "bare ASGI app": _bare,
            "+ request id + metrics middleware": Metrics(RequestId(_bare)),
            "+ one JSON log line": Metrics(RequestId(_logged(_bare))),
        }
        figures = {name: [] for name in stacks}  # type: dict[str, list[float]]
        for _ in range(rounds):  # alternated, so drifts in the machine hit every stack alike
            for name, app in stacks.items():
                figures[name].append(_cpu_per_call(app, calls) * 1e6)
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    medians = {name: statistics.median(values) for name, values in figures.items()}
    bare_up, wrapped_up = _upstream_call_cost(calls)
    return {
        "cpu_us_per_request": {k: round(v, 2) for k, v in medians.items()},
        "metrics_us": round(medians["+ request id + metrics middleware"] - medians["bare ASGI app"], 2),
        "log_line_us": round(
            medians["+ one JSON log line"] - medians["+ request id + metrics middleware"], 2
        ),
        "upstream_call_us": {"bare": round(bare_up, 2), "instrumented (tracing off)": round(wrapped_up, 2)},
    }


def series_at_in_flight(work: Path, tasks: int = IN_FLIGHT) -> dict[str, Any]:
    """Submit `tasks` that never finish, then scrape: how many series, and what one scrape costs."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.conftest import make_settings, start_relay  # the product's own app on a loopback port

    settings = make_settings(
        work / "series",
        rate_limit_rpm=0,
        rate_limit_in_flight=0,
        task_deadline_seconds=3600.0,
    )
    with start_relay(settings) as relay:
        refused: list[int] = []  # on a loaded machine the in-process sandbox may time out a few

        async def submit_all() -> None:
            limit = asyncio.Semaphore(4)
            async with httpx.AsyncClient(
                base_url=relay.url, headers={"Authorization": f"Bearer {relay.key}"}, timeout=60
            ) as client:

                async def one(i: int) -> None:
                    async with limit:
                        answer = await client.post(
                            "/luma/generations", json={"user_prompt": f"wait {i} [sandbox:stall]"}
                        )
                        if answer.status_code != 200:
                            refused.append(answer.status_code)

                await asyncio.gather(*(one(i) for i in range(tasks)))

        began = time.monotonic()
        asyncio.run(submit_all())
        submitted_in = time.monotonic() - began
        scrapes = []
        for _ in range(5):
            started = time.perf_counter()
            text = httpx.get(f"{relay.url}/metrics", timeout=30).text
            scrapes.append((time.perf_counter() - started) * 1000)
        samples = [line for line in text.splitlines() if line and not line.startswith("#")]
        ours = [line for line in samples if line.startswith("dreamrelay_")]
        in_flight = sum(
            float(line.rsplit(" ", 1)[1]) for line in ours if line.startswith("dreamrelay_tasks_in_flight")
        )
    return {
        "tasks_in_flight": int(in_flight),
        "series": len(samples),
        "dreamrelay_series": len(ours),
        "bytes": len(text),
        "scrape_ms_median": round(statistics.median(scrapes), 1),
        "submitted_in_s": round(submitted_in, 1),
        "submits_refused": len(refused),
    }


def run(work: Path) -> dict[str, Any]:
    result = {"per_request": per_request(), "load_average": os.getloadavg()}
    result["at_in_flight"] = series_at_in_flight(work)
    return result


def table(result: dict[str, Any]) -> str:
    per = result["per_request"]
    rows = ["| Stack | CPU µs per request |", "|---|---|"]
    rows += [f"| {name} | {value:.2f} |" for name, value in per["cpu_us_per_request"].items()]
    at = result["at_in_flight"]
    up = per["upstream_call_us"]
    rows += [
        "",
        f"metrics middleware + request id: {per['metrics_us']:.2f} µs CPU per request; "
        f"one JSON log line: {per['log_line_us']:.2f} µs.",
        f"tracing off: an upstream call costs {up['bare']:.2f} µs bare, "
        f"{up['instrumented (tracing off)']:.2f} µs counted and timed (no span is made).",
        f"/metrics at {at['tasks_in_flight']} tasks in flight: {at['series']} series "
        f"({at['dreamrelay_series']} dreamrelay_*), {at['bytes']} bytes, "
        f"scrape {at['scrape_ms_median']} ms (median of 5, the store's gauges included).",
        f"load average {', '.join(f'{v:.1f}' for v in result['load_average'])}",
    ]
    return "\n".join(rows)


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory(prefix="dreamrelay-bench-obs-") as tmp:
        print(table(run(Path(tmp))))
