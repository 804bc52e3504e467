"""Prometheus metrics. With PROMETHEUS_MULTIPROC_DIR set, `/metrics` sums every process on the host.

The directory must be chosen before this module is imported (prometheus_client decides at import
time): `dreamrelay serve` and `dreamrelay worker` call `cli.use_metrics_dir` first.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
    start_http_server,
)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

HTTP_REQUESTS = Counter(
    "dreamrelay_http_requests_total", "HTTP requests answered", ["method", "route", "status"]
)
HTTP_SECONDS = Histogram(
    "dreamrelay_http_request_duration_seconds",
    "Time to answer an HTTP request",
    ["route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
LEASED = Counter("dreamrelay_leased_total", "Work items claimed by this process", ["kind"])
RELEASED = Counter("dreamrelay_released_total", "Leases handed back unfinished at shutdown", ["kind"])
UPSTREAM_POLLS = Counter("dreamrelay_upstream_polls_total", "Batched status polls of upstreams", ["outcome"])
TASKS_FINISHED = Counter(
    "dreamrelay_tasks_finished_total", "Tasks that reached a terminal state after dispatch", ["state"]
)
CALLBACK_ATTEMPTS = Counter(
    "dreamrelay_callback_attempts_total", "Callback delivery attempts recorded", ["outcome"]
)


def _registry() -> CollectorRegistry:
    """Every process's samples in multiprocess mode, else this process's."""
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return registry
    return REGISTRY


def render() -> tuple[bytes, str]:
    return generate_latest(_registry()), CONTENT_TYPE_LATEST


def serve(host: str, port: int) -> None:
    """`/metrics` on its own port, for processes without HTTP (`dreamrelay worker --metrics-port`)."""
    start_http_server(port, addr=host, registry=_registry())
