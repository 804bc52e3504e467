"""The `dreamrelay` command as an operator runs it: a real process on a temporary data directory."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import make_settings, start_relay

SCRIPT = Path(sys.executable).with_name("dreamrelay")


def run(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`dreamrelay ARGS` with DREAMRELAY_DATA_DIR=data_dir and no other DreamRelay settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DREAMRELAY_")}
    env.update(DREAMRELAY_DATA_DIR=str(data_dir), COLUMNS="120", NO_COLOR="1")
    command = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "dreamrelay"]
    return subprocess.run(
        [*command, *args], env=env, capture_output=True, text=True, timeout=60, cwd=data_dir, check=False
    )


def ok(data_dir: Path, *args: str) -> str:
    result = run(data_dir, *args)
    assert result.returncode == 0, f"dreamrelay {' '.join(args)}: {result.stderr}"
    assert "Traceback" not in result.stderr
    return result.stdout


def ok_json(data_dir: Path, *args: str) -> Any:
    return json.loads(ok(data_dir, *args))


def test_help_lists_every_command(tmp_path: Path) -> None:
    out = ok(tmp_path, "--help")
    for command in ("serve", "worker", "sandbox", "migrate", "accounts", "keys"):
        # A row of the commands table: the name, then its description.
        assert re.search(rf"^\W*{command}\s{{2,}}\w", out, re.MULTILINE), f"{command} missing from:\n{out}"


def test_migrate_creates_the_database_and_is_repeatable(tmp_path: Path) -> None:
    assert "up to date" in ok(tmp_path, "migrate")
    assert (tmp_path / "dreamrelay.db").is_file()
    assert "up to date" in ok(tmp_path, "migrate")


def test_accounts_and_keys_round_trip_without_showing_keys_again(tmp_path: Path) -> None:
    account = ok_json(tmp_path, "accounts", "create", "acme", "--json")
    assert account["name"] == "acme" and account["balance"] == 0 and isinstance(account["id"], int)
    assert ok_json(tmp_path, "accounts", "list", "--json") == [account]

    created_output = ok(tmp_path, "keys", "create", "--account", "acme", "--name", "ci", "--json")
    created = json.loads(created_output)
    key = created["key"]
    assert key.startswith("dr-") and len(key) > 20
    assert created["account"] == "acme" and isinstance(created["id"], int)
    assert created_output.count(key) == 1

    listed_output = ok(tmp_path, "keys", "list", "--json")
    listed = json.loads(listed_output)
    assert len(listed) == 1
    row = listed[0]
    assert (row["id"], row["account"], row["name"], row["disabled"]) == (created["id"], "acme", "ci", False)
    assert key.startswith(row["prefix"]) and len(row["prefix"]) < len(key) - 10
    text_output = ok(tmp_path, "keys", "list")
    for output in (listed_output, text_output):
        assert key not in output
        assert key[len(row["prefix"]) :] not in output
        assert hashlib.sha256(key.encode()).hexdigest() not in output
    assert row["prefix"] in text_output and "acme" in text_output


def test_mistakes_exit_non_zero_with_a_clear_message(tmp_path: Path) -> None:
    unknown = run(tmp_path, "keys", "create", "--account", "ghost", "--json")
    assert unknown.returncode != 0
    assert "no account named 'ghost'" in unknown.stderr
    assert "Traceback" not in unknown.stderr + unknown.stdout
    assert "dr-" not in unknown.stdout

    ok(tmp_path, "accounts", "create", "acme")
    duplicate = run(tmp_path, "accounts", "create", "acme", "--json")
    assert duplicate.returncode != 0
    assert "exists already" in duplicate.stderr and "acme" in duplicate.stderr
    assert "Traceback" not in duplicate.stderr + duplicate.stdout

    # Several API processes cannot share the sandbox one process keeps in memory.
    refused = run(tmp_path, "serve", "--workers", "2")
    assert refused.returncode != 0
    assert "DREAMRELAY_SANDBOX_URL" in refused.stderr and "Traceback" not in refused.stderr


def test_a_key_made_by_the_cli_authenticates_against_the_relay(tmp_path: Path) -> None:
    with start_relay(make_settings(tmp_path)) as relay:
        # The CLI sees the store the running relay seeded (its demo account) ...
        assert [a["name"] for a in ok_json(tmp_path, "accounts", "list", "--json")] == ["demo"]
        ok(tmp_path, "accounts", "create", "acme")
        key = ok_json(tmp_path, "keys", "create", "--account", "acme", "--json")["key"]
        # ... and the relay accepts the key the CLI made: a 404 for an unknown task, not a 401.
        with relay.client(key) as client:
            found = client.get("/luma/generations/unknown-id")
            assert found.status_code == 404, found.text
        with relay.client("dr-not-a-real-key") as stranger:
            assert stranger.get("/luma/generations/unknown-id").status_code == 401
        assert httpx.get(f"{relay.url}/luma/generations/unknown-id", timeout=10).status_code == 401
