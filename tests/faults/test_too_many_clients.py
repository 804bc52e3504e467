"""PostgreSQL refusing new connections ("too many clients", SQLSTATE 53300) is an outage like a restart:
the API answers 503 `database_unavailable`, the background loops wait and retry, no process dies, and
when connections are allowed again everything goes on without a restart.

The refusal is made deterministic on a private cluster: the relay connects as a role of its own whose
CONNECTION LIMIT drops to 0 while its sessions are cut. PostgreSQL answers each new connection with
53300 ("too many connections for role"), the class asyncpg raises as TooManyConnectionsError, the same
as the "sorry, too many clients already" CI met on the machine's shared server.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import Relay
from tests.faults.harness import SANDBOX_KEY, TERMINAL, alive, ledger_verifies, relay_settings, wait_until
from tests.support.private_servers import private_postgres
from tests.support.processes import Process, environment, recorded_sandbox, stopped_at_exit, wait_healthy


def _submit(client: httpx.Client, prompt: str) -> httpx.Response:
    return client.post("/luma/generations", json={"user_prompt": prompt, "resolution": "540p"})


@pytest.mark.postgres
def test_too_many_clients_is_a_503_for_the_api_and_a_wait_for_the_worker(tmp_path: Path) -> None:
    with (
        private_postgres() as pg,
        recorded_sandbox(tmp_path / "upstream", SANDBOX_KEY, queued_seconds=0.2, dreaming_seconds=0.5) as (
            sandbox_url,
            _recorder,
        ),
    ):
        pg.psql("CREATE ROLE relay LOGIN")
        pg.psql("ALTER DATABASE dreamrelay OWNER TO relay")
        database_url = pg.url.replace("//postgres@", "//relay@")
        settings = relay_settings(tmp_path / "relay", database_url, sandbox_url)
        env = environment(settings)
        api = Process(("serve", "--no-worker"), env, tmp_path / "api.log")
        worker = Process(("worker",), env, tmp_path / "worker.log")
        late = Process(("worker",), env, tmp_path / "late-worker.log")  # started during the refusal
        url = f"http://127.0.0.1:{settings.port}"
        with stopped_at_exit([api, worker, late]):
            api.start()
            wait_healthy(url, api)
            key = Relay(url=url, settings=settings, key="").new_key("clients", balance=10**6)
            worker.start()
            wait_until(lambda: "started (pid" in worker.log() and alive(worker), 60, "the worker started")
            headers = {"Authorization": f"Bearer {key}"}
            with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
                before = _submit(client, "before the refusal")
                assert before.status_code == 200, before.text

                pg.psql("ALTER ROLE relay CONNECTION LIMIT 0")
                pg.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'relay'")
                refused_since = time.monotonic()
                for _ in range(3):
                    answer = _submit(client, "during the refusal")
                    assert answer.status_code == 503, answer.text
                    assert answer.headers["retry-after"] == "2"
                    assert answer.json()["error"]["code"] == "database_unavailable"
                    # A read is answered from the in-flight mirror, or is the same clear 503.
                    read = client.get(f"/luma/generations/{before.json()['id']}")
                    if read.status_code == 200:
                        assert read.json()["id"] == before.json()["id"]
                    else:
                        assert read.status_code == 503, read.text
                        assert read.json()["error"]["code"] == "database_unavailable"
                # The worker's loops meet it too (their connections were cut): they wait, never die.
                wait_until(
                    lambda: "too many connections" in worker.log() and alive(api, worker),
                    60,
                    "the worker noticing the refusal",
                    worker.log,
                )
                late.start()
                wait_until(
                    lambda: "too many connections" in late.log(), 60, "the late worker waiting", late.log
                )
                while time.monotonic() - refused_since < 5:
                    assert alive(api, worker, late)
                    time.sleep(0.5)
                assert "started (pid" not in late.log()

                pg.psql("ALTER ROLE relay CONNECTION LIMIT -1")
                allowed_at = time.monotonic()
                wait_until(lambda: _submit(client, "after").status_code == 200, 60, "submits accepted again")
                print(f"\n[too many clients] submits accepted {time.monotonic() - allowed_at:.2f} s after")
                ids = [before.json()["id"], _submit(client, "after, again").json()["id"]]

                def finished() -> bool:
                    found = client.post("/luma/tasks", json={"ids": ids})
                    return found.status_code == 200 and {t["state"] for t in found.json()} <= TERMINAL

                wait_until(finished, 90, "the tasks from before and after terminal", worker.log)
                states = {t["state"] for t in client.post("/luma/tasks", json={"ids": ids}).json()}
                assert states == {"completed"}
            wait_until(lambda: "started (pid" in late.log(), 60, "the late worker started", late.log)
            assert alive(api, worker, late)
            for process in (api, worker, late):
                log = process.log()
                assert "database unavailable" in log and "Traceback" not in log, log[-3000:]
            assert "database available again" in worker.log() and "database available again" in late.log()
        ledger_verifies(settings)
