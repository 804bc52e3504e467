"""`make image-test`: the built image, proven black-box with the engine `make image` used.

1. What the image is: non-root user, EXPOSE 8000, HEALTHCHECK, STOPSIGNAL SIGTERM, entry point `dreamrelay`,
   the data volume, OCI labels, no compiler, pip or tests, and at most 400 MB over its base.
2. The embedded default (SQLite, local media, sandbox) as the README runs it, on a free port: the first key
   read with `exec … cat`, a task submitted with `dreamrelay-client submit --download` gives an H.264 MP4
   whose links use DREAMRELAY_PUBLIC_URL; the process is not root; the health check reports healthy; a stop
   (SIGTERM) ends it within its grace period; a new container on the same volume still has the key and the
   task.
3. Scale-out: one API and two worker containers on the machine's PostgreSQL (a throwaway database) and
   Redis, one shared data volume (media); a worker killed with SIGKILL mid-task, the task completes on the
   other; `dreamrelay ledger verify` in a container passes.

Run with the project's venv (`make image-test`); prints the figures (run to /healthz ok, stop time, size).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import asyncpg
import av
import httpx
import redis

ROOT = Path(__file__).resolve().parents[1]
IMAGE = os.environ.get("IMAGE", "dreamrelay:latest")
BASE = "docker.io/library/debian:bookworm-slim"
MAX_OVER_BASE = 400 * 1000 * 1000
GRACE = 40  # seconds `stop` waits before SIGKILL; the image's own shutdown grace is 30 s
PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres", "database": "test"}
REDIS_URL = "redis://127.0.0.1:6379/0"
CLIENT = Path(sys.executable).parent / "dreamrelay-client"
RUN_ID = uuid.uuid4().hex[:8]


def engine() -> str:
    chosen = os.environ.get("ENGINE")
    if chosen:
        return chosen
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "info"], capture_output=True).returncode == 0:
        return "docker"
    os.environ["CONTAINERS_CONF"] = str(ROOT / "image" / "containers.conf")
    return "podman"


ENGINE = engine()


def sh(*args: str, check: bool = True, timeout: float = 120) -> str:
    done = subprocess.run([ENGINE, *args], capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise AssertionError(f"{ENGINE} {' '.join(args)} exited {done.returncode}: {done.stderr.strip()}")
    return done.stdout.strip()


def step(message: str) -> None:
    print(f"  {message}", flush=True)


def wait_for(what: str, probe: Callable[[], bool], timeout: float) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        try:
            if probe():
                return time.monotonic() - start
        except (httpx.HTTPError, AssertionError):
            pass
        time.sleep(0.2)
    raise AssertionError(f"{what}: not within {timeout:.0f} s")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def healthz(base: str) -> bool:
    return httpx.get(f"{base}/healthz", timeout=2).status_code == 200


@contextmanager
def cleanup(containers: list[str], volumes: list[str]) -> Iterator[None]:
    try:
        yield
    except BaseException:
        for name in containers:
            logs = subprocess.run([ENGINE, "logs", "--tail", "40", name], capture_output=True, text=True)
            print(f"--- last logs of {name} ---\n{logs.stdout}{logs.stderr}", file=sys.stderr)
        raise
    finally:
        for name in containers:
            subprocess.run([ENGINE, "rm", "--force", "--volumes", name], capture_output=True)
        for volume in volumes:
            subprocess.run([ENGINE, "volume", "rm", "--force", volume], capture_output=True)


def run(name: str, *args: str) -> str:
    """Starts a container (detached) and returns its name."""
    sh("run", "--detach", "--name", name, *args)
    return name


def is_h264_mp4(path: Path) -> bool:
    with av.open(str(path)) as container:
        video = container.streams.video[0].codec_context.name
        return container.format.name.startswith("mov") and video == "h264"


def submit(base: str, key: str, target: Path, prompt: str = "a paper boat") -> dict[str, Any]:
    """`dreamrelay-client submit --download` as a customer types it; returns the finished task."""
    done = subprocess.run(
        [str(CLIENT), "--json", "submit", prompt, "--download", str(target)],
        env={**os.environ, "DREAMRELAY_BASE_URL": base, "DREAMRELAY_API_KEY": key},
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, f"dreamrelay-client: {done.stderr.strip()}"
    task: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return task


# ---- 1. the image itself --------------------------------------------------------------------------------
def check_image() -> dict[str, Any]:
    print(f"1. the image {IMAGE}")
    info = json.loads(sh("image", "inspect", IMAGE))[0]
    config = info["Config"]
    user = config["User"]
    assert user and user.split(":")[0] not in ("0", "root"), f"the image runs as {user!r}"
    assert "8000/tcp" in config["ExposedPorts"], config.get("ExposedPorts")
    assert config["Entrypoint"] == ["dreamrelay"], config["Entrypoint"]
    assert config["Cmd"] == ["serve"], config["Cmd"]
    assert "/var/lib/dreamrelay" in (config.get("Volumes") or {}), config.get("Volumes")
    assert config.get("StopSignal") == "SIGTERM", config.get("StopSignal")
    healthcheck = config.get("Healthcheck") or info.get("Healthcheck") or {}  # docker's place, podman's
    assert "/healthz" in " ".join(healthcheck.get("Test", [])), healthcheck
    labels = config["Labels"]
    for label in ("source", "version", "licenses"):
        assert f"org.opencontainers.image.{label}" in labels, labels
    version = labels["org.opencontainers.image.version"]
    step(f"user {user}, entry point dreamrelay serve, healthcheck, SIGTERM, volume, labels (v{version})")
    size = int(info["Size"])
    base = int(json.loads(sh("image", "inspect", BASE))[0]["Size"])
    over = size - base
    assert over <= MAX_OVER_BASE, f"{over / 1e6:.0f} MB over the base"
    step(f"{size / 1e6:.0f} MB, {over / 1e6:.0f} MB over {BASE} ({base / 1e6:.0f} MB)")
    absent = sh(
        "run", "--rm", "--network", "host", "--entrypoint", "sh", IMAGE, "-c",
        "for tool in gcc cc pip pip3; do command -v $tool; done; ls /opt/dreamrelay/bin | grep -i pip;"
        " find /opt/dreamrelay /var/lib/dreamrelay /root \\( -name tests -o -name bench -o -name .cache \\)"
        " -print; ls -d /src 2>/dev/null; true",
    )  # fmt: skip
    assert absent == "", f"the runtime image holds build leftovers: {absent}"
    step("no compiler, pip, pip cache, tests or bench/")
    return {"size_mb": size / 1e6, "over_base_mb": over / 1e6}


# ---- 2. the embedded default ----------------------------------------------------------------------------
def check_embedded_default() -> dict[str, Any]:
    print("2. the embedded default, as the README runs it")
    figures: dict[str, Any] = {}
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    volume = f"drimg-{RUN_ID}-data"
    first, second = f"drimg-{RUN_ID}-one", f"drimg-{RUN_ID}-two"
    started = [first, second]
    network = publish(port)
    with cleanup(started, [volume]), tempfile.TemporaryDirectory() as tmp:
        args = [*network, "-e", f"DREAMRELAY_PUBLIC_URL={base}", "-v", f"{volume}:/var/lib/dreamrelay"]
        start = time.monotonic()
        run(first, *args, IMAGE)
        wait_for("/healthz", lambda: healthz(base), 120)
        figures["run_to_healthz_s"] = time.monotonic() - start
        step(f"run → /healthz ok in {figures['run_to_healthz_s']:.1f} s")
        banner = sh("logs", first) + sh("logs", first)  # podman 4.3 splits stdout and stderr oddly
        assert f"Links in answers (media, callbacks) use {base}" in banner, banner
        assert "docker exec <container> cat /var/lib/dreamrelay/first_start_key" in banner, banner
        key = sh("exec", first, "cat", "/var/lib/dreamrelay/first_start_key")
        assert key.startswith("dr-"), "the first key is not in the file the banner names"
        step("the banner names the public URL and `docker exec <container> cat …first_start_key`: key read")

        video = Path(tmp) / "boat.mp4"
        task = submit(base, key, video)
        assert task["state"] == "completed", task
        assert task["video"]["url"].startswith(f"{base}/media/"), task["video"]
        assert is_h264_mp4(video), "the download is not an H.264 MP4"
        size = video.stat().st_size
        step(f"dreamrelay-client submit --download: task {task['id']} completed, {size} bytes, H.264 MP4")

        uid = sh("exec", first, "sh", "-c", "awk '/^Uid:/ {print $2}' /proc/1/status")
        assert uid not in ("", "0"), f"PID 1 runs as uid {uid!r}"
        step(f"the server runs as uid {uid}")
        check_healthy(first)
        step("the health check reports healthy")

        start = time.monotonic()
        sh("stop", "--time", str(GRACE), first, timeout=GRACE + 30)
        figures["stop_s"] = time.monotonic() - start
        state = json.loads(sh("inspect", first))[0]["State"]
        assert figures["stop_s"] < GRACE and state["ExitCode"] == 0, (figures["stop_s"], state)
        step(f"stop (SIGTERM): exited 0 in {figures['stop_s']:.1f} s (grace {GRACE} s)")

        sh("rm", first)
        run(second, *args, IMAGE)
        wait_for("/healthz after replacement", lambda: healthz(base), 120)
        again = httpx.get(f"{base}/luma/generations/{task['id']}", headers={"Authorization": f"Bearer {key}"})
        assert again.status_code == 200 and again.json()["state"] == "completed", again.text
        media = httpx.get(again.json()["video"]["url"], timeout=30)
        assert media.status_code == 200 and media.content == video.read_bytes()
        assert "First start" not in sh("logs", second)
        step("a new container on the same volume: same key, same task, same video; no second first start")

        volume_args = ["--rm", "-v", f"{volume}:/var/lib/dreamrelay", IMAGE]
        assert "database is up to date" in sh("run", *volume_args, "migrate")
        sh("exec", second, "dreamrelay", "accounts", "create", "acme")
        accounts = json.loads(sh("run", *volume_args, "accounts", "list", "--json"))
        assert {"demo", "acme"} <= {account["name"] for account in accounts}, accounts
        assert "Run only the sandbox" in sh("run", "--rm", IMAGE, "sandbox", "--help")
        step("IMAGE migrate, IMAGE accounts list, IMAGE sandbox --help, exec … dreamrelay accounts create")
    return figures


def publish(port: int) -> list[str]:
    """`-p PORT:8000` as the README does, where the engine's own network works; else the host's network
    with DREAMRELAY_PORT (a sandbox kind where container networking is unavailable)."""
    probe = f"drimg-{RUN_ID}-net"
    mapping = f"127.0.0.1:{port}:8000"
    done = subprocess.run(
        [ENGINE, "run", "--rm", "--name", probe, "-p", mapping, "--entrypoint", "true", IMAGE],
        capture_output=True,
        text=True,
    )
    if done.returncode == 0:
        return ["-p", mapping]
    step(f"-p does not work with {ENGINE} here ({done.stderr.strip()[:120]}): host network, port {port}")
    return ["--network", "host", "-e", f"DREAMRELAY_PORT={port}"]


def check_healthy(name: str) -> None:
    if ENGINE == "podman":  # podman schedules checks with systemd timers; run one as the timer would
        sh("healthcheck", "run", name)
    wait_for(
        "healthy",
        lambda: json.loads(sh("inspect", name))[0]["State"]["Health"]["Status"] == "healthy",
        90 if ENGINE == "docker" else 10,
    )


# ---- 3. scale-out ---------------------------------------------------------------------------------------
async def pg(statement: str) -> None:
    conn = await asyncpg.connect(**PG, timeout=5)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


@contextmanager
def throwaway_services() -> Iterator[tuple[str, str]]:
    database = f"dreamrelay_image_{RUN_ID}"
    prefix = f"dreamrelay-image:{RUN_ID}:"
    asyncio.run(pg(f'CREATE DATABASE "{database}"'))
    client = redis.Redis.from_url(REDIS_URL)
    try:
        yield f"postgresql+asyncpg://{PG['user']}@{PG['host']}:{PG['port']}/{database}", prefix
    finally:
        asyncio.run(pg(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        for key in client.scan_iter(match=prefix + "*"):
            client.delete(key)
        client.close()


def check_scale_out() -> None:
    print("3. scale-out: one API and two worker containers on PostgreSQL and Redis, a shared volume")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    volume = f"drimg-{RUN_ID}-shared"
    api, one, two = f"drimg-{RUN_ID}-api", f"drimg-{RUN_ID}-worker1", f"drimg-{RUN_ID}-worker2"
    with throwaway_services() as (database_url, prefix), cleanup([api, one, two], [volume]):
        # The host's network reaches the machine's PostgreSQL and Redis on 127.0.0.1; each container keeps
        # its metrics of its own (PIDs repeat across containers) and shares the data directory: media, the
        # sandbox's key, the admin token.
        common = [
            "--network", "host", "-v", f"{volume}:/var/lib/dreamrelay",
            "-e", f"DREAMRELAY_DATABASE_URL={database_url}", "-e", f"DREAMRELAY_REDIS_URL={REDIS_URL}",
            "-e", f"DREAMRELAY_REDIS_PREFIX={prefix}", "-e", f"DREAMRELAY_PORT={port}",
            "-e", f"DREAMRELAY_PUBLIC_URL={base}", "-e", "DREAMRELAY_LEASE_SECONDS=6",
            "-e", "PROMETHEUS_MULTIPROC_DIR=/tmp/metrics",
        ]  # fmt: skip
        run(api, *common, IMAGE, "serve", "--no-worker")
        wait_for("the API's /healthz", lambda: healthz(base), 120)
        key = sh("exec", api, "cat", "/var/lib/dreamrelay/first_start_key")
        worker = [*common, "--no-healthcheck", IMAGE, "worker"]
        run(one, *worker)
        step("API and worker 1 up; a task submitted")
        headers = {"Authorization": f"Bearer {key}"}
        created = httpx.post(f"{base}/luma/generations", headers=headers, json={"user_prompt": "scaled out"})
        assert created.status_code == 200, created.text
        task_id = created.json()["id"]

        def state() -> str:
            got = httpx.get(f"{base}/luma/generations/{task_id}", headers=headers, timeout=5)
            assert got.status_code == 200, got.text
            value: str = got.json()["state"]
            return value

        wait_for("processing (worker 1 follows it)", lambda: state() == "processing", 60)
        run(two, *worker)
        time.sleep(1)
        assert state() == "processing"
        sh("kill", "--signal", "KILL", one)
        step("worker 2 up; worker 1 killed (SIGKILL) while the task was processing")
        waited = wait_for("completed by worker 2", lambda: state() == "completed", 120)
        step(f"the task completed {waited:.1f} s later (its lease expired, worker 2 took it)")
        with tempfile.TemporaryDirectory() as tmp:
            video = Path(tmp) / "scaled.mp4"
            task = submit(base, key, video, "after the kill")
            assert task["state"] == "completed" and is_h264_mp4(video)
        step("one more task through the API and worker 2: an H.264 MP4 from the shared volume")
        verified = sh("run", "--rm", *common, "--no-healthcheck", IMAGE, "ledger", "verify", "--json")
        step(f"dreamrelay ledger verify in a container: passes ({verified.replace(chr(10), ' ')[:80]})")


def main() -> None:
    print(f"make image-test: {IMAGE} with {ENGINE}")
    start = time.monotonic()
    figures = check_image()
    figures |= check_embedded_default()
    check_scale_out()
    figures["image_test_s"] = time.monotonic() - start
    print("figures: " + json.dumps({name: round(value, 1) for name, value in figures.items()}))


if __name__ == "__main__":
    main()
