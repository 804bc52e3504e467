"""One-off `dreamrelay` commands run where the servers' PROMETHEUS_MULTIPROC_DIR does not exist (compose's
`migrate` service shares the servers' environment but not their metrics tmpfs)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_migrate_and_ledger_verify_ignore_a_metrics_directory_that_is_not_there(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DREAMRELAY_DATA_DIR": str(tmp_path / "data"),
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "absent" / "metrics"),
    }
    dreamrelay = str(Path(sys.executable).parent / "dreamrelay")
    for args, said in ((["migrate"], "database is up to date"), (["ledger", "verify"], "ok: ")):
        done = subprocess.run([dreamrelay, *args], env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert said in done.stdout
    assert not (tmp_path / "absent").exists()
