"""The wheel carries the web client's files (issue 17): `pip install` users get what
`tlschat server --web` serves, without Node.

The wheel is built from a copy of the sources (no build/ or egg-info left in the checkout), by pip
with its isolated build environment; where that environment cannot be fetched (offline), the
test is skipped and says so.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
STATIC = ROOT / "tlschat" / "web" / "static"
SERVED = {".html", ".js", ".mjs", ".css", ".wasm", ".svg", ".png", ".json"}
BUILD_TIMEOUT = 300
OFFLINE = (
    "No matching distribution found",
    "Could not find a version that satisfies",
    "Failed to establish a new connection",
    "Temporary failure in name resolution",
    "Network is unreachable",
)


def test_the_wheel_contains_the_web_client(tmp_path: Path) -> None:
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    shutil.copytree(
        ROOT / "tlschat", source / "tlschat", ignore=shutil.ignore_patterns("__pycache__")
    )
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), "."],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT,
        check=False,
    )
    if built.returncode != 0 and any(sign in built.stderr for sign in OFFLINE):
        pytest.skip(f"pip cannot fetch the build backend here (offline?): {built.stderr[-300:]}")
    assert built.returncode == 0, built.stderr
    [wheel] = tmp_path.glob("tlschat-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    assert "tlschat/web/static/js/protocol/client_connection.js" in names
    # The vendored Olm library the page loads for its end-to-end layer.
    assert "tlschat/web/static/vendor/olm/olm.web.mjs" in names
    assert "tlschat/web/static/vendor/olm/olm.wasm" in names
    # Every file of a served type that was copied (the checkout may change meanwhile).
    expected = {
        path.relative_to(source).as_posix()
        for path in (source / STATIC.relative_to(ROOT)).rglob("*")
        if path.is_file() and path.suffix in SERVED
    }
    assert expected <= names, sorted(expected - names)
