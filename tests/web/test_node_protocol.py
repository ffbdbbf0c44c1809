"""The browser client's protocol code (tlschat/web/static/js/protocol/, plain ES modules over
WebCrypto) is unit-tested under Node's own test runner in web/test/: the worked example of
docs/PROTOCOL.md value by value, the codecs and refusals, and an interop run against this
package's server. This runs those tests, so that the Python suite covers them too."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
WEB = ROOT / "web"
# The suites in web/test/ held this many tests when this was written: fewer passing means some
# did not run (a file that failed to load, a test skipped), not that all is well.
MIN_PASSING = 106
NODE_MAJOR = 20  # WebCrypto's X25519 and Ed25519, String.prototype.isWellFormed
TIMEOUT_S = 300


def node_or_skip() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not on PATH: web/test needs Node 20 or later (`node --test`)")
    version = subprocess.run(
        [node, "--version"], capture_output=True, text=True, timeout=30, check=True
    ).stdout.strip()
    major = re.match(r"v(\d+)\.", version)
    if major is None or int(major.group(1)) < NODE_MAJOR:
        pytest.skip(f"node {version} is too old: web/test needs Node {NODE_MAJOR} or later")
    return node


SUMMARY_LINE = re.compile(r"^# (tests|pass|fail|cancelled|skipped|todo) (\d+)$", re.M)


def tap_summary(output: str) -> dict[str, int]:
    """The counts node's TAP reporter ends with: ``# tests N``, ``# pass N``, ``# fail N``..."""
    return {name: int(count) for name, count in SUMMARY_LINE.findall(output)}


def test_tap_summary_reads_the_counts_node_prints() -> None:
    output = "ok 1 - a\n1..1\n# tests 1\n# suites 0\n# pass 1\n# fail 0\n# skipped 0\n"
    assert tap_summary(output) == {"tests": 1, "pass": 1, "fail": 0, "skipped": 0}


def test_browser_protocol_code_passes_its_node_tests() -> None:
    node = node_or_skip()
    result = subprocess.run(
        [node, "--test", "--test-reporter=tap", "test/"],
        cwd=WEB,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    tail = (result.stdout[-4000:] + result.stderr[-2000:]).strip()
    assert result.returncode == 0, tail
    summary = tap_summary(result.stdout)
    assert summary.get("fail") == 0, tail
    assert summary.get("cancelled") == 0, tail
    assert summary.get("pass", 0) >= MIN_PASSING, (summary, tail)
