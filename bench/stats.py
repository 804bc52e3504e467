"""Small statistics shared by the sections: percentiles and median/p99 summaries."""

from __future__ import annotations

import statistics
from collections.abc import Sequence


def pct(values: Sequence[float], p: float) -> float:
    """The p-th percentile (nearest rank); NaN for no values."""
    ordered = sorted(values)
    return ordered[min(int(len(ordered) * p / 100), len(ordered) - 1)] if ordered else float("nan")


def spread(values: Sequence[float], scale: float = 1.0, digits: int = 3) -> dict[str, float | int | None]:
    """Median, p99, min, max (each times `scale`) and the count."""
    if not values:
        return {"median": None, "p99": None, "min": None, "max": None, "n": 0}
    return {
        "median": round(statistics.median(values) * scale, digits),
        "p99": round(pct(values, 99) * scale, digits),
        "min": round(min(values) * scale, digits),
        "max": round(max(values) * scale, digits),
        "n": len(values),
    }
