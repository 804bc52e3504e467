"""The `dreamrelay` command: the metrics directory first (see `metrics_dir`), then the CLI."""

from __future__ import annotations

import contextlib
import sys


def main() -> None:
    command = next((arg for arg in sys.argv[1:] if not arg.startswith("-")), None)
    if command in ("serve", "worker"):
        from pydantic import ValidationError

        from dreamrelay import metrics_dir
        from dreamrelay.settings import Settings

        with contextlib.suppress(ValidationError):  # the command itself reports bad settings
            metrics_dir.use(Settings())
    from dreamrelay.cli import app

    app()
