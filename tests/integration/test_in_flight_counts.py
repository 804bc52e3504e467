"""Each key's tasks in flight are a number kept on its row (store/in_flight.py) by the intake and the one
state writer, in their transactions: the in-flight cap holds exactly under submits racing from two API
processes, and the number stays equal to a count of the key's tasks through failures, completions,
deletes, refusals and replays (as `ledger verify` proves the balances)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections import Counter
from pathlib import Path

import httpx
import orjson
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from dreamrelay.cli import app as cli_app
from dreamrelay.runtime import Runtime
from dreamrelay.settings import Settings
from dreamrelay.store import in_flight
from dreamrelay.store.schema import api_keys
from tests.conftest import Relay, make_settings, start_relay
from tests.integration.test_inflight_reads import write_elsewhere
from tests.support.paths import REPO
from tests.support.submit_burst import burst

pytestmark = pytest.mark.both_stores

CAP = 5
BODY = {"user_prompt": "held", "resolution": "540p"}


def held_relay(tmp_path: Path) -> Settings:
    """Settings whose sandbox keeps every task queued and whose worker is off: tasks stay in flight."""
    return make_settings(tmp_path, sandbox_queued_seconds=3600.0, worker_enabled=False)


async def _kept(settings: Settings) -> tuple[dict[int, int], list[in_flight.Mismatch]]:
    async with Runtime.from_settings(settings) as rt, rt.db.reader() as conn:
        kept = {
            r.id: int(r.in_flight) for r in await conn.execute(select(api_keys.c.id, api_keys.c.in_flight))
        }
        _checked, bad = await in_flight.mismatches(conn)
    return kept, bad


def kept_numbers(settings: Settings) -> dict[int, int]:
    """Every key's kept number, once it is checked to equal a count of its tasks in flight."""
    kept, bad = asyncio.run(_kept(settings))
    assert bad == []
    return kept


def balanced(relay: Relay) -> None:
    with relay.admin() as admin:
        assert admin.get("/admin/ledger/verify").json()["balanced"] is True


def test_racing_submits_from_two_processes_take_exactly_the_cap(tmp_path: Path) -> None:
    settings = held_relay(tmp_path)
    with start_relay(settings) as relay:
        key = relay.new_key("racer", balance=1_000_000, max_in_flight=CAP)
        before = kept_numbers(settings)
        args = [str(settings.data_dir), settings.database_url or "", key, str(2 * CAP)]
        other = subprocess.Popen(
            [sys.executable, "-m", "tests.support.submit_burst", *args],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert other.stdin is not None and other.stdout is not None
        assert other.stdout.readline().strip() == "ready"
        other.stdin.write("go\n")
        other.stdin.flush()
        here = asyncio.run(burst(relay.url, key, 2 * CAP))
        there = orjson.loads(other.stdout.readline())
        assert other.wait(timeout=60) == 0
        codes = Counter(here + there)
        assert codes == {200: CAP, 429: 3 * CAP}, codes
        after = kept_numbers(settings)
        assert sum(after.values()) - sum(before.values()) == CAP
        balanced(relay)


def test_the_number_follows_failures_completions_deletes_refusals_and_replays(tmp_path: Path) -> None:
    settings = held_relay(tmp_path)
    with start_relay(settings) as relay:
        key = relay.new_key("steady", balance=1_000_000, max_in_flight=3)
        broke = relay.new_key("broke", balance=0)
        with relay.client(key) as client:

            def submit(**headers: str) -> httpx.Response:
                return client.post("/luma/generations", json=BODY, headers=headers)

            first, second = submit(**{"Idempotency-Key": "once"}), submit()
            assert submit(**{"Idempotency-Key": "once"}).json()["id"] == first.json()["id"]  # a replay
            third = submit()
            assert [r.status_code for r in (first, second, third)] == [200, 200, 200]
            assert submit().status_code == 429
            assert sorted(kept_numbers(settings).values())[-1] == 3

            write_elsewhere(settings, first.json()["id"], "failed", "upstream gave up")  # refunded
            write_elsewhere(settings, second.json()["id"], "processing")  # still in flight
            assert submit().status_code == 200
            assert submit().status_code == 429

            write_elsewhere(settings, second.json()["id"], "completed")
            deleted = client.delete(f"/dream-machine/v1/generations/{third.json()['id']}")
            assert deleted.status_code == 204
            assert [submit().status_code for _ in range(3)] == [200, 200, 429]
        with relay.client(broke) as poor:
            assert poor.post("/luma/generations", json=BODY).status_code == 402
        assert sorted(kept_numbers(settings).values()) == [0, 0, 3]  # demo key, broke, steady
        balanced(relay)


def test_ledger_verify_names_a_key_whose_number_is_off(tmp_path: Path) -> None:
    """`ledger verify` (the admin API and the CLI) recounts every key's tasks in flight: a number that
    drifted (here written by hand) is named with both figures, and the CLI exits 1."""
    settings = held_relay(tmp_path)
    with start_relay(settings) as relay:
        key = relay.new_key("drift", balance=1000)
        with relay.client(key) as client:
            assert client.post("/luma/generations", json=BODY).status_code == 200
        with relay.admin() as admin:
            check = admin.get("/admin/ledger/verify").json()
            assert check["in_flight_mismatches"] == [] and check["keys_checked"] >= 2
        key_id = next(k for k, n in kept_numbers(settings).items() if n == 1)

        async def drift() -> None:
            async with Runtime.from_settings(settings) as rt, rt.db.transaction() as conn:
                await conn.execute(api_keys.update().where(api_keys.c.id == key_id).values(in_flight=3))

        asyncio.run(drift())
        with relay.admin() as admin:
            check = admin.get("/admin/ledger/verify").json()
        assert check["balanced"] is True  # the money is right; the number the cap reads is not
        assert check["in_flight_mismatches"] == [{"key_id": key_id, "kept": 3, "counted": 1}]
        env = {"DREAMRELAY_DATA_DIR": str(settings.data_dir)}
        if settings.database_url:
            env["DREAMRELAY_DATABASE_URL"] = settings.database_url
        cli = CliRunner().invoke(cli_app, ["ledger", "verify"], env=env)
        assert cli.exit_code == 1 and "IN-FLIGHT NUMBER MISMATCH" in cli.stdout, cli.output
        assert f"{key_id}" in cli.stdout
