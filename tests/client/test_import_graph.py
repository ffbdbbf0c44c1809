"""The client's modules import each other without a circle (issue 15: app.py and tui.py did,
tui.py importing the session loop from app.py at run time). Every import counts, even one made
inside a function."""

from __future__ import annotations

import ast
from pathlib import Path

CLIENT = Path(__file__).resolve().parents[2] / "tlschat" / "client"


def client_imports(path: Path) -> set[str]:
    """The modules of tlschat/client that ``path`` imports (``from .x import ...``)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_no_module_of_the_client_imports_itself_through_others() -> None:
    graph = {path.stem: client_imports(path) for path in CLIENT.glob("*.py")}
    assert "sessions" in graph["tui"] and "app" not in graph["tui"]

    def reaches(start: str, target: str, seen: set[str]) -> bool:
        for name in graph.get(start, set()):
            if name == target or (name not in seen and reaches(name, target, seen | {name})):
                return True
        return False

    circles = sorted(name for name in graph if reaches(name, name, {name}))
    assert circles == []
