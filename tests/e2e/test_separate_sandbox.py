"""A separate `dreamrelay sandbox` and its relays: sharing a data directory they share its sandbox key
with nothing set by hand; a caller without it hears why it was refused (issue 29.6)."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from tests.conftest import free_port, make_settings, start_relay
from tests.support.processes import Process, environment, stopped_at_exit


def wait_ready(url: str, process: Process) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.popen is not None and process.popen.poll() is None, process.log()
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise AssertionError(process.log())


def test_a_relay_sharing_the_data_directory_finds_the_sandbox_key(tmp_path: Path) -> None:
    sandbox_port = free_port()
    sandbox_api = f"http://127.0.0.1:{sandbox_port}/dream-machine/v1"
    settings = make_settings(
        tmp_path, sandbox_url=sandbox_api, allow_private_urls="127.0.0.0/8", sandbox_key=None
    )
    env = environment(settings)  # the same data directory; no DREAMRELAY_SANDBOX_KEY
    assert "DREAMRELAY_SANDBOX_KEY" not in env
    sandbox = Process(("sandbox", "--port", str(sandbox_port)), env, tmp_path / "sandbox.log")
    with stopped_at_exit([sandbox]):
        sandbox.start()
        wait_ready(f"{sandbox_api}/ping", sandbox)
        refused = httpx.get(f"{sandbox_api}/ping", headers={"Authorization": "Bearer not-the-key"})
        assert refused.status_code == 401
        why = refused.json()["detail"]
        assert "sandbox_key file of its data directory" in why and "DREAMRELAY_SANDBOX_KEY" in why
        with start_relay(settings) as relay, relay.client() as client:
            made = client.post("/luma/generations", json={"user_prompt": "a shared key"})
            assert made.status_code == 200, made.text
            deadline = time.monotonic() + 90
            while (task := client.get(f"/luma/generations/{made.json()['id']}").json())["state"] not in (
                "completed",
                "failed",
            ):
                assert time.monotonic() < deadline, task
                time.sleep(0.2)
        sandbox.terminate()
    assert task["state"] == "completed", task
