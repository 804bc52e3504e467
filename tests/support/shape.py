"""What tests/unit/test_layers.py reads of the source: the import graph of our modules and SQL text.

Everything here parses files with `ast`; nothing is imported or run.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from tests.support.paths import REPO

SRC = REPO / "src"
PACKAGE = SRC / "dreamrelay"


@cache
def parsed(path: Path) -> ast.Module:
    """The file's syntax tree, parsed once per test process."""
    return ast.parse(path.read_text())


# An import statement's first line, at any indentation (top level, under TYPE_CHECKING, in a function).
_IMPORT_LINE = re.compile(r"^[ \t]*(?:import[ \t]+[\w.]|from[ \t]+[\w.]+[ \t]+import\b)")


@cache
def imports_only(path: Path) -> ast.Module:
    """The file's import statements, each parsed on its own (a module's other lines are most of the
    parsing, and the import graph needs none of them). A line that only looks like an import (inside a
    string) and does not parse is passed over; one that parses names what a real import would."""
    lines = path.read_text().splitlines()
    body: list[ast.stmt] = []
    i = 0
    while i < len(lines):
        if not _IMPORT_LINE.match(lines[i]):
            i += 1
            continue
        statement = [lines[i].strip()]
        while statement[-1].endswith("\\") or statement[0].count("(") > "".join(statement).count(")"):
            i += 1
            if i == len(lines):
                break
            statement.append(lines[i].strip())
        i += 1
        try:
            body.extend(ast.parse("\n".join(statement)).body)
        except SyntaxError:
            continue
    return ast.Module(body=body, type_ignores=[])


def module_name(path: Path) -> str:
    """`src/dreamrelay/http/errors.py` → `dreamrelay.http.errors` (a package is its `__init__`)."""
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    """Every module of ours (migrations included), by dotted name."""
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _absolute(node: ast.ImportFrom, importer: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = importer.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def _submodule_or(source: str, name: str, known: set[str]) -> str:
    return f"{source}.{name}" if f"{source}.{name}" in known else source


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The modules of ours that `name` imports anywhere in its file: at the top, under TYPE_CHECKING, or
    inside a function. `from a import b` counts as importing `a.b` when that is a module, else `a`."""
    found: set[str] = set()
    is_package = path.name == "__init__.py"
    for node in ast.walk(imports_only(path)):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            source = _absolute(node, name, is_package)
            targets = [
                f"{source}.{alias.name}" if f"{source}.{alias.name}" in known else source
                for alias in node.names
            ]
        else:
            continue
        for target in targets:
            while target and target not in known:  # `import dreamrelay.x.y` names the module or its package
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


@cache
def import_graph() -> dict[str, set[str]]:
    """Every module of ours → the modules of ours it imports (computed once per test process)."""
    found = modules()
    known = set(found)
    return {name: imports_of(name, path, known) for name, path in found.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan): each sorted, in name order."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


# SQL text: a string constant (or an f-string's literal parts) that opens as a statement does: a keyword in
# capitals, as every statement of ours is written, and the words that must follow it (SELECT … FROM,
# INSERT INTO, UPDATE t SET, DELETE FROM, WITH x AS (, CREATE/ALTER/DROP TABLE or INDEX, PRAGMA), so
# sentences that start with "Update" or "Select" do not count; and the argument of SQLAlchemy's `text(...)`,
# whatever it holds.
_STATEMENT = re.compile(
    r"^\s*(SELECT\s+\S.*\s+FROM\s|INSERT\s+INTO\s|UPDATE\s+\w+\s+SET\s|DELETE\s+FROM\s|WITH\s+\w+\s+AS\s*\(|"
    r"CREATE\s+(UNIQUE\s+)?(TABLE|INDEX|TRIGGER|VIEW)\s|ALTER\s+TABLE\s|DROP\s+(TABLE|INDEX)\s|PRAGMA\s+\w)",
    re.DOTALL,
)


@dataclass(frozen=True)
class SqlText:
    path: Path
    line: int
    text: str

    def __str__(self) -> str:
        return f"{self.path.relative_to(REPO)}:{self.line}: {self.text[:60]!r}"


def is_sql(text: str) -> bool:
    return bool(_STATEMENT.match(text))


def _sqlalchemy_text(tree: ast.Module) -> tuple[set[str], set[str]]:
    """The names SQLAlchemy's `text` goes by in a module (`from sqlalchemy import text as t`), and the
    names of the `sqlalchemy` module itself (`import sqlalchemy as sa` → `sa.text`)."""
    functions: set[str] = set()
    modules: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module in ("sqlalchemy", "sqlalchemy.sql"):
            functions.update(a.asname or a.name for a in node.names if a.name == "text")
        elif isinstance(node, ast.Import):
            modules.update(a.asname or a.name for a in node.names if a.name == "sqlalchemy")
    return functions, modules


def _is_text_call(node: ast.Call, functions: set[str], modules: set[str]) -> bool:
    func = node.func
    if isinstance(func, ast.Name):
        return func.id in functions
    return isinstance(func, ast.Attribute) and func.attr == "text" and ast.unparse(func.value) in modules


# What a file with SQL text has somewhere in its source: a statement's first keyword, or SQLAlchemy and a
# call of something named text. A file with neither is not parsed for SQL.
_STATEMENT_WORD = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE|WITH|CREATE|ALTER|DROP|PRAGMA)\s")


def _may_hold_sql(source: str) -> bool:
    return bool(_STATEMENT_WORD.search(source)) or ("sqlalchemy" in source and "text(" in source)


def sql_texts(path: Path) -> Iterator[SqlText]:
    """Every SQL text in `path` (see `_STATEMENT`)."""
    if not _may_hold_sql(path.read_text()):
        return
    tree = parsed(path)
    functions, modules = _sqlalchemy_text(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _is_text_call(node, functions, modules) and node.args:
            yield SqlText(path, node.lineno, ast.unparse(node.args[0]))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and is_sql(node.value):
            yield SqlText(path, node.lineno, node.value)
        elif isinstance(node, ast.JoinedStr):
            literal = "".join(
                v.value for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str)
            )
            if is_sql(literal):
                yield SqlText(path, node.lineno, literal)
