"""Task bodies' times: the fast formatter writes what datetime writes, to the millisecond."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from dreamrelay.formats.own import iso_millis


def _by_datetime(ts: float) -> str:
    moment = datetime.fromtimestamp(ts, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def test_iso_millis_writes_what_datetime_writes() -> None:
    draw = random.Random(15)
    edges = [0.0, 1764480000.0, 1764480000.9999995, 1764480000.9995, 1186658367.2069998, -0.0000004, -1.5]
    samples = edges + [draw.uniform(-1e6, 4e9) for _ in range(5_000)]
    samples += [
        draw.randrange(0, 4_000_000_000) + draw.choice((0.9999995, 0.0005, 0.9995)) for _ in range(5_000)
    ]
    for ts in samples:
        assert iso_millis(ts) == _by_datetime(ts), ts
    assert iso_millis(1734874720.139) == "2024-12-22T13:38:40.139Z"
