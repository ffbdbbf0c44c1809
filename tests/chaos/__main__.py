"""``python -m tests.chaos``: every chaos scenario at full size (``make chaos``), or some of them.

Prints one markdown row per scenario (the table of docs/CHAOS.md) and what each one breaks, and
writes every figure, the fault timelines and examples of each kind of failure as JSON. Exits 1 if
any scenario breaks a rule of issue 19 (or could not be run).

    python -m tests.chaos                          # the full set, about 10 minutes
    python -m tests.chaos --profile bounded        # the pytest sizes, under 2 minutes
    python -m tests.chaos --scenario redis-kill --scenario server-kill
    python -m tests.chaos --tree /tmp/before       # git archive <commit> | tar -x -C /tmp/before
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
import traceback
from dataclasses import asdict
from pathlib import Path

from .checker import markdown_table
from .run import ScenarioRun, run_scenario
from .scenarios import PROFILES, Profile, Scenario, scenarios

RESULTS = Path("benchmarks/results")


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos", description=__doc__)
    parser.add_argument("--profile", choices=sorted(PROFILES), default="full")
    parser.add_argument(
        "--scenario", action="append", default=[], help="only this one (repeatable)"
    )
    parser.add_argument(
        "--results", type=Path, help="the JSON file (benchmarks/results/chaos-<time>.json)"
    )
    parser.add_argument("--logs", type=Path, help="keep every process's output here")
    parser.add_argument("--tree", type=Path, help="run the tlschat of this checkout instead")
    return parser.parse_args(argv)


def chosen(profile: Profile, names: list[str]) -> list[Scenario]:
    every = scenarios(profile)
    unknown = set(names) - {scenario.name for scenario in every}
    if unknown:
        known = ", ".join(scenario.name for scenario in every)
        raise SystemExit(f"unknown scenario {', '.join(sorted(unknown))}; known: {known}")
    return [scenario for scenario in every if not names or scenario.name in names]


def run_all(
    profile: Profile, selected: list[Scenario], logs: Path | None, tree: Path | None
) -> tuple[list[ScenarioRun], dict[str, str]]:
    """Each scenario in a fresh directory; one that cannot be run is an error, not the end."""
    runs: list[ScenarioRun] = []
    errors: dict[str, str] = {}
    for scenario in selected:
        print(f"== {scenario.name}: {scenario.describe()}", file=sys.stderr, flush=True)
        with tempfile.TemporaryDirectory(prefix=f"tlschat-chaos-{scenario.name}-") as root:
            try:
                run = run_scenario(profile, scenario, Path(root), logs, tree)
            except Exception:
                errors[scenario.name] = traceback.format_exc()
                print(errors[scenario.name], file=sys.stderr, flush=True)
                continue
        runs.append(run)
        verdict = "; ".join(run.result.violations()) or "ok"
        print(f"   {run.seconds:.0f} s: {verdict}", file=sys.stderr, flush=True)
    return runs, errors


def main(argv: list[str]) -> int:
    arguments = parse_arguments(argv)
    profile = PROFILES[arguments.profile]
    selected = chosen(profile, arguments.scenario)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    results = arguments.results or RESULTS / f"chaos-{stamp}.json"
    runs, errors = run_all(profile, selected, arguments.logs, arguments.tree)

    print(markdown_table([run.result for run in runs]))
    for run in runs:
        for violation in run.result.violations():
            print(f"- {run.scenario}: {violation}; e.g. {run.result.examples}")
    for name in errors:
        print(f"- {name}: could not be run (see stderr)")
    results.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "profile": asdict(profile),
        "started": stamp,
        "machine": f"{platform.platform()}, Python {platform.python_version()}",
        "tree": str(arguments.tree) if arguments.tree else "this checkout",
        "runs": [{k: v for k, v in asdict(run).items() if k != "tails"} for run in runs],
        "errors": errors,
    }
    results.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"results: {results}", file=sys.stderr)
    failed = errors or any(run.result.violations() or run.tracebacks for run in runs)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
