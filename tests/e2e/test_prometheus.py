"""A real Prometheus scrapes DreamRelay (two API processes and a worker on PostgreSQL); the alert rules
pass promtool's checks and fire on synthetic series."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Relay, free_port
from tests.e2e.test_scale import scale_settings, states, wait_until
from tests.support.processes import Process, environment, stopped_at_exit, wait_healthy

RULES = Path(__file__).resolve().parents[2] / "docs" / "deploy" / "prometheus"
PROMETHEUS, PROMTOOL = shutil.which("prometheus"), shutil.which("promtool")

needs_prometheus = pytest.mark.skipif(
    not (PROMETHEUS and PROMTOOL) and os.environ.get("CI") != "true",
    reason="Debian's prometheus package is missing (`make test` installs it as root)",
)


@needs_prometheus
def test_alert_rules_are_valid_and_each_fires_in_its_unit_test() -> None:
    assert PROMTOOL, "promtool is missing: `make test` installs Debian's prometheus package"
    checked = subprocess.run(
        [PROMTOOL, "check", "rules", "alerts.yml"], cwd=RULES, capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 10 rules found" in checked.stdout
    tested = subprocess.run(
        [PROMTOOL, "test", "rules", "alerts.test.yml"], cwd=RULES, capture_output=True, text=True
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr
    rule_names = {
        line.split(":", 1)[1].strip()
        for line in (RULES / "alerts.yml").read_text().splitlines()
        if line.strip().startswith("- alert:")
    }
    tested_names = {
        line.split(":", 1)[1].strip()
        for line in (RULES / "alerts.test.yml").read_text().splitlines()
        if line.strip().startswith("alertname:")
    }
    assert rule_names == tested_names


def query(prometheus: str, promql: str) -> float:
    answer = httpx.get(f"{prometheus}/api/v1/query", params={"query": promql}, timeout=10).json()
    assert answer["status"] == "success", answer
    result: list[dict[str, Any]] = answer["data"]["result"]
    return float(result[0]["value"][1]) if result else float("nan")


@needs_prometheus
def test_prometheus_counts_a_scripted_run_across_processes(tmp_path: Path, pg_url: str) -> None:
    assert PROMETHEUS, "prometheus is missing: `make test` installs Debian's prometheus package"
    sandbox_port = free_port()
    settings = scale_settings(
        tmp_path / "relay",
        pg_url,
        f"http://127.0.0.1:{sandbox_port}/dream-machine/v1",
        sandbox_queued_seconds=0.2,
        sandbox_dreaming_seconds=0.3,
        ledger_check_seconds=1.0,
        lease_seconds=6.0,
    )
    env = {**environment(settings), "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics")}
    logs = tmp_path / "logs"
    logs.mkdir()
    sandbox = Process(("sandbox", "--port", str(sandbox_port)), env, logs / "sandbox.log")
    api = Process(("serve", "--workers", "2", "--no-worker"), env, logs / "api.log")
    worker = Process(("worker",), env, logs / "worker.log")
    prometheus_port = free_port()
    url = f"http://127.0.0.1:{settings.port}"
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        f"rule_files: [{RULES / 'alerts.yml'}]\n"
        "scrape_configs:\n"
        f"  - job_name: dreamrelay\n    static_configs: [{{targets: ['127.0.0.1:{settings.port}']}}]\n"
    )
    with stopped_at_exit([sandbox, api, worker]):
        sandbox.start()
        api.start()
        wait_healthy(url, api, timeout=180)  # two processes import everything: slow on a busy machine
        worker.start()
        server = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{prometheus_port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=(logs / "prometheus.log").open("wb"),
        )
        prometheus = f"http://127.0.0.1:{prometheus_port}"
        try:
            wait_until(lambda: _ready(prometheus), 30, "prometheus ready")
            key = Relay(url=url, settings=settings, key="").new_key("scripted", balance=10**6)
            prompts = ["scripted"] * 4 + ["scripted [sandbox:fail]"] * 2
            ids = []
            for prompt in prompts:
                # A new connection each time, so the kernel spreads them over both API processes.
                answer = httpx.post(
                    f"{url}/luma/generations",
                    json={"user_prompt": prompt, "resolution": "540p"},
                    headers={"Authorization": f"Bearer {key}"},
                    timeout=60,
                )
                assert answer.status_code == 200, answer.text
                ids.append(answer.json()["id"])
            wait_until(
                lambda: set(states(url, key, ids).values()) <= {"completed", "failed"}, 120, "tasks terminal"
            )

            def counted() -> bool:
                return query(prometheus, 'sum(dreamrelay_tasks_finished_total{state="completed"})') == 4

            wait_until(counted, 30, "prometheus to see the finished tasks")
            assert query(prometheus, 'sum(dreamrelay_submits_total{format="luma", code="ok"})') == 6
            assert query(prometheus, 'sum(dreamrelay_tasks_finished_total{state="failed"})') == 2
            assert query(prometheus, 'sum(dreamrelay_upstream_requests_total{operation="submit"})') == 6
            assert query(prometheus, 'sum(dreamrelay_ledger_rows_total{kind="capture"})') == 4
            assert query(prometheus, 'sum(dreamrelay_ledger_rows_total{kind="release"})') == 2
            assert query(prometheus, 'max(dreamrelay_channel_up{channel="sandbox"})') == 1
            assert not query(prometheus, "sum(dreamrelay_tasks_in_flight) > 0") > 0  # empty or 0: none left
            wait_until(
                lambda: query(prometheus, "max(dreamrelay_workers_alive)") == 1, 30, "the worker's beat"
            )
            wait_until(
                lambda: query(prometheus, 'min(dreamrelay_check_ok{check="ledger"})') == 1,
                30,
                "a ledger check",
            )
            processes = query(prometheus, "count(count by (pid) (dreamrelay_build_info))")
            assert processes != processes or processes >= 1  # multiprocess gauges carry no pid label
            alerts = httpx.get(f"{prometheus}/api/v1/rules", timeout=10).json()["data"]["groups"][0]["rules"]
            assert len(alerts) == 10 and all(rule["health"] == "ok" for rule in alerts), alerts
        finally:
            server.terminate()
            server.wait(timeout=20)


def _ready(prometheus: str) -> bool:
    try:
        return httpx.get(f"{prometheus}/-/ready", timeout=2).status_code == 200
    except httpx.HTTPError:
        time.sleep(0.2)
        return False
