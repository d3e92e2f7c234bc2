"""index/ is the ground floor: it imports nothing from the layers above it, so they can all build on it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
UPPER_FLOORS = frozenset({"recsys", "analysis", "webapp", "cli"})


def upper_imports(source: str) -> list[str]:
    """The modules of the upper floors that ``source`` imports anywhere (top level, functions, TYPE_CHECKING)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found += [name for name in names if name.split(".")[0] in UPPER_FLOORS]
    return found


def test_the_check_sees_every_form_of_import() -> None:
    source = "import recsys.errors\nfrom index import store\ndef f():\n    from analysis.run import analyze\n"
    assert upper_imports(source) == ["recsys.errors", "analysis.run"]


@pytest.mark.parametrize("path", sorted((ROOT / "index").rglob("*.py")), ids=lambda p: p.name)
def test_index_imports_nothing_from_above(path: Path) -> None:
    assert upper_imports(path.read_text()) == []
