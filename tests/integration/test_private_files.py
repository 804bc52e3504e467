"""Issue 26 item 15: under umask 022 no other local user can read the data directory or what is secret
in it: the SQLite store and its WAL, the secrets, the sandbox's generations (prompts, callback URLs
with their tokens), uploaded bytes. A data directory left readable by an older start is tightened.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import make_settings, start_relay
from tests.support.media import picture

pytestmark = pytest.mark.both_stores


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    before = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(before)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def readable_by_others(root: Path) -> list[str]:
    """Every path under `root` (itself included) that a user other than the owner could open."""
    found = []
    for path in [root, *root.rglob("*")]:
        if mode(path) & 0o077:
            found.append(f"{path.relative_to(root.parent)} {oct(mode(path))}")
    return found


def test_the_data_directory_and_its_secrets_are_owner_only(tmp_path: Path, store: str) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o755)  # as an older start (or the operator) left it
    os.chmod(data_dir, 0o755)
    settings = make_settings(data_dir)
    with start_relay(settings) as relay, relay.client() as client:
        made = client.post(
            "/luma/generations",
            json={
                "user_prompt": "a secret prompt",
                "resolution": "540p",
            },
        )
        assert made.status_code == 200, made.text
        upload = client.post("/agents/v1/files", files={"file": ("a.png", picture(16, 16), "image/png")})
        assert upload.status_code == 201, upload.text
        assert mode(data_dir) == 0o700
        records = list((data_dir / "sandbox" / "generations").glob("*.json"))
        assert records, "the sandbox kept no generation"
        for path in records:
            assert mode(path) == 0o600, path
        for name in ("admin_token", "sandbox_key"):
            if (data_dir / name).exists():
                assert mode(data_dir / name) == 0o600, name
        if store == "sqlite":
            for name in ("dreamrelay.db", "dreamrelay.db-wal"):
                assert mode(data_dir / name) == 0o600, name
        # Nothing inside is open to others even if the directory is loosened again later, except the
        # media and rendered files (served over HTTP anyway) and folders, closed by the directory.
        leaks = [
            line
            for line in readable_by_others(data_dir)
            if not line.split()[0].startswith(("data/media", "data/sandbox/files", "data/metrics"))
            and not (data_dir.parent / line.split()[0]).is_dir()
        ]
        assert leaks == []


@pytest.mark.sqlite_only  # a SQLite file's mode
def test_a_database_left_world_readable_is_tightened_at_start(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    with start_relay(settings):
        pass
    database = tmp_path / "dreamrelay.db"
    os.chmod(database, 0o644)
    os.chmod(tmp_path, 0o755)
    wal = tmp_path / "dreamrelay.db-wal"
    if wal.exists():
        os.chmod(wal, 0o644)
    with start_relay(settings, key="unused") as relay, relay.client() as client:
        assert client.get("/healthz").status_code == 200
        assert mode(database) == 0o600 and mode(tmp_path) == 0o700
        if wal.exists():
            assert mode(wal) == 0o600
