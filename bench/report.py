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
    head = [
        "benchmark",
        "conns",
        "resp bytes",
        "relay req/s",
        "relay p50 ms",
        "relay p99 ms",
        "bare req/s",
        "bare p50 ms",
        "bare p99 ms",
        "ratio",
        "relay CPU ms/req",
        "bare CPU ms/req",
        "non-200",
    ]
    rows = []
    for c in comparisons:
        cand, base = c["candidate"], c["baseline"]
        rows.append(
            [
                c["name"],
                str(c["connections"]),
                f"{c['response_bytes']:,}",
                f"{cand['rps']:,.0f}",
                f"{cand['p50_ms']:.2f}",
                f"{cand['p99_ms']:.2f}",
                f"{base['rps']:,.0f}",
                f"{base['p50_ms']:.2f}",
                f"{base['p99_ms']:.2f}",
                f"{c['ratio_rps']:.2f}",
                f"{cand['server_cpu_ms_per_request']:.3f}",
                f"{base['server_cpu_ms_per_request']:.3f}",
                f"{cand['non_200_or_errors']}/{base['non_200_or_errors']}",
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
