"""DreamRelay benchmarks: `make bench` (or `.venv/bin/python bench/run.py`). See docs/performance.md."""
