"""The new user's side of an invitation: `tlschat client --invite` (its flags and settings), the
trust decision it makes (the key pinned, then remembered in known_hosts), and the operator's
client showing the invitation it made as the one string to pass on. Also `tlschat invite`."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from tlschat import cli
from tlschat.chat.client.receiving import ChatClient
from tlschat.chat.invitation import Invitation, parse_invitation, secret_digest
from tlschat.chat.seen import SeenLedger
from tlschat.client import app as client_app
from tlschat.client.addresses import ServerAddress
from tlschat.client.settings import ClientSettings
from tlschat.client.trust import changed_key_warning, decide_invited, trust_report
from tlschat.protocol.identity import HostKeyChanged, IdentityKey, KnownHosts
from tlschat.server.keys import load_or_create_server_identity
from tlschat.store import SQLiteStore

KEY = IdentityKey.generate("ed25519").fingerprint
OTHER = IdentityKey.generate("ed25519").fingerprint
SECRET = "S" * 32
INVITATION = Invitation("chat.example.org", 9443, KEY, SECRET)
NOW = 1_700_000_000.0


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[ClientSettings]:
    seen: list[ClientSettings] = []

    async def fake_run_client(settings: ClientSettings) -> int:
        seen.append(settings)
        return 0

    monkeypatch.setattr(client_app, "run_client", fake_run_client)
    monkeypatch.setattr("sys.stdin", Terminal())
    monkeypatch.setattr("sys.stdout", Terminal())
    return seen


# --- tlschat client --invite -----------------------------------------------------------------


@pytest.mark.parametrize("mode", [[], ["--line"], ["--plain"]])
def test_the_invitation_names_the_server_and_its_key(
    started: list[ClientSettings], mode: list[str]
) -> None:
    assert cli.main(["client", "--home", "/nonexistent", *mode, "--invite", str(INVITATION)]) == 0
    (settings,) = started
    assert settings.addresses == (ServerAddress("chat.example.org", 9443),)
    assert settings.known_as == ServerAddress("chat.example.org", 9443)
    assert (settings.invitation, settings.pin) == (INVITATION, None)
    assert settings.plain == (mode == ["--plain"])


@pytest.mark.parametrize(
    "flags", [["--host", "a"], ["--port", "5"], ["--pin", KEY], ["--host", "a:1", "--pin", KEY]]
)
def test_flags_the_invitation_decides_are_refused(
    started: list[ClientSettings], capsys: Any, flags: list[str]
) -> None:
    argv = ["client", "--home", "/nonexistent", "--invite", str(INVITATION), *flags]
    assert cli.main(argv) == 2
    assert started == []
    assert capsys.readouterr().err == (
        "[!] --invite names the server and pins its key: give no --host, --port or --pin with it\n"
    )


def test_a_malformed_invitation_is_one_line_saying_why(
    started: list[ClientSettings], capsys: Any
) -> None:
    cut = str(INVITATION)[:-12]
    assert cli.main(["client", "--home", "/nonexistent", "--invite", cut]) == 2
    assert started == []
    err = capsys.readouterr().err
    assert err.startswith("[!] Bad --invite: the secret is not one tlschat makes") and (
        err.count("\n") == 1
    )


# --- trusting the server it names ------------------------------------------------------------


def test_the_pinned_key_is_trusted_without_a_question_and_remembered(tmp_path: Path) -> None:
    known_hosts = KnownHosts(tmp_path / "known_hosts")
    decision = decide_invited(known_hosts, "chat.example.org", 9443, KEY, KEY)
    assert (decision.trusted, decision.is_new, decision.remember) == (True, False, True)
    assert decision.message == (
        f"Server key {KEY} matches the invitation; remembering it for chat.example.org:9443"
    )
    known_hosts.add("chat.example.org", 9443, KEY)
    again = decide_invited(known_hosts, "chat.example.org", 9443, KEY, KEY)
    assert (again.trusted, again.remember) == (True, False)


def test_another_key_is_refused_loudly(tmp_path: Path) -> None:
    known_hosts = KnownHosts(tmp_path / "known_hosts")
    decision = decide_invited(known_hosts, "chat.example.org", 9443, OTHER, KEY)
    assert (decision.trusted, decision.remember) == (False, False)
    assert decision.message == (
        f"Server key {OTHER} does not match the fingerprint in the invitation {KEY}; refusing "
        "to connect (the invitation is for another server, or someone is in between)."
    )
    assert not (tmp_path / "known_hosts").exists()


def test_a_known_hosts_entry_with_another_key_is_not_overruled(tmp_path: Path) -> None:
    known_hosts = KnownHosts(tmp_path / "known_hosts")
    known_hosts.add("chat.example.org", 9443, OTHER)
    decision = decide_invited(known_hosts, "chat.example.org", 9443, KEY, KEY)
    change = known_hosts.check("chat.example.org", 9443, KEY)
    assert isinstance(change, HostKeyChanged)
    assert (decision.trusted, decision.message) == (False, changed_key_warning(change))


def test_trust_shows_the_pin_of_the_invitation(tmp_path: Path) -> None:
    settings = ClientSettings(tmp_path, host="chat.example.org", port=9443, invitation=INVITATION)
    assert trust_report(settings, KEY, None) == [
        f"Server chat.example.org:9443 key: {KEY}",
        f"Pinned by the invitation (--invite) to {KEY}",
    ]


# --- the operator's client shows the invitation it made --------------------------------------


def operator_client(address: str = "chat.example.org:9443") -> ChatClient:
    client = ChatClient(IdentityKey.generate("ed25519"), "alice")
    client.use_network(KEY, SeenLedger())
    client.server_address = address
    return client


def test_the_invitation_names_the_address_this_client_reached_and_the_key_it_verified() -> None:
    frame = {"type": "invitation", "id": "0badf00d", "secret": SECRET, "valid_for": 604800}
    (line,) = operator_client().handle(frame, NOW)
    assert (line.kind, line.text) == (
        "notice",
        f"Invitation 0badf00d: one new key may join with it, once, within 7d: {INVITATION}",
    )
    assert parse_invitation(line.text.rsplit(" ", 1)[1]) == INVITATION


def test_the_address_the_operator_named_wins() -> None:
    frame = {
        "type": "invitation",
        "id": "0badf00d",
        "secret": SECRET,
        "valid_for": 3600,
        "address": "[2001:db8::1]:443",
    }
    (line,) = operator_client("127.0.0.1:8443").handle(frame, NOW)
    assert line.text.endswith(f"within 1h: tlschat-invite:[2001:db8::1]:443#{KEY}#{SECRET}")


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ({"secret": "short"}, "not an invitation's id and secret"),
        ({"id": "NOTHEX00"}, "not an invitation's id and secret"),
        ({"secret": 5}, "'secret' must be a string"),
        ({"valid_for": -1}, "'valid_for' must be an integer"),
        ({"address": "no port"}, "no address for the invitation: 'no port' is not a server"),
    ],
)
def test_a_malformed_invitation_frame_is_an_error_line(change: dict[str, Any], said: str) -> None:
    frame = {"type": "invitation", "id": "0badf00d", "secret": SECRET, "valid_for": 60, **change}
    (line,) = operator_client().handle(frame, NOW)
    assert line.kind == "error"
    assert line.text.startswith(f"malformed 'invitation' frame from server: {said}")


# --- tlschat invite, one server alone --------------------------------------------------------


def test_tlschat_invite_writes_into_the_servers_database(tmp_path: Path, capsys: Any) -> None:
    data = tmp_path / "data"
    key, _, _ = load_or_create_server_identity(data)
    SQLiteStore(data / "chat.db").close()  # as a server that started once leaves it
    argv = ["invite", "--data-dir", str(data), "--host", "chat.example.org", "--expires", "2d"]
    assert cli.main(argv) == 0
    out, err = capsys.readouterr()
    invitation = parse_invitation(out)
    assert out == f"{invitation}\n"
    assert (invitation.host, invitation.port, invitation.fingerprint) == (
        "chat.example.org",
        8443,
        key.fingerprint,
    )
    digest = secret_digest(invitation.secret)
    assert err.startswith(f"Invitation {digest[:8]} (kept in {data / 'chat.db'}): one new key")
    assert "within 2d" in err and invitation.secret not in err
    store = SQLiteStore(data / "chat.db")
    (kept,) = store.invitations()
    assert (kept.id, kept.digest, kept.expires_at - kept.made_at) == (digest[:8], digest, 172800)
    assert kept.made_by.startswith("tlschat invite")
    store.close()


@pytest.mark.parametrize(
    ("flags", "said"),
    [
        (["--expires", "soon"], "--expires 'soon': a duration such as 90m, 12h or 7d"),
        (
            ["--expires", "400d"],
            "--expires '400d': a duration such as 90m, 12h or 7d, at most 365d",
        ),
        (["--host", "bad host"], "--host and --port: 'bad host:8443' is not a server address"),
        (["--port", "0"], "--host and --port: '127.0.0.1:0': the port must be a number"),
    ],
)
def test_tlschat_invite_refuses_bad_flags(
    tmp_path: Path, capsys: Any, flags: list[str], said: str
) -> None:
    assert cli.main(["invite", "--data-dir", str(tmp_path), *flags]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"[!] {said}") and err.count("\n") == 1


def test_tlschat_invite_needs_the_key_and_a_database(tmp_path: Path, capsys: Any) -> None:
    assert cli.main(["invite", "--data-dir", str(tmp_path)]) == 1
    assert capsys.readouterr().err.startswith(f"[!] No server key in {tmp_path}: give the server")
    load_or_create_server_identity(tmp_path)
    assert cli.main(["invite", "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"[!] No chat.db in {tmp_path}: a server keeps one there")
    assert "give --broker redis://" in err and "/invitation" in err
