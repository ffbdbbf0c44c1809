"""Issue 19's chaos scenarios at the bounded size (scenarios.BOUNDED: 3 servers on one Redis,
2 senders at 2 lines/s, 2 receivers, 8 s of traffic, the fault 2 s in): whatever the fault,
every line ends in exactly one outcome, and no receiver misses, repeats, reorders or fails to
verify an acknowledged line. ``make chaos`` runs the same at full size.

The selected scenarios run OVERLAPPING at a time, each with its own Redis, servers and clients: a
scenario spends its 8 s typing 2 lines a second and waiting on its fault's timer, so they overlap
without crowding the machine, and the module takes about a third of the time. Each test waits
for its own scenario's run and judges it.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import pytest

from .run import ScenarioRun, run_scenario
from .scenarios import BOUNDED, Scenario, scenarios

pytestmark = pytest.mark.chaos

OVERLAPPING = 3


@pytest.fixture(scope="module")
def runs(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Future[ScenarioRun]]]:
    """Every scenario this session selected, started OVERLAPPING at a time in the order of the
    tests, so that the first test's is among the first to finish."""
    test_name = test_every_line_one_outcome_and_every_acknowledged_line_shown_once_in_order
    selected: list[Scenario] = [
        item.callspec.params["scenario"]
        for item in request.session.items
        if isinstance(item, pytest.Function) and item.function is test_name
    ]
    root = tmp_path_factory.mktemp("chaos")
    with ThreadPoolExecutor(OVERLAPPING, thread_name_prefix="chaos") as pool:
        yield {
            scenario.name: pool.submit(
                run_scenario,
                BOUNDED,
                scenario,
                root / scenario.name / "run",
                logs=root / scenario.name / "logs",
            )
            for scenario in selected
        }


@pytest.mark.parametrize("scenario", scenarios(BOUNDED), ids=lambda scenario: scenario.name)
def test_every_line_one_outcome_and_every_acknowledged_line_shown_once_in_order(
    scenario: Scenario, runs: dict[str, Future[ScenarioRun]]
) -> None:
    run = runs[scenario.name].result()
    result = run.result
    # The run itself worked: the senders typed, and the servers acknowledged some of it.
    assert result.typed > 0, run.describe()
    assert result.acknowledged > 0, run.describe()
    assert not result.violations(), run.describe()
    assert not run.tracebacks, run.describe()
