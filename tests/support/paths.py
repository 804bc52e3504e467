"""Where tests find the repository, from any depth of tests/. Everything a test reads lives inside it
(fixtures in tests/fixtures/): a fresh clone with nothing beside it runs `make test`."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"
