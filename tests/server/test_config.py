"""Server settings: defaults, then a TOML file, then command-line overrides; every check."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from tlschat.chat.server.model import ChatSettings
from tlschat.server.config import (
    DEFAULT_MAX_WRITE_BUFFER,
    ConfigError,
    ServerSettings,
    event_loop_factory,
    load_settings,
)

FP_A = "SHA256:" + "A" * 43
FP_B = "SHA256:" + "b+/" + "9" * 40
FP_C = "SHA256:" + "C" * 43


def toml_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "server.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_without_a_file() -> None:
    settings = load_settings(None, {})
    assert settings == ServerSettings()
    assert settings.host == "127.0.0.1"
    assert settings.port == 8443
    assert settings.data_dir == Path("data")
    assert settings.server_name == "tlschat"
    assert (settings.motd, settings.motd_file) == ("", None)
    assert settings.history == 50
    assert (settings.operators, settings.allowlist, settings.allowlist_only) == ([], [], False)
    assert (settings.rate, settings.burst) == (2.0, 10)
    assert settings.max_message_bytes == 4096
    assert settings.handshake_timeout == 10.0
    assert settings.max_write_buffer == DEFAULT_MAX_WRITE_BUFFER == 4 * 1024 * 1024


def test_overrides_of_none_and_empty_lists_are_ignored() -> None:
    overrides = {"host": None, "port": None, "operators": [], "allowlist": [], "motd": None}
    assert load_settings(None, overrides) == ServerSettings()


def test_file_values_are_used(tmp_path: Path) -> None:
    motd = tmp_path / "motd.txt"
    motd.write_text("Be nice.\n", encoding="utf-8")
    path = toml_file(
        tmp_path,
        f"""
