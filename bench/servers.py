"""Start and stop the processes a benchmark talks to: DreamRelay, the bare ASGI baseline, the sandbox
upstream, the counting proxy and the callback receiver. Each runs as its own subprocess on a free
loopback port; only the processes started here are ever stopped, by their own pid."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
SANDBOX_KEY = "bench-sandbox-key"  # a standalone `dreamrelay sandbox` gets this key from its environment

# What every relay under benchmark gets: limits high enough that no 429 distorts a figure.
HIGH_LIMITS = {
    "DREAMRELAY_RATE_LIMIT_RPM": "1000000000",
    "DREAMRELAY_RATE_LIMIT_BATCH_RPM": "1000000000",
    "DREAMRELAY_RATE_LIMIT_IN_FLIGHT": "1000000000",
    "DREAMRELAY_MAX_REQUESTS_PER_ADDRESS": "1000000",  # every load generator is one loopback address
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@dataclass
class Process:
    """A subprocess we started, its base URL and the file its output goes to."""

    name: str
    popen: subprocess.Popen[bytes]
    url: str
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def memory_kib(self) -> dict[str, int]:
        """VmRSS and VmHWM (peak RSS) of the process, from /proc/<pid>/status, in KiB."""
        found: dict[str, int] = {}
        with open(f"/proc/{self.pid}/status") as status:
            for line in status:
                name, _, value = line.partition(":")
                if name in ("VmRSS", "VmHWM"):
                    found[name] = int(value.split()[0])
        return found

    def cpu_seconds(self) -> float:
        """User + system CPU of the process and every process under it (`serve --workers N` forks),
        all threads, so far, from /proc/<pid>/stat."""
        return sum(proc_cpu(pid) for pid in _tree(self.pid))

    def wait_idle(self, below: float = 0.05, window: float = 0.5, timeout: float = 180.0) -> float:
        """Wait until the process uses less than `below` of a core over `window` s; seconds waited."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            before = self.cpu_seconds()
            time.sleep(window)
            if (self.cpu_seconds() - before) / window < below:
                break
        return time.monotonic() - started

    def stop(self, timeout: float = 20.0) -> None:
        if not self.alive():
            return
        self.popen.send_signal(signal.SIGTERM)  # uvicorn shuts down gracefully (lifespan, worker)
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(timeout=10)


