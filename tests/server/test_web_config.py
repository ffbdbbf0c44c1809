"""The ``web`` setting: off by default, HOST:PORT from the file or ``--web``, checked, and needing
a restart to change."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tlschat import cli
from tlschat.server.config import ConfigError, ServerSettings, load_settings
from tlschat.server.reload import RESTART, setting_changes


def test_off_by_default() -> None:
    assert load_settings(None, {}).web == ""


@pytest.mark.parametrize(
    ("web", "address"),
    [
        ("127.0.0.1:8080", ("127.0.0.1", 8080)),
        ("0.0.0.0:0", ("0.0.0.0", 0)),
        ("localhost:65535", ("localhost", 65535)),
        ("[::1]:8080", ("::1", 8080)),
    ],
)
def test_host_and_port(web: str, address: tuple[str, int]) -> None:
    assert load_settings(None, {"web": web}).web_address() == address


@pytest.mark.parametrize(
    "web",
    ["8080", "127.0.0.1", "127.0.0.1:", ":8080", "::1:8080", "host:http", "host:65536", "h:١٢"],
)
def test_what_is_not_host_and_port_is_refused(web: str) -> None:
    with pytest.raises(ConfigError, match="is not HOST:PORT"):
        load_settings(None, {"web": web})


def test_not_the_chat_port_itself() -> None:
    with pytest.raises(ConfigError, match="the chat's own host and port"):
        load_settings(None, {"web": "127.0.0.1:8443"})
    # Both on free ports the system picks: two ports.
    assert load_settings(None, {"port": 0, "web": "127.0.0.1:0"}).web == "127.0.0.1:0"


def test_from_the_file_and_the_flag_wins(tmp_path: Path) -> None:
    config = tmp_path / "server.toml"
    config.write_text('web = "127.0.0.1:8080"\n', encoding="utf-8")
    assert load_settings(config, {}).web == "127.0.0.1:8080"
    assert load_settings(config, {"web": "127.0.0.1:9090"}).web == "127.0.0.1:9090"
    config.write_text("web = 8080\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="web has the wrong type"):
        load_settings(config, {})


def test_the_flag_reaches_the_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    served: list[Any] = []

    async def fake_serve(settings: ServerSettings, source: Any) -> None:
        served.append((settings, source))

    monkeypatch.setattr("tlschat.server.app.serve", fake_serve)
    data = str(tmp_path / "data")
    assert cli.main(["server", "--data-dir", data, "--web", "127.0.0.1:8080"]) == 0
    assert cli.main(["server", "--data-dir", data]) == 0
    (with_web, source), (without, _) = served
    assert (with_web.web, source.overrides["web"], without.web) == (
        "127.0.0.1:8080",
        "127.0.0.1:8080",
        "",
    )


def test_a_change_needs_a_restart() -> None:
    assert "web" in RESTART
    old, new = ServerSettings(), ServerSettings(web="127.0.0.1:8080")
    [change] = setting_changes(old, new, "", "", clustered=False)
    assert not change.live
    assert (
        change.text == "web: '' -> '127.0.0.1:8080': needs a restart ('' stays in force until then)"
    )
