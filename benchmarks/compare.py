"""``python -m benchmarks.compare`` (``make bench-compare``): the regression guard of issue 16.

Runs the quick set (``python -m benchmarks --quick``; arguments it does not know go to that run,
e.g. ``--servers tlschat,ssl``) and holds each ratio figure (benchmarks.ratios: tlschat's figures
over the references' of the same run) against the committed baseline, benchmarks/baseline.json.
One line per figure (baseline, now, change, OK / WORSE / BETTER) and a summary naming the
figures that moved. Exits 1 when a figure got worse beyond its tolerance (or none could be
compared, or a scenario of the run failed), 2 when there is no baseline to compare with (it
says how to write one).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .ratios import HIGHER, LOWER, figures

BASELINE = Path(__file__).resolve().parent / "baseline.json"
FORMAT = 1
OK, WORSE, BETTER, NOT_COMPARED = "OK", "WORSE", "BETTER", "not compared"
NAME_WIDTH = 52  # "N=1000 saturation: CPU us per delivered msg / ngircd"


class BaselineError(ValueError):
    """The baseline file is not one this module wrote."""


@dataclass(frozen=True)
class Outcome:
    """One figure held against its baseline. ``change`` = now / baseline - 1."""

    name: str
    status: str
    baseline: float | None
    now: float | None
    change: float | None
    better: str
    tolerance: float
    reason: str = ""  # why a figure was not compared


def judge(baseline: float, now: float, better: str, tolerance: float) -> tuple[float, str]:
    """The change of ``now`` from ``baseline`` and the verdict: WORSE when it goes against
    ``better`` by more than ``tolerance`` of the baseline, BETTER when it goes its way by more."""
    change = now / baseline - 1
    gained = -change if better == LOWER else change
    if gained < -tolerance:
        return change, WORSE
    if gained > tolerance:
        return change, BETTER
    return change, OK


def compare(baseline: dict[str, Any], data: dict[str, Any]) -> list[Outcome]:
    """Every figure of the baseline held against ``data`` (a results JSON), then the figures
    ``data`` has that the baseline does not (not compared)."""
    now = {figure.name: figure for figure in figures(data)}
    outcomes = []
    for name, entry in baseline["figures"].items():
        then, better, tolerance = float(entry["value"]), entry["better"], float(entry["tolerance"])
        figure = now.pop(name, None)
        if figure is None:
            missing = "not measured in this run"
            outcomes.append(
                Outcome(name, NOT_COMPARED, then, None, None, better, tolerance, missing)
            )
            continue
        change, status = judge(then, figure.value, better, tolerance)
        outcomes.append(Outcome(name, status, then, figure.value, change, better, tolerance))
    for figure in now.values():
        outcomes.append(
            Outcome(
                figure.name,
                NOT_COMPARED,
                None,
                figure.value,
                None,
                figure.better,
                figure.tolerance,
                "not in the baseline",
            )
        )
    return outcomes


def describe_machine(data: dict[str, Any]) -> str:
    machine = data.get("machine", {})
    return (
        f"{machine.get('nproc')} x {machine.get('cpu_model')}, Python {machine.get('python')}, "
        f"cryptography {machine.get('cryptography')} ({machine.get('cryptography_openssl')}), "
        f"Linux {machine.get('kernel')}"
    )


def head_commit() -> str:
    """``git rev-parse --short HEAD`` of this tree, or "unknown" without git."""
    try:
        result = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=BASELINE.parent,
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError:
        return "unknown"
    return result.stdout.strip() or "unknown"


def make_baseline(
    data: dict[str, Any], source: str, previous: dict[str, Any] | None, written_utc: str
) -> dict[str, Any]:
    """The baseline of ``data``'s figures. A figure's tolerance is the previous baseline's when
    it had that figure (tolerances are edited by hand, per figure), else the default."""
    kept = previous["figures"] if previous else {}
    measured = figures(data)
    machine = data.get("machine", {})
    return {
        "format": FORMAT,
        "about": "ratios of tlschat's figures to the references' of one quick run, for "
        "`make bench-compare` (docs/BENCHMARKS.md); `tolerance` is relative and may be edited "
        "per figure: rewriting the baseline keeps it",
        # The commit the results measured (recorded by the run), else this tree's.
        "commit": machine.get("tlschat_tree") or head_commit(),
        "measured_utc": machine.get("date_utc", ""),
        "written_utc": written_utc,
        "machine": describe_machine(data),
        "mode": data.get("mode", ""),
        "source": source,
        "figures": {
            figure.name: {
                "value": figure.value,
                "better": figure.better,
                "tolerance": kept.get(figure.name, {}).get("tolerance", figure.tolerance),
                "detail": figure.detail,
            }
            for figure in measured
        },
    }


def read_baseline(path: Path) -> dict[str, Any] | None:
    """The baseline at ``path``; None when there is none; BaselineError when it is malformed."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        baseline = json.loads(text)
    except ValueError as error:
        raise BaselineError(f"{path}: not JSON: {error}") from error
    if not isinstance(baseline, dict) or baseline.get("format") != FORMAT:
        raise BaselineError(f"{path}: not a baseline of format {FORMAT}")
    entries = baseline.get("figures")
    if not isinstance(entries, dict):
        raise BaselineError(f"{path}: no figures")
    for name, entry in entries.items():
        if not (
            isinstance(entry, dict)
            and entry.get("better") in (LOWER, HIGHER)
            and _positive(entry.get("value"))
            and _positive(entry.get("tolerance"))
        ):
            raise BaselineError(
                f"{path}: figure {name!r} needs a positive value and tolerance and better = "
                f"{LOWER!r} or {HIGHER!r}"
            )
    return baseline


