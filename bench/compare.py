"""Candidate against baseline in the same run: alternated rounds, same connections and duration."""

from __future__ import annotations

import os
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bench.load import LoadGenerator, Result, Target
from bench.options import Options
from bench.servers import Process


@dataclass
class Side:
    """One server's rounds of one benchmark."""

    runs: list[Result] = field(default_factory=list)

    @property
    def rps(self) -> float:
        seconds = sum(r.seconds for r in self.runs)
        return sum(r.requests for r in self.runs) / seconds if seconds else 0.0

    @property
    def p50_ms(self) -> float:
        return statistics.median(r.p50_ms for r in self.runs)

    @property
    def p99_ms(self) -> float:
        return statistics.median(r.p99_ms for r in self.runs)

    @property
    def non_200(self) -> int:
        return sum(r.non_200 + r.errors for r in self.runs)

    @property
    def requests(self) -> int:
        return sum(r.requests for r in self.runs)

    @property
    def cpu_ms_per_request(self) -> float:
        """Server CPU (all threads) per answered request, over every round."""
        return 1000 * sum(r.server_cpu_seconds for r in self.runs) / self.requests if self.requests else 0.0

    @property
    def cpu_ms_median(self) -> float:
        """The median over rounds of server CPU per request: the headline figure (noise-robust)."""
        per_round = [r.server_cpu_ms_per_request for r in self.runs if r.requests]
        return statistics.median(per_round) if per_round else 0.0

    @property
    def cpu_share(self) -> float:
        """Server CPU seconds per wall second (1.0 = one core busy)."""
        seconds = sum(r.seconds for r in self.runs)
        return sum(r.server_cpu_seconds for r in self.runs) / seconds if seconds else 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "rps": round(self.rps, 1),
            "p50_ms": round(self.p50_ms, 3),
            "p99_ms": round(self.p99_ms, 3),
            "requests": self.requests,
            "non_200_or_errors": self.non_200,
            "server_cpu_ms_per_request": round(self.cpu_ms_per_request, 3),
            "server_cpu_ms_per_request_median": round(self.cpu_ms_median, 4),
            "server_cpu_cores": round(self.cpu_share, 2),
            "rounds": [r.as_dict() for r in self.runs],
        }


@dataclass
class Comparison:
    name: str
    connections: int
    response_bytes: int
    candidate: Side
    baseline: Side
    note: str = ""
    settle_seconds: list[float] = field(default_factory=list)
    load_average: tuple[float, float, float] = (0.0, 0.0, 0.0)  # when the comparison ended

    @property
    def cpu_ratio(self) -> float:
        """Bare app's CPU per request ÷ the relay's (1.0 = as cheap as the bare app): the headline."""
        return (
            self.baseline.cpu_ms_median / self.candidate.cpu_ms_median
            if self.candidate.cpu_ms_median
            else 0.0
        )

    @property
    def ratio(self) -> float:
        return self.candidate.rps / self.baseline.rps if self.baseline.rps else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "connections": self.connections,
            "response_bytes": self.response_bytes,
            "cpu_ratio": round(self.cpu_ratio, 3),
            "ratio_rps": round(self.ratio, 3),
            "load_average": [round(x, 2) for x in self.load_average],
            "candidate": self.candidate.summary(),
            "baseline": self.baseline.summary(),
            "note": self.note,
            "settle_seconds": [round(x, 1) for x in self.settle_seconds],
        }


def compare(
    name: str,
    load: LoadGenerator,
    opts: Options,
    *,
    candidate_server: Process,
    candidate: Target,
    baseline_server: Process,
    baseline: Target,
    response_bytes: int,
    note: str = "",
    between: Callable[[], float] | None = None,
) -> Comparison:
    """Warm both, then rounds B C, C B, B C … so drift over the run falls on both sides alike.

    `between`, when given, is called before every measured run (e.g. to let background work settle)
    and returns the seconds it waited.
    """
    settled: list[float] = []
    for server, target in ((baseline_server, baseline), (candidate_server, candidate)):
        if opts.warmup_seconds > 0:
            load.run(server.url, target, connections=opts.connections, seconds=opts.warmup_seconds)
    sides = {"baseline": Side(), "candidate": Side()}
    plan = {"baseline": (baseline_server, baseline), "candidate": (candidate_server, candidate)}
    for round_no in range(opts.rounds):
        order = ("baseline", "candidate") if round_no % 2 == 0 else ("candidate", "baseline")
        for side in order:
            if between is not None:
                settled.append(between())
            server, target = plan[side]
            cpu_before = server.cpu_seconds()
            result = load.run(server.url, target, connections=opts.connections, seconds=opts.seconds)
            result.server_cpu_seconds = server.cpu_seconds() - cpu_before
            sides[side].runs.append(result)
    done = Comparison(
        name,
        opts.connections,
        response_bytes,
        sides["candidate"],
        sides["baseline"],
        note,
        settled,
        os.getloadavg(),
    )
    cand, base = done.candidate, done.baseline
    print(
        f"  {name:<34} CPU ratio {done.cpu_ratio:.2f}: relay {cand.cpu_ms_median:.4f} ms/req, "
        f"bare {base.cpu_ms_median:.4f} ms/req | req/s {cand.rps:>6.0f} vs {base.rps:>6.0f} "
        f"(ratio {done.ratio:.2f}), p50 {cand.p50_ms:.2f} vs {base.p50_ms:.2f} ms | "
        f"non-200 {cand.non_200}/{base.non_200} | load {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    return done
