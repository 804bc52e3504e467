"""Issue 26's high transport items measured as the issue measured them: a hostile client against a real
`dreamrelay serve` (SQLite, worker and sandbox in process), and what everybody else sees meanwhile.

    python -m bench.hostile [--python PATH] [--attack multipart,waits,slow] [--hostile 10]
                            [--max-connections N] [--label NAME]

`--python` is the interpreter whose `dreamrelay` is served: /work/main/.venv/bin/python measures main's
code ("before"), the default this checkout's ("after"). Attacks (each on a fresh relay, `--hostile`
raw sockets at once, all from one address):
- multipart (#26.3): each posts a 100,000-part, 6 MB multipart body to POST /agents/v1/files;
- waits (#26.5): each posts POST /luma/generations_sync with the same Idempotency-Key, on a task that
  never finishes, and keeps waiting;
- slow (#26.6): anonymous bodies, Content-Length 100000 and one byte every 2 s, spread over the own
  submit, PUT /media/uploads/… and PUT /agents/v1/uploads/…

While an attack runs: the relay's RSS every 50 ms, a fresh-connection GET /healthz every 100 ms (its
slowest answer; a refused or reset probe counts as a failure), and, 3 s in, another customer's submit.
Printed per attack: idle and peak RSS, the slowest /healthz, probe failures, the other customer's answer,
the attackers' answers, and the connections held (attack sockets the server still has ESTABLISHED) at
22 s (as the issue counted) and at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench import servers

ATTACK_SECONDS = 25.0  # slow and waits attacks run this long
HELD_AT = 22.0  # connections held counted then (the figure)
OTHER_AT = 3.0  # another customer's submit, this long into the attack
PROBE_EVERY = 0.1
SAMPLE_EVERY = 0.05
PARTS = 100_000
DECLARED = 100_000  # the slow clients' Content-Length
TRICKLE_EVERY = 2.0


@dataclass
class Relay:
    process: servers.Process
    port: int
    data_dir: Path
    python: str
    key: str = ""
    other_key: str = ""

    @property
    def url(self) -> str:
        return self.process.url

    def cli(self, *args: str) -> str:
        env = {**os.environ, **self.process.env}
        done = subprocess.run(
            [self.python, "-m", "dreamrelay", *args], env=env, capture_output=True, text=True, timeout=120
        )
        if done.returncode:
            raise RuntimeError(f"dreamrelay {' '.join(args)}: {done.stderr}")
        return done.stdout.strip()


def start(python: str, work: Path, name: str, **settings: str) -> Relay:
    port = servers.free_port()
    data_dir = work / name
    env = servers.relay_env(data_dir, port, **settings)
    env.pop("DREAMRELAY_MAX_REQUESTS_PER_ADDRESS", None)  # the default cap is part of what is measured
    log_dir = work / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    with open(log_path, "ab") as log:
        popen = subprocess.Popen(
            [python, "-m", "dreamrelay", "serve"],
            cwd=work,
            env={**os.environ, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    process = servers.Process(
        name=name, popen=popen, url=f"http://{servers.HOST}:{port}", log_path=log_path, env=env
    )
    servers.wait_http(process, "/healthz", timeout=120)
    relay = Relay(process, port, data_dir, python)
    relay.key = (data_dir / "first_start_key").read_text().strip()
    relay.cli("accounts", "create", "other", "--balance", "100000")
    relay.other_key = relay.cli("keys", "create", "--account", "other").splitlines()[-1].strip()
    return relay


# ---- what everybody else sees ----------------------------------------------------------------------


@dataclass
class Watch:
    relay: Relay
    idle_kib: int = 0
    peak_kib: int = 0
    slowest_healthz: float = 0.0
    probes: int = 0
    probe_failures: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def __enter__(self) -> Watch:
        self.idle_kib = self.peak_kib = self.relay.process.memory_kib()["VmRSS"]
        for target in (self._sample, self._probe):
            thread = threading.Thread(target=target, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)

    def _sample(self) -> None:
        while not self._stop.wait(SAMPLE_EVERY):
            try:
                self.peak_kib = max(self.peak_kib, self.relay.process.memory_kib()["VmRSS"])
            except OSError:
                return

    def _probe(self) -> None:
        while not self._stop.wait(PROBE_EVERY):
            started = time.monotonic()
            try:
                ok = httpx.get(f"{self.relay.url}/healthz", timeout=60).status_code == 200
            except httpx.HTTPError:
                ok = False
            self.slowest_healthz = max(self.slowest_healthz, time.monotonic() - started)
            self.probes += 1
            self.probe_failures += 0 if ok else 1


def other_customer(relay: Relay, answer: list[str]) -> None:
    try:
        response = httpx.post(
            f"{relay.url}/luma/generations",
            json={"user_prompt": "another customer's task", "resolution": "540p"},
            headers={"Authorization": f"Bearer {relay.other_key}"},
            timeout=60,
        )
        answer.append(str(response.status_code))
    except httpx.HTTPError as exc:
        answer.append(type(exc).__name__)


def held(port: int, attackers: set[int]) -> int:
    """Attack sockets the server still holds: its ESTABLISHED end of a connection from one of them."""
    count = 0
    with open("/proc/net/tcp") as table:
        next(table)
        for line in table:
            fields = line.split()
            local, remote, state = fields[1], fields[2], fields[3]
            if (
                state == "01"
                and int(local.split(":")[1], 16) == port
                and int(remote.split(":")[1], 16) in attackers
            ):
                count += 1
    return count


# ---- the attacks -----------------------------------------------------------------------------------


class Attacker:
    """One raw connection: sends `head` and `body` (all at once, or a byte every TRICKLE_EVERY s), then
    reads whatever the server answers until it closes."""

    def __init__(self, port: int, head: bytes, body: bytes, trickle: bool) -> None:
        self.sock = socket.create_connection((servers.HOST, port), timeout=120)
        self.port = self.sock.getsockname()[1]
        self.head, self.body, self.trickle = head, body, trickle
        self.answer = b""
        self.closed_by_server = False
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.sock.sendall(self.head)
            if self.trickle:
                reader = threading.Thread(target=self._read, daemon=True)
                reader.start()
                while not self._stop.wait(TRICKLE_EVERY) and reader.is_alive():
                    self.sock.sendall(b"x")
                reader.join(timeout=1)
            else:
                self.sock.sendall(self.body)
                self._read()
        except OSError:
            self.closed_by_server = True

    def _read(self) -> None:
        try:
            while not self._stop.is_set():
                chunk = self.sock.recv(65536)
                if not chunk:
                    self.closed_by_server = True
                    return
                self.answer += chunk
        except TimeoutError:
            return
        except OSError:
            self.closed_by_server = True

    def status(self) -> str:
        if not self.answer:
            return "closed, no answer" if self.closed_by_server else "no answer"
        return self.answer.split(b" ", 2)[1].decode()

    def stop(self) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self.thread.join(timeout=5)


def request_head(method: str, target: str, length: int, **headers: str) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", f"Host: {servers.HOST}", f"Content-Length: {length}"]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def multipart_attackers(relay: Relay, count: int) -> list[Attacker]:
    boundary = "b"
    parts = "".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="field{i:06d}"\r\n\r\nx\r\n'
        for i in range(PARTS)
    )
    body = (parts + f"--{boundary}--\r\n").encode()
    head = request_head(
        "POST",
        "/agents/v1/files",
        len(body),
        Authorization=f"Bearer {relay.key}",
        Content_Type=f"multipart/form-data; boundary={boundary}",
    )
    return [Attacker(relay.port, head, body, trickle=False) for _ in range(count)]


def wait_attackers(relay: Relay, count: int) -> list[Attacker]:
    body = json.dumps({"user_prompt": "a task that never finishes", "resolution": "540p"}).encode()
    head = request_head(
        "POST",
        "/luma/generations_sync",
        len(body),
        Authorization=f"Bearer {relay.key}",
        Content_Type="application/json",
        Idempotency_Key="the-same-key-every-time",
    )
    return [Attacker(relay.port, head, body, trickle=False) for _ in range(count)]


def slow_attackers(relay: Relay, count: int) -> list[Attacker]:
    # A stranger's guesses: no key, a made-up signature, a made-up upload token.
    expires = int(time.time()) + 600
    query = urllib.parse.urlencode({"expires": expires, "signature": "0" * 64})
    targets = [
        ("POST", "/luma/generations", "application/json"),
        ("PUT", f"/media/uploads/{'0' * 32}.png?{query}", "image/png"),
        ("PUT", "/agents/v1/uploads/00000000-0000-0000-0000-000000000000?token=guess", "image/png"),
    ]
    made = []
    for n in range(count):
        method, target, content_type = targets[n % len(targets)]
        made.append(
            Attacker(
                relay.port,
                request_head(method, target, DECLARED, Content_Type=content_type),
                b"",
                trickle=True,
            )
        )
    return made


ATTACKS = {"multipart": multipart_attackers, "waits": wait_attackers, "slow": slow_attackers}


def run_attack(
    python: str, work: Path, attack: str, hostile: int, max_connections: int | None
) -> dict[str, Any]:
    settings = {"sandbox_queued_seconds": "100000"} if attack == "waits" else {}
    if max_connections is not None:
        settings["max_connections"] = str(max_connections)
    relay = start(python, work, f"relay-{attack}", **settings)
    try:
        warm = httpx.post(
            f"{relay.url}/luma/generations",
            json={"user_prompt": "warm-up", "resolution": "540p"},
            headers={"Authorization": f"Bearer {relay.key}"},
            timeout=60,
        )
        warm.raise_for_status()
        relay.process.wait_idle()
        other: list[str] = []
        with Watch(relay) as watch:
            started = time.monotonic()
            attackers = ATTACKS[attack](relay, hostile)
            ports = {a.port for a in attackers}
            time.sleep(max(0.0, OTHER_AT - (time.monotonic() - started)))
            other_customer(relay, other)
            held_at_22 = None
            while time.monotonic() - started < ATTACK_SECONDS:
                if held_at_22 is None and time.monotonic() - started >= HELD_AT:
                    held_at_22 = held(relay.port, ports)
                if attack == "multipart" and not any(a.thread.is_alive() for a in attackers):
                    break
                time.sleep(0.1)
            held_at_end = held(relay.port, ports)
            answered = time.monotonic() - started
            statuses = [a.status() for a in attackers]
            for attacker in attackers:
                attacker.stop()
            time.sleep(0.5)
        return {
            "attack": attack,
            "hostile": hostile,
            "max_connections": max_connections,
            "idle_mib": round(watch.idle_kib / 1024, 1),
            "peak_mib": round(watch.peak_kib / 1024, 1),
            "growth_mib": round((watch.peak_kib - watch.idle_kib) / 1024, 1),
            "slowest_healthz_s": round(watch.slowest_healthz, 3),
            "healthz_probes": watch.probes,
            "healthz_failures": watch.probe_failures,
            "other_customer": other[0] if other else "none",
            "attackers": {s: statuses.count(s) for s in sorted(set(statuses))},
            "held_at_22s": held_at_22,
            "held_at_end": held_at_end,
            "seconds": round(answered, 1),
        }
    finally:
        relay.process.stop()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--attack", default="multipart,waits,slow")
    parser.add_argument("--hostile", type=int, default=10)
    parser.add_argument("--max-connections", type=int, default=None)
    parser.add_argument("--label", default="")
    opts = parser.parse_args()
    label = opts.label or opts.python
    with tempfile.TemporaryDirectory(prefix="bench-hostile-") as tmp:
        for attack in opts.attack.split(","):
            result = run_attack(opts.python, Path(tmp), attack, opts.hostile, opts.max_connections)
            result["label"] = label
            print(json.dumps(result), flush=True)
            meets = (
                result["growth_mib"] < 100
                and result["slowest_healthz_s"] < 1.0
                and result["healthz_failures"] == 0
                and result["other_customer"] == "200"
            )
            print(
                f"[{label}] {attack}: {opts.hostile} hostile; RSS {result['idle_mib']} → "
                f"peak {result['peak_mib']} MiB "
                f"(+{result['growth_mib']}); slowest /healthz {result['slowest_healthz_s']} s "
                f"({result['healthz_failures']}/{result['healthz_probes']} failed); other customer "
                f"{result['other_customer']}; attackers {result['attackers']}; held at 22 s "
                f"{result['held_at_22s']}, at the end {result['held_at_end']}; targets "
                f"{'met' if meets else 'missed'}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
