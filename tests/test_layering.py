"""The layers of DESIGN.md: the protocol and the chat logic are pure (no sockets, no event loop)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "tlschat"
IO_MODULES = {"asyncio", "socket", "selectors", "ssl", "threading", "subprocess"}


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def relative_imports(path: Path) -> set[str]:
    """Sibling packages a module imports with ``from ..x import``."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 2 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("layer", ["protocol", "chat"])
def test_pure_layers_import_no_io(layer: str) -> None:
    files = sorted((PACKAGE / layer).glob("*.py"))
    assert files
    for path in files:
        assert not imported_modules(path) & IO_MODULES, path.name


def test_protocol_never_imports_chat_and_chat_never_imports_the_glue() -> None:
    for path in (PACKAGE / "protocol").glob("*.py"):
        assert relative_imports(path) == set(), path.name
    for path in (PACKAGE / "chat").glob("*.py"):
        assert relative_imports(path) <= {"protocol", "store"}, path.name
