"""Where the processes of one host keep their metrics, chosen before prometheus_client is imported.

prometheus_client decides at import time whether it runs in multiprocess mode, and almost every module
counts something, so the `dreamrelay` command (`entry.main`) calls `use` before it imports the rest.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from dreamrelay.private_files import private_dir
from dreamrelay.settings import Settings

ENV = "PROMETHEUS_MULTIPROC_DIR"
COMMANDS = ("serve", "worker")  # the commands whose processes are scraped


def use(settings: Settings) -> Path:
    """Multiprocess mode in PROMETHEUS_MULTIPROC_DIR, by default <data dir>/metrics, shared by every
    `serve` and `worker` process of this host, so `/metrics` sums them all. The files of processes that
    are gone are removed (their counts drop out: a counter reset, as at a restart)."""
    chosen = os.environ.get(ENV)
    if not chosen:
        private_dir(settings.data_dir)  # made here first: owner-only from the start
    path = Path(chosen or settings.data_dir / "metrics").resolve()
    path.mkdir(parents=True, exist_ok=True)
    for file in path.glob("*.db"):
        pid = file.stem.rsplit("_", 1)[-1]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            file.unlink(missing_ok=True)
    os.environ[ENV] = str(path)
    if not chosen and "prometheus_client" in sys.modules:
        logging.getLogger(__name__).warning("metrics were loaded before %s was set up", path)
    return path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # somebody else's process
    return True
