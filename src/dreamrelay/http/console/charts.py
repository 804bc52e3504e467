"""The dashboard's hourly bar chart as SVG geometry (pure)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

CHART_HEIGHT = 120.0
BAR_STEP = 12


def hourly_bars(hours: list[dict[str, Any]]) -> dict[str, Any]:
    """Stacked bars, one per hour: completed, failed, processing, pending from the bottom up."""
    peak = max((sum(h["counts"].values()) for h in hours), default=0) or 1
    bars = []
    for i, hour in enumerate(hours):
        y = CHART_HEIGHT
        segments = []
        for state in ("completed", "failed", "processing", "pending"):
            n = hour["counts"][state]
            if n:
                height = max(n / peak * CHART_HEIGHT, 1.0)
                y -= height
                segments.append({"state": state, "y": round(y, 2), "h": round(height, 2), "n": n})
        label = datetime.fromtimestamp(hour["start"], UTC).strftime("%H:00")
        bars.append(
            {
                "x": i * BAR_STEP + 1,
                "segments": segments,
                "total": sum(hour["counts"].values()),
                "counts": hour["counts"],
                "label": label,
                "show_label": i % 6 == 0,
            }
        )
    return {"bars": bars, "peak": peak, "width": len(hours) * BAR_STEP, "height": CHART_HEIGHT}
