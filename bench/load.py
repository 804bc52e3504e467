"""Load generation: wrk (installed with apt-get when missing) or, failing that, a Python generator.

A `Target` is one request shape (method, path, headers, one or several bodies sent in turn). Every
run lasts a fixed time with a fixed number of connections and reports requests/s, latency
percentiles and how many answers were not 200.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

MARK = "BENCHJSON "


@dataclass(frozen=True)
class Target:
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    bodies: tuple[bytes, ...] = ()
    # Authorization values taken in turn, one per request (many customers' keys); empty: the header's own
    authorizations: tuple[str, ...] = ()
    # Paths taken in turn, one per request (many tasks' gets); empty: `path` every time
    paths: tuple[str, ...] = ()


@dataclass
class Result:
    requests: int
    seconds: float
    non_200: int
    errors: int  # connect/read/write/timeout errors
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    bytes_read: int
    tool: str
    server_cpu_seconds: float = 0.0  # CPU the server process used during the run, when measured

    @property
    def server_cpu_ms_per_request(self) -> float:
        return 1000 * self.server_cpu_seconds / self.requests if self.requests else 0.0

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.__dict__,
            "rps": round(self.rps, 1),
            "server_cpu_ms_per_request": round(self.server_cpu_ms_per_request, 3),
        }


def ensure_wrk() -> str | None:
    """Path of wrk; installs the Debian package when missing. None when that is impossible."""
    found = shutil.which("wrk")
    if found:
        return found
    for argv in (
        ["apt-get", "install", "-y", "wrk"],
        ["apt-get", "update"],
        ["apt-get", "install", "-y", "wrk"],
    ):
        try:
            subprocess.run(argv, check=False, capture_output=True, timeout=300)
        except (OSError, subprocess.TimeoutExpired):
            return None
        found = shutil.which("wrk")
        if found:
            return found
    return None


def _lua_string(data: bytes) -> str:
    """A Lua long-bracket-free quoted string with every byte escaped as \\ddd where needed."""
    out = []
    for byte in data:
        char = chr(byte)
        if char.isalnum() or char in " -_.:,{}[]/":
            out.append(char)
        else:
            out.append(f"\\{byte:03d}")
    return '"' + "".join(out) + '"'


def _wrk_script(target: Target) -> str:
    headers = "\n".join(
        f"wrk.headers[{_lua_string(k.encode())}] = {_lua_string(v.encode())}"
        for k, v in target.headers.items()
    )
    bodies = ",\n".join(_lua_string(b) for b in target.bodies)
    keys = ",\n".join(_lua_string(k.encode()) for k in target.authorizations)
    paths = ",\n".join(_lua_string(p.encode()) for p in target.paths or (target.path,))
    return f"""
wrk.method = "{target.method}"
{headers}
local bodies = {{ {bodies} }}
local keys = {{ {keys} }}
local paths = {{ {paths} }}
local threads = {{}}
function setup(thread) table.insert(threads, thread) end
function init(args) non200 = 0; turn = 0; key_turn = 0; path_turn = 0 end
function request()
  if #keys > 0 then
    key_turn = key_turn % #keys + 1
    wrk.headers["Authorization"] = keys[key_turn]
  end
  path_turn = path_turn % #paths + 1
  if #bodies == 0 then return wrk.format(nil, paths[path_turn]) end
  turn = turn % #bodies + 1
  return wrk.format(nil, paths[path_turn], nil, bodies[turn])
end
function response(status, headers, body) if status ~= 200 then non200 = non200 + 1 end end
function done(summary, latency, requests)
  local bad = 0
  for _, t in ipairs(threads) do bad = bad + t:get("non200") end
  local e = summary.errors
  io.write(string.format(
    '{MARK}{{"requests":%d,"duration_us":%d,"bytes":%d,"non200":%d,"errors":%d,'
    .. '"p50":%d,"p90":%d,"p99":%d,"mean":%.1f}}\\n',
    summary.requests, summary.duration, summary.bytes, bad,
    e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean))
end
"""


# Two wrk threads: one thread caps a bare ASGI app at about half of what it can answer on this machine.
WRK_THREADS = int(os.environ.get("BENCH_WRK_THREADS", "2"))


def run_wrk(wrk: str, base_url: str, target: Target, *, connections: int, seconds: float) -> Result:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(_wrk_script(target))
    try:
        argv = [
            wrk,
            f"-t{min(WRK_THREADS, connections)}",
            f"-c{connections}",
            f"-d{max(round(seconds), 1)}s",
            "--timeout",
            "30s",
            "-s",
            script.name,
            base_url + target.path,
        ]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=False)
    finally:
        Path(script.name).unlink(missing_ok=True)
    line = next((x for x in done.stdout.splitlines() if x.startswith(MARK)), None)
    if line is None:
        raise RuntimeError(f"wrk gave no summary (exit {done.returncode}):\n{done.stdout}\n{done.stderr}")
    data = json.loads(line[len(MARK) :])
    return Result(
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        non_200=data["non200"],
        errors=data["errors"],
        p50_ms=data["p50"] / 1000,
        p90_ms=data["p90"] / 1000,
        p99_ms=data["p99"] / 1000,
        mean_ms=data["mean"] / 1000,
        bytes_read=data["bytes"],
        tool="wrk",
    )


async def _python_load(base_url: str, target: Target, connections: int, seconds: float) -> Result:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    errors = 0
    received = 0
    connector = aiohttp.TCPConnector(limit=connections, force_close=False)
    deadline = time.perf_counter() + seconds
    bodies = target.bodies or (None,)
    paths = target.paths or (target.path,)

    async def worker(session: aiohttp.ClientSession, offset: int) -> None:
        nonlocal errors, received
        turn = offset
        while time.perf_counter() < deadline:
            body = bodies[turn % len(bodies)]
            headers = target.headers
            if keys := target.authorizations:
                headers = {**headers, "Authorization": keys[turn % len(keys)]}
            turn += 1
            started = time.perf_counter()
            try:
                async with session.request(
                    target.method, base_url + paths[turn % len(paths)], data=body, headers=headers
                ) as response:
                    received += len(await response.read())
                    statuses[response.status] = statuses.get(response.status, 0) + 1
            except (aiohttp.ClientError, TimeoutError):
                errors += 1
                continue
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(worker(session, i) for i in range(connections)))
    elapsed = time.perf_counter() - started
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(int(len(latencies) * p / 100), len(latencies) - 1)] * 1000 if latencies else 0.0

    return Result(
        requests=len(latencies),
        seconds=elapsed,
        non_200=sum(n for status, n in statuses.items() if status != 200),
        errors=errors,
        p50_ms=pct(50),
        p90_ms=pct(90),
        p99_ms=pct(99),
        mean_ms=statistics.fmean(latencies) * 1000 if latencies else 0.0,
        bytes_read=received,
        tool="python-aiohttp",
    )


class LoadGenerator:
    """wrk when available, else the Python generator (said in the output: it is slower than wrk)."""

    def __init__(self, prefer_python: bool = False) -> None:
        self.wrk = None if prefer_python else ensure_wrk()

    @property
    def name(self) -> str:
        return f"wrk {WRK_THREADS} threads" if self.wrk else "python aiohttp (wrk unavailable)"

    def run(self, base_url: str, target: Target, *, connections: int, seconds: float) -> Result:
        if self.wrk:
            return run_wrk(self.wrk, base_url, target, connections=connections, seconds=seconds)
        return asyncio.run(_python_load(base_url, target, connections, seconds))
