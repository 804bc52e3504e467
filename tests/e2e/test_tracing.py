"""OpenTelemetry, on only when OTEL_EXPORTER_OTLP_ENDPOINT is set: a real `dreamrelay serve` exports a
server span per request and a client span per upstream call to a local OTLP/HTTP receiver."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from dreamrelay.settings import Settings
from tests.conftest import make_settings
from tests.support.live_server import live_server
from tests.support.processes import Process, environment, stopped_at_exit, wait_healthy
from tests.support.upstreams import _read_body as read_body


class Collector:
    """Answers OTLP/HTTP trace exports (protobuf) and keeps every span."""

    def __init__(self) -> None:
        self.spans: list[tuple[str, Span]] = []  # (service name, span)
        self._lock = threading.Lock()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        body = await read_body(receive)
        if scope["path"] == "/v1/traces":
            export = ExportTraceServiceRequest.FromString(body)
            with self._lock:
                for resource_spans in export.resource_spans:
                    service = next(
                        a.value.string_value
                        for a in resource_spans.resource.attributes
                        if a.key == "service.name"
                    )
                    for scope_spans in resource_spans.scope_spans:
                        self.spans.extend((service, span) for span in scope_spans.spans)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/x-protobuf")],
            }
        )
        await send({"type": "http.response.body", "body": b""})

    def starting(self, prefix: str) -> list[Span]:
        with self._lock:
            return [span for _service, span in self.spans if span.name.startswith(prefix)]

    def named(self, name: str) -> list[Span]:
        with self._lock:
            return [span for _service, span in self.spans if span.name == name]


def attributes(span: Span) -> dict[str, Any]:
    return {a.key: a.value.string_value or a.value.int_value for a in span.attributes}


def traced_environment(settings: Settings, otlp: str) -> dict[str, str]:
    return {
        **environment(settings),
        "OTEL_EXPORTER_OTLP_ENDPOINT": otlp,
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        "OTEL_SERVICE_NAME": "relay-under-test",
    }


def test_spans_for_a_request_and_its_upstream_call(tmp_path: Path) -> None:
    collector = Collector()
    settings = make_settings(tmp_path)
    with live_server(collector) as otlp:
        server = Process(("serve",), traced_environment(settings, otlp), tmp_path / "serve.log")
        url = f"http://127.0.0.1:{settings.port}"
        with stopped_at_exit([server]):
            server.start()
            wait_healthy(url, server, timeout=120)
            key = (settings.data_dir / "first_start_key").read_text().strip()  # not printed off a terminal
            answer = httpx.post(
                f"{url}/luma/generations",
                json={"user_prompt": "traced"},
                headers={"Authorization": f"Bearer {key}"},
                timeout=30,
            )
            assert answer.status_code == 200, answer.text
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not (
                collector.named("upstream submit") and collector.named("POST /luma/generations")
            ):
                time.sleep(0.1)
            server.terminate()  # uvicorn re-raises SIGTERM after its clean shutdown

    (request,) = collector.named("POST /luma/generations")
    (upstream,) = collector.named("upstream submit")
    assert request.kind == Span.SPAN_KIND_SERVER
    assert upstream.kind == Span.SPAN_KIND_CLIENT
    assert attributes(upstream)["channel"] == "sandbox"
    assert upstream.trace_id == request.trace_id  # the upstream call is part of the request's trace
    assert {service for service, _span in collector.spans} == {"relay-under-test"}


SECRETS = ("sig-0123456789", "tok-abcdefghij", "KEY-zyxwvutsrq")


def test_query_strings_are_redacted_in_spans_whatever_their_case(tmp_path: Path) -> None:
    """An upload link's signature (and any other query value, in any case) never reaches an exported span."""
    collector = Collector()
    settings = make_settings(tmp_path)
    query = f"expires=9999999999&signature={SECRETS[0]}&Token={SECRETS[1]}&X-AMZ-CREDENTIAL={SECRETS[2]}"
    with live_server(collector) as otlp:
        server = Process(("serve",), traced_environment(settings, otlp), tmp_path / "serve.log")
        url = f"http://127.0.0.1:{settings.port}"
        with stopped_at_exit([server]):
            server.start()
            wait_healthy(url, server, timeout=120)
            put = httpx.put(f"{url}/media/uploads/x.png?{query}", content=b"not a png", timeout=30)
            assert put.status_code in (400, 403, 404), put.text
            got = httpx.get(f"{url}/luma/generations/nothing?{query}", timeout=30)
            assert got.status_code == 401
            key = (settings.data_dir / "first_start_key").read_text().strip()
            submitted = httpx.post(
                f"{url}/luma/generations",
                json={"user_prompt": "traced"},
                headers={"Authorization": f"Bearer {key}"},
                timeout=30,
            )
            assert submitted.status_code == 200, submitted.text
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not (
                collector.starting("PUT /media/uploads/") and collector.starting("POST /upstream/callbacks/")
            ):
                time.sleep(0.1)
            server.terminate()
    exported = [str(span) for _service, span in collector.spans]
    assert exported
    assert [secret for secret in SECRETS if any(secret in text for text in exported)] == []
    # The upstream's callback URL holds a token in its path: redacted in span names as in the logs.
    callback_paths = [
        m for text in exported for m in re.findall(r"/upstream/callbacks/[^/\s]+/[^/\s\"]+", text)
    ]
    assert callback_paths and all(path.endswith("/[redacted]") for path in callback_paths)
    put_span = next(
        span for span in collector.starting("PUT /media/uploads/") if span.kind == Span.SPAN_KIND_SERVER
    )
    shown = attributes(put_span)
    url_attribute = shown.get("http.url") or shown.get("url.full")
    assert url_attribute is not None
    assert "signature=REDACTED" in url_attribute and "X-AMZ-CREDENTIAL=REDACTED" in url_attribute
