"""The regression guard of issue 16 (benchmarks.compare, benchmarks.ratios) on hand-made results:
which ratios a run has, how each is judged against the baseline, and the baseline file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from benchmarks import compare
from benchmarks.compare import (
    BETTER,
    NOT_COMPARED,
    OK,
    WORSE,
    BaselineError,
    judge,
    make_baseline,
    read_baseline,
    verdict,
    write_baseline,
)
from benchmarks.ratios import HIGHER, LOWER, TOLERANCE_SATURATION, figures

MACHINE = {
    "nproc": 2,
    "cpu_model": "Test CPU",
    "kernel": "6.1",
    "python": "3.11.7",
    "cryptography": "50.0.2",
    "cryptography_openssl": "OpenSSL 3",
    "tlschat_tree": "abc1234",
    "date_utc": "2026-12-05 02:41:22",
}


def fanout(cpu_us: float, p99_ms: float, accepted_per_cpu_s: float | None) -> dict[str, Any]:
    entry: dict[str, Any] = {"n": 10, "connected": 10, "cpu_us_per_msg": cpu_us, "p99_ms": p99_ms}
    if accepted_per_cpu_s is not None:
        entry["accepted_per_server_cpu_s"] = accepted_per_cpu_s
    return entry


def run(
    *,
    tlschat_sat_cpu: float = 30.0,
    tlschat_handshakes: float = 900.0,
    ngircd: bool = True,
    ingress: bool = True,
) -> dict[str, Any]:
    """A results JSON as `python -m benchmarks --quick` writes it, at N=10 only."""
    results: dict[str, Any] = {
        "handshake/tlschat": {"per_server_cpu_s": tlschat_handshakes},
        "handshake/ssl": {"per_server_cpu_s": 1200.0},
        "fanout/fixed/10/tlschat": fanout(60.0, 6.0, 1500.0 if ingress else None),
        "fanout/fixed/10/ssl": fanout(20.0, 2.0, 5000.0 if ingress else None),
        "fanout/saturation/10/tlschat": fanout(tlschat_sat_cpu, 30.0, 3000.0 if ingress else None),
        "fanout/saturation/10/ssl": fanout(10.0, 18.0, 10000.0 if ingress else None),
        "idle/1000/tlschat": {"kib_per_connection": 10.0},
        "idle/1000/ssl": {"kib_per_connection": 250.0},
    }
    if ngircd:
        results["fanout/fixed/10/ngircd"] = fanout(3.0, 40.0, 30000.0 if ingress else None)
        results["fanout/saturation/10/ngircd"] = fanout(1.5, 25.0, 60000.0 if ingress else None)
    return {
        "mode": "quick",
        "machine": MACHINE,
        "crypto_floor": {"floor_per_cpu_s_ed25519_client": 2000.0},
        "results": results,
    }


def by_name(data: dict[str, Any]) -> dict[str, float]:
    return {figure.name: figure.value for figure in figures(data)}


def test_ratios_of_a_run_are_tlschat_over_each_reference() -> None:
    values = by_name(run())
    assert values == {
        "handshakes per CPU-s / ssl": pytest.approx(0.75),
        "handshakes per CPU-s / crypto floor": pytest.approx(0.45),
        "N=10 light: CPU us per delivered msg / ssl": pytest.approx(3.0),
        "N=10 light: CPU us per delivered msg / ngircd": pytest.approx(20.0),
        "N=10 light: accepted per CPU-s / ssl": pytest.approx(0.3),
        "N=10 saturation: CPU us per delivered msg / ssl": pytest.approx(3.0),
        "N=10 saturation: CPU us per delivered msg / ngircd": pytest.approx(20.0),
        "N=10 saturation: accepted per CPU-s / ssl": pytest.approx(0.3),
        # The best reference's p99: ssl's 2 ms, not ngircd's 40 ms.
        "N=10 light: p99 / best of ssl+ngircd": pytest.approx(3.0),
        "1000 idle: KiB per connection / ssl": pytest.approx(0.04),
    }
    directions = {figure.name: figure.better for figure in figures(run())}
    assert directions["handshakes per CPU-s / ssl"] == HIGHER
    assert directions["N=10 saturation: accepted per CPU-s / ssl"] == HIGHER
    assert directions["N=10 saturation: CPU us per delivered msg / ssl"] == LOWER
    assert directions["1000 idle: KiB per connection / ssl"] == LOWER


def test_a_reference_not_measured_leaves_its_figures_out() -> None:
    values = by_name(run(ngircd=False, ingress=False))
    assert not [name for name in values if "ngircd" in name or "accepted" in name]
    # The references are part of the name: against ssl alone it is another figure.
    assert values["N=10 light: p99 / best of ssl"] == pytest.approx(3.0)


@pytest.mark.parametrize(
    ("better", "now", "expected"),
    [
        (LOWER, 1.30, WORSE),
        (LOWER, 1.20, OK),
        (LOWER, 0.80, OK),
        (LOWER, 0.70, BETTER),
        (HIGHER, 0.70, WORSE),
        (HIGHER, 0.80, OK),
        (HIGHER, 1.20, OK),
        (HIGHER, 1.30, BETTER),
    ],
)
def test_judge_follows_the_figures_direction(better: str, now: float, expected: str) -> None:
    change, status = judge(1.0, now, better, 0.25)
    assert status == expected
    assert change == pytest.approx(now - 1.0)


def baseline_of(data: dict[str, Any]) -> dict[str, Any]:
    return make_baseline(data, "results.json", None, "2026-12-06 00:00:00")


def test_a_figure_worse_beyond_its_tolerance_fails_and_is_named() -> None:
    outcomes = compare.compare(baseline_of(run()), run(tlschat_sat_cpu=40.0))  # +33 %
    worse = [o for o in outcomes if o.status == WORSE]
    assert [o.name for o in worse] == [
        "N=10 saturation: CPU us per delivered msg / ssl",
        "N=10 saturation: CPU us per delivered msg / ngircd",
    ]
    assert worse[0].change == pytest.approx(1 / 3)
    assert verdict(outcomes) == 1
    summary = compare.summary(outcomes)
    assert "2 WORSE beyond tolerance: N=10 saturation: CPU us per delivered msg / ssl (+33.3%)" in (
        summary
    )


def test_a_move_within_tolerance_passes_and_a_gain_is_reported() -> None:
    outcomes = compare.compare(
        baseline_of(run()), run(tlschat_sat_cpu=33.0, tlschat_handshakes=1200.0)
    )
    statuses = {o.name: o.status for o in outcomes}
    assert statuses["N=10 saturation: CPU us per delivered msg / ssl"] == OK  # +10 %
    assert statuses["handshakes per CPU-s / ssl"] == BETTER  # +33 %, higher is better
    assert verdict(outcomes) == 0
    assert statuses["handshakes per CPU-s / crypto floor"] == BETTER
    assert "2 BETTER beyond tolerance: handshakes per CPU-s / ssl (+33.3%)" in (
        compare.summary(outcomes)
    )


def test_a_figure_missing_now_or_from_the_baseline_is_not_compared_not_failed() -> None:
    outcomes = compare.compare(baseline_of(run()), run(ngircd=False))
    skipped = {o.name: o.reason for o in outcomes if o.status == NOT_COMPARED}
    assert skipped == {
        "N=10 light: CPU us per delivered msg / ngircd": "not measured in this run",
        "N=10 saturation: CPU us per delivered msg / ngircd": "not measured in this run",
        "N=10 light: p99 / best of ssl+ngircd": "not measured in this run",
        "N=10 light: p99 / best of ssl": "not in the baseline",
    }
    assert verdict(outcomes) == 0
    assert "4 not compared" in compare.summary(outcomes)


def test_nothing_compared_is_a_failure() -> None:
    outcomes = compare.compare(baseline_of(run()), {"results": {}})
    assert {o.status for o in outcomes} == {NOT_COMPARED}
    assert verdict(outcomes) == 1


def test_baseline_round_trip_keeps_values_directions_and_edited_tolerances(
    tmp_path: Path,
) -> None:
    path = tmp_path / "baseline.json"
    first = baseline_of(run())
    assert (first["commit"], first["measured_utc"]) == ("abc1234", "2026-12-05 02:41:22")
    assert "Test CPU" in first["machine"]
    write_baseline(path, first)
    assert read_baseline(path) == first
    edited = json.loads(path.read_text())
    edited["figures"]["N=10 light: p99 / best of ssl+ngircd"]["tolerance"] = 0.8
    path.write_text(json.dumps(edited))
    again = make_baseline(run(), "later.json", read_baseline(path), "2026-12-07 00:00:00")
    entries = again["figures"]
    assert entries["N=10 light: p99 / best of ssl+ngircd"]["tolerance"] == 0.8
    saturation = entries["N=10 saturation: CPU us per delivered msg / ssl"]
    assert saturation["tolerance"] == TOLERANCE_SATURATION
    assert saturation["better"] == LOWER
    assert saturation["value"] == pytest.approx(3.0)


def test_a_malformed_baseline_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "baseline.json"
    assert read_baseline(path) is None
    broken = baseline_of(run())
    broken["figures"]["handshakes per CPU-s / ssl"]["better"] = "sideways"
    write_baseline(path, broken)
    with pytest.raises(BaselineError, match="figure 'handshakes per CPU-s / ssl' needs"):
        read_baseline(path)


def write_run(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(json.dumps(data))
    return path


def test_cli_without_a_baseline_says_how_to_write_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_run(tmp_path / "now.json", run())
    status = compare.main(["--from", str(source), "--baseline", str(tmp_path / "none.json")])
    assert status == 2
    assert "--write-baseline" in capsys.readouterr().out


def test_cli_writes_a_baseline_from_an_old_results_file_then_guards_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    baseline = tmp_path / "baseline.json"
    old = write_run(tmp_path / "old.json", run(ingress=False))  # before the ingress figure
    assert compare.main(["--from", str(old), "--baseline", str(baseline), "--write-baseline"]) == 0
    written = read_baseline(baseline)
    assert written is not None and written["source"] == str(old)
    assert not [name for name in written["figures"] if "accepted" in name]
    capsys.readouterr()

    same = write_run(tmp_path / "same.json", run())
    assert compare.main(["--from", str(same), "--baseline", str(baseline)]) == 0
    out = capsys.readouterr().out
    assert "N=10 saturation: accepted per CPU-s / ssl" in out  # new: not compared
    assert "None moved beyond its tolerance" in out

    slower = write_run(tmp_path / "slower.json", run(tlschat_sat_cpu=45.0))
    assert compare.main(["--from", str(slower), "--baseline", str(baseline)]) == 1
    lines = capsys.readouterr().out.splitlines()
    flagged = [line for line in lines if line.strip().startswith(WORSE)]
    assert len(flagged) == 2
    assert "N=10 saturation: CPU us per delivered msg / ssl" in flagged[0]
    assert "+50.0%" in flagged[0]


def test_cli_refuses_run_options_with_from(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    baseline = tmp_path / "baseline.json"
    write_baseline(baseline, baseline_of(run()))
    source = write_run(tmp_path / "now.json", run())
    arguments = ["--from", str(source), "--baseline", str(baseline)]
    assert compare.main([*arguments, "--servers", "tlschat,ssl"]) == 2
    assert "--servers tlschat,ssl is not an option here" in capsys.readouterr().out
    assert compare.main(arguments) == 0


def test_cli_fails_when_a_scenario_of_the_run_failed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    baseline = tmp_path / "baseline.json"
    write_baseline(baseline, baseline_of(run()))
    failed = run()
    del failed["results"]["idle/1000/tlschat"]
    failed["failures"] = ["tlschat idle1: server exited"]
    source = write_run(tmp_path / "failed.json", failed)
    assert compare.main(["--from", str(source), "--baseline", str(baseline)]) == 1
    assert "FAILED in the run: tlschat idle1: server exited" in capsys.readouterr().out
