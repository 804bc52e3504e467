"""Where the relay's time goes under load: py-spy samples the server process while wrk drives it.

The raw (collapsed) stacks are saved to bench/results/; a summary groups samples by the layer of the
innermost frame (self time) and by every layer on the stack (inclusive time)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path
from typing import Any

from bench.load import LoadGenerator, Target
from bench.options import Options
from bench.servers import Process

# First match wins, so the more specific paths come first.
LAYERS = (
    ("dreamrelay/", "dreamrelay (app code)"),
    ("fastapi/dependencies", "fastapi dependency injection"),
    ("fastapi/", "fastapi routing/responses"),
    ("starlette/middleware", "starlette middleware"),
    ("starlette/", "starlette (routing, requests, responses)"),
    ("uvicorn/", "uvicorn + httptools"),
    ("sqlalchemy/", "sqlalchemy"),
    ("aiosqlite/", "aiosqlite (thread hand-off)"),
    ("sqlite3/", "sqlite3 driver"),
    ("asyncpg/", "asyncpg"),
    ("pydantic", "pydantic"),
    ("anyio/", "anyio"),
    ("asyncio/", "asyncio"),
    ("threading.py", "threading"),
    ("concurrent/", "threading"),
)


def _py_spy() -> str | None:
    beside = Path(sys.executable).parent / "py-spy"
    if beside.exists():
        return str(beside)
    found = shutil.which("py-spy")
    if found:
        return found
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "py-spy"],
        capture_output=True,
        check=False,
    )
    return str(beside) if done.returncode == 0 and beside.exists() else None


def layer_of(frame: str) -> str:
    for needle, name in LAYERS:
        if needle in frame:
            return name
    return "other"


def summarise(raw: str) -> dict[str, Any]:
    """Layers by self and inclusive samples, hottest frames, and the split between threads."""
    self_layers: Counter[str] = Counter()
    incl_layers: Counter[str] = Counter()
    self_frames: Counter[str] = Counter()
    incl_app: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [f for f in stack.split(";") if "(" in f and not f.startswith(("process ", "thread "))]
        thread = next((f for f in stack.split(";") if f.startswith("thread ")), "thread (?): ?")
        thread = thread.split(": ", 1)[-1]
        if "_connection_worker_thread" in thread:
            thread = "aiosqlite connection threads"
        elif "AnyIO worker" in thread:
            thread = "anyio worker threads"
        if not frames:
            continue
        total += count
        threads[thread] += count
        self_layers[layer_of(frames[-1])] += count
        self_frames[frames[-1]] += count
        for layer in {layer_of(f) for f in frames}:
            incl_layers[layer] += count
        for frame in {f for f in frames if "dreamrelay/" in f}:
            incl_app[frame] += count

    def share(counter: Counter[str], n: int) -> list[dict[str, Any]]:
        return (
            [{"what": k, "pct": round(100 * v / total, 1)} for k, v in counter.most_common(n)]
            if total
            else []
        )

    return {
        "samples": total,
        "self_by_layer": share(self_layers, 20),
        "inclusive_by_layer": share(incl_layers, 20),
        "hottest_frames_self": share(self_frames, 25),
        "app_frames_inclusive": share(incl_app, 15),
        "threads": share(threads, 8),
    }


def record(
    relay: Process,
    load: LoadGenerator,
    target: Target,
    opts: Options,
    results: Path,
    name: str = "batch100",
    *,
    gil: bool = True,
) -> dict[str, Any]:
    """Profile `relay` for one run of `target` (the throughput of this run is not reported).

    With `gil` only samples of the thread holding the GIL count; py-spy then also counts the moments the
    event loop waits in epoll with the GIL released (the last holder is still the main thread), at the
    frame that awaited last. `gil=False` counts a thread only while the OS says it runs or could run.
    """
    py_spy = _py_spy()
    if py_spy is None:
        print("[profile] py-spy is not available; skipped", flush=True)
        return {"skipped": "py-spy not available"}
    results.mkdir(parents=True, exist_ok=True)
    raw_path = results / f"profile-{name}.txt"
    seconds = max(opts.seconds, 5.0)
    argv = [
        py_spy,
        "record",
        "--pid",
        str(relay.pid),
        "--duration",
        str(int(seconds)),
        "--rate",
        "200",
        "--threads",
        *(["--gil"] if gil else []),
        "--format",
        "raw",
        "--output",
        str(raw_path),
    ]
    spy = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    driver = threading.Thread(
        target=load.run,
        args=(relay.url, target),
        kwargs={"connections": opts.connections, "seconds": seconds + 1},
    )
    driver.start()
    output, _ = spy.communicate(timeout=seconds + 60)
    driver.join()
    if spy.returncode != 0 or not raw_path.exists():
        print(f"[profile] py-spy failed: {output.decode(errors='replace')[-500:]}", flush=True)
        return {"skipped": "py-spy failed", "output": output.decode(errors="replace")[-2000:]}
    summary = summarise(raw_path.read_text())
    summary["raw_stacks"] = str(raw_path)
    print(f"[profile] {summary['samples']} samples → {raw_path}", flush=True)
    for item in summary["self_by_layer"][:8]:
        print(f"    self {item['pct']:5.1f}%  {item['what']}", flush=True)
    return summary
