"""`serve --workers N` logs like one-process `serve`: no access line per request (only what happened)."""

from __future__ import annotations

from pathlib import Path

import httpx

from dreamrelay.settings import Settings
from tests.conftest import free_port
from tests.support.processes import Process, environment, stopped_at_exit, wait_healthy


def test_serve_with_two_processes_writes_no_line_per_request(tmp_path: Path) -> None:
    port = free_port()
    settings = Settings(data_dir=tmp_path / "data", port=port, sandbox_enabled=False, log_format="json")
    api = Process(("serve", "--workers", "2", "--no-worker"), environment(settings), tmp_path / "api.log")
    url = f"http://127.0.0.1:{port}"
    with stopped_at_exit([api]):
        api.start()
        wait_healthy(url, api, timeout=180)  # two processes import everything: slow on a busy machine
        for _ in range(20):  # a new connection each time, so both processes answer some
            assert httpx.get(f"{url}/healthz", timeout=30).status_code == 200
            assert httpx.get(f"{url}/luma/generations/nope", timeout=30).status_code == 401
        output = api.log()
    assert "uvicorn.access" not in output and "/healthz" not in output, output[-2000:]
    assert "Application startup complete" in output  # the processes' own lines are still written
