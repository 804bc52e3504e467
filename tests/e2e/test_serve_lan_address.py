"""`dreamrelay serve --host <LAN address>`: the relay's own calls reach its mounted sandbox (every submit
was a 503: the sandbox's loopback rule refused them), and another host of that network still finds no
sandbox there, nor /metrics without a token. Two network namespaces of the test's own play the machine
and its neighbour."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from dreamrelay.settings import Settings
from tests.support.netns import Host, two_hosts
from tests.support.processes import Process, environment, stopped_at_exit

# Run on one of the hosts: waits for the relay, then does what the arguments ask; prints JSON.
CLIENT = """
import json, sys, time
import httpx

url, what, key = sys.argv[1], sys.argv[2], sys.argv[3]
deadline = time.monotonic() + 120
while True:
    try:
        if httpx.get(url + "/readyz", timeout=2).status_code == 200:
            break
    except httpx.HTTPError:
        pass
    if time.monotonic() > deadline:
        raise SystemExit("the relay did not become ready")
    time.sleep(0.2)
auth = {"Authorization": "Bearer " + key}
if what == "submit":
    made = httpx.post(url + "/luma/generations", json={"user_prompt": "a lan boat"}, headers=auth, timeout=60)
    states = []
    while made.status_code == 200 and time.monotonic() < deadline:
        states.append(httpx.get(url + "/luma/generations/" + made.json()["id"], headers=auth).json()["state"])
        if states[-1] in ("completed", "failed"):
            break
        time.sleep(0.2)
    print(json.dumps({"submit": made.status_code, "state": states[-1] if states else None}))
else:
    sandbox = httpx.get(url + "/sandbox/dream-machine/v1/ping", headers=auth, timeout=10)
    health = httpx.get(url + "/healthz", timeout=10)
    bare = httpx.get(url + "/metrics", timeout=10)
    token = {"Authorization": "Bearer " + sys.argv[4]}
    scraped = httpx.get(url + "/metrics", headers=token, timeout=10)
    print(json.dumps({
        "sandbox": sandbox.status_code,
        "health": health.status_code,
        "metrics": [bare.status_code, scraped.status_code, "dreamrelay_build_info" in scraped.text],
    }))
"""


METRICS_TOKEN = "drm-lan-metrics-token"


def client(host: Host, url: str, what: str, key: str) -> dict[str, object]:
    done = subprocess.run(
        [*host.run, sys.executable, "-c", CLIENT, url, what, key, METRICS_TOKEN],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr
    answer: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return answer


def test_serve_on_a_lan_address_reaches_its_own_sandbox_and_no_neighbour_does(tmp_path: Path) -> None:
    with two_hosts() as (machine, neighbour):
        settings = Settings(
            data_dir=tmp_path,
            host=machine.address,
            port=8000,
            sandbox_queued_seconds=0,
            sandbox_dreaming_seconds=0,
            metrics_token=METRICS_TOKEN,
        )
        server = Process(("serve",), environment(settings), tmp_path / "serve.log", prefix=machine.run)
        url = f"http://{machine.address}:8000"
        with stopped_at_exit([server]):
            server.start()
            # The first-start key is written before the server listens; the client waits for /readyz.
            ours = client(machine, url, "submit", _first_key(tmp_path, server))
            sandbox_key = (tmp_path / "sandbox_key").read_text().strip()
            theirs = client(neighbour, url, "sandbox", sandbox_key)
            server.terminate()
        assert ours == {"submit": 200, "state": "completed"}, server.log()
        # Another host: no sandbox, and /metrics only with the token (issue 26.18).
        assert theirs == {"sandbox": 404, "health": 200, "metrics": [401, 200, True]}


def _first_key(data_dir: Path, server: Process) -> str:
    import time

    deadline = time.monotonic() + 120
    path = data_dir / "first_start_key"
    while not path.exists():
        assert server.popen is not None and server.popen.poll() is None, server.log()
        assert time.monotonic() < deadline, server.log()
        time.sleep(0.1)
    return path.read_text().strip()
