"""Shrink a crashing input: ``python -m fuzz.minimize TARGET CRASH OUTPUT``.

libFuzzer's own -minimize_crash re-executes argv[0], which does not work for targets run as
``python -m fuzz.<target>``; this greedy delta-debugger needs no atheris. It keeps removing
chunks (halving their size down to one byte) while the input still raises an exception of the
same type, then writes the result to OUTPUT, ready to commit to fuzz/corpus/<target>/.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from pathlib import Path


def failure(check: Callable[[bytes], None], data: bytes) -> str | None:
    try:
        check(data)
    except Exception as error:
        return type(error).__name__
    return None


def minimize(check: Callable[[bytes], None], data: bytes) -> bytes:
    expected = failure(check, data)
    if expected is None:
        raise SystemExit("the input does not crash the target")
    chunk = max(len(data) // 2, 1)
    while True:
        start = 0
        while start < len(data):
            candidate = data[:start] + data[start + chunk :]
            if candidate and failure(check, candidate) == expected:
                data = candidate
            else:
                start += chunk
        if chunk == 1:
            return data
        chunk //= 2


def main() -> None:
    target, crash, output = sys.argv[1:4]
    check = importlib.import_module(f"fuzz.{target}").check
    data = minimize(check, Path(crash).read_bytes())
    Path(output).write_bytes(data)
    print(f"{len(data)} bytes -> {output}")


if __name__ == "__main__":
    main()
