"""Key lookups are cached per process, yet a key changed through any process holds in every other one
from the very next request (the shared "keys" generation in Redis)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import Relay, free_port, make_settings, start_relay
from tests.support.services import REDIS_URL

CLI = Path(sys.executable).with_name("dreamrelay")


@pytest.fixture
def two_relays(tmp_path: Path, pg_url: str, redis_ns: str) -> Iterator[tuple[Relay, Relay]]:
    """Two DreamRelay servers (A and B) on one PostgreSQL database and one Redis namespace."""
    shared = {
        "database_url": pg_url,
        "redis_url": REDIS_URL,
        "redis_prefix": redis_ns,
        "worker_enabled": False,
    }
    with start_relay(make_settings(tmp_path / "a", **shared)) as a:
        with start_relay(make_settings(tmp_path / "b", **shared), key=a.key) as b:
            yield a, b


def _demo_key_id(relay: Relay) -> int:
    with relay.admin() as admin:
        keys = admin.get("/admin/keys", params={"account": "demo"}).json()
    return int(keys[0]["id"])


def _batch(relay: Relay) -> httpx.Response:
    with relay.client() as client:
        return client.post("/luma/tasks", json={"ids": []})


def test_a_key_disabled_on_one_server_is_refused_by_the_other_at_once(
    two_relays: tuple[Relay, Relay],
) -> None:
    a, b = two_relays
    key_id = _demo_key_id(a)
    assert _batch(b).status_code == 200  # B now holds the key in its cache
    assert _batch(b).status_code == 200

    with a.admin() as admin:
        assert admin.patch(f"/admin/keys/{key_id}", json={"disabled": True}).status_code == 200
    refused = _batch(b)
    assert refused.status_code == 403
    assert refused.json()["error"] == {
        "message": "this API key is disabled",
        "type": "permission_error",
        "code": "forbidden",
    }
    assert _batch(a).status_code == 403

    with a.admin() as admin:
        assert admin.patch(f"/admin/keys/{key_id}", json={"disabled": False}).status_code == 200
    assert _batch(b).status_code == 200


def test_expiry_models_and_limits_set_on_one_server_hold_on_the_other(
    two_relays: tuple[Relay, Relay],
) -> None:
    a, b = two_relays
    key_id = _demo_key_id(a)
    with b.client() as client:
        assert client.post("/luma/tasks", json={"ids": []}).status_code == 200
        with a.admin() as admin:
            admin.patch(f"/admin/keys/{key_id}", json={"allowed_models": ["ray-flash-2"]}).raise_for_status()
        denied = client.post("/luma/generations", json={"user_prompt": "a boat", "model_name": "ray-v2"})
        assert denied.status_code == 403
        assert denied.json()["error"]["message"] == "this API key may not use model ray-v2"

        with a.admin() as admin:
            admin.patch(f"/admin/keys/{key_id}", json={"batch_rpm": 1}).raise_for_status()
        answers = [client.post("/luma/tasks", json={"ids": []}) for _ in range(2)]
        assert [r.status_code for r in answers] == [200, 429]
        assert answers[0].headers["x-ratelimit-limit"] == "1"

        with a.admin() as admin:
            admin.patch(f"/admin/keys/{key_id}", json={"expires_at": time.time() - 1}).raise_for_status()
        expired = client.get("/luma/generations/unknown")
        assert expired.status_code == 403
        assert expired.json()["error"]["message"] == "this API key has expired"


def test_the_cli_in_its_own_process_disables_a_key_for_a_running_server(
    two_relays: tuple[Relay, Relay], tmp_path: Path
) -> None:
    a, b = two_relays
    key_id = _demo_key_id(a)
    assert _batch(b).status_code == 200
    env = {k: v for k, v in os.environ.items() if not k.startswith("DREAMRELAY_")}
    env.update(
        DREAMRELAY_DATA_DIR=str(tmp_path / "cli"),
        DREAMRELAY_DATABASE_URL=str(b.settings.database_url),
        DREAMRELAY_REDIS_URL=REDIS_URL,
        DREAMRELAY_REDIS_PREFIX=b.settings.redis_prefix,
    )
    command = [str(CLI)] if CLI.exists() else [sys.executable, "-m", "dreamrelay"]
    done = subprocess.run(
        [*command, "keys", "disable", str(key_id)], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert _batch(b).status_code == 403


def test_with_redis_down_keys_are_read_from_the_database_and_changes_hold(tmp_path: Path) -> None:
    dead = free_port()  # nobody listens there
    settings = make_settings(tmp_path, redis_url=f"redis://127.0.0.1:{dead}/0")
    with start_relay(settings) as relay:
        key_id = _demo_key_id(relay)
        assert [_batch(relay).status_code for _ in range(2)] == [200, 200]
        with relay.admin() as admin:
            assert admin.patch(f"/admin/keys/{key_id}", json={"disabled": True}).status_code == 200
        assert _batch(relay).status_code == 403
