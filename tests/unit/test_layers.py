"""Who may import whom: the web layer knows no service or adapter, and the services listed here
reach their adapters only through ports (bootstrap wires them). A service joins the list when
its persistence goes behind ports."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "orderflow"

RULES = {
    "web": ("orderflow.services", "orderflow.adapters", "orderflow.bootstrap", "sqlalchemy"),
    "services/gateway": ("orderflow.adapters", "orderflow.bootstrap", "sqlalchemy"),
}


def imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


@pytest.mark.parametrize(("package", "forbidden"), RULES.items())
def test_no_forbidden_imports(package: str, forbidden: tuple[str, ...]) -> None:
    files = sorted((SRC / package).rglob("*.py"))
    assert files
    offending = {
        f"{path.relative_to(SRC)}: {name}"
        for path in files
        for name in imports(path)
        if any(name == f or name.startswith(f + ".") for f in forbidden)
    }
    assert not offending
