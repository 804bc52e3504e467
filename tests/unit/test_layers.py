"""Dependencies point inward: what each layer may import of ours (docs/architecture.md, "Layers")."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.support.paths import REPO

PACKAGE = REPO / "src" / "dreamrelay"

# layer → the packages of ours it may import (besides itself)
ONLY = {"domain": set(), "formats": {"domain"}}
# What no service, store or upstream adapter may import: the entry points above them.
ENTRY_POINTS = {"http", "cli", "admin_cli", "worker", "entry"}


def ours(path: Path) -> set[str]:
    """The first part after `dreamrelay.` of every import in `path`, TYPE_CHECKING ones included."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
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
