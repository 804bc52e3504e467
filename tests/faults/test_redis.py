"""Fault 2: Redis is killed (SIGKILL) under load and started again, empty.

Documented behaviour (docs/operations.md, docs/decisions.md "Shared caches"): rate limits never fail
open and never fail a request because of Redis; they hold from each process's own buckets until Redis
answers. Key lookups bypass the per-process cache (a database read per request), so a key change holds
at once even then; the cache is used again as soon as Redis answers.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.conftest import Relay, make_settings, start_relay
from tests.faults.harness import Load, all_terminal, ledger_verifies, money_settled_once, wait_until
from tests.support.private_servers import private_redis

pytestmark = [pytest.mark.both_stores, pytest.mark.heavy(seconds=10)]

LIMIT = 4  # the limited key's requests per minute


def _batch(relay: Relay, key: str) -> int:
    with relay.client(key) as client:
        return client.post("/luma/tasks", json={"ids": []}).status_code


def _set_disabled(relay: Relay, key_id: int, disabled: bool) -> None:
    with relay.admin() as admin:
        assert admin.patch(f"/admin/keys/{key_id}", json={"disabled": disabled}).status_code == 200


def test_redis_killed_and_restarted_under_load(
    tmp_path: Path, store: str, caplog: pytest.LogCaptureFixture
) -> None:
    with private_redis() as redis_server:
        settings = make_settings(
            tmp_path,
            redis_url=redis_server.url,
            rate_limit_rpm=0,
            rate_limit_batch_rpm=0,
            rate_limit_in_flight=0,
        )
        with start_relay(settings) as relay:
            limited = relay.new_key("limited", balance=0, rpm=LIMIT)
            other = relay.new_key("other", balance=0)
            probe = relay.new_key("probe", balance=0, rpm=100_000)
            other_id = _key_id(relay, "other")
            assert [_batch(relay, limited) for _ in range(LIMIT + 1)] == [200] * LIMIT + [429]

            load = Load(relay.url, relay.key, count=30, rate=10).start()
            wait_until(lambda: load.accepted_count() >= 10, 60, "the load under way")
            redis_server.kill()

            # Limits hold per process: this process's own bucket for the key, full at first.
            assert [_batch(relay, limited) for _ in range(LIMIT + 1)] == [200] * LIMIT + [429]
            # Key changes hold at once: nothing is served from the cache while its generation is unknown.
            assert _batch(relay, other) == 200
            _set_disabled(relay, other_id, True)
            assert _batch(relay, other) == 403
            _set_disabled(relay, other_id, False)
            assert _batch(relay, other) == 200

            redis_server.start()  # empty: Redis kept nothing

            def shared_again() -> bool:
                _batch(relay, probe)  # a limited key's check goes to Redis (a stale connection fails once)
                return any("rate limits shared again" in r.getMessage() for r in caplog.records)

            wait_until(shared_again, 30, "the limiter back on Redis")
            # Shared again: the key's bucket in Redis starts full.
            assert [_batch(relay, limited) for _ in range(LIMIT + 1)] == [200] * LIMIT + [429]
            # The cache is used again, and a change still holds from the next request.
            assert _batch(relay, other) == 200
            _set_disabled(relay, other_id, True)
            assert _batch(relay, other) == 403

            load.join()
            assert load.errors() == [], load.errors()[:5]
            assert load.transport_errors == [], load.transport_errors[:5]
            ids = list(load.accepted)
            assert len(ids) == load.count
            wait_until(lambda: all_terminal(relay.url, relay.key, ids), 120, "every task terminal")
            money_settled_once(settings, dict.fromkeys(ids, "completed"))
            ledger_verifies(settings)

    said = [r.getMessage() for r in caplog.records]
    assert any("rate limits hold per process" in m for m in said)
    assert any("rate limits shared again" in m for m in said)
    assert any("key lookups cached again" in m for m in said)


def _key_id(relay: Relay, account: str) -> int:
    with relay.admin() as admin:
        answer: httpx.Response = admin.get("/admin/keys", params={"account": account})
        return int(answer.json()[0]["id"])
