"""The operator's picture of a running relay: one snapshot read from the store, for `dreamrelay status`
and for the gauges of `/metrics`; and the periodic work that keeps it current (worker heartbeats and
the ledger check)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from prometheus_client.metrics_core import GaugeMetricFamily, Metric

from dreamrelay.domain.channel import Channel
from dreamrelay.domain.states import ACTIVE_STATES
from dreamrelay.store import ledger
from dreamrelay.store import operations as ops_store
from dreamrelay.store.channels import list_channels
from dreamrelay.store.engine import Database
from dreamrelay.store.outage import Outage, is_outage

log = logging.getLogger(__name__)

LEDGER_CHECK = "ledger"
PERIODIC_CHECKS = (LEDGER_CHECK,)  # the checks workers run; shown (never run yet) before their first


@dataclass(frozen=True)
class ChannelHealth:
    name: str
    kind: str
    enabled: bool
    benched: bool  # failing: skipped by routing until retry_at
    failures: int  # in a row
    last_error: str | None

    @property
    def up(self) -> bool:
        return self.enabled and not self.benched


@dataclass(frozen=True)
class Status:
    taken_at: float
    channels: list[ChannelHealth]
    in_flight: list[ops_store.InFlight]
    outbox: ops_store.Backlog
    checks: list[ops_store.Check]
    workers: list[ops_store.WorkerBeat]

    @property
    def outbox_oldest_age(self) -> float:
        oldest = self.outbox.oldest_created_at
        return max(0.0, self.taken_at - oldest) if oldest is not None else 0.0

    def check(self, name: str) -> ops_store.Check | None:
        return next((c for c in self.checks if c.name == name), None)

    def periodic_checks(self) -> list[tuple[str, ops_store.Check | None]]:
        """Every periodic check by name, with its last run (None before its first), and any other
        check the store holds."""
        names = list(PERIODIC_CHECKS) + [c.name for c in self.checks if c.name not in PERIODIC_CHECKS]
        return [(name, self.check(name)) for name in names]


def _health(channel: Channel, now: float) -> ChannelHealth:
    benched = channel.retry_at is not None and channel.retry_at > now
    return ChannelHealth(
        channel.name, channel.kind, channel.enabled, benched, channel.failures, channel.last_error
    )


async def snapshot(db: Database, *, worker_alive_seconds: float) -> Status:
    now = time.time()
    async with db.reader() as conn:
        channels = [_health(c, now) for c in await list_channels(conn)]
        in_flight = await ops_store.tasks_in_flight(conn)
        backlog = await ops_store.outbox_backlog(conn)
        checks = await ops_store.last_checks(conn)
        workers = await ops_store.live_workers(conn, now - worker_alive_seconds)
    return Status(now, channels, in_flight, backlog, checks, workers)


async def check_ledger(db: Database) -> bool:
    """Does every account's ledger sum to its balance? The answer is kept for /metrics and status."""
    async with db.reader() as conn:
        checked, mismatches = await ledger.verify(conn)
    detail = (
        f"{checked} accounts balanced"
        if not mismatches
        else "; ".join(f"{m.name}: balance {m.balance} ≠ ledger {m.ledger_sum}" for m in mismatches[:20])
    )
    async with db.transaction() as conn:
        await ops_store.record_check(conn, LEDGER_CHECK, not mismatches, detail)
    if mismatches:
        log.error("ledger check failed for %d account(s): %s", len(mismatches), detail)
    return not mismatches


class Watch:
    """A worker process's periodic duties: say it is alive, and check the ledger now and then."""

    def __init__(self, db: Database, instance: str, *, beat_seconds: float, ledger_seconds: float) -> None:
        self.db = db
        self.instance = instance
        self.beat_seconds = beat_seconds
        self.ledger_seconds = ledger_seconds  # 0: never
        self.started_at = time.time()

    async def beat(self) -> None:
        async with self.db.transaction() as conn:
            await ops_store.heartbeat(conn, self.instance, socket.gethostname(), os.getpid(), self.started_at)

    async def run(self, stop: asyncio.Event) -> None:
        next_ledger = time.monotonic() + min(self.ledger_seconds, 30.0)  # a first answer soon after start
        outage = Outage("the heartbeat and ledger check")
        while not stop.is_set():
            try:
                await self.beat()
                if self.ledger_seconds and time.monotonic() >= next_ledger:
                    next_ledger = time.monotonic() + self.ledger_seconds
                    await check_ledger(self.db)
            except Exception as exc:
                if not is_outage(exc):
                    log.exception("periodic operations work failed; trying again")
                else:
                    outage.note(exc)  # logged once; the beat below paces the tries
            else:
                outage.over()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.beat_seconds)
        try:
            async with self.db.transaction() as conn:
                await ops_store.forget_worker(conn, self.instance)
        except Exception as exc:
            if not is_outage(exc):
                log.exception("could not remove worker %s from the live list", self.instance)


def as_dict(status: Status) -> dict[str, Any]:
    """`dreamrelay status --json`."""
    return {
        "taken_at": status.taken_at,
        "channels": [{**asdict(c), "up": c.up} for c in status.channels],
        "in_flight": [asdict(row) for row in status.in_flight],
        "outbox": {
            "waiting": status.outbox.pending,
            "oldest_age_seconds": round(status.outbox_oldest_age, 1),
        },
        "checks": [asdict(c) for c in status.checks],
        "workers": [asdict(w) for w in status.workers],
    }


