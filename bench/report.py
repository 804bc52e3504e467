"""The printed tables (Markdown, so docs/performance.md can take them as they are) and machine facts."""

from __future__ import annotations

import os
import platform
import subprocess
from typing import Any


def machine() -> dict[str, Any]:
    model = "?"
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_kib = 0
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    try:
        wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False).stdout.split("\n")[0]
    except OSError:
        wrk = "absent"
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "ram_gib": round(mem_kib / 1024 / 1024, 1),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "wrk": wrk.strip(),
    }


def _table(head: list[str], rows: list[list[str]]) -> str:
    widths = [
        max(len(head[i]), *(len(r[i]) for r in rows)) if rows else len(head[i]) for i in range(len(head))
    ]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)) + " |"
    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    body = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in rows]
    return "\n".join([line, rule, *body])


def api_table(comparisons: list[dict[str, Any]]) -> str:
    """Server CPU per request leads (median of the rounds), as the ratio bare ÷ relay; req/s and
    latency follow as secondary columns."""
    head = [
        "benchmark",
        "CPU ratio",
        "relay CPU ms/req",
        "bare CPU ms/req",
        "resp bytes",
        "relay req/s",
        "bare req/s",
        "req/s ratio",
        "relay p50 ms",
        "relay p99 ms",
        "bare p50 ms",
        "non-200",
        "load avg",
    ]
    rows = []
    for c in comparisons:
        cand, base = c["candidate"], c["baseline"]
        rows.append(
            [
                c["name"],
                f"{c.get('cpu_ratio', 0.0):.2f}",
                f"{cand.get('server_cpu_ms_per_request_median', cand['server_cpu_ms_per_request']):.3f}",
                f"{base.get('server_cpu_ms_per_request_median', base['server_cpu_ms_per_request']):.3f}",
                f"{c['response_bytes']:,}",
                f"{cand['rps']:,.0f}",
                f"{base['rps']:,.0f}",
                f"{c['ratio_rps']:.2f}",
                f"{cand['p50_ms']:.2f}",
                f"{cand['p99_ms']:.2f}",
                f"{base['p50_ms']:.2f}",
                f"{cand['non_200_or_errors']}/{base['non_200_or_errors']}",
                f"{c.get('load_average', [0.0])[0]:.1f}",
            ]
        )
    return _table(head, rows)


def growth_table(growth: dict[str, Any], connections: int) -> str:
    head = [
        "store",
        "tasks",
        "p50 ms (1 conn)",
        "p99 ms (1 conn)",
        f"req/s ({connections} conns)",
        f"p50 ms ({connections} conns)",
        "non-200",
        "store size",
        "relay RSS MiB",
    ]
    rows = []
    for backend in ("sqlite", "postgresql"):
        data = growth.get(backend)
        if not data:
            continue
        if "skipped" in data:
            rows.append([backend, "skipped: " + data["skipped"], *[""] * (len(head) - 2)])
            continue
        for p in data["points"]:
            c1, loaded = p["c1"], p["loaded"]
            bad = c1["non_200"] + c1["errors"] + (loaded["non_200"] + loaded["errors"] if loaded else 0)
            rows.append(
                [
                    backend,
                    f"{p['tasks']:,}",
                    f"{c1['p50_ms']:.2f}",
                    f"{c1['p99_ms']:.2f}",
                    f"{loaded['rps']:,.0f}" if loaded else "not run",
                    f"{loaded['p50_ms']:.2f}" if loaded else "not run",
                    str(bad),
                    f"{p['store_bytes'] / 1024**2:,.0f} MiB",
                    f"{p['relay_memory_kib'].get('VmRSS', 0) / 1024:.0f}",
                ]
            )
    return _table(head, rows)


def following_table(modes: dict[str, dict[str, Any]]) -> str:
    head = ["figure", *(f"{name}" for name in modes)]
    runs = list(modes.values())

    def row(label: str, cell: Any) -> list[str]:
        return [label, *(cell(f) for f in runs)]

    rows = [
        row(
            "tasks (completed / submitted)",
            lambda f: f"{f['completed']} / {f['tasks']} at {f['rate_per_s']:g}/s",
        ),
        row("sandbox timings", lambda f: f"{f['sandbox_queued_s']:g} s + {f['sandbox_dreaming_s']:g} s"),
        row("upstream requests per completed task", lambda f: str(f["upstream_requests_per_completed"])),
        row(
            "  by kind",
            lambda f: ", ".join(f"{k} {v}" for k, v in f["upstream_requests_per_completed_by_kind"].items()),
        ),
        row("one poll per task every 15 s would need", lambda f: str(f["every_15s_requests_per_completed"])),
        row("tasks.poll_count mean (non-final polls)", lambda f: str(f["poll_count_mean"])),
        row(
            "lag sandbox completed → relay completed",
            lambda f: f"median {f['lag_ms']['median']} ms, p99 {f['lag_ms']['p99']} ms",
        ),
        row("  (every-15-s polling: median lag)", lambda f: f"{f['every_15s_lag_ms_median']:.0f} ms"),
        row(
            "submit → completed in relay",
            lambda f: f"median {f['turnaround_s']['median']} s, p99 {f['turnaround_s']['p99']} s",
        ),
        row(
            "submit latency at that rate",
            lambda f: f"median {f['submit_ms']['median']} ms, p99 {f['submit_ms']['p99']} ms",
        ),
        row("relay RSS after", lambda f: f"{f['relay_memory_kib'].get('VmRSS', 0) / 1024:.0f} MiB"),
    ]
    return _table(head, rows)


