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
    """The packages of tlschat beside its own that a module imports (``from ..x import`` at the
    top of its package, ``from ...x import`` one package down)."""
    depth = len(path.relative_to(PACKAGE).parts) - 1  # 1 in tlschat/chat, 2 in tlschat/chat/server
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == depth + 1 and node.module:
            names.add(node.module.split(".")[0])
    return names


def layer_files(layer: str) -> list[Path]:
    return sorted((PACKAGE / layer).rglob("*.py"))


@pytest.mark.parametrize("layer", ["protocol", "chat", "e2e"])
def test_pure_layers_import_no_io(layer: str) -> None:
    files = layer_files(layer)
    assert files
    for path in files:
        assert not imported_modules(path) & IO_MODULES, path.name


def test_protocol_never_imports_chat_and_chat_never_imports_the_glue() -> None:
    # The chat logic may use the end-to-end layer (e2e/), which never imports chat.
    for path in layer_files("protocol"):
        assert relative_imports(path) == set(), path.name
    chat = layer_files("chat")
    assert PACKAGE / "chat" / "server" / "events.py" in chat
    for path in chat:
        assert relative_imports(path) <= {"protocol", "store", "e2e"}, path.name


def test_e2e_imports_only_the_protocol() -> None:
    files = layer_files("e2e")
    assert PACKAGE / "e2e" / "olm.py" in files
    for path in files:
        assert relative_imports(path) <= {"protocol"}, path.name
        assert "tlschat" not in imported_modules(path), path.name
