"""Optional OpenTelemetry tracing, on only when the standard OTEL_EXPORTER_OTLP_ENDPOINT (or
OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set: a span for each HTTP request and each upstream call,
exported over OTLP/HTTP. When it is off nothing of OpenTelemetry is imported, no middleware is added,
and `span` is a no-op context manager.
"""

from __future__ import annotations

import atexit
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    atexit.register(provider.shutdown)  # flush what is still queued
    _tracer = trace.get_tracer("dreamrelay")
    return True


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
