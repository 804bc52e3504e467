"""Issue 12 item 10 against a real `dreamrelay serve` process: slow request headers are cut off, open
connections are capped, and secrets stay out of captured output."""

from __future__ import annotations

import json
import socket
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from dreamrelay.settings import Settings
from tests.conftest import free_port
from tests.support.guesses import guess_until_refused
from tests.support.processes import Process, environment, stopped_at_exit, wait_healthy

HEADER_SECONDS = 1.0
MAX_CONNECTIONS = 40
SLOW_SOCKETS = 30


@dataclass
class Served:
    url: str
    port: int
    data_dir: Path
    process: Process


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    data_dir = tmp_path_factory.mktemp("serve")
    port = free_port()
    settings = Settings(
        data_dir=data_dir,
        port=port,
        header_timeout_seconds=HEADER_SECONDS,
        max_connections=MAX_CONNECTIONS,
        sandbox_queued_seconds=0,
        sandbox_dreaming_seconds=0,
    )
    process = Process(("serve",), environment(settings), data_dir / "serve.log")
    with stopped_at_exit([process]):
        process.start()
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url, process)
        yield Served(url, port, data_dir, process)
        process.terminate()


def slow_socket(port: int) -> socket.socket:
    """A client that starts a request and never finishes its headers."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
    return sock


def closed_by_server(sock: socket.socket, timeout: float) -> bool:
    sock.settimeout(timeout)
    try:
        return sock.recv(1024) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def test_slow_header_connections_are_closed_within_the_bound(served: Served) -> None:
    sockets = [slow_socket(served.port) for _ in range(SLOW_SOCKETS)]
    opened = time.monotonic()
    try:
        # Meanwhile the server answers everybody else.
        assert httpx.get(f"{served.url}/healthz", timeout=5).status_code == 200
        for sock in sockets:
            sock.sendall(b"still-typing")  # bytes that are not the end of the headers extend nothing
        closed_after = []
        for sock in sockets:
            assert closed_by_server(sock, timeout=HEADER_SECONDS + 10)
            closed_after.append(time.monotonic() - opened)
    finally:
        for sock in sockets:
            sock.close()
    # The measured figure: every slow socket was dropped about one header timeout after it opened.
    assert max(closed_after) < HEADER_SECONDS + 5, closed_after


def test_connections_beyond_the_cap_are_closed_at_once(served: Served) -> None:
    idle = [socket.create_connection(("127.0.0.1", served.port), timeout=10) for _ in range(MAX_CONNECTIONS)]
    try:
        time.sleep(0.2)  # the server has accepted them all
        extra = socket.create_connection(("127.0.0.1", served.port), timeout=10)
        with extra:
            assert closed_by_server(extra, timeout=2)
    finally:
        for sock in idle:
            sock.close()
    deadline = time.monotonic() + 10
    while True:  # the held ones are gone: service is back
        try:
            if httpx.get(f"{served.url}/healthz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_endless_headers_get_431_and_the_connection_closes(served: Served) -> None:
    with socket.create_connection(("127.0.0.1", served.port), timeout=10) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        answer = b""
        try:
            for _ in range(100):
                sock.sendall(b"X-Filler: " + b"a" * 1000 + b"\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        sock.settimeout(5)
        try:
            while chunk := sock.recv(4096):
                answer += chunk
        except ConnectionResetError:
            pass
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    assert b'"code": "headers_too_large"' in answer


def test_secrets_are_not_printed_when_stdout_is_not_a_terminal(served: Served) -> None:
    output = served.process.log()
    key_file = served.data_dir / "first_start_key"
    token_file = served.data_dir / "admin_token"
    key, token = key_file.read_text().strip(), token_file.read_text().strip()
    assert key.startswith("dr-") and token.startswith("dra-")
    assert key not in output and token not in output
    assert str(key_file) in output and str(token_file) in output
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    # The file's key is the real one.
    answer = httpx.get(f"{served.url}/luma/generations/unknown", headers={"Authorization": f"Bearer {key}"})
    assert answer.status_code == 404


def test_large_bodies_are_not_mistaken_for_large_headers(served: Served) -> None:
    """Headers and the start of a big body arrive in one read: only unfinished headers count."""
    key = (served.data_dir / "first_start_key").read_text().strip()
    body = {"user_prompt": "a" * 300_000}
    with httpx.Client(base_url=served.url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:
        for _ in range(3):  # on one kept-alive connection, so later requests are measured too
            answer = client.post("/luma/generations", json=body)
            assert answer.status_code == 400, answer.text[:200]
            assert "user_prompt" in answer.json()["error"]["message"]


def test_no_peer_chooses_its_address_by_a_header(served: Served) -> None:
    """uvicorn believes X-Forwarded-For from 127.0.0.1 by default; `serve` does not (no trusted proxy is
    configured): a local guesser spreading its guesses over made-up addresses is still one address."""

    def guess(i: int) -> int:
        return httpx.get(
            f"{served.url}/admin/accounts",
            headers={"X-Forwarded-For": f"198.51.100.{i}", "Authorization": f"Bearer dra-guess-{i}"},
            timeout=10,
        ).status_code

    # Were each made-up address believed, each guess would start a full bucket and no 429 would come.
    guesses = guess_until_refused(guess)
    assert guesses.statuses[0] == 401 and guesses.ran_dry(), guesses


def test_the_start_banner_is_a_json_line_when_stdout_is_not_a_terminal(served: Served) -> None:
    """Off a terminal every line of `serve`'s output is JSON: the banner is one log line among them."""
    lines = [line for line in served.process.log().splitlines() if line.strip()]
    not_json = []
    for line in lines:
        try:
            json.loads(line)
        except ValueError:
            not_json.append(line)
    assert not_json == []
    banners = [json.loads(line) for line in lines if "DreamRelay is listening on" in line]
    assert len(banners) == 1 and banners[0]["logger"] == "dreamrelay.serve"
    assert "Admin token (for /admin and the console;" in banners[0]["message"]