def lifecycle_table(life: dict[str, Any]) -> str:
    head = ["figure", "tasks", "median", "p99", "min – max", "baseline / note"]
    rows = []
    for t in life["timings"]:
        seen, stored = t["customer_s"], t["store_s"]
        rows.append(
            [
                f"submit → completed, sandbox {t['timings']} (GET every {life['poll_every_ms']:g} ms)",
                f"{t['tasks']} ({t['submitted']})",
                f"{seen['median']:.3f} s",
                f"{seen['p99']:.3f} s",
                f"{seen['min']:.3f} – {seen['max']:.3f} s",
                f"sandbox alone {t['sandbox_s']:g} s; store finished_at − created_at median "
                f"{stored['median']:.3f} s (+ sent → row {t['sent_to_row_ms']['median']:.0f} ms, "
                f"row finished → GET saw it {t['finished_to_seen_ms']['median']:.0f} ms); "
                f"{t['gets_per_task']} GETs per task",
            ]
        )
    b = life["batch_100_one_connection"]
    cand, base = b["candidate"], b["baseline"]
    rows.append(
        [
            "POST /luma/tasks, 100 completed ids, 1 connection",
            f"{cand['requests']:,} requests",
            f"{cand['p50_ms']:.2f} ms",
            f"{cand['p99_ms']:.2f} ms",
            f"{cand['rps']:,.0f} req/s",
            f"bare ASGI same bytes: p50 {base['p50_ms']:.2f} ms, p99 {base['p99_ms']:.2f} ms, "
            f"{base['rps']:,.0f} req/s; ratio {b['ratio_rps']:.2f}",
        ]
    )
    return _table(head, rows)


def money_table(money: dict[str, Any]) -> str:
    s = money["submit"]
    stores = s["stores"]
    head = ["submit POST /luma/generations", "req/s", "p50 ms", "p99 ms", "relay CPU ms/submit", "non-200"]
    head += ["tasks / hold rows after", "ratio req/s vs off (same rounds)"]
    rows = []
    for name in ("on", "limits only"):
        c = s[name]
        for label, side, ratio in (
            (name, c["candidate"], f"{c['ratio_rps']:.2f}"),
            ("off", c["baseline"], ""),
        ):
            rows.append(
                [
                    f"{label} ({c['connections']} conns)"
                    + ("" if label != "off" else f", rounds with {name}"),
                    f"{side['rps']:,.0f}",
                    f"{side['p50_ms']:.2f}",
                    f"{side['p99_ms']:.2f}",
                    f"{side['server_cpu_ms_per_request']:.3f}",
                    str(side["non_200_or_errors"]),
                    f"{stores[label]['tasks']:,} / {stores[label]['hold_rows']:,}",
                    ratio,
                ]
            )
    table = _table(head, rows)
    checks = money["rate_limit_check_us"]
    head2 = [f"one call, timed alone ({checks['calls']:,} calls)", "median µs", "p99 µs"]
    rows2 = [
        [name, f"{f['median']:.2f}", f"{f['p99']:.2f}"] for name, f in checks.items() if isinstance(f, dict)
    ]
    if "redis_skipped" in checks:
        rows2.append([checks["redis_skipped"], "", ""])
    return table + "\n\n" + _table(head2, rows2)


def callbacks_table(cb: dict[str, Any]) -> str:
    d, t = cb["delay"], cb["throughput"]
    head = ["figure", "median", "p99", "min – max", "n", "note"]
    rows = []
    for state, f in d["delay_ms"].items():
        if f["n"]:
            rows.append(
                [
                    f"state change → delivered at local receiver ({state})",
                    f"{f['median']:.1f} ms",
                    f"{f['p99']:.1f} ms",
                    f"{f['min']:.1f} – {f['max']:.1f} ms",
                    str(f["n"]),
                    f"{d['tasks']} tasks one after another; {d['delivered']}/{d['events']} events matched",
                ]
            )
    deliverer, plain = t["deliverer"], t["plain aiohttp"]
    rows.append(
        [
            f"deliveries per second, {t['events']:,} queued events",
            f"{deliverer['per_s_median']:,.0f} /s",
            "",
            ", ".join(f"{r['per_s']:,.0f}" for r in deliverer["rounds"]),
            str(len(deliverer["rounds"])),
            f"plain aiohttp client, {t['concurrency']} at once, same {t['payload_bytes']:,}-byte body: "
            f"{plain['per_s_median']:,.0f} /s; ratio {t['ratio']}",
        ]
    )
    if "cpu_ms_median" in deliverer:
        rows.append(
            [
                "CPU ms per delivery (deliverer's whole process)",
                f"{deliverer['cpu_ms_median']:.3f} ms",
                "",
                ", ".join(f"{r['cpu_ms_per_delivery']:.3f}" for r in deliverer["rounds"]),
                str(len(deliverer["rounds"])),
                f"plain aiohttp client: {plain['cpu_ms_median']:.3f} ms; CPU ratio {t['cpu_ratio']};"
                f" load {t['load_average'][0]}",
            ]
        )
    return _table(head, rows)
