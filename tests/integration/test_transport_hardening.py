"""Issue 26 items 3, 5, 6 and 13 and issue 29 rough edge 3, each attack reproduced on a real loopback
server (served with the connection guard, as `dreamrelay serve` does):

- a multipart body of 100,000 tiny parts is refused (400), and /healthz answers while it arrives;
- slow bodies (Content-Length 100000, a byte now and then) on the own submit and both upload PUTs get a
  408 and a closed socket; a stranger's is refused before its body is read; one address cannot hold
  more than its share of requests (429);
- synchronous waits are capped per key and per account (429, nothing submitted), a replay joins the
  wait already polling its task, and a wait ends when its client hangs up (the task goes on and is
  charged once);
- a client that hangs up mid-body or mid-wait leaves one quiet log line, no traceback.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from dreamrelay.runtime import Runtime
from tests.conftest import Relay, make_settings, start_relay
from tests.integration.test_luma_lifecycle import wait_for
from tests.integration.test_money import balance_and_ledger
from tests.support.media import picture

pytestmark = pytest.mark.both_stores

DECLARED = 100_000  # the Content-Length the slow clients announce
BODY_SECONDS = 1.0  # the body timeout the relays here run with (the default is 10 s)
NEVER = 3600.0  # sandbox dreaming seconds of a task that does not finish during a test


def runtime(relay: Relay) -> Runtime:
    assert relay.app is not None
    rt = relay.app.state.runtime
    assert isinstance(rt, Runtime)
    return rt


def eventually(condition: Callable[[], bool], what: str, within: float = 60.0) -> None:
    """Wait (bounded, generous: the machine is shared) until `condition` holds."""
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.05)


def connect(relay: Relay) -> socket.socket:
    return socket.create_connection(("127.0.0.1", relay.settings.port), timeout=30)


def head(method: str, target: str, *, key: str | None = None, length: int = DECLARED, **extra: str) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {length}"]
    lines += [f"Authorization: Bearer {key}"] if key else []
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in extra.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def read_until_closed(sock: socket.socket, within: float = 60.0) -> bytes:
    """Everything the server sends until it closes the connection (fails if it never does)."""
    sock.settimeout(within)
    answer = b""
    try:
        while chunk := sock.recv(65536):
            answer += chunk
    except ConnectionResetError:
        pass
    return answer


def status_and_json(answer: bytes) -> tuple[int, dict[str, object]]:
    head_part, _, body = answer.partition(b"\r\n\r\n")
    status = int(head_part.split(b" ", 2)[1])
    length = next(
        int(line.split(b":", 1)[1])
        for line in head_part.split(b"\r\n")
        if line.lower().startswith(b"content-length")
    )
    return status, json.loads(body[:length])


class Trickle:
    """A slow client: after the request head, one byte of body every `every` seconds, on a thread."""

    def __init__(self, sock: socket.socket, every: float = 0.5) -> None:
        self.sock = sock
        self.every = every
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.wait(self.every):
            try:
                self.sock.sendall(b"{")
            except OSError:
                return

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=10)
        self.sock.close()


def healthy(relay: Relay) -> bool:
    return httpx.get(f"{relay.url}/healthz", timeout=30).status_code == 200


# ---- item 6: slow bodies -------------------------------------------------------------------------


@pytest.fixture
def slow_relay(tmp_path: Path) -> Iterator[Relay]:
    settings = make_settings(tmp_path, body_timeout_seconds=BODY_SECONDS, body_min_rate=100)
    with start_relay(settings) as relay:
        yield relay


def _upload_urls(relay: Relay) -> tuple[str, str]:
    """A signed own-format upload URL and a presigned Agents Files upload URL (paths with queries)."""
    with relay.client() as client:
        own = client.post("/luma/generations/file_upload", json={"filename": "a.png"})
        assert own.status_code == 200, own.text
        agents = client.post(
            "/agents/v1/files", json={"mime_type": "image/png", "size_bytes": DECLARED, "purpose": "input"}
        )
        assert agents.status_code == 201, agents.text
    own_url, agents_url = urlsplit(own.json()["presigned_url"]), urlsplit(agents.json()["upload"]["url"])
    return f"{own_url.path}?{own_url.query}", f"{agents_url.path}?{agents_url.query}"


def test_slow_bodies_get_408_and_the_connection_is_closed(slow_relay: Relay) -> None:
    relay = slow_relay
    own_upload, agents_upload = _upload_urls(relay)
    requests = {
        "own submit": head("POST", "/luma/generations", key=relay.key, Content_Type="application/json"),
        "own upload": head("PUT", own_upload, Content_Type="image/png"),
        "agents upload": head("PUT", agents_upload, Content_Type="image/png"),
    }
    slow = {name: Trickle(connect(relay)) for name in requests}
    try:
        for name, request in requests.items():
            slow[name].sock.sendall(request)
        assert healthy(relay)  # answered while the attack runs
        answers = {
            name: read_until_closed(client.sock) for name, client in slow.items()
        }  # closed by the server
        assert healthy(relay)
    finally:
        for client in slow.values():
            client.close()
    status, body = status_and_json(answers["own submit"])
    assert status == 408 and body["error"]["code"] == "request_timeout"  # type: ignore[index]
    status, body = status_and_json(answers["own upload"])
    assert status == 408 and body["error"]["code"] == "request_timeout"  # type: ignore[index]
    status, body = status_and_json(answers["agents upload"])
    assert status == 408 and "request body" in str(body["detail"])  # the Agents API's {"detail"}
    # Nothing was stored by the cut-off upload: the presigned file is still waiting for its bytes.
    with relay.client() as api:
        files = api.get("/agents/v1/files").json()["data"]
        assert [file["state"] for file in files] == ["pending"]


def test_a_strangers_body_is_refused_before_it_is_read(slow_relay: Relay) -> None:
    relay = slow_relay
    own_upload, agents_upload = _upload_urls(relay)
    forged_own = re.sub(r"signature=[0-9a-f]+", "signature=" + "0" * 64, own_upload)
    forged_agents = agents_upload.replace("token=", "token=x")
    cases = [
        (head("POST", "/luma/generations", Content_Type="application/json"), 401),
        (head("POST", "/luma/generations", key="dr-not-a-key", Content_Type="application/json"), 401),
        (head("POST", "/luma/tasks", key="dr-not-a-key", Content_Type="application/json"), 401),
        (head("PUT", forged_own, Content_Type="image/png"), 403),
        (head("PUT", forged_agents, Content_Type="image/png"), 404),
    ]
    for request, expected in cases:
        with connect(relay) as sock:
            sock.sendall(request)  # the head only: not one byte of the announced body
            sock.settimeout(30)
            first = sock.recv(65536)  # the refusal comes without the body
            assert int(first.split(b" ", 2)[1]) == expected, first[:300]
            assert read_until_closed(sock) is not None  # and the server ends the connection in time


def test_one_address_cannot_hold_more_than_its_share(tmp_path: Path) -> None:
    # Held bodies that never stall (no minimum rate here), so they stay held while the test looks.
    settings = make_settings(tmp_path, body_min_rate=0, max_requests_per_address=3)
    with start_relay(settings) as relay:
        held = [Trickle(connect(relay), every=0.2) for _ in range(3)]
        try:
            for client in held:
                client.sock.sendall(head("POST", "/luma/generations", key=relay.key))
            eventually(lambda: sum(relay.app.front.open.values()) == 3, "three requests held")  # type: ignore[union-attr]
            refused = httpx.get(f"{relay.url}/luma/generations/{'0' * 8}-0000-0000-0000-{'0' * 12}")
            assert refused.status_code == 429
            assert refused.json()["error"]["code"] == "too_many_connections"
            assert refused.headers["connection"] == "close"
        finally:
            for client in held:
                client.close()
        eventually(lambda: healthy(relay), "the address served again once its requests ended")


# ---- item 3: multipart ---------------------------------------------------------------------------


@pytest.mark.sqlite_only
def test_a_multipart_body_of_100000_tiny_parts_is_refused_while_healthz_answers(relay: Relay) -> None:
    boundary = "b"
    parts = "".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="field{i:06d}"\r\n\r\nx\r\n'
        for i in range(100_000)
    )
    body = (parts + f"--{boundary}--\r\n").encode()
    assert len(body) > 6_000_000  # as in the issue: 100,000 parts, 6 MB
    answer: list[httpx.Response] = []
    upload = threading.Thread(
        target=lambda: answer.append(
            httpx.post(
                f"{relay.url}/agents/v1/files",
                content=body,
                headers={
                    "Authorization": f"Bearer {relay.key}",
                    "Content-Type": f"multipart/form-data; boundary={boundary}",
                },
                timeout=120,
            )
        )
    )
    upload.start()
    while upload.is_alive():
        assert healthy(relay)
        upload.join(timeout=0.05)
    assert answer[0].status_code == 400, answer[0].text
    assert "Too many fields" in answer[0].json()["detail"]
    # Two files is one too many, too.
    with relay.client() as client:
        png = picture(64, 64)
        two = client.post("/agents/v1/files", files=[("file", ("a.png", png, "image/png"))] * 2)
        assert two.status_code == 400 and "Too many files" in two.json()["detail"]
        one = client.post(
            "/agents/v1/files", files={"file": ("a.png", png, "image/png")}, data={"purpose": "input"}
        )
        assert one.status_code == 201, one.text
        assert one.json()["file"]["filename"] == "a.png"


# ---- items 5 and 13: synchronous waits -----------------------------------------------------------


def _sync_in_background(
    relay: Relay, key: str, path: str, body: dict[str, object], **headers: str
) -> threading.Thread:
    def run() -> None:
        try:
            with relay.client(key) as client:
                client.post(path, json=body, headers=headers, timeout=10)
        except httpx.HTTPError:
            pass  # given up by this client: the wait is still held on the server until then

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_waits_are_capped_per_key_and_per_account_and_replays_join(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path, sandbox_dreaming_seconds=NEVER, sync_waits_per_key=2, sync_waits_per_account=3
    )
    with start_relay(settings) as relay:
        waits = runtime(relay).waits
        first, second = relay.key, relay.new_key("demo")
        same = {"Idempotency-Key": "again-and-again"}
        # The same key and Idempotency-Key twice: two waits, one task, one poll.
        for _ in range(2):
            _sync_in_background(relay, first, "/luma/generations_sync", {"user_prompt": "never"}, **same)
        # (a slot is taken before the submit, the poll starts after it)
        eventually(lambda: waits.open() == 2 and waits.polls() == 1, "two waits open on one poll")
        with relay.client(first) as client:
            over_key = client.post("/luma/generations_sync", json={"user_prompt": "one more"}, headers=same)
            assert over_key.status_code == 429
            assert over_key.json()["error"]["code"] == "too_many_waits"
            assert over_key.headers["connection"] == "close" and over_key.headers["retry-after"] == "5"
            assert "API key" in over_key.json()["error"]["message"]
            # Without waiting, the same key still submits.
            assert client.post("/luma/generations", json={"user_prompt": "async"}).status_code == 200
        _sync_in_background(relay, second, "/luma/videos", {"prompt": "never", "timeout": 60})
        eventually(lambda: waits.open() == 3 and waits.polls() == 2, "three waits open")
        with relay.client(second) as client:
            over_account = client.post("/luma/videos", json={"prompt": "one more"})
            assert over_account.status_code == 429 and "account" in over_account.json()["error"]["message"]
            # Nothing was submitted for the refused waits: the replayed task, the async one, AceData's.
            assert len(client.get("/account/tasks").json()["data"]) == 3
        eventually(lambda: waits.open() == 0, "the waits ended when their clients gave up")
        assert waits.polls() == 0


def test_a_wait_ends_when_its_client_hangs_up_and_the_task_is_charged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(tmp_path, sandbox_dreaming_seconds=3.0)
    with start_relay(settings) as relay, caplog.at_level(logging.INFO):
        waits = runtime(relay).waits
        key = relay.new_key("leaver", balance=1000)
        body = json.dumps({"user_prompt": "bye", "resolution": "540p"}).encode()
        sock = connect(relay)
        sock.sendall(
            head("POST", "/luma/generations_sync", key=key, length=len(body), Content_Type="application/json")
            + body
        )
        # (the slot is taken before the body is read; the poll starts once the task is submitted)
        eventually(lambda: waits.open() == 1 and waits.polls() == 1, "the wait started")
        sock.close()
        eventually(lambda: waits.open() == 0 and waits.polls() == 0, "the wait ended with its client")
        # The task goes on to completion and is charged once.
        balance, rows = balance_and_ledger(settings, "leaver")
        task_id = next(row["task_id"] for row in rows if row["kind"] == "hold")
        with relay.client(key) as client:
            assert wait_for(client, task_id, {"completed", "failed"})["state"] == "completed"
        balance, rows = balance_and_ledger(settings, "leaver")
        assert [row["kind"] for row in rows if row["task_id"] == task_id] == ["hold", "capture"]
        assert balance == 1000 - 50
    quiet = [r for r in caplog.records if "client hung up" in r.getMessage()]
    assert len(quiet) == 1 and quiet[0].levelno == logging.INFO and quiet[0].exc_info is None, caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


def hung_up_logged(caplog: pytest.LogCaptureFixture, path: str) -> bool:
    return any(path in r.getMessage() and "hung up" in r.getMessage() for r in caplog.records)


def test_a_client_hanging_up_mid_body_leaves_one_quiet_line(
    relay: Relay, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        for path in ("/luma/generations", "/dream-machine/v1/generations", "/luma/generations_sync"):
            with connect(relay) as sock:
                sock.sendall(head("POST", path, key=relay.key, Content_Type="application/json") + b'{"user_')
            eventually(functools.partial(hung_up_logged, caplog, path), f"the quiet line for {path}")
        with relay.client() as client:  # nothing was submitted
            assert client.get("/account/tasks").json()["data"] == []
        assert runtime(relay).waits.open() == 0
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info], caplog.text


def test_a_shutdown_answers_the_open_waits_at_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    settings = make_settings(tmp_path, sandbox_dreaming_seconds=NEVER)
    answers: list[httpx.Response] = []
    with caplog.at_level(logging.INFO), start_relay(settings) as relay:
        waits = runtime(relay).waits

        def wait() -> None:
            with relay.client() as client:
                answers.append(client.post("/luma/generations_sync", json={"user_prompt": "never"}))

        waiting = threading.Thread(target=wait, daemon=True)
        waiting.start()
        eventually(lambda: waits.open() == 1 and waits.polls() == 1, "the wait started")
    # The server stopped (the block ended): the wait answered with its task as it stands.
    waiting.join(timeout=60)
    assert len(answers) == 1 and answers[0].status_code == 200, answers
    assert answers[0].json()["state"] in ("pending", "processing")
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
