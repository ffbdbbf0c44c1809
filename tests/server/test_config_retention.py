"""History retention settings: defaults, TOML values, flags, durations and every check."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tlschat.cli import build_parser
from tlschat.server.config import (
    DEFAULT_HISTORY_MAX_AGE,
    ConfigError,
    ServerSettings,
    load_settings,
    parse_duration,
)
from tlschat.store import Retention

DAY = 86400.0


def toml_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "server.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults() -> None:
    settings = load_settings(None, {})
    assert settings.history_keep_per_room == 10_000
    assert settings.history_max_age == DEFAULT_HISTORY_MAX_AGE == 30 * DAY
    assert settings.history_max_bytes == 1024**3
    assert settings.retention() == Retention(
        keep_per_room=10_000, max_age=30 * DAY, max_bytes=1024**3
    )


def test_file_values_are_used(tmp_path: Path) -> None:
    path = toml_file(
        tmp_path,
        'history_keep_per_room = 500\nhistory_max_age = "12h"\nhistory_max_bytes = 1048576\n',
    )
    settings = load_settings(path, {})
    assert settings.retention() == Retention(
        keep_per_room=500, max_age=12 * 3600, max_bytes=1 << 20
    )


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ('"30d"', 30 * DAY),
        ('"12h"', 43200.0),
        ('"90m"', 5400.0),
        ('"45s"', 45.0),
        ('"1.5d"', 1.5 * DAY),
        ('"3600"', 3600.0),
        ("3600", 3600.0),
        ("0.5", 0.5),
        ("0", 0.0),
    ],
)
def test_max_age_is_seconds_or_a_duration(tmp_path: Path, value: str, seconds: float) -> None:
    path = toml_file(tmp_path, f"history_max_age = {value}\n")
    assert load_settings(path, {}).history_max_age == seconds


def test_flags_override_the_file(tmp_path: Path) -> None:
    path = toml_file(tmp_path, 'history_max_age = "1d"\nhistory_max_bytes = 1048576\n')
    args = build_parser().parse_args(
        [
            "server",
            "--history-keep-per-room",
            "100",
            "--history-max-age",
            "2h",
            "--history-max-bytes",
            "2097152",
        ]
    )
    overrides: dict[str, Any] = {
        "history_keep_per_room": args.history_keep_per_room,
        "history_max_age": args.history_max_age,
        "history_max_bytes": args.history_max_bytes,
    }
    settings = load_settings(path, overrides)
    assert settings.retention() == Retention(keep_per_room=100, max_age=7200.0, max_bytes=2097152)


def test_unset_flags_leave_the_defaults() -> None:
    args = build_parser().parse_args(["server"])
    assert (args.history_keep_per_room, args.history_max_age, args.history_max_bytes) == (
        None,
        None,
        None,
    )


def test_zero_turns_each_bound_off() -> None:
    overrides = {"history_keep_per_room": 0, "history_max_age": "0", "history_max_bytes": 0}
    assert load_settings(None, overrides).retention() == Retention(0, 0.0, 0)


@pytest.mark.parametrize(
    "line",
    [
        'history_keep_per_room = "10"',
        "history_keep_per_room = 1.5",
        "history_keep_per_room = true",
        "history_max_age = true",
        "history_max_age = [1]",
        'history_max_bytes = "1GiB"',
        "history_max_bytes = 1.5",
        "history_max_bytes = false",
    ],
)
def test_wrong_types(tmp_path: Path, line: str) -> None:
    with pytest.raises(ConfigError, match="wrong type"):
        load_settings(toml_file(tmp_path, line + "\n"), {})


@pytest.mark.parametrize("text", ["", "d", "30 days", "1w", "-", "nan", "infd", "3O"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ConfigError, match="not a duration"):
        parse_duration(text)
    with pytest.raises(ConfigError, match="not a duration"):
        load_settings(None, {"history_max_age": text})


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"history_keep_per_room": -1}, "history_keep_per_room"),
        ({"history_keep_per_room": 49}, "at least history"),  # history is 50
        ({"history": 200, "history_keep_per_room": 100}, "at least history"),
        ({"history_max_age": -1}, "history_max_age"),
        ({"history_max_age": "-2d"}, "history_max_age"),
        ({"history_max_bytes": -1}, "history_max_bytes"),
        ({"history_max_bytes": 1048575}, "at least 1048576"),
    ],
)
def test_checks(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(None, overrides)


def test_smallest_values_that_pass() -> None:
    overrides = {"history": 0, "history_keep_per_room": 1, "history_max_bytes": 1048576}
    settings = load_settings(None, overrides)
    assert settings == ServerSettings(history=0, history_keep_per_room=1, history_max_bytes=1048576)


def test_example_file_lists_the_retention_settings() -> None:
    example = Path(__file__).resolve().parents[2] / "tlschat.example.toml"
    settings = load_settings(example, {})
    assert settings.retention() == ServerSettings().retention()
