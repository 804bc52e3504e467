"""The `dreamrelay` command: the metrics directory first (see `metrics_dir`), then the CLI."""

from __future__ import annotations

import contextlib
import os
import sys


def main() -> None:
    from dreamrelay import metrics_dir

    command = next((arg for arg in sys.argv[1:] if not arg.startswith("-")), None)
    if command in metrics_dir.COMMANDS:
        from pydantic import ValidationError

        from dreamrelay.settings import Settings

        with contextlib.suppress(ValidationError):  # the command itself reports bad settings
            metrics_dir.use(Settings())
    else:
        # Nobody scrapes a one-off command (migrate, ledger verify, …): its counts stay in the process, and
        # a PROMETHEUS_MULTIPROC_DIR meant for the servers (a tmpfs of theirs, absent here) is not needed.
        os.environ.pop(metrics_dir.ENV, None)
    from dreamrelay.cli import app

    app()
