"""`make bench`: every benchmark end to end, a table of figures beside their same-run baselines.

Options are environment variables (see bench/options.py), e.g. BENCH_QUICK=1, BENCH_SECONDS=5,
BENCH_CONNECTIONS=16, BENCH_ROUNDS=2, BENCH_GROWTH_MAX=1000000, BENCH_FOLLOW_TASKS=200,
BENCH_CALLBACK_EVENTS=5000, BENCH_LIMIT_CALLS=20000, BENCH_LOADGEN=python,
BENCH_MEMORY_SUBMITS=10, BENCH_ONLY=api,profile,growth,following,lifecycle,money,callbacks,observability,
memory (any of them, comma-separated):
  lifecycle  submit → completed as a customer polling sees it; the 100-id batch on one connection
  money      submit with billing and limits on vs off (ratio); one rate-limit check, memory and Redis
  callbacks  state change → delivery delay; deliveries per second vs a plain aiohttp client
  memory     server RSS under 10 concurrent submits of two maximum-size images: idle, peak, 30 s after
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

if __name__ == "__main__":
    # Run as a script (bench/ is then sys.path[0]); the modules import each other as the `bench` package.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    sys.exit(importlib.import_module("bench.main").main())
