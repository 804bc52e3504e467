"""Dependencies point inward: what each layer may import of ours (docs/architecture.md, "Layers")."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.support.paths import REPO
from tests.support.shape import (
    PACKAGE,
    cycles,
    import_graph,
    imports_of,
    imports_only,
    is_sql,
    parsed,
    sql_texts,
)

# layer → the packages of ours it may import (besides itself)
ONLY = {"domain": set(), "formats": {"domain"}}
# What no service, store or upstream adapter may import: the entry points above them.
ENTRY_POINTS = {"http", "cli", "admin_cli", "worker", "entry"}


def ours(path: Path) -> set[str]:
    """The first part after `dreamrelay.` of every import in `path`, TYPE_CHECKING ones included."""
    found: set[str] = set()
    for node in ast.walk(imports_only(path)):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("dreamrelay."):
            found.add(node.module.split(".")[1])
        elif isinstance(node, ast.ImportFrom) and node.module == "dreamrelay":
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("dreamrelay."))
    return found


@pytest.mark.parametrize("layer", sorted(ONLY))
def test_the_inner_layers_import_only_what_is_inside(layer: str) -> None:
    for path in sorted((PACKAGE / layer).glob("*.py")):
        imported = ours(path) - {layer}
        assert imported <= ONLY[layer], f"{path.name} imports {sorted(imported - ONLY[layer])}"


@pytest.mark.parametrize("layer", ["services", "store", "upstreams", "media"])
def test_no_layer_below_the_entry_points_imports_one(layer: str) -> None:
    for path in sorted((PACKAGE / layer).glob("*.py")):
        assert not ours(path) & ENTRY_POINTS, f"{path.name} imports {sorted(ours(path) & ENTRY_POINTS)}"


def test_no_import_cycles_among_our_modules() -> None:
    """Counting every import: at the top, under TYPE_CHECKING, inside functions (tests/support/shape.py)."""
    assert cycles(import_graph()) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}}
    assert cycles(graph) == [["a", "b", "c"]]


# SQL text lives in the store; the migrations are the store's history and write their own statements.
SQL_HOMES = {"store", "migrations"}


def test_sql_text_only_under_store() -> None:
    found = [
        str(text)
        for path in sorted(PACKAGE.rglob("*.py"))
        if not SQL_HOMES & set(path.relative_to(PACKAGE).parts)
        for text in sql_texts(path)
    ]
    assert found == []


@pytest.mark.parametrize(
    ("text", "sql"),
    [
        ("SELECT balance FROM accounts WHERE id = ?", True),
        ("  SELECT 1 FROM t", True),
        ("select a from t", False),  # ours are written in capitals
        ("INSERT INTO ledger (a) VALUES (?)", True),
        ("UPDATE tasks SET state = ? WHERE id = ?", True),
        ("DELETE FROM prices", True),
        ("WITH due AS (SELECT id FROM t) SELECT * FROM due", True),
        ("CREATE UNIQUE INDEX ix ON t (a)", True),
        ("Select a model from the list", False),
        ("Update the key's limits", False),
        ("Delete a task (its media too)", False),
        ("with the balance too low", False),
    ],
)
def test_what_counts_as_sql_text(text: str, sql: bool) -> None:
    assert is_sql(text) is sql


def test_sqlalchemy_text_calls_count_whatever_they_hold(tmp_path: Path) -> None:
    source = tmp_path / "probe.py"
    source.write_text(
        "import sqlalchemy as sa\nfrom sqlalchemy import text as t\n"
        "a = t(QUERY)\nb = sa.text('VACUUM')\nc = draw.text('SELECT 1 FROM x')\n"
    )
    found = [(s.line, s.text) for s in sql_texts(source)]
    assert found == [(3, "QUERY"), (4, "'VACUUM'"), (5, "SELECT 1 FROM x")]


def private_names_of_ours(path: Path) -> list[str]:
    """`from dreamrelay.x import _y`, `import dreamrelay._x`, and `m._y` where `m` is a module of ours."""
    tree = parsed(path)
    ours_bound: set[str] = set()
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("dreamrelay"):
            module = node.module or ""
            found += [f"{module}.{a.name}" for a in node.names if a.name.startswith("_")]
            found += [module] if any(part.startswith("_") for part in module.split(".")) else []
            ours_bound.update(a.asname or a.name for a in node.names)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("dreamrelay"):
                    found += [alias.name] if any(p.startswith("_") for p in alias.name.split(".")) else []
                    ours_bound.add(alias.asname or alias.name.split(".")[0])
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
            and isinstance(node.value, ast.Name)
            and node.value.id in ours_bound
        ):
            found.append(f"{node.value.id}.{node.attr} (line {node.lineno})")
    return found


@pytest.mark.parametrize("path", sorted((REPO / "bench").glob("*.py")), ids=lambda p: p.name)
def test_bench_uses_no_private_names_of_ours(path: Path) -> None:
    assert private_names_of_ours(path) == []


def test_a_private_name_is_found(tmp_path: Path) -> None:
    source = tmp_path / "uses.py"
    source.write_text(
        "from dreamrelay.services import follow\nfrom dreamrelay.x import _y\nfollow._copy(1)\n"
    )
    assert private_names_of_ours(source) == ["dreamrelay.x._y", "follow._copy (line 3)"]


# The unit layer tests pure rules: it imports the domain, the formats and a few modules that import no
# framework (no web framework, database driver, HTTP client or media library), so it collects in a blink.
UNIT_MAY_IMPORT = ("dreamrelay.domain", "dreamrelay.formats", "dreamrelay.logs", "dreamrelay.body_cache")
UNIT_MAY_IMPORT_TOO = {"dreamrelay", "dreamrelay.http", "dreamrelay.http.console.task_view"}


def _unit_may_import(module: str) -> bool:
    return module in UNIT_MAY_IMPORT_TOO or any(
        module == allowed or module.startswith(f"{allowed}.") for allowed in UNIT_MAY_IMPORT
    )


def test_the_unit_layer_imports_only_pure_modules_of_ours() -> None:
    graph = import_graph()
    known = set(graph)
    reached: set[str] = set()
    for path in sorted((REPO / "tests" / "unit").rglob("*.py")):
        pending = [m for m in imports_of("tests.unit.x", path, known) if m.startswith("dreamrelay")]
        while pending:
            module = pending.pop()
            if module not in reached:
                reached.add(module)
                pending.extend(graph.get(module, ()))
    assert sorted(m for m in reached if not _unit_may_import(m)) == []
