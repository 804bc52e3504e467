"""Where tests find the repository and the shared folder, from any depth of tests/."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _shared() -> Path:
    # shared/ sits beside the checkout (or beside the folder of work trees that holds it).
    for parent in REPO.parents:
        if (parent / "shared" / "spec").is_dir():
            return parent / "shared"
    return REPO.parent / "shared"


SHARED = _shared()
