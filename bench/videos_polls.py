"""The lines a customer writes with the unchanged openai SDKs to get a video file (docs/customers.md §7's
Python and Node examples, which tests run as written), then requests per completed task of the openai SDK's
`create_and_poll` on /v1/videos: with the server's
`openai-poll-after-ms` hint (the SDK's default) and without it (`poll_interval_ms=1000`, what the SDK
waits when no hint comes), and how late each saw the finished video. The sandbox takes
BENCH_VIDEO_QUEUED + BENCH_VIDEO_DREAMING seconds a task; a few tasks first teach the relay how long.

Run: `.venv/bin/python -m bench.videos_polls` (prints the figures; no assertion).
"""

from __future__ import annotations

import os
import re
import statistics
import tempfile
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx2  # the transport openai 3.51 is built on
import openai

from bench import seed, servers

QUEUED = float(os.environ.get("BENCH_VIDEO_QUEUED", "2"))
DREAMING = float(os.environ.get("BENCH_VIDEO_DREAMING", "18"))
TASKS = int(os.environ.get("BENCH_VIDEO_TASKS", "4"))


DOC = Path(__file__).resolve().parents[1] / "docs" / "customers.md"


def sdk_lines() -> dict[str, tuple[int, int]]:
    """language → (non-blank lines, of them imports) of §7's example that writes a video file."""
    section = DOC.read_text().split("## 7.", 1)[1]
    counted = {}
    for language, fence in (("Python", "python"), ("Node", "js")):
        found = re.search(rf"```{fence}\n(.*?)```", section, re.DOTALL)
        assert found is not None, f"no {fence} example in docs/customers.md §7"
        lines = [line for line in found[1].splitlines() if line.strip()]
        imports = [line for line in lines if line.startswith(("import ", "from "))]
        counted[language] = (len(lines), len(imports))
    return counted


def one(base: str, key: str, hinted: bool) -> tuple[int, float]:
    """(requests the SDK sent, seconds from the task's completion to the SDK seeing it)."""
    sent = 0

    def count(request: httpx2.Request) -> None:
        nonlocal sent
        sent += 1

    http = httpx2.Client(event_hooks={"request": [count]}, timeout=60)
    with openai.OpenAI(api_key=key, base_url=f"{base}/v1", http_client=http) as client:
        options = {} if hinted else {"poll_interval_ms": 1000}
        video = client.videos.create_and_poll(prompt="a harbour at dusk", model="ray-2", **options)  # type: ignore[arg-type]
        seen = time.time()
    assert video.status == "completed" and video.completed_at is not None, video
    return sent, seen - video.completed_at


def main() -> None:
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    for language, (lines, imports) in sdk_lines().items():
        print(f"{language}: {lines} lines to a video file, {imports} of them imports")
    work = Path(tempfile.mkdtemp(prefix="bench-videos-"))
    prepared = seed.prepare_store(work / "data")
    env = servers.relay_env(
        work / "data",
        servers.free_port(),
        sandbox_queued_seconds=str(QUEUED),
        sandbox_dreaming_seconds=str(DREAMING),
    )
    relay = servers.start_relay(env, work / "logs", name="relay-videos")
    try:
        with ThreadPoolExecutor(3) as pool:  # the relay learns how long such a task takes
            list(pool.map(lambda _: one(relay.url, prepared.key, True), range(3)))
        print(f"sandbox task ≈ {QUEUED + DREAMING:.0f} s; {TASKS} tasks each way, one at a time")
        for hinted in (True, False):
            runs = [one(relay.url, prepared.key, hinted) for _ in range(TASKS)]
            requests = statistics.median(r for r, _ in runs)
            late = statistics.median(s for _, s in runs)
            label = "with the hint (SDK default)" if hinted else "without it (poll_interval_ms=1000)"
            print(f"create_and_poll {label}: {requests:.0f} requests per task, seen {late:.1f} s after done")
    finally:
        relay.stop()


if __name__ == "__main__":
    main()
