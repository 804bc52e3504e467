"""What an operator sees: the metric catalogue after a scripted run, the dashboard's series, one task's
life in the logs, and `dreamrelay status` — on both stores."""

from __future__ import annotations

import io
import json
import logging
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from dreamrelay import logs
from dreamrelay.cli import app as cli
from tests.conftest import Relay, make_settings, start_relay
from tests.support.receiver import running_receiver

pytestmark = pytest.mark.both_stores
DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "deploy" / "grafana" / "dreamrelay.json"
Sample = tuple[str, tuple[tuple[str, str], ...]]


def scrape(relay: Relay) -> dict[Sample, float]:
    text = httpx.get(f"{relay.url}/metrics", timeout=10).text
    values: dict[Sample, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            values[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return values


def names_exposed(relay: Relay) -> set[str]:
    names = set()
    for family in text_string_to_metric_families(httpx.get(f"{relay.url}/metrics", timeout=10).text):
        names.add(family.name)
        names.update(s.name for s in family.samples)
        if family.type == "counter":
            names.add(family.name + "_total")
        if family.type == "histogram":
            names.update(family.name + suffix for suffix in ("_bucket", "_sum", "_count"))
    return names


def value(values: dict[Sample, float], name: str, **labels: str) -> float:
    return values.get((name, tuple(sorted(labels.items()))), 0.0)


def wait_terminal(client: httpx.Client, task_id: str, timeout: float = 60) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        task: dict[str, object] = client.get(f"/luma/generations/{task_id}").json()
        if task["state"] in ("completed", "failed"):
            return task
        time.sleep(0.1)
    raise AssertionError(f"task {task_id} did not finish")


@pytest.fixture
def observed(tmp_path: Path) -> Iterator[Relay]:
    # A worker beats every lease_seconds / 3 and checks the ledger on a beat: at the default 60 s
    # lease, the first check (which two tests wait for) came 20 s after the start; at 15 s, after 5 s.
    settings = make_settings(
        tmp_path, allow_private_urls="127.0.0.0/8", ledger_check_seconds=0.5, lease_seconds=15.0
    )
    with start_relay(settings) as relay:
        yield relay


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    stream = io.StringIO()
    logs.configure("json", stream=stream)
    yield stream
    root.handlers[:] = handlers
    root.setLevel(level)


def test_metrics_answer_the_operators_questions(observed: Relay, store: str) -> None:
    before = scrape(observed)
    broke = observed.new_key("broke", balance=0)
    slow = observed.new_key("slow", balance=1000, rpm=1)
    with observed.client() as client:
        done = client.post("/luma/generations", json={"user_prompt": "a boat"}).json()
        doomed = client.post("/luma/generations", json={"user_prompt": "a boat [sandbox:fail]"}).json()
        assert wait_terminal(client, done["id"])["state"] == "completed"
        assert wait_terminal(client, doomed["id"])["state"] == "failed"
    with observed.client(broke) as client:
        assert client.post("/luma/generations", json={"user_prompt": "no money"}).status_code == 402
    with observed.client(slow) as client:
        statuses = [client.get("/dream-machine/v1/ping").status_code for _ in range(3)]
        assert 429 in statuses
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not value(
        scrape(observed), "dreamrelay_check_timestamp_seconds", check="ledger"
    ):
        time.sleep(0.2)
    after = scrape(observed)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("dreamrelay_submits_total", format="luma", code="ok") == 2
    assert grew("dreamrelay_submits_total", format="luma", code="insufficient_balance") == 1
    assert grew("dreamrelay_rate_limited_total", kind="rpm") >= 1
    assert (
        grew("dreamrelay_upstream_requests_total", channel="sandbox", operation="submit", outcome="ok") == 2
    )
    assert (
        grew("dreamrelay_upstream_request_duration_seconds_count", channel="sandbox", operation="submit") == 2
    )
    assert grew("dreamrelay_tasks_finished_total", state="completed") == 1
    assert grew("dreamrelay_tasks_finished_total", state="failed") == 1
    assert grew("dreamrelay_ledger_rows_total", kind="hold") == 2
    price = grew("dreamrelay_ledger_credits_total", kind="hold") / 2
    assert price > 0
    assert grew("dreamrelay_ledger_credits_total", kind="capture") == price
    assert grew("dreamrelay_ledger_credits_total", kind="release") == price
    assert (
        grew("dreamrelay_poll_lag_seconds_count", via="poll")
        + grew("dreamrelay_poll_lag_seconds_count", via="callback")
        == 2
    )
    assert grew("dreamrelay_finish_duration_seconds_count", kind="video") == 1
    # The gauges the store gives, the same on every process.
    assert value(after, "dreamrelay_channel_up", channel="sandbox", kind="sandbox") == 1
    assert value(after, "dreamrelay_channel_benched", channel="sandbox") == 0
    assert value(after, "dreamrelay_channel_consecutive_failures", channel="sandbox") == 0
    assert value(after, "dreamrelay_check_ok", check="ledger") == 1
    assert value(after, "dreamrelay_check_timestamp_seconds", check="ledger") > time.time() - 60
    assert value(after, "dreamrelay_workers_alive") == 1
    assert value(after, "dreamrelay_outbox_backlog") == 0
    assert not [k for k in after if k[0] == "dreamrelay_tasks_in_flight" and after[k]]
    assert (
        value(after, "dreamrelay_build_info", version="0.1.0", store=store.replace("postgres", "postgresql"))
        == 1
    )
    # No label value is an id.
    ids = {done["id"], doomed["id"]}
    assert not [k for k in after for _name, label in k[1] if label in ids]


def test_the_dashboard_names_only_series_that_exist(observed: Relay) -> None:
    with observed.client() as client:
        task = client.post("/luma/generations", json={"user_prompt": "for the dashboard"}).json()
        wait_terminal(client, task["id"])
    exposed = names_exposed(observed)
    dashboard = json.loads(DASHBOARD.read_text())
    named = {
        name
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
        for name in re.findall(r"\bdreamrelay_[a-z_]+", target["expr"])
    }
    assert len(named) >= 20
    assert named - exposed == set()


def test_in_flight_and_check_gauges_are_there_at_zero(tmp_path: Path) -> None:
    """A fresh relay, nothing in flight and no check run yet: every series is there (a dashboard shows
    0, not "No data"); the check is not failing, and its time says it never ran."""
    with start_relay(make_settings(tmp_path)) as relay:
        values = scrape(relay)
    for state in ("pending", "processing"):
        for channel in ("sandbox", ""):
            assert (("dreamrelay_tasks_in_flight", (("channel", channel), ("state", state)))) in values
            assert value(values, "dreamrelay_tasks_in_flight", state=state, channel=channel) == 0
    assert ("dreamrelay_check_ok", (("check", "ledger"),)) in values
    assert value(values, "dreamrelay_check_ok", check="ledger") == 1
    assert ("dreamrelay_check_timestamp_seconds", (("check", "ledger"),)) in values
    assert value(values, "dreamrelay_check_timestamp_seconds", check="ledger") == 0


def test_in_flight_tasks_show_by_state_and_channel(observed: Relay) -> None:
    with observed.client() as client:
        stuck = [
            client.post("/luma/generations", json={"user_prompt": f"wait {i} [sandbox:stall]"}).json()
            for i in range(3)
        ]
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if all(client.get(f"/luma/generations/{t['id']}").json()["state"] == "processing" for t in stuck):
                break
            time.sleep(0.1)
    values = scrape(observed)
    assert value(values, "dreamrelay_tasks_in_flight", state="processing", channel="sandbox") == 3


def test_one_task_life_is_one_grep_and_no_secret_is_logged(observed: Relay, log_lines: io.StringIO) -> None:
    with running_receiver() as receiver, observed.client() as client:
        task = client.post(
            "/luma/generations", json={"user_prompt": "follow me", "notify_hook": f"{receiver.url}/hook"}
        ).json()
        wait_terminal(client, task["id"])
        receiver.wait_for(2)
        time.sleep(0.3)  # the deliverer logs right after the receiver answers
    entries = [json.loads(line) for line in log_lines.getvalue().splitlines()]
    mine = [e for e in entries if e.get("task_id") == task["id"]]
    messages = [str(e["message"]) for e in mine]
    text = "\n".join(messages)
    assert "generate ray-v2 (luma), holds" in messages[0]
    assert "channel sandbox took it as upstream" in text
    assert "pending → processing" in text and "processing → completed" in text
    assert re.search(r"callback \S+ \(completed\) delivered: 200", text)
    assert all(
        e.get("channel") == "sandbox" for e in mine if "→" in str(e["message"]) or "took" in str(e["message"])
    )
    whole = log_lines.getvalue()
    for secret in (observed.key, observed.admin().headers["authorization"].removeprefix("Bearer ")):
        assert secret not in whole


def test_status_shows_one_screen(observed: Relay, monkeypatch: pytest.MonkeyPatch) -> None:
    with observed.client() as client:
        client.post("/luma/generations", json={"user_prompt": "hang [sandbox:stall]"})
    for name, setting in observed.settings.model_dump(exclude_none=True).items():
        monkeypatch.setenv(f"DREAMRELAY_{name.upper()}", str(setting))
    deadline = time.monotonic() + 20
    while True:
        result = CliRunner().invoke(cli, ["status", "--json"])
        assert result.exit_code == 0, result.output
        status = json.loads(result.output)
        if (status["checks"] and status["workers"]) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert [c["name"] for c in status["channels"]] == ["sandbox"] and status["channels"][0]["up"]
    assert sum(row["count"] for row in status["in_flight"]) == 1
    assert status["outbox"]["waiting"] == 0
    assert status["checks"][0]["name"] == "ledger" and status["checks"][0]["ok"]
    assert len(status["workers"]) == 1
    screen = CliRunner().invoke(cli, ["status"]).output
    assert "sandbox" in screen and "Ledger check" in screen and "balanced" in screen
    assert "Workers alive: 1" in screen