def _positive(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


def write_baseline(path: Path, baseline: dict[str, Any]) -> None:
    path.write_text(json.dumps(baseline, indent=1) + "\n", encoding="utf-8")


def _value(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def format_outcome(outcome: Outcome) -> str:
    change = "-" if outcome.change is None else f"{outcome.change:+.1%}"
    rule = f"{outcome.better} is better, tolerance {outcome.tolerance:.0%}"
    line = (
        f"  {outcome.status:12} {outcome.name:{NAME_WIDTH}} {_value(outcome.baseline):>8} "
        f"{_value(outcome.now):>8} {change:>8}  ({rule})"
    )
    return line + (f": {outcome.reason}" if outcome.reason else "")


def summary(outcomes: list[Outcome]) -> str:
    def named(status: str) -> list[str]:
        return [
            o.name + ("" if o.change is None else f" ({o.change:+.1%})")
            for o in outcomes
            if o.status == status
        ]

    worse, better, skipped = named(WORSE), named(BETTER), named(NOT_COMPARED)
    compared = len(outcomes) - len(skipped)
    parts = [f"{compared} figures compared"]
    if worse:
        parts.append(f"{len(worse)} WORSE beyond tolerance: " + "; ".join(worse))
    if better:
        parts.append(f"{len(better)} BETTER beyond tolerance: " + "; ".join(better))
    if not worse and not better and compared:
        parts.append("None moved beyond its tolerance")
    if skipped:
        parts.append(f"{len(skipped)} not compared: " + "; ".join(skipped))
    return "Summary: " + ".\n  ".join(parts) + "."


def report(baseline: dict[str, Any], data: dict[str, Any], outcomes: list[Outcome]) -> str:
    machine = describe_machine(data)
    lines = [
        f"Baseline: commit {baseline.get('commit')}, measured {baseline.get('measured_utc')} "
        f"UTC on {baseline.get('machine')}",
        f"Now:      commit {data.get('machine', {}).get('tlschat_tree')}, measured "
        f"{data.get('machine', {}).get('date_utc')} UTC on {machine}",
    ]
    if baseline.get("machine") != machine:
        lines.append(
            "  (another machine or software: ratios travel better than times, not perfectly)"
        )
    lines.append(
        f"  {'':12} {'figure (tlschat / reference)':{NAME_WIDTH}} {'baseline':>8} {'now':>8} "
        f"{'change':>8}"
    )
    lines += [format_outcome(o) for o in outcomes]
    lines.append(summary(outcomes))
    return "\n".join(lines)


def verdict(outcomes: list[Outcome]) -> int:
    """The exit status: 1 if a figure got worse beyond its tolerance or none was compared."""
    compared = [o for o in outcomes if o.status != NOT_COMPARED]
    return 1 if not compared or any(o.status == WORSE for o in compared) else 0


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.compare",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--from",
        dest="source",
        type=Path,
        help="compare this results JSON (python -m benchmarks) instead of running the quick set",
    )
    parser.add_argument(
        "--write-baseline",
        action="store_true",
        help="(re)write the baseline from the run or the --from file instead of comparing "
        "(a figure's tolerance edited into the old one is kept)",
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        default=BASELINE,
        help="the baseline file (default benchmarks/baseline.json)",
    )
    return parser.parse_known_args(argv)


def run_quick(extra: list[str]) -> Path:
    """Run ``python -m benchmarks --quick`` (with ``extra``) here; its results file."""
    from .__main__ import RESULTS
    from .__main__ import main as run_benchmarks

    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    out = RESULTS / f"quick-{stamp}.json"
    status = run_benchmarks(["--quick", "--out", str(out), *extra])
    if status:
        raise SystemExit(status)
    return out


def main(argv: list[str] | None = None) -> int:
    args, extra = parse_args(argv)
    if args.source and extra:
        print(f"with --from nothing runs: {' '.join(extra)} is not an option here")
        return 2
    try:
        baseline = read_baseline(args.baseline)
    except BaselineError as error:
        print(f"bench-compare: {error}")
        return 2
    if baseline is None and not args.write_baseline:
        # Before the quick run, which would be two minutes for nothing.
        print(
            f"bench-compare: no baseline at {args.baseline}. Write one from a quick run with\n"
            "  make bench-compare ARGS=--write-baseline\n"
            "or from an existing results file with\n"
            "  python -m benchmarks.compare --from benchmarks/results/quick-X.json "
            "--write-baseline"
        )
        return 2
    path = args.source or run_quick(extra)
    data = json.loads(path.read_text(encoding="utf-8"))
    if args.write_baseline:
        written = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
        fresh = make_baseline(data, str(path), baseline, written)
        if not fresh["figures"]:
            print(f"bench-compare: {path} has no ratio figure (did tlschat and ssl run?)")
            return 1
        write_baseline(args.baseline, fresh)
        print(f"wrote {len(fresh['figures'])} figures to {args.baseline}:")
        for name, entry in fresh["figures"].items():
            print(
                f"  {name:{NAME_WIDTH}} {entry['value']:8.3f}  ({entry['better']} is better, "
                f"tolerance {entry['tolerance']:.0%}; {entry['detail']})"
            )
        return 0
    assert baseline is not None
    outcomes = compare(baseline, data)
    print()
    print(report(baseline, data, outcomes))
    # A scenario that failed leaves its figures out, which alone would read as "not compared".
    failures = data.get("failures") or []
    for failure in failures:
        print(f"  FAILED in the run: {failure}")
    return 1 if failures else verdict(outcomes)


if __name__ == "__main__":
    sys.exit(main())
