"""The raw-ASGI paths (http/lean.py: the hottest reads and the own submit) answer byte for byte what
the framework's routes answer: the same status, body, headers (rate-limit headers, Retry-After,
request id), limits and metrics (submits by outcome too).

Two servers share one store: one with the lean path (the default), one with it switched off
(`lean_reads=False`). Each keeps its own in-memory rate limiter, so sending the same requests in
the same order to both must give the same answers, including the 429s.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from prometheus_client import REGISTRY

from dreamrelay.http.app import create_app
from tests.conftest import Relay, make_settings, start_relay
from tests.integration.test_luma_lifecycle import wait_for
from tests.support.live_server import live_server

VOLATILE = {b"date", b"server"}
MADE_UP_IDS: set[bytes] = set()


@contextmanager
def lean_and_framework(tmp_path: Path) -> Iterator[tuple[Relay, str]]:
    lean_settings = make_settings(tmp_path, sandbox_key="lean-reads-sandbox-key")
    # Media URLs in the official body name the public URL: the same for both.
    framework_settings = make_settings(
        tmp_path,
        lean_reads=False,
        public_url=lean_settings.resolved_public_url,
        sandbox_key="lean-reads-sandbox-key",
    )
    with (
        start_relay(lean_settings) as lean,
        live_server(create_app(framework_settings), port=framework_settings.port) as framework_url,
    ):
        yield lean, framework_url


def _http_samples() -> dict[tuple[str, ...], float]:
    found: dict[tuple[str, ...], float] = {}
    for family in REGISTRY.collect():
        if family.name.startswith(("dreamrelay_http_request", "dreamrelay_submits")):
            for sample in family.samples:
                found[(sample.name, *sorted(sample.labels.items()))] = sample.value  # type: ignore[arg-type]
    return found


def _settle(url: str) -> None:
    """Wait until no request the test did not send moves a metric (media copies, callbacks)."""
    quiet, deadline = 0, time.monotonic() + 15
    while quiet < 3 and time.monotonic() < deadline:
        before = _http_samples()
        time.sleep(0.2)
        quiet = quiet + 1 if _http_samples() == before else 0


def _background(key: tuple[Any, ...]) -> bool:
    """Series of requests the test did not send: the in-process sandbox's own routes (polled by the
    worker) and the upstream callbacks into the relay."""
    if key[0].startswith("dreamrelay_submits"):
        return False
    route = dict(key[1:]).get("route", "")
    return route.startswith("/upstream/") or not route.startswith(FOREGROUND)


# A request is counted in both (the submit counter, when it moves, moves first).
HTTP_SERIES = {"dreamrelay_http_requests_total", "dreamrelay_http_request_duration_seconds_count"}
FOREGROUND = ("/healthz", "/luma/", "/dream-machine/", "/agents/", "/v1/videos", "unmatched")


def _send(url: str, method: str, path: str, headers: dict[str, str], body: bytes | None) -> dict[str, Any]:
    """One request; the answer as compared, plus the metric series it counted (counts, not durations:
    the lean path is faster, so its times fall in other buckets)."""
    before = _http_samples()
    response = httpx.request(method, url + path, headers=headers, content=body, timeout=30)
    # The server counts a request just after its answer leaves: wait for the count to land.
    deadline = time.monotonic() + 5
    while True:
        after = _http_samples()
        moved = {
            key: after[key] - before.get(key, 0.0)
            for key in after
            if after[key] != before.get(key, 0.0)
            and key[0].endswith(("_total", "_count"))
            and not _background(key)
        }
        if {key[0] for key in moved} >= HTTP_SERIES or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    raw = [(k.lower(), v) for k, v in response.headers.raw if k.lower() not in VOLATILE]
    # A request id made up per request: present, 32 lowercase hex digits, never twice; not compared.
    if "x-request-id" not in {k.lower() for k in headers}:
        given = [v for k, v in raw if k == b"x-request-id"]
        assert len(given) == 1 and len(given[0]) == 32 and set(given[0]) <= set(b"0123456789abcdef"), raw
        assert given[0] not in MADE_UP_IDS, raw
        MADE_UP_IDS.add(given[0])
        raw = [(k, v if k != b"x-request-id" else b"<new>") for k, v in raw]
    # Seconds until the bucket is full again (or has a token) move with the clock between the turns.
    clocked = (b"x-ratelimit-reset", b"retry-after")
    reset = [int(v) for k, v in raw if k in clocked]
    raw = [(k, v if k not in clocked else b"<seconds>") for k, v in raw]
    answer = {"status": response.status_code, "headers": raw, "body": response.content, "metrics": moved}
    return {**answer, "reset": reset}


def test_lean_paths_answer_what_the_framework_answers(tmp_path: Path) -> None:
    with lean_and_framework(tmp_path) as (lean, framework_url):
        # Buckets refill while the test runs: limits so high that a bucket is always full again by the
        # next request, or so low that it refills by less than a token, keep the headers comparable.
        key = lean.new_key("reader", balance=10_000, rpm=1_000_000, batch_rpm=1_000_000)
        stranger = lean.new_key("stranger", balance=10_000)
        capped = lean.new_key("capped", balance=0, rpm=3)
        batch_capped = lean.new_key("batch-capped", balance=0, rpm=4, batch_rpm=2)
        with lean.client(key) as client:
            mine = client.post("/luma/generations", json={"user_prompt": "a lean read", "resolution": "540p"})
            assert mine.status_code == 200
            task_id = mine.json()["id"]
            wait_for(client, task_id, {"completed"})
            made = client.post(
                "/agents/v1/generations", json={"prompt": "a fox", "type": "image", "output_format": "jpeg"}
            )
            assert made.status_code == 201, made.text
            agents_id = made.json()["id"]
        with lean.client(stranger) as client:
            theirs = client.post("/luma/generations", json={"user_prompt": "not yours", "resolution": "540p"})
            their_id = theirs.json()["id"]
            wait_for(client, their_id, {"completed"})
        _settle(lean.url)
        enveloped = lean.new_key("newapi", balance=0, batch_envelope="newapi")
        unknown = str(uuid.uuid4())
        auth = {"Authorization": f"Bearer {key}"}

        def batch(ids: Any, **extra: Any) -> bytes:
            import orjson

            return orjson.dumps({"ids": ids, **extra})

        polled = batch([task_id, task_id, their_id])
        cases: list[tuple[str, str, dict[str, str], bytes | None]] = [
            ("GET", "/healthz", {}, None),
            ("GET", "/healthz", {"X-Request-Id": "given-id-1"}, None),
            ("POST", "/luma/tasks", auth, batch([task_id, unknown, their_id, task_id, "x" * 70])),
            # The same bytes again: the ids remembered by the lean path and the joined answer kept by
            # the body cache on the second request; then by another key, which sees its own tasks.
            ("POST", "/luma/tasks", auth, polled),
            ("POST", "/luma/tasks", auth, polled),
            ("POST", "/luma/tasks", {"Authorization": f"Bearer {stranger}"}, polled),
            ("POST", "/luma/tasks", auth, batch([])),
            ("POST", "/luma/tasks", {**auth, "X-Request-Id": "abc"}, batch([task_id])),
            ("POST", "/luma/tasks", auth, b"{not json"),
            ("POST", "/luma/tasks", auth, batch("nope")),
            ("POST", "/luma/tasks", auth, batch([1, 2])),
            ("POST", "/luma/tasks", auth, batch([task_id, 1])),
            ("POST", "/luma/tasks", auth, batch([[task_id]])),
            ("POST", "/luma/tasks", auth, batch([task_id, None])),
            ("POST", "/luma/tasks", auth, batch([unknown, task_id, "", task_id, their_id, unknown])),
            ("POST", "/luma/tasks", auth, batch([task_id], action="extra field")),
            ("POST", "/luma/tasks", auth, batch([task_id] * 1001)),
            ("POST", "/luma/tasks", {}, batch([task_id])),
            ("POST", "/luma/tasks", {"Authorization": "Bearer nope"}, batch([task_id])),
            ("POST", "/luma/tasks", {"Authorization": "Basic abc"}, batch([task_id])),
            ("POST", "/luma/tasks", {**auth, "Origin": "https://app.example"}, batch([task_id])),
            ("GET", f"/luma/generations/{task_id}", auth, None),
            ("GET", f"/luma/generations/{task_id}", {**auth, "X-Request-Id": "mine"}, None),
            ("GET", f"/luma/generations/{their_id}", auth, None),
            ("GET", f"/luma/generations/{unknown}", auth, None),
            ("GET", "/luma/generations/not-a-uuid", auth, None),
            ("GET", f"/luma/generations/{task_id}?x=1", auth, None),
            ("GET", f"/luma/generations/{task_id}/", auth, None),  # the trailing-slash rewrite first
            ("POST", "/luma/v1/tasks", auth, batch([task_id])),
            ("GET", "/luma/generations?limit=1", auth, None),  # not a lean path: the framework's
            ("GET", f"/luma/generations/{task_id}", {}, None),
            ("GET", f"/dream-machine/v1/generations/{task_id}", auth, None),
            ("GET", f"/dream-machine/v1/generations/{task_id}", auth, None),  # now from the cache
            ("GET", f"/dream-machine/v1/generations/{their_id}", auth, None),
            ("GET", f"/dream-machine/v1/generations/{unknown}", auth, None),
            ("GET", f"/dream-machine/v1/generations/{task_id}", {"Authorization": "Bearer nope"}, None),
            ("GET", f"/v1/videos/{task_id}", auth, None),  # the same task as an OpenAI Video
            ("GET", f"/v1/videos/{task_id}", auth, None),  # now from the cache
            ("GET", f"/v1/videos/{their_id}", auth, None),
            ("GET", f"/v1/videos/{unknown}", auth, None),
            ("GET", "/v1/videos/not-a-uuid", auth, None),
            ("GET", f"/v1/videos/{task_id}/content?variant=thumbnail", auth, None),  # not a lean path
            ("GET", f"/v1/videos/{task_id}", {"Authorization": "Bearer nope"}, None),
        ]
        cases += [
            # (the generation itself is left out: it is still running, and its body may move on)
            ("GET", f"/agents/v1/generations/{task_id}", auth, None),  # not an Agents generation
            ("GET", f"/luma/generations/{agents_id}", auth, None),  # nor a video task of the own API
            ("GET", f"/agents/v1/generations/{unknown}", auth, None),
            ("GET", f"/agents/v1/generations/{agents_id}", {}, None),
            ("POST", "/luma/tasks", auth, batch([agents_id, task_id])),
            ("POST", "/luma/tasks", {"Authorization": f"Bearer {enveloped}"}, batch([task_id, unknown])),
        ]
        # Limits: the same key hits its own bucket on each server (each has its own memory limiter).
        cases += [("POST", "/luma/tasks", {"Authorization": f"Bearer {capped}"}, batch([]))] * 2
        cases += [("GET", f"/luma/generations/{unknown}", {"Authorization": f"Bearer {capped}"}, None)] * 2
        cases += [("POST", "/luma/tasks", {"Authorization": f"Bearer {batch_capped}"}, batch([]))] * 3
        cases += [("GET", f"/luma/generations/{unknown}", {"Authorization": f"Bearer {batch_capped}"}, None)]

        statuses: list[Any] = []
        for method, path, headers, body in cases:
            on_lean = _send(lean.url, method, path, headers, body)
            on_framework = _send(framework_url, method, path, headers, body)
            lean_reset, framework_reset = on_lean.pop("reset"), on_framework.pop("reset")
            assert on_lean == on_framework, (len(statuses), method, path, headers)
            assert len(lean_reset) == len(framework_reset)
            assert all(abs(a - b) <= 2 for a, b in zip(lean_reset, framework_reset, strict=True))
            statuses.append(on_lean["status"])
        for caller, seen in ((key, task_id), (stranger, their_id)):  # each key sees only its own task
            answer = _send(lean.url, "POST", "/luma/tasks", {"Authorization": f"Bearer {caller}"}, polled)
            assert [t["id"] for t in json.loads(answer["body"])] == [seen]
        # The cases cover what they claim to: answers, refusals and the limits' 429s.
        assert statuses[:8] == [200] * 8
        assert statuses[-8:] == [200, 200, 404, 429, 200, 200, 429, 404]
        assert {400, 401, 404} <= set(statuses)
        assert statuses[-14:-8] == [404, 404, 404, 401, 200, 200]


def _made(answer: dict[str, Any]) -> dict[str, Any]:
    """A created task's answer with what differs between two creations (its id and times) blanked."""
    task = json.loads(answer["body"])
    assert uuid.UUID(task["id"]) and task["created_at"]
    blank = {"id": "<id>", "created_at": "<time>"}
    size = str(len(json.dumps({**task, **blank}, ensure_ascii=False, separators=(",", ":")))).encode()
    headers = [(k, v if k != b"content-length" else size) for k, v in answer["headers"]]
    return {**answer, "body": {**task, **blank}, "headers": headers}


