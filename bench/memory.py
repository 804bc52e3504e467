"""Issue 12 item 3's figure: resident memory of the server under concurrent maximum-size image submits.

One relay (`dreamrelay serve`, SQLite, worker on, in-process sandbox kept queued so no render runs).
Its resident set (VmRSS from /proc) is sampled every 50 ms: idle before the load, the peak while
`BENCH_MEMORY_SUBMITS` (10) submits run at once, each carrying two images (`image_url` and
`image_end_url` as data URIs), and again `SETTLE_SECONDS` (30 s) after the last answer. Idle is read
after one small image task (what the first submit sets up for good is not memory the load left behind).

Two payloads, each a PNG that compresses to very little (a flat colour), so the upload is small and
only decoding costs memory:
- "oversize": 7000 × 7000 pixels, the image of the issue (≈ 49 megapixels, 143 kB);
- "largest accepted": the largest image the relay takes (`probe.MAX_INPUT_SIDE` square).
The same-run baseline is the idle figure; the target is peak ≤ idle + 300 MB and back to idle (+ 20 MB)
within 30 s.
"""

from __future__ import annotations

import base64
import io
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from PIL import Image

from bench import seed, servers
from bench.options import Options

SETTLE_SECONDS = 30.0
SAMPLE_SECONDS = 0.05
TARGET_GROWTH_MIB = 300
OVERSIZE_SIDE = 7000
LARGEST_SIDE_FALLBACK = 4096  # older code has no MAX_INPUT_SIDE: the same square is used


def _largest_side() -> int:
    try:
        from dreamrelay.media.probe import MAX_INPUT_SIDE
    except ImportError:
        return LARGEST_SIDE_FALLBACK
    return int(MAX_INPUT_SIDE)


def flat_png(side: int) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (side, side), (40, 90, 160)).save(buffer, "PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


class Sampler:
    """VmRSS of one process every SAMPLE_SECONDS, in a thread; the peak since the last reset."""

    def __init__(self, process: servers.Process) -> None:
        self.process = process
        self.peak_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def rss_kib(self) -> int:
        return self.process.memory_kib()["VmRSS"]

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_kib = max(self.peak_kib, self.rss_kib())
            time.sleep(SAMPLE_SECONDS)

    def __enter__(self) -> Sampler:
        self.peak_kib = self.rss_kib()
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()


def one_payload(relay: servers.Process, key: str, image: str, submits: int) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {key}"}
    body = {"user_prompt": "a memory test", "resolution": "540p", "image_url": image, "image_end_url": image}
    # One small image task first: what the first submit sets up for good (threads, codecs, statement
    # caches) is the server's idle state, not memory the big images left behind.
    small = {**body, "image_url": flat_png(64), "image_end_url": flat_png(64)}
    warm = httpx.post(f"{relay.url}/luma/generations", json=small, headers=headers, timeout=60)
    warm.raise_for_status()
    relay.wait_idle()
    idle = Sampler(relay).rss_kib()

    def submit(_i: int) -> int:
        with httpx.Client(timeout=300) as client:
            return client.post(f"{relay.url}/luma/generations", json=body, headers=headers).status_code

    started = time.monotonic()
    with Sampler(relay) as sampler, ThreadPoolExecutor(submits) as pool:
        statuses = list(pool.map(submit, range(submits)))
        answered = time.monotonic() - started
        time.sleep(1.0)  # work that outlives the answers (none expected) still counts
        peak = sampler.peak_kib
    settle_started = time.monotonic()
    back_after = None
    while time.monotonic() - settle_started < SETTLE_SECONDS:
        if back_after is None and Sampler(relay).rss_kib() <= idle + 20 * 1024:
            back_after = time.monotonic() - settle_started
        time.sleep(0.5)
    after = Sampler(relay).rss_kib()
    return {
        "statuses": {str(s): statuses.count(s) for s in sorted(set(statuses))},
        "payload_kib_per_submit": round(len(body["image_url"]) * 2 / 1024, 1),
        "answered_seconds": round(answered, 2),
        "idle_mib": round(idle / 1024, 1),
        "peak_mib": round(peak / 1024, 1),
        "growth_mib": round((peak - idle) / 1024, 1),
        "after_30s_mib": round(after / 1024, 1),
        "held_after_30s_mib": round((after - idle) / 1024, 1),
        "back_to_idle_seconds": None if back_after is None else round(back_after, 1),
        "meets_target": (peak - idle) / 1024 <= TARGET_GROWTH_MIB and after - idle <= 20 * 1024,
    }


def run(opts: Options, work: Path) -> dict[str, Any]:
    submits = opts.memory_submits
    results: dict[str, Any] = {"submits": submits, "images_per_submit": 2}
    for name, side in (("oversize", OVERSIZE_SIDE), ("largest accepted", _largest_side())):
        # A fresh relay for each payload: what one leaves behind must not be the next one's idle.
        base = work / f"memory-{side}"
        prepared = seed.prepare_store(base)
        # Queued for good: no render competes for memory, only intake (fetch, decode, store) is measured.
        env = servers.relay_env(base, servers.free_port(), sandbox_queued_seconds="100000")
        relay = servers.start_relay(env, work / "logs", name=f"relay-memory-{side}")
        try:
            print(f"  {name}: {submits} submits of two {side}×{side} PNGs at once", flush=True)
            result = one_payload(relay, prepared.key, flat_png(side), submits)
        finally:
            relay.stop()
        result["side"] = side
        results[name] = result
        print(
            f"    answers {result['statuses']}; RSS idle {result['idle_mib']} MiB, "
            f"peak {result['peak_mib']} MiB (+{result['growth_mib']}), "
            f"30 s later {result['after_30s_mib']} MiB",
            flush=True,
        )
    return results


def table(results: dict[str, Any]) -> str:
    lines = [
        "| payload | answers | idle MiB | peak MiB | growth MiB | 30 s after MiB | back to idle | target |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name in ("oversize", "largest accepted"):
        r = results.get(name)
        if not r:
            continue
        back = "never" if r["back_to_idle_seconds"] is None else f"{r['back_to_idle_seconds']} s"
        answers = ", ".join(f"{n}×{s}" for s, n in r["statuses"].items())
        verdict = "met" if r["meets_target"] else "missed"
        lines.append(
            f"| {name} ({r['side']}², ×{results['submits']}) | {answers} | {r['idle_mib']} | "
            f"{r['peak_mib']} | {r['growth_mib']} | {r['after_30s_mib']} | {back} | {verdict} |"
        )
    return "\n".join(lines)
