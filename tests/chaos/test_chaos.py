"""Issue 19's chaos scenarios at the bounded size (scenarios.BOUNDED: 3 servers on one Redis,
2 senders at 2 lines/s, 2 receivers, 8 s of traffic, the fault 2 s in): whatever the fault,
every line ends in exactly one outcome, and no receiver misses, repeats, reorders or fails to
verify an acknowledged line. ``make chaos`` runs the same at full size.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .run import run_scenario
from .scenarios import BOUNDED, Scenario, scenarios

pytestmark = pytest.mark.chaos


@pytest.mark.parametrize("scenario", scenarios(BOUNDED), ids=lambda scenario: scenario.name)
def test_every_line_one_outcome_and_every_acknowledged_line_shown_once_in_order(
    scenario: Scenario, tmp_path: Path
) -> None:
    run = run_scenario(BOUNDED, scenario, tmp_path / "run", logs=tmp_path / "logs")
    result = run.result
    # The run itself worked: the senders typed, and the servers acknowledged some of it.
    assert result.typed > 0, run.describe()
    assert result.acknowledged > 0, run.describe()
    assert not result.violations(), run.describe()
    assert not run.tracebacks, run.describe()