host = "0.0.0.0"
port = 9000
data_dir = "{tmp_path / "state"}"
server_name = "Example chat"
motd = "inline"
motd_file = "{motd}"
history = 20
operators = ["{FP_A}"]
allowlist_only = true
allowlist = ["{FP_B}", "{FP_C}"]
rate = 1
burst = 5
max_message_bytes = 1024
handshake_timeout = 2.5
max_write_buffer = 65536
""",
    )
    assert load_settings(path, {}) == ServerSettings(
        host="0.0.0.0",
        port=9000,
        data_dir=tmp_path / "state",
        server_name="Example chat",
        motd="inline",
        motd_file=motd,
        history=20,
        operators=[FP_A],
        allowlist_only=True,
        allowlist=[FP_B, FP_C],
        rate=1,
        burst=5,
        max_message_bytes=1024,
        handshake_timeout=2.5,
        max_write_buffer=65536,
    )


def test_empty_file_gives_defaults(tmp_path: Path) -> None:
    assert load_settings(toml_file(tmp_path, ""), {}) == ServerSettings()


def test_overrides_win_over_the_file(tmp_path: Path) -> None:
    path = toml_file(
        tmp_path,
        f'port = 9000\nhistory = 20\noperators = ["{FP_A}"]\nserver_name = "file"\n',
    )
    overrides: dict[str, Any] = {
        "port": 9100,
        "history": 0,
        "operators": [FP_B],
        "data_dir": tmp_path / "flag",
        "server_name": None,
        "allowlist": [],
    }
    settings = load_settings(path, overrides)
    assert settings.port == 9100
    assert settings.history == 0  # a falsy value that is not None still wins
    assert settings.operators == [FP_B]  # replaces the file's list
    assert settings.data_dir == tmp_path / "flag"
    assert settings.server_name == "file"


def test_path_overrides_given_as_strings_become_paths(tmp_path: Path) -> None:
    motd = tmp_path / "motd.txt"
    motd.write_text("hi", encoding="utf-8")
    settings = load_settings(None, {"data_dir": "somewhere", "motd_file": str(motd)})
    assert settings.data_dir == Path("somewhere")
    assert settings.motd_file == motd


def test_unknown_keys_in_the_file(tmp_path: Path) -> None:
    path = toml_file(tmp_path, 'port = 1\nprot = 2\ncolour = "blue"\n')
    with pytest.raises(ConfigError, match="unknown settings colour, prot"):
        load_settings(path, {})


def test_unknown_override() -> None:
    with pytest.raises(ConfigError, match="colour"):
        load_settings(None, {"colour": "blue"})


@pytest.mark.parametrize(
    "line",
    [
        'port = "8443"',
        "port = 8443.0",
        "port = true",
        "host = 127",
        "history = true",
        "history = 1.5",
        "burst = false",
        "rate = true",
        'rate = "fast"',
        'allowlist_only = "yes"',
        "allowlist_only = 1",
        f'operators = "{FP_A}"',
        'allowlist = "all"',
        "data_dir = 5",
        "motd_file = []",
        "handshake_timeout = false",
        "server_name = { a = 1 }",
    ],
)
def test_wrong_types(tmp_path: Path, line: str) -> None:
    name = line.split(" =")[0]
    with pytest.raises(ConfigError, match=f"{name} has the wrong type"):
        load_settings(toml_file(tmp_path, line + "\n"), {})


@pytest.mark.parametrize(
    ("line", "name"),
    [
        ('operators = ["alice"]', "operators"),
        ('operators = ["SHA256:short"]', "operators"),
        (f'operators = ["{FP_A}x"]', "operators"),
        (f'operators = ["{FP_A}", "sha256:{"A" * 43}"]', "operators"),
        ('allowlist = ["MD5:abc"]', "allowlist"),
        ("allowlist = [1]", "allowlist"),
        ("operators = [true]", "operators"),
        ("operators = [[]]", "operators"),
    ],
)
def test_bad_fingerprints(tmp_path: Path, line: str, name: str) -> None:
    with pytest.raises(ConfigError, match=f"{name}: .* is not a SHA256:... fingerprint"):
        load_settings(toml_file(tmp_path, line + "\n"), {})


def test_bad_fingerprint_in_an_override() -> None:
    with pytest.raises(ConfigError, match="allowlist: 'alice' is not a SHA256"):
        load_settings(None, {"allowlist": ["alice"]})


@pytest.mark.parametrize("port", [-1, 65536, 100000])
def test_bad_port(tmp_path: Path, port: int) -> None:
    with pytest.raises(ConfigError, match=f"port {port} is out of range"):
        load_settings(toml_file(tmp_path, f"port = {port}\n"), {})
    with pytest.raises(ConfigError, match=f"port {port} is out of range"):
        load_settings(None, {"port": port})


@pytest.mark.parametrize("port", [0, 1, 65535])
def test_good_ports(port: int) -> None:
    assert load_settings(None, {"port": port}).port == port


@pytest.mark.parametrize("line", ["history = -1", "burst = 0", "rate = 0", "rate = -1.5"])
def test_bad_limits(tmp_path: Path, line: str) -> None:
    with pytest.raises(ConfigError, match="history must be >= 0, burst >= 1 and rate > 0"):
        load_settings(toml_file(tmp_path, line + "\n"), {})


@pytest.mark.parametrize("size", [0, 4097])
def test_bad_max_message_bytes(size: int) -> None:
    with pytest.raises(ConfigError, match=r"max_message_bytes must be in \[1, 4096\]"):
        load_settings(None, {"max_message_bytes": size})


def test_missing_motd_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.txt"
    with pytest.raises(ConfigError, match=f"motd_file {missing} is not a readable file"):
        load_settings(toml_file(tmp_path, f'motd_file = "{missing}"\n'), {})
    with pytest.raises(ConfigError, match="is not a readable file"):
        load_settings(None, {"motd_file": tmp_path})  # a directory


def test_motd_file_that_is_not_utf8(tmp_path: Path) -> None:
    motd = tmp_path / "motd.txt"
    motd.write_bytes(b"caf\xe9\n")
    with pytest.raises(ConfigError, match="is not a readable file"):
        load_settings(None, {"motd_file": motd})


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.toml"):
        load_settings(tmp_path / "nope.toml", {})


@pytest.mark.parametrize("data", [b"port = \n", b"port = 1\nport = 2\n", b"[x\n", b"\xff\xfe = 1"])
def test_unreadable_or_invalid_toml(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "server.toml"
    path.write_bytes(data)
    with pytest.raises(ConfigError, match=r"server\.toml"):
        load_settings(path, {})


# --- chat_settings ---------------------------------------------------------------------------


def test_chat_settings_from_defaults() -> None:
    assert load_settings(None, {}).chat_settings() == ChatSettings(
        server_name="tlschat",
        motd="",
        history_limit=50,
        operators=frozenset(),
        allowlist=None,
        rate_per_second=2.0,
        burst=10,
        max_body_bytes=4096,
    )


def test_chat_settings_maps_every_field(tmp_path: Path) -> None:
    settings = ServerSettings(
        server_name="Example",
        motd="inline",
        history=7,
        operators=[FP_A, FP_A],
        allowlist_only=True,
        allowlist=[FP_B],
        rate=0.5,
        burst=3,
        max_message_bytes=100,
    )
    assert settings.chat_settings() == ChatSettings(
        server_name="Example",
        motd="inline",
        history_limit=7,
        operators=frozenset({FP_A}),
        allowlist=frozenset({FP_B}),
        rate_per_second=0.5,
        burst=3,
        max_body_bytes=100,
    )


def test_allowlist_is_ignored_unless_allowlist_only() -> None:
    settings = load_settings(None, {"allowlist": [FP_B]})
    assert settings.chat_settings().allowlist is None


def test_allowlist_only_with_an_empty_list_admits_operators_only() -> None:
    settings = load_settings(None, {"allowlist_only": True, "operators": [FP_A]})
    chat = settings.chat_settings()
    assert chat.allowlist == frozenset()
    assert chat.operators == frozenset({FP_A})


def test_motd_file_replaces_motd_stripped(tmp_path: Path) -> None:
    motd = tmp_path / "motd.txt"
    motd.write_text("\n  Welcome!\nBe nice.  \n\n", encoding="utf-8")
    settings = load_settings(None, {"motd": "inline", "motd_file": motd})
    assert settings.chat_settings().motd == "Welcome!\nBe nice."


def test_history_zero_maps_to_no_history() -> None:
    assert load_settings(None, {"history": 0}).chat_settings().history_limit == 0


def test_event_loop_choice() -> None:
    assert load_settings(None, {}).event_loop == "asyncio"
    assert load_settings(None, {"event_loop": "uvloop"}).event_loop == "uvloop"
    with pytest.raises(ConfigError, match="event_loop must be one of auto, asyncio, uvloop"):
        load_settings(None, {"event_loop": "trio"})


def test_event_loop_factory() -> None:
    import uvloop

    assert event_loop_factory("asyncio") is None
    assert event_loop_factory("uvloop") is uvloop.new_event_loop
    assert event_loop_factory("auto") is uvloop.new_event_loop


def test_event_loop_uvloop_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # import uvloop now raises ImportError
    assert event_loop_factory("auto") is None
    with pytest.raises(ConfigError, match=r"pip install 'tlschat\[uvloop\]'"):
        event_loop_factory("uvloop")


def test_the_handshake_rate_of_the_whole_server(tmp_path: Path) -> None:
    defaults = load_settings(None, {})
    assert (defaults.handshake_rate, defaults.handshake_rate_burst) == (400.0, 20)
    loaded = load_settings(
        toml_file(tmp_path, "handshake_rate = 25\nhandshake_rate_burst = 5\n"),
        {"handshake_rate": 30.5},
    )
    assert (loaded.handshake_rate, loaded.handshake_rate_burst) == (30.5, 5)


@pytest.mark.parametrize(
    "line",
    [
        "handshake_rate = 0",
        "handshake_rate = -1.0",
        "handshake_rate = nan",
        "handshake_rate = inf",
        "handshake_rate_burst = 0",
        'handshake_rate = "fast"',
        "handshake_rate_burst = 1.5",
    ],
)
def test_a_handshake_rate_that_makes_no_sense_is_refused(tmp_path: Path, line: str) -> None:
    with pytest.raises(ConfigError):
        load_settings(toml_file(tmp_path, line + "\n"), {})
