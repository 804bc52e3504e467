"""A few plain customer calls the benchmarks need outside the load runs (submit, wait, capture)."""

from __future__ import annotations

import time
from typing import Any

import httpx
import orjson

PROMPT = "benchmark: a paper boat drifting down a rainy street"
# The cheapest rendering the catalogue offers; the prompt never changes, so the sandbox's render cache
# hits for every task after the first.
SUBMIT_BODY = orjson.dumps({"user_prompt": PROMPT, "model_name": "ray-flash-2", "resolution": "540p"})


def headers(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}


def call(base_url: str, key: str, method: str, path: str, body: bytes | None = None) -> httpx.Response:
    with httpx.Client(base_url=base_url, headers=headers(key), timeout=60) as http:
        return http.request(method, path, content=body)


def submit(base_url: str, key: str, body: bytes = SUBMIT_BODY) -> dict[str, Any]:
    response = call(base_url, key, "POST", "/luma/generations", body)
    if response.status_code != 200:
        raise RuntimeError(f"submit answered {response.status_code}: {response.text}")
    task: dict[str, Any] = response.json()
    return task


def states(http: httpx.Client, ids: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for start in range(0, len(ids), 1000):
        response = http.post("/luma/tasks", content=orjson.dumps({"ids": ids[start : start + 1000]}))
        response.raise_for_status()
        found.update({t["id"]: t["state"] for t in response.json()})
    return found


def wait_terminal(base_url: str, key: str, ids: list[str], timeout: float) -> dict[str, str]:
    """Poll the batch query until every task is completed or failed (or `timeout` passes)."""
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=base_url, headers=headers(key), timeout=60) as http:
        while True:
            found = states(http, ids)
            if all(found.get(i) in ("completed", "failed") for i in ids) or time.monotonic() > deadline:
                return found
            time.sleep(0.25)
