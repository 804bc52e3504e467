"""AceData's own CLI (`acedata-luma-cli` from PyPI, unchanged) against DreamRelay: generate, extend,
query one task and a batch, wait. Its token variable carries a DreamRelay key as the Bearer token."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import Relay

CLI = Path(sys.executable).with_name("luma")


def luma(
    relay: Relay, tmp_path: Path, *args: str, token: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ACEDATACLOUD_", "LUMA_"))}
    env.update(
        ACEDATACLOUD_API_BASE_URL=relay.url,
        ACEDATACLOUD_API_TOKEN=token or relay.key,
        COLUMNS="100000",  # rich prints the JSON unwrapped
        NO_COLOR="1",
        TERM="dumb",
    )
    return subprocess.run(
        [str(CLI), *args], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False
    )


def luma_json(relay: Relay, tmp_path: Path, *args: str) -> Any:
    done = luma(relay, tmp_path, *args, "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)


def test_generate_extend_and_query_with_the_unchanged_cli(relay: Relay, tmp_path: Path) -> None:
    made = luma_json(relay, tmp_path, "generate", "a paper boat on a rainy street", "-a", "9:16")
    assert made["success"] is True and made["state"] == "completed"
    assert made["task_id"] == made["video_id"] and made["prompt"] == "a paper boat on a rainy street"
    assert (made["video_width"], made["video_height"]) == (752, 1360)
    assert httpx.get(made["video_url"]).content[4:8] == b"ftyp"  # a real MP4, served by DreamRelay
    assert made["data"][0]["video_url"] == made["video_url"] and made["data"][0]["model_name"] == "ray-v2"
    assert made["trace_id"]

    extended = luma_json(relay, tmp_path, "extend", made["video_id"], "--prompt", "it sails on")
    assert extended["success"] is True and extended["task_id"] != made["task_id"]
    assert extended["prompt"] == "it sails on"

    one = luma_json(relay, tmp_path, "task", extended["task_id"])
    assert one["id"] == extended["task_id"] and one["response"]["video_url"] == extended["video_url"]
    assert one["request"]["action"] == "extend" and one["request"]["video_id"] == made["video_id"]
    assert one["finished_at"] >= one["started_at"] >= one["created_at"] and one["elapsed"] >= 0

    both = luma_json(relay, tmp_path, "tasks", made["task_id"], extended["task_id"], "no-such-task")
    assert both["count"] == 2 and [i["id"] for i in both["items"]] == [made["task_id"], extended["task_id"]]

    waited = luma(relay, tmp_path, "wait", made["task_id"], "--interval", "1")
    assert waited.returncode == 0 and "completed" in waited.stdout, waited.stdout

    # The same task, read through the own format: one engine under both.
    with relay.client() as client:
        own = client.get(f"/luma/generations/{made['task_id']}").json()
    assert own["video"]["url"] == made["video_url"] and own["prompt"] == made["prompt"]


def test_the_cli_reports_a_wrong_token_and_unknown_task(relay: Relay, tmp_path: Path) -> None:
    refused = luma(relay, tmp_path, "task", "x", token="dr-wrong")
    assert refused.returncode == 1 and "Invalid API token" in refused.stdout
    missing = luma(relay, tmp_path, "task", "4665a07c-7641-4809-a133-10786201bb56")
    assert missing.returncode == 1 and "task_not_found" in missing.stdout
