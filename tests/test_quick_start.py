"""The README's quick start (issue 20, point 9): a fresh clone needs exactly two commands, one
that sets up and runs the server, one that sets up and passes the tests; and the first installs
what the server needs, not the development tools. Checked on what make would run (``make -n``:
nothing is installed), so it takes a moment, not a fresh virtualenv."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DEV_TOOLS = ("pytest", "mypy", "ruff", "hypothesis", "playwright")


def quick_start_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.DOTALL)
    assert block is not None, "the quick start has no bash block"
    commands = [line.split("#", 1)[0].strip() for line in block.group(1).splitlines()]
    return [command for command in commands if command]


def would_run(target: str) -> list[str]:
    """The commands ``make TARGET`` would run in a fresh clone (every target out of date)."""
    make = shutil.which("make")
    if make is None:
        pytest.fail("make is not installed: the README's quick start needs it", pytrace=False)
    # Not the flags of a make this test may run under (`make test`).
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    result = subprocess.run(
        [make, "--no-print-directory", "-n", "-B", "-C", str(ROOT), target],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return result.stdout.splitlines()


def installs(commands: list[str]) -> list[str]:
    return [command for command in commands if "pip install" in command]


def test_the_quick_start_is_two_commands() -> None:
    assert quick_start_commands() == ["make server", "make test"]


def test_make_server_sets_up_and_runs_the_server_with_no_dev_tools() -> None:
    commands = would_run("server")
    assert any(re.search(r"-m venv \.venv$", command) for command in commands), commands
    [install] = [command for command in installs(commands) if "--upgrade pip" not in command]
    assert re.search(r"pip install --quiet -e \.$", install), install
    # setuptools' banner about editable installs is a Python warning of the build backend.
    assert install.startswith("PYTHONWARNINGS=ignore "), install
    assert commands[-1].split() == [".venv/bin/tlschat", "server"]
    runtime = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert not [d for d in runtime if d.startswith(DEV_TOOLS)], runtime


def test_make_test_sets_up_the_dev_tools_and_runs_them() -> None:
    commands = would_run("test")
    assert any(re.search(r"-m venv \.venv$", command) for command in commands), commands
    assert any(
        command.endswith("pip install --quiet -e '.[dev]'") for command in installs(commands)
    )
    dev = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert all(any(d.startswith(tool) for d in dev["dev"]) for tool in DEV_TOOLS)
    for tool in (".venv/bin/ruff check", ".venv/bin/mypy", ".venv/bin/python -m pytest"):
        assert any(command.startswith(tool) for command in commands), (tool, commands)
