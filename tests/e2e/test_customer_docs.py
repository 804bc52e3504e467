"""Every example of docs/customers.md, run as written against a live DreamRelay."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import av
import httpx
import pytest

from tests.conftest import Relay, free_port, make_settings, start_relay

DOC = Path(__file__).resolve().parents[2] / "docs" / "customers.md"
BLOCK = re.compile(r"(<!-- webhook receiver -->\n)?```(sh|python)\n(.*?)```", re.DOTALL)
BIN = str(Path(sys.executable).parent)


def blocks() -> list[tuple[str, str, bool]]:
    """(language, code, is the webhook receiver) of every sh and python block, in page order."""
    return [(m[2], m[3], bool(m[1])) for m in BLOCK.finditer(DOC.read_text())]


@pytest.fixture
def relay(tmp_path: Path) -> Iterator[Relay]:
    settings = make_settings(tmp_path / "data", allow_private_urls="127.0.0.0/8")
    with start_relay(settings) as running:
        yield running


def _env(relay: Relay, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DREAMRELAY_")}
    env.update(
        DREAMRELAY_API_KEY=relay.key, DREAMRELAY_BASE_URL=relay.url, PATH=f"{BIN}:{env['PATH']}", **extra
    )
    return env


def _h264(path: Path) -> bool:
    with av.open(str(path)) as container:
        return bool(container.streams.video[0].codec_context.name == "h264")


def test_the_page_has_each_kind_of_example() -> None:
    found = blocks()
    assert sum(1 for lang, _, _ in found if lang == "sh") >= 5
    assert sum(1 for lang, _, _ in found if lang == "python") >= 3
    assert sum(1 for *_, hook in found if hook) == 1


def test_every_curl_client_and_cli_example_runs(relay: Relay, tmp_path: Path) -> None:
    with relay.admin() as admin:
        code = admin.post("/admin/codes", json={"amount": 300}).json()["codes"][0]["code"]
    env = _env(relay, CODE=code)
    for number, (lang, source, hook) in enumerate(blocks()):
        if hook:
            continue
        work = tmp_path / f"example{number}"
        work.mkdir()
        command = (
            ["bash", "-e", "-o", "pipefail", "-c", source] if lang == "sh" else [sys.executable, "-c", source]
        )
        result = subprocess.run(command, env=env, cwd=work, capture_output=True, text=True, timeout=180)
        assert result.returncode == 0, (
            f"example {number} ({lang}):\n{source}\n{result.stdout}\n{result.stderr}"
        )
        assert "Traceback" not in result.stderr and "error" not in result.stdout.lower(), result.stdout
        for video in work.glob("*.mp4"):
            assert _h264(video), video
    made = sorted(p.name for p in tmp_path.glob("example*/*.mp4"))
    assert made.count("boat.mp4") == 3 and "koi.mp4" in made  # curl, client, CLI; asyncio
    with relay.client() as client:
        ledger = client.get("/account/ledger", params={"kind": "redeem"}).json()
    assert [row["amount"] for row in ledger] == [300]  # the redeem example really redeemed


def test_the_webhook_receiver_verifies_real_callbacks(relay: Relay, tmp_path: Path) -> None:
    (source,) = [code for _, code, hook in blocks() if hook]
    with relay.client() as client:
        secret = client.get("/account/callback_secret").json()["secret"]
    port = free_port()
    receiver = subprocess.Popen(
        [sys.executable, "-c", source],
        env=_env(relay, DREAMRELAY_CALLBACK_SECRET=secret, PORT=str(port)),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                forged = httpx.post(f"http://127.0.0.1:{port}/", content=b"{}", headers={"webhook-id": "x"})
                break
            except httpx.ConnectError:
                assert time.monotonic() < deadline, "the receiver never listened"
                time.sleep(0.1)
        assert forged.status_code == 400  # unsigned: refused
        with relay.client() as client:
            body = {
                "user_prompt": "a signed heron",
                "resolution": "540p",
                "notify_hook": f"http://127.0.0.1:{port}/",
            }
            task = client.post("/luma/generations", json=body).json()
        assert receiver.stdout is not None
        lines: list[str] = []
        while f"{task['id']} completed" not in lines:
            lines.append(receiver.stdout.readline().strip())
            assert time.monotonic() < deadline + 60, lines
        assert lines[0] in (f"{task['id']} processing", f"{task['id']} completed")
    finally:
        receiver.kill()
        receiver.wait()


def test_lines_a_customer_writes_to_get_a_video() -> None:
    """The figures of issue 16's closing note, read from the page itself."""
    found = blocks()
    curl = next(code for lang, code, _ in found if lang == "sh" and "while true" in code)
    client = next(code for lang, code, _ in found if lang == "python" and "Client()" in code)
    cli = next(
        code for lang, code, _ in found if lang == "sh" and code.startswith("dreamrelay-client submit")
    )
    counts = {
        name: len(code.strip().splitlines())
        for name, code in (("curl", curl), ("client", client), ("cli", cli))
    }
    print(f"lines to get a video: {counts}")
    assert counts["cli"] == 1 and counts["client"] <= 5 < counts["curl"]