def _ago(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s ago"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.1f} h ago"


def as_text(status: Status) -> str:
    """`dreamrelay status`: one screen."""
    now = status.taken_at
    stamp = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    lines = [f"DreamRelay status at {stamp}", "", "Channels"]
    if not status.channels:
        lines.append("  (none: add one with `dreamrelay channels add`)")
    width = max([len(c.name) for c in status.channels] + [4])
    for c in status.channels:
        state = "up" if c.up else ("benched" if c.benched else "disabled")
        error = f"  last error: {c.last_error[:60]}" if c.last_error and not c.up else ""
        lines.append(f"  {c.name:<{width}}  {c.kind:<8} {state:<8} failures in a row: {c.failures}{error}")
    by_state: dict[str, int] = {}
    by_channel: dict[str, int] = {}
    for row in status.in_flight:
        by_state[row.state] = by_state.get(row.state, 0) + row.count
        by_channel[row.channel or "(not dispatched)"] = (
            by_channel.get(row.channel or "(not dispatched)", 0) + row.count
        )
    lines += ["", "Tasks in flight"]
    lines.append(
        "  "
        + "   ".join(f"{state} {by_state.get(state, 0)}" for state in ("pending", "processing"))
        + (
            "   by channel: " + ", ".join(f"{name} {n}" for name, n in sorted(by_channel.items()))
            if by_channel
            else ""
        )
    )
    oldest = (
        f"oldest waiting {status.outbox_oldest_age:.0f} s" if status.outbox.pending else "nothing waiting"
    )
    lines += ["", "Callbacks", f"  {status.outbox.pending} waiting, {oldest}"]
    ledger_check = status.check(LEDGER_CHECK)
    lines += ["", "Ledger check"]
    if ledger_check is None:
        lines.append("  not run yet (workers run it every few minutes; or `dreamrelay ledger verify`)")
    else:
        verdict = "balanced" if ledger_check.ok else "FAILING"
        lines.append(f"  {verdict}, {_ago(now - ledger_check.checked_at)}: {ledger_check.detail}")
    lines += ["", f"Workers alive: {len(status.workers)}"]
    for w in status.workers:
        lines.append(
            f"  {w.instance}  {w.host} pid {w.pid}, up {_ago(now - w.started_at).removesuffix(' ago')}, "
            f"beat {_ago(now - w.heartbeat_at)}"
        )
    return "\n".join(lines)


def gauges(status: Status) -> list[Metric]:
    """The store's picture (`snapshot`) as the gauges of `/metrics` (`metrics.render` serves them)."""
    in_flight = GaugeMetricFamily(
        "dreamrelay_tasks_in_flight",
        "Tasks pending or processing, by state and channel",
        labels=["state", "channel"],
    )
    # Every (state, channel) pair, 0 when nothing is there: a dashboard shows 0, not "No data".
    counts = {(state.value, channel.name): 0 for state in ACTIVE_STATES for channel in status.channels}
    counts.update({(state.value, ""): 0 for state in ACTIVE_STATES})  # not dispatched yet
    counts.update({(row.state, row.channel): row.count for row in status.in_flight})
    for (state_name, channel_name), count in sorted(counts.items()):
        in_flight.add_metric([state_name, channel_name], count)
    up = GaugeMetricFamily(
        "dreamrelay_channel_up",
        "1 when the channel is enabled and not benched for failing",
        labels=["channel", "kind"],
    )
    benched = GaugeMetricFamily(
        "dreamrelay_channel_benched",
        "1 while routing skips the channel after failures in a row",
        labels=["channel"],
    )
    failures = GaugeMetricFamily(
        "dreamrelay_channel_consecutive_failures",
        "Upstream failures in a row (0 after a success)",
        labels=["channel"],
    )
    enabled = GaugeMetricFamily(
        "dreamrelay_channel_enabled", "1 when the operator enabled the channel", labels=["channel"]
    )
    for channel in status.channels:
        up.add_metric([channel.name, channel.kind], int(channel.up))
        benched.add_metric([channel.name], int(channel.benched))
        failures.add_metric([channel.name], channel.failures)
        enabled.add_metric([channel.name], int(channel.enabled))
    backlog = GaugeMetricFamily("dreamrelay_outbox_backlog", "Callback events waiting for delivery")
    backlog.add_metric([], status.outbox.pending)
    oldest = GaugeMetricFamily(
        "dreamrelay_outbox_oldest_age_seconds", "Age of the oldest callback event waiting (0 when none)"
    )
    oldest.add_metric([], status.outbox_oldest_age)
    check_ok = GaugeMetricFamily(
        "dreamrelay_check_ok", "1 when the last periodic check passed (check: ledger)", labels=["check"]
    )
    check_at = GaugeMetricFamily(
        "dreamrelay_check_timestamp_seconds", "When the last periodic check ran (UNIX time)", labels=["check"]
    )
    for name, check in status.periodic_checks():  # before its first run: ok (nothing failed), at 0 (never)
        check_ok.add_metric([name], int(check.ok) if check else 1)
        check_at.add_metric([name], check.checked_at if check else 0.0)
    workers = GaugeMetricFamily("dreamrelay_workers_alive", "Worker processes with a recent heartbeat")
    workers.add_metric([], len(status.workers))
    return [in_flight, up, benched, failures, enabled, backlog, oldest, check_ok, check_at, workers]
