"""Benchmarks 1–3: batch query (1, 100, 1000 completed ids), get one task, submit — each against the
bare ASGI baseline answering the same bytes. Also the py-spy profile of the 100-id batch."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

import orjson

from bench import client, diagnose, profile, seed, servers
from bench.compare import Comparison, compare
from bench.load import LoadGenerator, Target
from bench.options import Options

BATCH_SIZES = (1, 100, 1000)


def route(method: str, path: str, body: bytes | None, response: bytes) -> dict[str, Any]:
    return {
        "method": method,
        "path": path,
        "body_b64": base64.b64encode(body).decode() if body is not None else None,
        "response_b64": base64.b64encode(response).decode(),
    }


def capture(relay: servers.Process, key: str, method: str, path: str, body: bytes | None) -> bytes:
    response = client.call(relay.url, key, method, path, body)
    if response.status_code != 200:
        raise RuntimeError(f"{method} {path} answered {response.status_code}: {response.text[:300]}")
    return response.content


def run(opts: Options, load: LoadGenerator, work: Path, results: Path) -> dict[str, Any]:
    data_dir = work / "api"
    logs = work / "logs"
    prepared = seed.prepare_store(data_dir)
    key = prepared.key
    # The sandbox runs in its own process, so the relay's CPU figures hold only the relay's own work.
    sandbox = servers.start_sandbox(work / "sandbox-fast", 0.0, 0.0, logs)
    sandbox_url = sandbox.url + "/dream-machine/v1"
    env = servers.relay_env(data_dir, servers.free_port(), sandbox_url=sandbox_url)
    auth = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    comparisons: list[Comparison] = []
    out: dict[str, Any] = {}

    relay = servers.start_relay(env, logs, name="relay-api")
    bare: servers.Process | None = None
    held: servers.Process | None = None
    try:
        first = client.submit(relay.url, key)
        done = client.wait_terminal(relay.url, key, [first["id"]], timeout=120)
        if done.get(first["id"]) != "completed":
            raise RuntimeError(f"warm-up task ended {done}; see {relay.log_path}")
        template = seed.task_rows(data_dir, None, [first["id"]])[0]
        copies, _ = seed.insert_copies(data_dir, None, template, 999)
        ids = [first["id"], *copies]

        # The framework floor: a route with no database and no auth, against the same bytes bare.
        health = capture(relay, key, "GET", "/healthz", None)
        cases: list[tuple[str, Target, bytes]] = [
            ("floor GET /healthz (no auth, no DB)", Target("GET", "/healthz"), health)
        ]
        routes = [route("GET", "/healthz", None, health)]
        for size in BATCH_SIZES:
            body = orjson.dumps({"ids": ids[:size]})
            answer = capture(relay, key, "POST", "/luma/tasks", body)
            if len(orjson.loads(answer)) != size:
                raise RuntimeError(f"batch of {size} returned {len(orjson.loads(answer))} tasks")
            routes.append(route("POST", "/luma/tasks", body, answer))
            cases.append(
                (f"batch POST /luma/tasks, {size} ids", Target("POST", "/luma/tasks", auth, (body,)), answer)
            )
        for name, get_path in (
            ("get GET /luma/generations/{id}", f"/luma/generations/{ids[1]}"),
            ("get GET /dream-machine/v1/generations/{id}", f"/dream-machine/v1/generations/{ids[2]}"),
            ("get GET /v1/videos/{id}", f"/v1/videos/{ids[3]}"),  # the OpenAI Video, same task rows
        ):
            answer = capture(relay, key, "GET", get_path, None)
            routes.append(route("GET", get_path, None, answer))
            cases.append((name, Target("GET", get_path, auth), answer))
        # The submit answer: a pending task object. The baseline answers these same bytes to any body.
        pending = capture(relay, key, "POST", "/luma/generations", client.SUBMIT_BODY)
        routes.append(route("POST", "/luma/generations", None, pending))

        routes_file = work / "bare-routes.json"
        routes_file.write_text(json.dumps(routes))
        bare = servers.start_bare(routes_file, logs)

        print(f"[api] relay pid {relay.pid}, bare pid {bare.pid}, {opts.connections} connections", flush=True)
        for name, target, answer in cases if "api" in opts.sections else []:
            if not opts.wants(name):
                continue
            comparisons.append(
                compare(
                    name,
                    load,
                    opts,
                    candidate_server=relay,
                    candidate=target,
                    baseline_server=bare,
                    baseline=target,
                    response_bytes=len(answer),
                )
            )

        # Many processes: the same 100-id batch from `serve --workers 2` (same store, same separate
        # sandbox) against this one-process relay; the CPU ratio is one process's ÷ two processes'.
        # Its baseline is the bare app the same way (2 processes ÷ 1 in the same run): on 2 cores
        # shared with wrk, what the bare app loses is the machine's, not the relay's.
        many = "batch POST /luma/tasks, 100 ids, serve --workers 2 vs 1 process"
        bare_many = "batch POST /luma/tasks, 100 ids, bare app 2 processes vs 1 process"
        # Both relays here run API processes only (the worker off, as `serve --workers N --no-worker`
        # beside a `dreamrelay worker`): each process's worker loops poll the store in the background
        # (about 1 % of a core each, idle), a cost per process, not per request.
        if "api" in opts.sections and opts.wants(many):
            api_only = {**env, "DREAMRELAY_WORKER_ENABLED": "false"}
            relay_one = servers.start_relay(
                {**api_only, "DREAMRELAY_PORT": str(servers.free_port())}, logs, name="relay-api-1"
            )
            relay_many = servers.start_relay(
                {**api_only, "DREAMRELAY_PORT": str(servers.free_port())}, logs, name="relay-api-2", workers=2
            )
            bare_two = servers.start_bare(routes_file, logs, workers=2)
            try:
                body = orjson.dumps({"ids": ids[:100]})
                target = Target("POST", "/luma/tasks", auth, (body,))
                size = len(capture(relay_many, key, "POST", "/luma/tasks", body))
                comparisons.append(
                    compare(
                        many,
                        load,
                        opts,
                        candidate_server=relay_many,
                        candidate=target,
                        baseline_server=relay_one,
                        baseline=target,
                        response_bytes=size,
                        note="baseline: the one-process relay (API only, as the candidate), not the bare app",
                    )
                )
                comparisons.append(
                    compare(
                        bare_many,
                        load,
                        opts,
                        candidate_server=bare_two,
                        candidate=target,
                        baseline_server=bare,
                        baseline=target,
                        response_bytes=size,
                        note="the machine's own cost of a second process: the bare app, 2 processes vs 1",
                    )
                )
            finally:
                relay_one.stop()
                relay_many.stop()
                bare_two.stop()

        if "profile" in opts.sections:
            body = orjson.dumps({"ids": ids[:100]})
            target = Target("POST", "/luma/tasks", auth, (body,))
            out["profile"] = profile.record(relay, load, target, opts, results)
            print("[store] the batch read below HTTP (this process, relay idle):", flush=True)
            out["store_layers"] = diagnose.layers(data_dir, ids)
        relay.stop()
        if "api" not in opts.sections:
            return out

        # Submit. The sandbox calls DreamRelay back on every state change, so with timings 0 each
        # submitted task is also completed and its media copied (download, probe, JPEGs) in the relay
        # process right away: "submit + completion". A second relay whose sandbox keeps every task
        # queued measures the submit path alone. The follower is off in both (tasks are completed by
        # the callbacks; polling thousands of held tasks would only add noise). Before every run
        # we wait until the relay is idle, so its leftover copying never falls on a baseline run.
        submit_target = Target("POST", "/luma/generations", auth, (client.SUBMIT_BODY,))
        held = servers.start_sandbox(work / "sandbox-held", 86400.0, 0.0, logs)
        variants = (
            ("submit POST /luma/generations + completion", sandbox_url, "render cached, sandbox timings 0"),
            (
                "submit POST /luma/generations only",
                held.url + "/dream-machine/v1",
                "sandbox keeps tasks queued",
            ),
        )
        for name, upstream, note in variants:
            if not opts.wants(name):
                continue
            env_submit = {
                **env,
                "DREAMRELAY_WORKER_ENABLED": "false",
                "DREAMRELAY_SANDBOX_URL": upstream,
            }
            relay = servers.start_relay(env_submit, logs, name="relay-submit")
            comparisons.append(
                compare(
                    name,
                    load,
                    opts,
                    candidate_server=relay,
                    candidate=submit_target,
                    baseline_server=bare,
                    baseline=submit_target,
                    response_bytes=len(pending),
                    note=note,
                    between=relay.wait_idle,
                )
            )
            out.setdefault("relay_memory_kib", {})[name] = relay.memory_kib()
            if os.environ.get("BENCH_PROFILE_SUBMIT") and name.endswith(" only"):
                # Where a submit's CPU goes (the sandbox in its own process keeps the tasks queued).
                out["profile_submit"] = profile.record(relay, load, submit_target, opts, results, "submit")
            relay.stop()
        out["tasks_after_submit"] = seed.count_tasks(data_dir, None)
    finally:
        relay.stop()
        for process in (bare, held, sandbox):
            if process is not None:
                process.stop()
    out["comparisons"] = [c.as_dict() for c in comparisons]
    out["_objects"] = comparisons
    return out
