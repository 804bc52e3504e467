"""`make bench`: every benchmark end to end, a table of figures beside their same-run baselines.

Options are environment variables (see bench/options.py), e.g. BENCH_QUICK=1, BENCH_SECONDS=5,
BENCH_CONNECTIONS=16, BENCH_ROUNDS=2, BENCH_GROWTH_MAX=1000000, BENCH_FOLLOW_TASKS=200,
BENCH_ONLY=api,profile,growth,following, BENCH_LOADGEN=python.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

if __name__ == "__main__":
    # Run as a script (bench/ is then sys.path[0]); the modules import each other as the `bench` package.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    sys.exit(importlib.import_module("bench.main").main())