def test_the_lean_submit_answers_what_the_framework_answers(tmp_path: Path) -> None:
    with lean_and_framework(tmp_path) as (lean, framework_url):
        key = lean.new_key("submitter", balance=100_000, rpm=1_000_000)
        poor = lean.new_key("poor", balance=0, rpm=1_000_000)
        capped = lean.new_key("capped-submits", balance=100_000, rpm=2)
        auth = {"Authorization": f"Bearer {key}"}
        video = {"user_prompt": "a lean submit", "resolution": "540p"}

        def body(**fields: Any) -> bytes:
            return json.dumps({**video, **fields}).encode()

        created: list[tuple[str, str, dict[str, str], bytes]] = [
            ("POST", "/luma/generations", auth, body()),
            ("POST", "/luma/generations", {**auth, "X-Request-Id": "given"}, body(duration="5s", loop=True)),
            ("POST", "/luma/generations", {**auth, "Content-Type": "text/plain"}, body()),
        ]
        for method, path, headers, sent in created:
            on_lean = _send(lean.url, method, path, headers, sent)
            on_framework = _send(framework_url, method, path, headers, sent)
            assert on_lean["status"] == 200, on_lean["body"]
            assert _made(on_lean) == _made(on_framework)

        refused: list[tuple[str, str, dict[str, str], bytes]] = [
            ("POST", "/luma/generations", auth, b"{not json"),
            ("POST", "/luma/generations", auth, b"[1, 2]"),
            ("POST", "/luma/generations", auth, body(resolution="8k")),
            ("POST", "/luma/generations", auth, json.dumps({"user_prompt": "nul \u0000"}).encode()),
            ("POST", "/luma/generations", {**auth, "Idempotency-Key": "k" * 300}, body()),
            ("POST", "/luma/generations", {"Authorization": f"Bearer {poor}"}, body()),
            ("POST", "/luma/generations", {}, body()),
            ("POST", "/luma/generations", {"Authorization": "Bearer nope"}, body()),
            ("POST", "/luma/generations", {**auth, "Origin": "https://app.example"}, b"{not json"),
            ("POST", "/luma/generations/", auth, b"{not json"),  # the trailing-slash rewrite first
        ]
        refused += [("POST", "/luma/generations", {"Authorization": f"Bearer {capped}"}, b"{}")] * 3
        statuses: list[int] = []
        for method, path, headers, sent in refused:
            on_lean = _send(lean.url, method, path, headers, sent)
            on_framework = _send(framework_url, method, path, headers, sent)
            lean_reset, framework_reset = on_lean.pop("reset"), on_framework.pop("reset")
            assert on_lean == on_framework, (len(statuses), headers, sent)
            assert all(abs(a - b) <= 2 for a, b in zip(lean_reset, framework_reset, strict=True))
            statuses.append(on_lean["status"])
        assert statuses == [400, 400, 400, 400, 400, 402, 401, 401, 400, 400, 400, 400, 429]

        # An Idempotency-Key: the second server answers the first one's task, whichever path made it.
        for first, second in ((lean.url, framework_url), (framework_url, lean.url)):
            once = {**auth, "Idempotency-Key": f"poll-{uuid.uuid4()}"}
            made = _send(first, "POST", "/luma/generations", once, body())
            again = _send(second, "POST", "/luma/generations", once, body())
            assert made["status"] == again["status"] == 200
            assert json.loads(made["body"])["id"] == json.loads(again["body"])["id"]  # (its state moves on)
            other = _send(second, "POST", "/luma/generations", once, body(user_prompt="another"))
            assert other["status"] == 409
