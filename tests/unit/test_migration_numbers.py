"""Migration numbers (docs/architecture.md, "Migrations"): 0001–0012 are deployed and keep the chain they
have (0005 → 0010 → 0011 → 0012 → 0009 → 0008 → 0007 → 0006); from 0013 on, numbers are apply order."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.support.shape import PACKAGE, parsed

VERSIONS = PACKAGE / "migrations" / "versions"
# revision → down_revision of every deployed migration: never renumbered, never re-chained.
DEPLOYED = {
    "0001": None,
    "0002": "0001",
    "0003": "0002",
    "0004": "0003",
    "0005": "0004",
    "0010": "0005",
    "0011": "0010",
    "0012": "0011",
    "0009": "0012",
    "0008": "0009",
    "0007": "0008",
    "0006": "0007",
}
LAST_OF_0001_0012 = "0006"
FIRST_IN_ORDER = 13


def assigned(tree: ast.Module, name: str) -> object:
    for node in tree.body:
        if isinstance(node, ast.Assign) and [ast.unparse(t) for t in node.targets] == [name]:
            return ast.literal_eval(node.value)
        if isinstance(node, ast.AnnAssign) and ast.unparse(node.target) == name and node.value is not None:
            return ast.literal_eval(node.value)
    raise AssertionError(f"no {name} assigned")


def chain(folder: Path) -> dict[str, object]:
    """revision → down_revision of every migration file in `folder`, checking each file's name starts with
    its revision."""
    found: dict[str, object] = {}
    for path in sorted(folder.glob("[0-9]*.py")):
        tree = parsed(path)
        revision = assigned(tree, "revision")
        assert isinstance(revision, str) and path.name.startswith(f"{revision}_"), path.name
        found[revision] = assigned(tree, "down_revision")
    return found


def out_of_order(links: dict[str, object]) -> list[str]:
    """What breaks the rule for revisions from 0013 on: each follows the one numbered before it, and 0013
    0006, the last of 0001-0012."""
    wrong = []
    for revision, down in sorted(links.items()):
        number = int(revision)
        if number < FIRST_IN_ORDER:
            continue
        expected = LAST_OF_0001_0012 if number == FIRST_IN_ORDER else f"{number - 1:04d}"
        if down != expected:
            wrong.append(f"{revision} follows {down!r}, not {expected!r}")
    return wrong


def test_the_deployed_chain_stays_as_it_is() -> None:
    links = chain(VERSIONS)
    assert {r: d for r, d in links.items() if int(r) < FIRST_IN_ORDER} == DEPLOYED


def test_revisions_from_0013_on_follow_the_number_before() -> None:
    assert out_of_order(chain(VERSIONS)) == []


def test_one_head_and_one_line() -> None:
    links = chain(VERSIONS)
    downs = [d for d in links.values() if d is not None]
    assert len(downs) == len(set(downs)), "two revisions follow the same one"
    heads = set(links) - set(downs)
    assert len(heads) == 1


@pytest.mark.parametrize(
    ("links", "wrong"),
    [
        ({"0013": "0006", "0014": "0013", "0015": "0014"}, []),
        ({"0013": "0012"}, ["0013 follows '0012', not '0006'"]),
        ({"0013": "0006", "0015": "0013"}, ["0015 follows '0013', not '0014'"]),
        ({"0013": "0006", "0014": "0006"}, ["0014 follows '0006', not '0013'"]),
        ({"0009": "0012", "0006": "0007"}, []),  # the deployed ones are not checked by number
    ],
)
def test_what_breaks_the_order(links: dict[str, object], wrong: list[str]) -> None:
    assert out_of_order(links) == wrong


def test_a_file_named_for_another_revision_is_refused(tmp_path: Path) -> None:
    (tmp_path / "0013_new.py").write_text('revision = "0014"\ndown_revision = "0006"\n')
    with pytest.raises(AssertionError):
        chain(tmp_path)
