"""Benchmark options, all from the environment so `make bench` needs no arguments."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Any

SECTIONS = (
    "api",
    "profile",
    "growth",
    "following",
    "lifecycle",
    "money",
    "callbacks",
    "observability",
    "memory",
    "finishing",
    "submit",
    "inflight",
)


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def _float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


@dataclass(frozen=True)
class Options:
    quick: bool = False  # BENCH_QUICK=1: growth stops at 100k tasks
    seconds: float = 4.0  # BENCH_SECONDS: length of one measured run
    warmup_seconds: float = 1.0  # BENCH_WARMUP_SECONDS: unrecorded run before the first round
    rounds: int = 3  # BENCH_ROUNDS: baseline/candidate pairs, alternated B C C B … (medians of these)
    connections: int = 16  # BENCH_CONNECTIONS: the same for candidate and baseline
    growth_max: int = 1_000_000  # BENCH_GROWTH_MAX: largest store of the growth benchmark
    growth_postgres: bool = True  # BENCH_GROWTH_POSTGRES=0 skips PostgreSQL
    pg_admin: str = "postgresql://postgres@127.0.0.1:5432/postgres"  # BENCH_PG_ADMIN
    # 1000 tasks at 20/s, each 50 s upstream: about 1000 in flight at once at the peak.
    follow_tasks: int = 1000  # BENCH_FOLLOW_TASKS
    follow_rate: float = 20.0  # BENCH_FOLLOW_RATE: submits per second while following
    follow_queued: float = 5.0  # BENCH_FOLLOW_QUEUED: sandbox seconds in queued
    follow_dreaming: float = 45.0  # BENCH_FOLLOW_DREAMING: sandbox seconds in dreaming
    callback_events: int = 5000  # BENCH_CALLBACK_EVENTS: outbox events for the deliveries-per-second run
    limit_calls: int = 20_000  # BENCH_LIMIT_CALLS: rate-limit checks timed one by one
    memory_submits: int = 10  # BENCH_MEMORY_SUBMITS: image submits at once in the memory section
    python_load: bool = False  # BENCH_LOADGEN=python forces the Python load generator
    sections: tuple[str, ...] = field(default=SECTIONS)  # BENCH_ONLY=api,growth,…
    cases: tuple[str, ...] = ()  # BENCH_CASES=healthz,100 ids: api cases whose name holds one of these

    @classmethod
    def from_env(cls) -> Options:
        quick = os.environ.get("BENCH_QUICK", "") not in ("", "0")
        only = os.environ.get("BENCH_ONLY", "")
        sections = tuple(s.strip() for s in only.split(",") if s.strip()) or SECTIONS
        unknown = set(sections) - set(SECTIONS)
        if unknown:
            raise SystemExit(
                f"BENCH_ONLY: unknown section(s) {sorted(unknown)}; known: {', '.join(SECTIONS)}"
            )
        growth_max = _int("BENCH_GROWTH_MAX", 1_000_000)
        if quick:
            growth_max = min(growth_max, 100_000)
        return cls(
            quick=quick,
            seconds=_float("BENCH_SECONDS", 4.0),
            warmup_seconds=_float("BENCH_WARMUP_SECONDS", 1.0),
            rounds=_int("BENCH_ROUNDS", 3),
            connections=_int("BENCH_CONNECTIONS", 16),
            growth_max=growth_max,
            growth_postgres=os.environ.get("BENCH_GROWTH_POSTGRES", "1") not in ("", "0"),
            pg_admin=os.environ.get("BENCH_PG_ADMIN", cls.pg_admin),
            follow_tasks=_int("BENCH_FOLLOW_TASKS", cls.follow_tasks),
            follow_rate=_float("BENCH_FOLLOW_RATE", cls.follow_rate),
            follow_queued=_float("BENCH_FOLLOW_QUEUED", cls.follow_queued),
            follow_dreaming=_float("BENCH_FOLLOW_DREAMING", cls.follow_dreaming),
            callback_events=_int("BENCH_CALLBACK_EVENTS", 5000),
            limit_calls=_int("BENCH_LIMIT_CALLS", 20_000),
            memory_submits=_int("BENCH_MEMORY_SUBMITS", cls.memory_submits),
            python_load=os.environ.get("BENCH_LOADGEN", "wrk") == "python",
            sections=sections,
            cases=tuple(c.strip() for c in os.environ.get("BENCH_CASES", "").split(",") if c.strip()),
        )

    def wants(self, case: str) -> bool:
        return not self.cases or any(c in case for c in self.cases)

    @property
    def growth_sizes(self) -> list[int]:
        sizes = [s for s in (10_000, 100_000, 1_000_000) if s <= self.growth_max]
        if self.growth_max not in sizes and self.growth_max > 0:
            sizes.append(self.growth_max)
        return sorted(sizes)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
