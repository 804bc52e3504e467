"""Optional OpenTelemetry tracing, on only when the standard OTEL_EXPORTER_OTLP_ENDPOINT (or
OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set: a span for each HTTP request and each upstream call,
exported over OTLP/HTTP. When it is off nothing of OpenTelemetry is imported, no middleware is added,
and `span` is a no-op context manager.

Whatever makes a span (the ASGI middleware, FastAPI's own telemetry in the mounted sandbox, our client
spans), it is redacted on its way out (`Redacting`): every query-string value, whatever its parameter's
name or case (upload links carry their token and signature there), and the secrets the logs redact
(`logs.redact`: keys, Bearer values, the token in upstream-callback paths) in names and attributes.
"""

from __future__ import annotations

import atexit
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from dreamrelay.logs import redact

if TYPE_CHECKING:
    from collections.abc import Sequence

    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
    from opentelemetry.trace import Tracer

ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")

_tracer: Tracer | None = None


def wanted() -> bool:
    return any(os.environ.get(name) for name in ENDPOINT_VARIABLES)


def setup(service: str = "dreamrelay") -> bool:
    """Start exporting spans if the environment asks for it (once per process); True when on."""
    global _tracer
    if _tracer is not None:
        return True
    if not wanted():
        return False
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from dreamrelay import __version__

    resource = Resource.create(
        {"service.name": os.environ.get("OTEL_SERVICE_NAME", service), "service.version": __version__}
    )
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(redacting(OTLPSpanExporter())))
    trace.set_tracer_provider(provider)
    atexit.register(provider.shutdown)  # flush what is still queued
    _tracer = trace.get_tracer("dreamrelay")
    return True


QUERY_ATTRIBUTES = ("url.query",)  # a bare query string; any other string attribute may hold a URL
REDACTED = "REDACTED"


def redacted_query(query: str) -> str:
    """Every value of a query string replaced, whatever its parameter's name or case."""
    return "&".join(f"{part.partition('=')[0]}={REDACTED}" for part in query.split("&") if part)


def redacted_text(text: str) -> str:
    """A URL's (or a path's, or a span name's) query values replaced, and the logs' secrets redacted."""
    base, mark, rest = text.partition("?")
    if mark:
        query, hash_mark, fragment = rest.partition("#")
        text = f"{base}?{redacted_query(query)}{hash_mark}{fragment}"
    return redact(text)


def redacted_span(span: ReadableSpan) -> ReadableSpan:
    """`span` as it may leave the process: the same span, or a copy with its name and string attributes
    redacted."""
    from opentelemetry.sdk.trace import ReadableSpan

    attributes = dict(span.attributes or {})
    changed = False
    for name, value in attributes.items():
        if isinstance(value, str):
            clean = redacted_query(value) if name in QUERY_ATTRIBUTES else redacted_text(value)
            if clean != value:
                attributes[name], changed = clean, True
    name = redacted_text(span.name)
    if not changed and name == span.name:
        return span
    return ReadableSpan(
        name=name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=attributes,
        events=span.events,
        links=span.links,
        kind=span.kind,
        status=span.status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


def redacting(inner: SpanExporter) -> SpanExporter:
    """An exporter that hands `inner` only redacted spans."""
    from opentelemetry.sdk.trace.export import SpanExporter

    class Redacting(SpanExporter):
        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            return inner.export([redacted_span(span) for span in spans])

        def shutdown(self) -> None:
            inner.shutdown()

        def force_flush(self, timeout_millis: int = 30000) -> bool:
            return inner.force_flush(timeout_millis)

    return Redacting()


def enabled() -> bool:
    return _tracer is not None


def asgi_middleware() -> Any:
    """The ASGI middleware that opens a server span per HTTP request (only asked for when on)."""
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

    return OpenTelemetryMiddleware


@contextmanager
def span(name: str, **attributes: Any) -> Iterator[None]:
    """A client span (an upstream call), child of the current request's span; nothing when off."""
    if _tracer is None:
        yield
        return
    from opentelemetry.trace import SpanKind

    with _tracer.start_as_current_span(name, kind=SpanKind.CLIENT, attributes=attributes):
        yield
