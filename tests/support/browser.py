"""Debian's Chromium for the console's browser tests and bench/console.py (never a downloaded browser)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def launch(playwright: Any) -> Any:
    """A headless Chromium from a started Playwright (sync API)."""
    return playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
