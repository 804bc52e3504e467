"""Run the selected sections, print the tables, write bench/results/bench-<time>.json (and latest.json)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import (
    api,
    callbacks,
    finishing,
    following,
    growth,
    inflight,
    lifecycle,
    memory,
    money,
    observability,
    report,
    submit,
)
from bench.load import LoadGenerator
from bench.options import Options

# Issue 15's targets, as the CPU ratio bare ÷ relay per request.
TARGETS = (
    ("floor GET /healthz (no auth, no DB)", 0.6),
    ("batch POST /luma/tasks, 100 ids", 0.5),
    ("get GET /luma/generations/{id}", 0.4),
    ("get GET /dream-machine/v1/generations/{id}", 0.4),
    # Within 10 %: one process's CPU per request ÷ two processes' ≥ 1/1.1.
    ("batch POST /luma/tasks, 100 ids, serve --workers 2 vs 1 process", 0.91),
)
RESULTS = Path(__file__).resolve().parent / "results"


def main() -> int:
    opts = Options.from_env()
    load = LoadGenerator(prefer_python=opts.python_load)
    facts = report.machine()
    began = time.monotonic()
    print(
        f"DreamRelay benchmarks — {facts['nproc']} cores {facts['cpu_model']}, {facts['ram_gib']} GiB, "
        f"Python {facts['python']}; load generator: {load.name}",
        flush=True,
    )
    if not load.wrk:
        print(
            "NOTE: wrk could not be installed; the Python load generator shares the 2 cores with the server "
            "and saturates before a bare ASGI app does, so ratios are compressed towards 1.",
            flush=True,
        )
    print(
        f"sections {', '.join(opts.sections)}; {opts.seconds:g} s runs, {opts.rounds} alternated rounds, "
        f"{opts.connections} connections{'; QUICK' if opts.quick else ''}",
        flush=True,
    )
    work = Path(tempfile.mkdtemp(prefix="dreamrelay-bench-"))
    out: dict[str, Any] = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": facts,
        "load_generator": load.name,
        "options": opts.as_dict(),
        "workdir": str(work),
    }
    failed = False
    try:
        if "api" in opts.sections or "profile" in opts.sections:
            print("\n== 1–3: batch, get one, submit (each against a bare ASGI app) ==", flush=True)
            result = api.run(opts, load, work, RESULTS)
            result.pop("_objects", None)
            out["api"] = result
        if "growth" in opts.sections:
            print(f"\n== 4: growth, batch of 100 ids, sizes {opts.growth_sizes} ==", flush=True)
            out["growth"] = growth.run(opts, load, work)
        if "following" in opts.sections:
            print("\n== 5: following ==", flush=True)
            out["following"] = following.run(opts, work)
        if "lifecycle" in opts.sections:
            print(
                "\n== 6: lifecycle, submit → completed and the 100-id batch on one connection ==", flush=True
            )
            out["lifecycle"] = lifecycle.run(opts, load, work)
        if "money" in opts.sections:
            print(
                "\n== 7: money, submit with billing and limits on vs off; one rate-limit check ==", flush=True
            )
            out["money"] = money.run(opts, load, work)
        if "callbacks" in opts.sections:
            print("\n== 8: callbacks, delay to a local receiver and deliveries per second ==", flush=True)
            out["callbacks"] = callbacks.run(opts, work)
        if "observability" in opts.sections:
            print("\n== 9: observability: metrics, logs, /metrics at 1,000 in flight ==", flush=True)
            out["observability"] = observability.run(work)
        if "memory" in opts.sections:
            print("\n== 10: memory, resident set under concurrent maximum-size image submits ==", flush=True)
            out["memory"] = memory.run(opts, work)
        if "finishing" in opts.sections:
            print("\n== 11: finishing a task, CPU per finished video ==", flush=True)
            out["finishing"] = finishing.run(opts, work)
        if "inflight" in opts.sections:
            print(
                "\n== 13: in flight, pending vs finished reads; submit as in-flight work grows ==", flush=True
            )
            out["inflight"] = inflight.run(opts, load, work)
        if "submit" in opts.sections:
            print("\n== 12: submit, relay CPU per text-to-video submit, SQLite and PostgreSQL ==", flush=True)
            out["submit"] = submit.run(opts, load, work, RESULTS)
    except Exception as exc:
        failed = True
        out["error"] = repr(exc)
        print(f"\nBENCHMARK FAILED: {exc!r} (logs in {work / 'logs'})", flush=True)
        raise
    finally:
        out["seconds"] = round(time.monotonic() - began, 1)
        RESULTS.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        text = json.dumps(out, indent=2, default=str)
        (RESULTS / f"bench-{stamp}.json").write_text(text)
        (RESULTS / "latest.json").write_text(text)
        if not failed and not os.environ.get("BENCH_KEEP"):
            shutil.rmtree(work, ignore_errors=True)
    print_tables(out, opts)
    print(f"\n{out['seconds']:.0f} s in all; results in {RESULTS / 'latest.json'}", flush=True)
    return 0


def print_tables(out: dict[str, Any], opts: Options) -> None:
    print(f"\n## Results ({out['load_generator']}, {opts.seconds:g} s × {opts.rounds} rounds per side)\n")
    api_part = out.get("api", {})
    if api_part.get("comparisons"):
        print(report.api_table(api_part["comparisons"]))
        print()
        for needle, target in TARGETS:
            for c in api_part["comparisons"]:
                if needle == c["name"]:
                    verdict = "meets" if c["cpu_ratio"] >= target else "is below"
                    print(f"{c['name']}: CPU ratio {c['cpu_ratio']:.2f} {verdict} the {target} target.")
    if out.get("growth"):
        print("\n" + report.growth_table(out["growth"], opts.connections))
    if out.get("following"):
        print("\n" + report.following_table(out["following"]))
    if out.get("lifecycle"):
        print("\n### Lifecycle (issue 2)\n\n" + report.lifecycle_table(out["lifecycle"]))
    if out.get("money"):
        print("\n### Money (issue 3)\n\n" + report.money_table(out["money"]))
    if out.get("callbacks"):
        print("\n### Callbacks (issue 6)\n\n" + report.callbacks_table(out["callbacks"]))
    if out.get("observability"):
        print("\n### Observability (issue 17)\n\n" + observability.table(out["observability"]))
    if out.get("memory"):
        print("\n### Memory under image submits (issue 12)\n\n" + memory.table(out["memory"]))
    if out.get("submit"):
        print("\n### Submit, relay CPU per text-to-video submit (issue 15)\n\n" + submit.table(out["submit"]))
