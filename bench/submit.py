"""Issue 15 item 3: the relay's CPU per text-to-video submit (`POST /luma/generations`, own format), on
SQLite and on PostgreSQL, with the sandbox in its own process keeping every task queued — so the figure
holds the relay's own work: authentication, the hold, the insert, the upstream request and the update.

Each store gets a fresh relay (worker off, limits high but asked). The baseline, measured in alternated
rounds of the same run, is either the same relay started from another checkout's code
(`BENCH_SUBMIT_BEFORE=/path/to/that/checkout/src`, on its own fresh store of the same kind: the "before"
figure) or, without it, the bare app answering the same bytes. `BENCH_SUBMIT_STORES=sqlite` (or
`postgresql`) measures one store; `BENCH_PROFILE_SUBMIT=1` adds a py-spy profile of each store's relay.

By default one key sends every submit, with the in-flight cap set out of reach, so that key ends a run
with thousands of tasks in flight (the sandbox keeps them queued) and the in-flight check counts them
all on every submit. `BENCH_SUBMIT_KEYS=N` (N > 1) takes N keys of the account in turn instead, under
the default in-flight cap of 50: many customers with a few tasks each, the shape a relay serves. The
keys must hold every submit of the run (N × 50 of them: 600 keys hold 30,000) or the cap's cheap 429s
lower the figure; a warning and the table's "refused" column say when they did.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from bench import client, profile, seed, servers
from bench.api import capture, route
from bench.compare import compare
from bench.load import LoadGenerator, Target
from bench.options import Options

STORES = ("sqlite", "postgresql")
DEFAULT_IN_FLIGHT = 50  # the server's default in-flight cap per key (settings.rate_limit_in_flight)


class PostgresMissing(Exception):
    """No PostgreSQL to measure on: that store is skipped, the rest of the bench goes on."""


def run(opts: Options, load: LoadGenerator, work: Path, results: Path) -> dict[str, Any]:
    logs = work / "logs"
    wanted = tuple(s for s in os.environ.get("BENCH_SUBMIT_STORES", ",".join(STORES)).split(",") if s)
    before_src = os.environ.get("BENCH_SUBMIT_BEFORE")
    held = servers.start_sandbox(work / "sandbox-held", 86400.0, 0.0, logs)
    out: dict[str, Any] = {"before_src": before_src, "stores": {}}
    try:
        upstream = held.url + "/dream-machine/v1"
        for store in STORES:
            if store not in wanted:
                continue
            try:
                out["stores"][store] = _one_store(opts, load, work, results, store, upstream, before_src)
            except PostgresMissing as exc:
                print(f"[submit/{store}] skipped: {exc}", flush=True)
                out.setdefault("skipped", {})[store] = str(exc)
    finally:
        held.stop()
    return out


def _one_store(
    opts: Options,
    load: LoadGenerator,
    work: Path,
    results: Path,
    store: str,
    upstream: str,
    before_src: str | None,
) -> dict[str, Any]:
    logs = work / "logs"
    made: list[str] = []
    started: list[servers.Process] = []
    keys = int(os.environ.get("BENCH_SUBMIT_KEYS", "1"))
    many = {"rate_limit_in_flight": str(DEFAULT_IN_FLIGHT)} if keys > 1 else {}

    def relay(name: str, pythonpath: str | None) -> tuple[servers.Process, tuple[str, ...]]:
        database_url = None
        if store == "postgresql":
            database_url = seed.pg_create(opts.pg_admin)
            if database_url is None:
                raise PostgresMissing("PostgreSQL is not reachable at " + opts.pg_admin)
            made.append(database_url)
        data_dir = work / f"submit-{store}-{name}"
        prepared = seed.prepare_store(data_dir, database_url, extra_keys=keys - 1)
        extra = {"database_url": database_url} if database_url else {}
        env = servers.relay_env(
            data_dir, servers.free_port(), worker_enabled="false", sandbox_url=upstream, **extra, **many
        )
        if pythonpath:
            env["PYTHONPATH"] = pythonpath
        process = servers.start_relay(env, logs, name=f"relay-submit-{store}-{name}")
        started.append(process)
        return process, (prepared.key, *prepared.more_keys)

    def taking_turns(keys: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(f"Bearer {k}" for k in keys) if len(keys) > 1 else ()

    try:
        after, after_keys = relay("after", None)
        key = after_keys[0]
        auth = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        pending = capture(after, key, "POST", "/luma/generations", client.SUBMIT_BODY)
        target = Target("POST", "/luma/generations", auth, (client.SUBMIT_BODY,), taking_turns(after_keys))
        if before_src:
            baseline, before_keys = relay("before", before_src)
            baseline_target = Target(
                "POST",
                "/luma/generations",
                {**auth, "Authorization": f"Bearer {before_keys[0]}"},
                target.bodies,
                taking_turns(before_keys),
            )
            note = f"baseline: the relay from {before_src}"
        else:
            routes_file = work / f"bare-submit-{store}.json"
            routes_file.write_text(json.dumps([route("POST", "/luma/generations", None, pending)]))
            baseline = servers.start_bare(routes_file, logs)
            started.append(baseline)
            baseline_target = target
            note = "baseline: the bare app"
        print(f"[submit/{store}] relay pid {after.pid}, baseline pid {baseline.pid}; {note}", flush=True)
        compared = compare(
            f"submit POST /luma/generations ({store})",
            load,
            opts,
            candidate_server=after,
            candidate=target,
            baseline_server=baseline,
            baseline=baseline_target,
            response_bytes=len(pending),
            note=note,
        )
        if compared.candidate.non_200 or compared.baseline.non_200:
            refused = f"{compared.candidate.non_200} (relay) and {compared.baseline.non_200} (baseline)"
            print(
                f"[submit/{store}] WARNING: {refused} answers were refused or failed. Refusals are cheap, "
                "so the figure is too low; with many keys the default in-flight cap ran out: raise "
                "BENCH_SUBMIT_KEYS.",
                flush=True,
            )
        found: dict[str, Any] = {
            "keys": keys,
            "comparison": compared.as_dict(),
            "relay_cpu_ms_per_submit": round(compared.candidate.cpu_ms_median, 3),
            "baseline_cpu_ms_per_submit": round(compared.baseline.cpu_ms_median, 3),
            "load_average": [round(x, 2) for x in os.getloadavg()],
        }
        if os.environ.get("BENCH_PROFILE_SUBMIT"):
            found["profile"] = profile.record(
                after, load, target, opts, results, f"submit-{store}", gil=False
            )
        return found
    finally:
        for process in started:
            process.stop()
        for database_url in made:
            seed.pg_drop(database_url, opts.pg_admin)


def table(out: dict[str, Any]) -> str:
    lines = [
        "| store | keys | relay CPU ms per submit | baseline CPU ms per submit | baseline | relay req/s "
        "| refused | load average |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for store, found in out.get("stores", {}).items():
        c = found["comparison"]
        lines.append(
            f"| {store} | {found.get('keys', 1)} | {found['relay_cpu_ms_per_submit']:.3f} "
            f"| {found['baseline_cpu_ms_per_submit']:.3f} "
            f"| {c['note'].removeprefix('baseline: ')} | {c['candidate']['rps']:.0f} "
            f"| {c['candidate']['non_200_or_errors']} "
            f"| {' '.join(f'{x:.1f}' for x in found['load_average'])} |"
        )
    return "\n".join(lines)
