"""Servers a fault test may stop, kill and restart: a private PostgreSQL cluster (Debian's pg_ctl) and a
private redis-server, each on a free loopback port in a temp dir of its own. Never the machine's own
servers on 5432 and 6379, which every other test shares.

Under CI=true a missing binary fails the test; elsewhere it is skipped with a message saying why.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import redis

from tests.support.ports import free_port
from tests.support.services import _unavailable

PG_BIN = Path(os.environ.get("DREAMRELAY_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def _as_postgres(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: as root, run it as the `postgres` user."""
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", "postgres", "--", *command]


@dataclass
class PrivatePostgres:
    """A cluster of our own: `stop()` and `start()` it at will (fast shutdown: sessions are cut)."""

    folder: Path
    port: int

    @property
    def data(self) -> Path:
        return self.folder / "data"

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/dreamrelay"

    def _ctl(self, *args: str) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.folder} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        command = [str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.folder / "log"), "-w"]
        subprocess.run(
            _as_postgres([*command, "-o", options, *args]), check=True, capture_output=True, timeout=60
        )

    def start(self) -> None:
        self._ctl("start")

    def stop(self) -> None:
        self._ctl("-m", "fast", "stop")

    def psql(self, statement: str, database: str = "postgres") -> None:
        where = ["-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", database]
        subprocess.run(
            [str(PG_BIN / "psql"), *where, "-q", "-c", statement],
            check=True,
            capture_output=True,
            timeout=30,
        )


@contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    """A fresh cluster with an empty `dreamrelay` database, trusted on loopback; removed afterwards."""
    if not (PG_BIN / "initdb").exists():
        _unavailable(f"PostgreSQL's initdb in {PG_BIN}", FileNotFoundError(str(PG_BIN / "initdb")))
    folder = Path(tempfile.mkdtemp(prefix="dreamrelay-pg-"))
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    cluster = PrivatePostgres(folder, free_port())
    try:
        subprocess.run(
            _as_postgres([str(PG_BIN / "initdb"), "-D", str(cluster.data), "-U", "postgres", "--auth=trust"]),
            check=True,
            capture_output=True,
            timeout=120,
        )
        cluster.start()
        cluster.psql("CREATE DATABASE dreamrelay")
        yield cluster
    finally:
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            cluster.stop()
        shutil.rmtree(folder, ignore_errors=True)


@dataclass
class PrivateRedis:
    """A redis-server of our own: `kill()` it (SIGKILL) and `start()` it again on the same port."""

    folder: Path
    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        command = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        with (self.folder / "log").open("ab") as log:
            self.process = subprocess.Popen(
                [*command, "--appendonly", "no", "--dir", str(self.folder)],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1)
        deadline = time.monotonic() + 20
        while True:
            try:
                client.ping()
                break
            except redis.RedisError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        client.close()

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=20)


@contextmanager
def private_redis() -> Iterator[PrivateRedis]:
    if not Path(REDIS_SERVER).exists():
        _unavailable("redis-server", FileNotFoundError(REDIS_SERVER))
    server = PrivateRedis(Path(tempfile.mkdtemp(prefix="dreamrelay-redis-")), free_port())
    try:
        server.start()
        yield server
    finally:
        if server.process is not None and server.process.poll() is None:
            server.kill()
        shutil.rmtree(server.folder, ignore_errors=True)