def _tree(pid: int) -> list[int]:
    """`pid` and its living descendants, from /proc/<pid>/task/<tid>/children."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        try:
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as children:
                    todo.extend(int(c) for c in children.read().split())
        except OSError:
            continue
    return found


def proc_cpu(pid: int) -> float:
    """utime + stime of one process (all its threads; children that were reaped are not counted)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _spawn(name: str, argv: list[str], env_extra: dict[str, str], log_dir: Path, url: str) -> Process:
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    env = {**os.environ, **env_extra}
    env.setdefault("PYTHONPATH", str(REPO))
    with open(log_path, "ab") as log:
        popen = subprocess.Popen(argv, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    return Process(name=name, popen=popen, url=url, log_path=log_path, env=env_extra)


def wait_http(
    process: Process,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    timeout: float = 60.0,
) -> None:
    """Poll `path` until it answers 200; fail early (with the log) if the process dies."""
    deadline = time.monotonic() + timeout
    request = urllib.request.Request(process.url + path, headers=headers or {})
    while True:
        if not process.alive():
            raise RuntimeError(f"{process.name} exited early:\n{process.log_tail()}")
        try:
            with urllib.request.urlopen(request, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if time.monotonic() > deadline:
            process.stop()
            raise TimeoutError(
                f"{process.name} did not answer {path} within {timeout} s:\n{process.log_tail()}"
            )
        time.sleep(0.05)


def relay_env(data_dir: Path, port: int, **settings: str) -> dict[str, str]:
    """DREAMRELAY_* for a relay under benchmark (settings given as lower-case names without prefix)."""
    env = {
        "DREAMRELAY_DATA_DIR": str(data_dir),
        "DREAMRELAY_HOST": HOST,
        "DREAMRELAY_PORT": str(port),
        "DREAMRELAY_SANDBOX_QUEUED_SECONDS": "0",
        "DREAMRELAY_SANDBOX_DREAMING_SECONDS": "0",
        "DREAMRELAY_SANDBOX_KEY": SANDBOX_KEY,  # the same for a relay and a separate sandbox
        **HIGH_LIMITS,
    }
    env.update({f"DREAMRELAY_{name.upper()}": value for name, value in settings.items()})
    return env


def start_relay(env: dict[str, str], log_dir: Path, name: str = "relay", workers: int = 1) -> Process:
    """`python -m dreamrelay serve [--workers N]` (migrations, worker, sandbox unless DREAMRELAY_SANDBOX_URL
    points at a separate one, uvicorn) with `env`."""
    url = f"http://{HOST}:{env['DREAMRELAY_PORT']}"
    argv = [sys.executable, "-m", "dreamrelay", "serve"] + (
        ["--workers", str(workers)] if workers > 1 else []
    )
    process = _spawn(name, argv, env, log_dir, url)
    # uvicorn restarts a worker that misses its health pings while the shared cores are busy.
    wait_http(process, "/healthz", timeout=240.0 * workers)
    return process


def start_bare(routes_file: Path, log_dir: Path, workers: int = 1) -> Process:
    """The physical-limit baseline: bench/bare.py on the same uvicorn settings as `dreamrelay serve`
    (`--workers N` as `serve --workers N` runs)."""
    port = free_port()
    argv = [sys.executable, "-m", "bench.bare", "--port", str(port), "--routes", str(routes_file)]
    argv += ["--workers", str(workers)] if workers > 1 else []
    name = "bare" if workers == 1 else f"bare-workers-{workers}"
    process = _spawn(name, argv, {}, log_dir, f"http://{HOST}:{port}")
    wait_http(process, "/healthz")
    return process


def start_sandbox(data_dir: Path, queued: float, dreaming: float, log_dir: Path) -> Process:
    """`dreamrelay sandbox`: the official-API upstream alone, at /dream-machine/v1."""
    port = free_port()
    env = {
        "DREAMRELAY_DATA_DIR": str(data_dir),
        "DREAMRELAY_SANDBOX_QUEUED_SECONDS": str(queued),
        "DREAMRELAY_SANDBOX_DREAMING_SECONDS": str(dreaming),
        "DREAMRELAY_SANDBOX_KEY": SANDBOX_KEY,
        "DREAMRELAY_ALLOW_PRIVATE_URLS": "127.0.0.0/8",  # its callbacks go to the relay on loopback
    }
    argv = [sys.executable, "-m", "dreamrelay", "sandbox", "--host", HOST, "--port", str(port)]
    process = _spawn("sandbox", argv, env, log_dir, f"http://{HOST}:{port}")
    # A minute was not always enough on 2 cores shared at load averages of 30.
    wait_http(
        process, "/dream-machine/v1/ping", headers={"Authorization": f"Bearer {SANDBOX_KEY}"}, timeout=180.0
    )
    return process


def start_proxy(target: str, log_dir: Path) -> Process:
    """bench/proxy.py: forwards everything to `target` and counts the requests by kind."""
    port = free_port()
    argv = [sys.executable, "-m", "bench.proxy", "--port", str(port), "--target", target]
    process = _spawn("proxy", argv, {}, log_dir, f"http://{HOST}:{port}")
    wait_http(process, "/__bench/counts")
    return process


def start_receiver(log_dir: Path) -> Process:
    """bench/receiver.py: a callback receiver that answers at once and notes every arrival."""
    port = free_port()
    argv = [sys.executable, "-m", "bench.receiver", "--port", str(port)]
    process = _spawn("receiver", argv, {}, log_dir, f"http://{HOST}:{port}")
    wait_http(process, "/__bench/arrivals")
    return process
