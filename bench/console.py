"""The web console's page weight and time to first render, in Debian's Chromium, on loopback.

Run: `.venv/bin/python bench/console.py` (needs /usr/bin/chromium; `make test` installs it). It starts
`dreamrelay serve` on a fresh data directory, makes one real task and copies it to 100, then loads the
operator's dashboard and the customer's task grid, cold (empty cache) and warm (stylesheet and script
cached), and prints what went over the wire and when the first paint came, as medians of ROUNDS loads.
A pair of loads runs under a throttled network (SLOW) to show what a slow connection costs, and the
dashboard is loaded once more with BIG_STORE more tasks in the store.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
from playwright.sync_api import Browser, sync_playwright
from tests.support.browser import CHROMIUM, launch

from bench import seed, servers
from dreamrelay.local_secrets import ensure_admin_token
from dreamrelay.settings import Settings

TASKS = 100
BIG_STORE = 50_000  # then the dashboard again, with this many tasks in the store
ROUNDS = 5
# A slow mobile connection: 1.6 Mbit/s down, 750 kbit/s up, 150 ms round trip.
SLOW = {"offline": False, "latency": 150, "downloadThroughput": 200_000, "uploadThroughput": 94_000}

MEASURE = """() => {
  const nav = performance.getEntriesByType('navigation')[0];
  const paint = performance.getEntriesByType('paint').find(p => p.name === 'first-contentful-paint');
  const resources = performance.getEntriesByType('resource');
  const kinds = {};
  for (const r of resources) {
    const kind = r.initiatorType;
    kinds[kind] = (kinds[kind] || 0) + r.transferSize;
  }
  return {
    html_wire: nav.transferSize, html_gzip: nav.encodedBodySize, html_raw: nav.decodedBodySize,
    ttfb: nav.responseStart, fcp: paint ? paint.startTime : null, dcl: nav.domContentLoadedEventEnd,
    load: nav.loadEventEnd, resources: resources.length, by_kind: kinds,
    total_wire: nav.transferSize + resources.reduce((s, r) => s + r.transferSize, 0),
  };
}"""


def make_tasks(url: str, key: str, data_dir: Path) -> dict[str, Any]:
    """One real task through the sandbox, then TASKS - 1 copies of its row (same media)."""
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as client:
        task = client.post("/luma/generations", json={"user_prompt": "a paper boat on a rainy street"}).json()
        for _ in range(600):
            if client.get(f"/luma/generations/{task['id']}").json()["state"] == "completed":
                break
            time.sleep(0.1)
        else:
            raise RuntimeError("the benchmark's task did not complete")
    template = seed.task_rows(data_dir, None, [task["id"]])[0]
    seed.insert_copies(data_dir, None, template, TASKS - 1)
    return template


def signed_in(browser: Browser, url: str, secret: str) -> Any:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(url + "/console/login")
    page.fill("#secret", secret)
    page.click("form[action='/console/login'] button[type=submit]")
    page.wait_for_load_state()
    return context


def measure(context: Any, url: str, *, cold: bool, slow: bool = False) -> dict[str, Any]:
    page = context.new_page()
    cdp = context.new_cdp_session(page)
    cdp.send("Network.enable")
    if cold:
        cdp.send("Network.clearBrowserCache")
    if slow:
        cdp.send("Network.emulateNetworkConditions", SLOW)
    page.goto(url, wait_until="load")
    page.wait_for_timeout(300)  # late resources (lazy images) report too
    figures: dict[str, Any] = page.evaluate(MEASURE)
    page.close()
    return figures


def median(rows: list[dict[str, Any]], key: str) -> float:
    return float(statistics.median(r[key] for r in rows if r[key] is not None))


def report(name: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    last = rows[-1]
    out = {
        "page": name,
        "html_bytes_raw": last["html_raw"],
        "html_bytes_gzip": last["html_gzip"],
        "total_bytes_on_wire": int(median(rows, "total_wire")),
        "by_kind": last["by_kind"],
        "requests": 1 + last["resources"],
        "ttfb_ms": round(median(rows, "ttfb"), 1),
        "first_contentful_paint_ms": round(median(rows, "fcp"), 1),
        "dom_content_loaded_ms": round(median(rows, "dcl"), 1),
        "load_ms": round(median(rows, "load"), 1),
    }
    print(
        f"{name:34} html {out['html_bytes_raw']:>7} B raw / {out['html_bytes_gzip']:>6} B gzip;"
        f" on the wire {out['total_bytes_on_wire']:>8} B in {out['requests']:>3} requests;"
        f" TTFB {out['ttfb_ms']:>6} ms, first paint {out['first_contentful_paint_ms']:>7} ms,"
        f" load {out['load_ms']:>7} ms"
    )
    return out


def main() -> int:
    if not CHROMIUM.exists():
        print("needs /usr/bin/chromium (apt-get install chromium)", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="dreamrelay-console-bench-") as tmp:
        data_dir = Path(tmp)
        prepared = seed.prepare_store(data_dir)
        token, _ = ensure_admin_token(Settings(data_dir=data_dir))
        env = servers.relay_env(data_dir, servers.free_port())
        relay = servers.start_relay(env, data_dir / "logs")
        try:
            template = make_tasks(relay.url, prepared.key, data_dir)
            results = []
            with sync_playwright() as p:
                browser = launch(p)
                pages = [
                    ("operator dashboard", token, "/console/admin"),
                    (f"customer task grid ({TASKS} tasks)", prepared.key, "/console/me"),
                ]
                for name, secret, path in pages:
                    context = signed_in(browser, relay.url, secret)
                    target = relay.url + path
                    for cold in (True, False):
                        rows = [measure(context, target, cold=cold) for _ in range(ROUNDS)]
                        results.append(report(f"{name}, {'cold' if cold else 'warm'}", rows))
                    rows = [measure(context, target, cold=True, slow=True) for _ in range(2)]
                    results.append(report(f"{name}, cold, slow 3G", rows))
                    context.close()
                seed.insert_copies(data_dir, None, template, BIG_STORE)
                context = signed_in(browser, relay.url, token)
                rows = [measure(context, relay.url + "/console/admin", cold=False) for _ in range(ROUNDS)]
                results.append(report(f"operator dashboard, {BIG_STORE + TASKS:,} tasks", rows))
                context.close()
                browser.close()
        finally:
            relay.stop()
    out = Path(__file__).resolve().parent / "results"
    out.mkdir(exist_ok=True)
    (out / "console.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"written to {out / 'console.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
