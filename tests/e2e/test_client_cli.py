"""The `dreamrelay-client` command against a live DreamRelay: in a pseudo-terminal (progress bars, live
table) and with --json (parsed)."""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import pty
import select
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import av
from PIL import Image

from tests.conftest import Relay
from tests.support.live_server import live_server

SCRIPT = str(Path(sys.executable).with_name("dreamrelay-client"))


def _env(relay: Relay, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DREAMRELAY_", "NO_COLOR"))}
    env.update(DREAMRELAY_API_KEY=relay.key, DREAMRELAY_BASE_URL=relay.url, TERM="xterm-256color", **extra)
    return env


def in_terminal(
    args: list[str],
    env: dict[str, str],
    *,
    seconds: float = 120,
    stop_when: Callable[[str], bool] | None = None,
) -> tuple[int, str]:
    """Run the command on a pty of 120x40 as a person would; return (exit code, everything it wrote).
    With `stop_when`, press Ctrl-C (SIGINT) once what it wrote so far satisfies it: on a loaded machine
    a fixed delay could land in the interpreter's start-up, before the command runs."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    process = subprocess.Popen(args, stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True)
    os.close(slave)
    output = b""
    started = time.monotonic()
    interrupted_at: float | None = None
    try:
        while time.monotonic() - started < seconds:
            if (
                stop_when is not None
                and stop_when(output.decode(errors="replace"))
                and process.poll() is None
            ):
                process.send_signal(signal.SIGINT)
                interrupted_at = time.monotonic() - started
                stop_when = None
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: the terminal's other end is closed
                    break
                if not chunk:
                    break
                output += chunk
            elif process.poll() is not None:
                break
        try:
            code = process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            when = "never" if interrupted_at is None else f"{interrupted_at:.1f} s in"
            status = Path(f"/proc/{process.pid}/status").read_text()
            signals = [line for line in status.splitlines() if line.startswith(("Sig", "State"))]
            raise AssertionError(
                f"still running {time.monotonic() - started:.0f} s in; Ctrl-C sent {when}; {signals}; "
                f"it wrote: {output.decode(errors='replace')[-1500:]!r}"
            ) from None
    finally:
        if process.poll() is None:
            process.kill()
        os.close(master)
    return code, output.decode(errors="replace")


def cli_json(relay: Relay, *args: str) -> Any:
    result = subprocess.run(
        [SCRIPT, *args, "--json"], env=_env(relay), capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_submit_wait_download_shows_progress_in_a_terminal(relay: Relay, tmp_path: Path) -> None:
    video = tmp_path / "out.mp4"
    code, screen = in_terminal(
        [SCRIPT, "submit", "a paper boat on a rainy street", "--download", str(video)], _env(relay)
    )
    assert code == 0, screen
    assert "━" in screen  # rich's bar, drawn because this is a terminal
    assert "completed" in screen and "download" in screen and "100%" in screen
    assert "\x1b[" in screen  # colours and cursor moves of a live display
    with av.open(str(video)) as container:
        assert container.streams.video[0].codec_context.name == "h264"


def test_watch_draws_a_live_table_of_running_tasks(relay: Relay) -> None:
    with relay.client() as client:
        stalled = client.post("/luma/generations", json={"user_prompt": "[sandbox:stall] a clock"}).json()
    redrawn = lambda screen: screen.count("running tasks") >= 3  # noqa: E731
    code, screen = in_terminal([SCRIPT, "watch", "--interval", "0.3"], _env(relay), stop_when=redrawn)
    assert code == 130, screen
    assert "running tasks" in screen and stalled["id"][:8] in screen
    assert screen.count("running tasks") >= 2  # redrawn


def test_json_output_of_every_command_parses(relay: Relay, tmp_path: Path) -> None:
    done = cli_json(relay, "submit", "lanterns on a lake", "--wait", "--resolution", "540p")
    assert done["state"] == "completed" and done["video"]["url"].endswith("video.mp4")
    pending = cli_json(relay, "submit", "[sandbox:stall] waiting")
    assert pending["state"] == "pending"
    picture = tmp_path / "start.png"
    Image.new("RGB", (64, 48), (200, 40, 90)).save(picture)
    from_image = cli_json(relay, "submit", "the picture moves", "--image", str(picture), "--wait")
    assert from_image["state"] == "completed"
    status = cli_json(relay, "status", done["id"], pending["id"])
    assert [t["id"] for t in status] == [done["id"], pending["id"]]
    running = cli_json(relay, "watch", "--once")  # the stalled task only
    assert [t["id"] for t in running] == [pending["id"]]
    balance = cli_json(relay, "balance")
    assert balance["name"] == "demo" and isinstance(balance["balance"], int)
    with relay.admin() as admin:
        code = admin.post("/admin/codes", json={"amount": 70}).json()["codes"][0]["code"]
    redeemed = cli_json(relay, "redeem", code)
    assert redeemed["amount"] == 70 and redeemed["balance"] == balance["balance"] + 70
    saved = cli_json(relay, "download", done["id"], str(tmp_path / "again.mp4"))
    assert Path(saved["file"]).stat().st_size > 1000

    again = subprocess.run(
        [SCRIPT, "--json", "redeem", code],
        env=_env(relay),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert again.returncode == 2 and "Traceback" not in again.stderr
    assert json.loads(again.stdout) == {
        "error": {"status": 409, "code": "code_used", "message": "this credit code has been used already"}
    }
    table = subprocess.run(
        [SCRIPT, "status", done["id"]],
        env=_env(relay, COLUMNS="200"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert table.returncode == 0 and done["id"] in table.stdout and "completed" in table.stdout
    flags = subprocess.run(
        [SCRIPT, "balance", "--api-key", "dr-wrong", "--base-url", relay.url],
        env=_env(relay),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert flags.returncode == 2 and "invalid_api_key" in flags.stderr


class HeldRelay:
    """A stand-in for DreamRelay on loopback: answers the first GET /account/tasks (one running task),
    then holds every later request unanswered until `release` is set."""

    def __init__(self) -> None:
        self.answered = 0
        self.holding = threading.Event()
        self.release = threading.Event()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (message := await receive())["type"] != "lifespan.shutdown":
                await send({"type": message["type"] + ".complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        if self.answered:
            self.holding.set()
            while not self.release.is_set():  # noqa: ASYNC110 - set by the test's thread
                await asyncio.sleep(0.05)
        self.answered += 1
        task = {"id": "held-task-0001", "state": "processing", "created_at": "2026-01-01T00:00:00Z"}
        body = json.dumps({"data": [task], "has_more": False}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def test_ctrl_c_ends_watch_in_the_middle_of_a_request() -> None:
    held = HeldRelay()
    with live_server(held) as url:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DREAMRELAY_")}
        env.update(DREAMRELAY_API_KEY="dr-held", DREAMRELAY_BASE_URL=url, TERM="xterm-256color")
        waiting = lambda screen: "held-task-0001" in screen and held.holding.is_set()  # noqa: E731
        watch = [SCRIPT, "watch", "--interval", "0.3"]
        try:
            # Well under the client's 60 s request timeout: a command that ignored Ctrl-C while its request
            # is held would still be running when in_terminal stops reading, and its wait would time out.
            code, screen = in_terminal(watch, env, seconds=30, stop_when=waiting)
            answered = held.answered
        finally:
            held.release.set()
    assert code == 130, screen
    assert answered == 1  # it ended while its second request was still unanswered
    assert "Traceback" not in screen
