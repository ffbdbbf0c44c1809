"""Profile tlschat's server under fan-out load with py-spy, and summarize the profile.

``python -m benchmarks --profile OUT.json [--n 100] [--seconds 20]`` starts tlschat's server,
fills a room of N clients, and records the server with ``py-spy record --format speedscope``
during the saturation window only; then prints the hottest functions. ``python -m
benchmarks.profiling OUT.json`` summarizes an existing speedscope file again.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any


def py_spy() -> str | None:
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


def start_recording(
    pid: int, seconds: float, out: Path, rate: int = 250
) -> subprocess.Popen[bytes]:
    binary = py_spy()
    if binary is None:
        raise RuntimeError("py-spy is not installed (pip install -e '.[bench]')")
    command = [
        binary,
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(max(1, int(seconds))),
        "--rate",
        str(rate),
        "--format",
        "speedscope",
        "--nonblocking",
        "--output",
        str(out),
    ]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _label(frame: dict[str, Any]) -> str:
    path = str(frame.get("file", ""))
    for marker in ("/tlschat/", "/asyncio/", "/cryptography/", "/json/", "/sqlite3/", "/logging/"):
        if marker in path:
            path = marker.strip("/") + "/" + path.split(marker, 1)[1]
            break
    else:
        path = Path(path).name
    return f"{frame.get('name', '?')} ({path})"


def summarize(path: Path, top: int = 40) -> dict[str, Any]:
    """Self and inclusive shares of the sampled time per function (all lines of it), all threads.

    py-spy samples only threads that are running (not idle in epoll), so the shares are of the
    server's busy time.
    """
    data = json.loads(path.read_text())
    labels = [_label(frame) for frame in data["shared"]["frames"]]
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0.0
    for profile in data["profiles"]:
        weights = profile.get("weights") or [1] * len(profile["samples"])
        for stack, weight in zip(profile["samples"], weights, strict=True):
            total += weight
            if stack:
                own[labels[stack[-1]]] += weight
            for label in {labels[i] for i in stack}:
                inclusive[label] += weight

    def rows(counter: Counter[str]) -> list[dict[str, Any]]:
        return [
            {"function": label, "share": weight / total if total else 0.0}
            for label, weight in counter.most_common(top)
        ]

    return {"sampled": total, "self": rows(own), "inclusive": rows(inclusive)}


def format_summary(summary: dict[str, Any]) -> str:
    lines = [
        f"py-spy: {summary['sampled']:,.1f} s of the server's busy time sampled",
        "",
        "self time (the function's own lines, C calls they make included):",
    ]
    lines += [f"  {row['share']:6.1%}  {row['function']}" for row in summary["self"][:25]]
    lines += ["", "inclusive time (the function and everything it calls):"]
    lines += [
        f"  {row['share']:6.1%}  {row['function']}"
        for row in summary["inclusive"]
        if row["share"] < 0.97  # not the event loop and entry points that hold everything
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(
        format_summary(summarize(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 40))
    )
