"""`make test` in a fresh clone with nothing beside it: no test, bench or source file reaches for a path
outside the repository (the lifecycle test's seed fixture once came from a `shared/` folder next to
the checkout, which a person who clones the repository does not have)."""

from __future__ import annotations

import re
from pathlib import Path

from tests.support.paths import FIXTURES, REPO

SCANNED = ("src", "tests", "bench")
# `Path(__file__).resolve().parents[N]`: N must stay inside the repository from that file's folder.
PARENTS = re.compile(r"__file__\)\.resolve\(\)\.parents\[(\d+)\]")
# Ways out: the folder beside the checkout, a relative climb, an absolute path of a work machine.
OUTSIDE = re.compile(r"REPO\.parent\b|[\"']\.\./|[\"']/work/|[\"']/home/|\bshared\s*/\s*[\"']")


def python_files() -> list[Path]:
    found = [path for folder in SCANNED for path in sorted((REPO / folder).rglob("*.py"))]
    return [path for path in found if path != Path(__file__).resolve()]  # its patterns name them


def test_no_file_names_a_path_outside_the_repository() -> None:
    reaching = []
    for path in python_files():
        text = path.read_text()
        depth = len(path.relative_to(REPO).parts) - 1  # parents[depth] is the repository itself
        reaching += [
            f"{path.relative_to(REPO)}: parents[{n}]" for n in PARENTS.findall(text) if int(n) > depth
        ]
        reaching += [f"{path.relative_to(REPO)}: {m.group(0)!r}" for m in OUTSIDE.finditer(text)]
    assert reaching == []


def test_the_seed_fixture_is_in_the_repository() -> None:
    seed = FIXTURES / "seed-batch-response.json"
    assert seed.is_file() and seed.resolve().is_relative_to(REPO)
