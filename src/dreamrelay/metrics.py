"""Prometheus metrics. With PROMETHEUS_MULTIPROC_DIR set, `/metrics` sums every process on the host.

The directory must be chosen before this module is imported (prometheus_client decides at import
time): the `dreamrelay` command calls `metrics_dir.use` before importing the rest (`entry.py`).

Counters and histograms live here, in the processes that do the work. What the database already
knows (tasks in flight, outbox backlog, channel health, the last ledger check, live workers) is read
when `/metrics` is scraped (`services/operations.py`), so every process tells the same truth. The
catalogue with each series' meaning is in docs/operations.md. No label ever carries an id.
"""

from __future__ import annotations

import asyncio
import os
import threading
from bisect import bisect_left
from collections.abc import Iterable, Iterator

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    start_http_server,
)
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

HTTP_REQUESTS = Counter(
    "dreamrelay_http_requests_total", "HTTP requests answered", ["method", "route", "status"]
)
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
HTTP_SECONDS = Histogram(
    "dreamrelay_http_request_duration_seconds",
    "Time to answer an HTTP request",
    ["route"],
    buckets=HTTP_BUCKETS,
)
_http_children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}


class _Observed(threading.local):
    """This thread's HTTP requests not yet added to the series, and the loop a flush is due on."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str, int], list[float]] = {}  # count, seconds, then per bucket
        self.loop: asyncio.AbstractEventLoop | None = None


_observed = _Observed()


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    """Count and time one HTTP request by its route template.

    The requests one event-loop turn answers are added to the series together, at the start of the
    next turn (before anything else can read them): in multiprocess mode each addition is a locked
    write to the mmap file, so a busy process writes once per route and turn instead of three times
    per request. Outside a running loop the request is added at once.
    """
    observed = _observed
    key = (method, route, status)
    entry = observed.counts.get(key)
    if entry is None:
        entry = observed.counts[key] = [0.0] * (len(HTTP_BUCKETS) + 3)  # the last bucket is +Inf
    entry[0] += 1
    entry[1] += seconds
    entry[2 + bisect_left(HTTP_BUCKETS, seconds)] += 1
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        _add_observed(observed)
        return
    if observed.loop is not loop:  # (a loop that closed with a flush due is simply replaced)
        observed.loop = loop
        loop.call_soon(_add_observed, observed)


def _add_observed(observed: _Observed) -> None:
    observed.loop = None
    counts, observed.counts = observed.counts, {}
    for key, entry in counts.items():
        children = _http_children.get(key)
        if children is None:
            if len(_http_children) > 10_000:  # methods are the client's words: keep the memo bounded
                _http_children.clear()
            method, route, status = key
            children = (HTTP_REQUESTS.labels(method, route, str(status)), HTTP_SECONDS.labels(route))
            _http_children[key] = children
        counter, histogram = children
        counter.inc(entry[0])
        # Histogram.observe takes one value at a time: its sum and bucket values take the whole turn's.
        histogram._sum.inc(entry[1])
        for bucket, count in zip(histogram._buckets, entry[2:], strict=True):
            if count:
                bucket.inc(count)


LEASED = Counter("dreamrelay_leased_total", "Work items claimed by this process", ["kind"])
RELEASED = Counter("dreamrelay_released_total", "Leases handed back unfinished at shutdown", ["kind"])
UPSTREAM_POLLS = Counter("dreamrelay_upstream_polls_total", "Batched status polls of upstreams", ["outcome"])
TASKS_FINISHED = Counter(
    "dreamrelay_tasks_finished_total", "Tasks that reached a terminal state after dispatch", ["state"]
)
CALLBACK_ATTEMPTS = Counter(
    "dreamrelay_callback_attempts_total", "Callback delivery attempts recorded", ["outcome"]
)
CALLBACK_SECONDS = Histogram(
    "dreamrelay_callback_delivery_seconds",
    "From the state change to the customer's receiver accepting its callback",
    buckets=(0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 60.0, 300.0, 3600.0, 86400.0),
)
SUBMITS = Counter(
    "dreamrelay_submits_total",
    "Task submissions answered, by API format and outcome (ok, or the error code the customer got)",
    ["format", "code"],
)
UPSTREAM_REQUESTS = Counter(
    "dreamrelay_upstream_requests_total",
    "Requests to upstream channels by operation (submit, poll, cancel) and outcome",
    ["channel", "operation", "outcome"],
)
UPSTREAM_SECONDS = Histogram(
    "dreamrelay_upstream_request_duration_seconds",
    "Time an upstream took to answer",
    ["channel", "operation"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
POLL_LAG = Histogram(
    "dreamrelay_poll_lag_seconds",
    "From the upstream finishing a task to DreamRelay knowing it, by how we learnt it",
    ["via"],
    buckets=(0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0),
)
FINISH_SECONDS = Histogram(
    "dreamrelay_finish_duration_seconds",
    "Copying and probing a finished task's media (download, probe, thumbnails)",
    ["kind"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)
LEDGER_ROWS = Counter("dreamrelay_ledger_rows_total", "Ledger rows committed, by kind", ["kind"])
LEDGER_CREDITS = Counter(
    "dreamrelay_ledger_credits_total",
    "Credits moved by committed ledger rows (absolute value), by kind",
    ["kind"],
)
RATE_LIMITED = Counter(
    "dreamrelay_rate_limited_total",
    "Requests refused by a limit (requests, batch, in_flight, signin, admin, redeem)",
    ["kind"],
)
STORAGE_ERRORS = Counter(
    "dreamrelay_media_storage_errors_total", "Media storage operations that failed", ["operation"]
)
BUILD_INFO = Gauge(
    "dreamrelay_build_info",
    "Always 1: the version and the store of the processes on this host",
    ["version", "store"],
    multiprocess_mode="max",
)


STORAGE_OPERATIONS = ("put", "stat", "get", "presign", "delete", "other")


def announce(version: str, store: str, ledger_kinds: Iterable[str]) -> None:
    """Called once per process: build info, and zeros for the series alerts read (absent ≠ 0)."""
    BUILD_INFO.labels(version, store).set(1)
    for operation in STORAGE_OPERATIONS:
        STORAGE_ERRORS.labels(operation)
    for kind in ledger_kinds:
        LEDGER_ROWS.labels(kind)
        LEDGER_CREDITS.labels(kind)
    for kind in ("rpm", "batch", "in_flight"):
        RATE_LIMITED.labels(kind)
    for state in ("completed", "failed"):
        TASKS_FINISHED.labels(state)


class Snapshot(Collector):
    """Gauges read from the database at scrape time (`services.operations.gauges`), served once."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = list(families)

    def collect(self) -> Iterator[Metric]:
        yield from self._families


def _registry() -> CollectorRegistry:
    """Every process's samples in multiprocess mode, else this process's."""
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return registry
    return REGISTRY


def render(snapshot: Iterable[Metric] = ()) -> tuple[bytes, str]:
    """The exposition text: this host's counters, plus the gauges read from the store (if given)."""
    families = list(snapshot)
    if not families:
        return generate_latest(_registry()), CONTENT_TYPE_LATEST
    registry = CollectorRegistry()
    if os.environ.get(MULTIPROC_ENV):
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        registry.register(_Everything())
    registry.register(Snapshot(families))
    return generate_latest(registry), CONTENT_TYPE_LATEST


class _Everything(Collector):
    """This process's default registry, re-exposed beside a snapshot (single-process mode)."""

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


def serve(host: str, port: int) -> None:
    """`/metrics` on its own port, for processes without HTTP (`dreamrelay worker --metrics-port`)."""
    start_http_server(port, addr=host, registry=_registry())
