"""Several servers for one client: parsing --host, the round robin, one known_hosts name.

The connecting glue is driven with a fake `open_connection`: no socket is opened.
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tlschat.chat.client.receiving import ChatClient
from tlschat.chat.lines import Line
from tlschat.client import sessions as client_sessions
from tlschat.client.addresses import (
    AddressError,
    Endpoint,
    ServerAddress,
    parse_addresses,
    sweep_order,
)
from tlschat.client.session import ChatClientSession
from tlschat.client.sessions import Attempt
from tlschat.client.settings import (
    EXIT_CONNECTION_FAILED,
    EXIT_OK,
    EXIT_UNTRUSTED_SERVER,
    ClientSettings,
)
from tlschat.protocol import KnownHosts, ServerAuthenticated
from tlschat.protocol.identity import IdentityKey, PeerIdentity

A, B, C = (
    ServerAddress("a.example", 8443),
    ServerAddress("b.example", 9000),
    ServerAddress("::1", 7),
)

# --- parsing ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["localhost"], [ServerAddress("localhost", 8443)]),
        (["127.0.0.1:9000"], [ServerAddress("127.0.0.1", 9000)]),
        (["a.example,b.example:9000", "[::1]:7"], [A, B, C]),
        ([" a.example , b.example:9000 "], [A, B]),
        (["[::1]"], [ServerAddress("::1", 8443)]),
        (["::1"], [ServerAddress("::1", 8443)]),  # a bare IPv6 address takes the default port
        (["[fe80::1%eth0]:1"], [ServerAddress("fe80::1%eth0", 1)]),
        (["a.example:65535"], [ServerAddress("a.example", 65535)]),
        # Repeats, however written, are one server: the round robin visits it once.
        (["a.example,a.example:8443", "a.example", "b.example:9000,a.example"], [A, B]),
    ],
)
def test_parse_addresses(values: list[str], expected: list[ServerAddress]) -> None:
    assert parse_addresses(values, 8443) == expected


@pytest.mark.parametrize(
    ("values", "error"),
    [
        ([], "no server address given"),
        ([""], "empty server address"),
        (["a.example,,b.example"], "empty server address"),
        (["a.example,"], "empty server address"),
        ([":8443"], "':8443': no host"),
        (["a.example:"], "the port must be a number from 1 to 65535"),
        (["a.example:0"], "the port must be a number from 1 to 65535"),
        (["a.example:65536"], "the port must be a number from 1 to 65535"),
        (["a.example:-1"], "the port must be a number from 1 to 65535"),
        (["a.example:http"], "the port must be a number from 1 to 65535"),
        (["a.example: 80"], "the port must be a number from 1 to 65535"),
        (["a.example:１２"], "the port must be a number from 1 to 65535"),  # fullwidth digits
        (["[::1]:"], "the port must be a number from 1 to 65535"),
        (["[::1"], "brackets hold an IPv6 address"),
        (["[a.example]:80"], "brackets hold an IPv6 address"),
        (["[]:80"], "brackets hold an IPv6 address"),
        (["[::1]80"], "only ':PORT' may follow the brackets"),
        (["a example"], "a host has no spaces"),
    ],
)
def test_parse_addresses_refuses(values: list[str], error: str) -> None:
    with pytest.raises(AddressError, match=error.replace("[", r"\[").replace("(", r"\(")):
        parse_addresses(values, 8443)


def test_addresses_print_as_they_are_written() -> None:
    assert [str(address) for address in (A, C)] == ["a.example:8443", "[::1]:7"]
    assert str(Endpoint(A, "192.0.2.1")) == "a.example:8443 (192.0.2.1)"
    assert str(Endpoint(ServerAddress("192.0.2.1", 1), "192.0.2.1")) == "192.0.2.1:1"


hosts = st.one_of(
    st.from_regex(r"[a-z0-9][a-z0-9.\-]{0,20}", fullmatch=True),
    st.ip_addresses().map(str),
)
servers = st.builds(ServerAddress, hosts, st.integers(1, 65535))


@given(st.lists(servers, min_size=1, max_size=6), st.integers(1, 3), st.integers(1, 65535))
def test_written_addresses_parse_back_in_order_without_repeats(
    addresses: list[ServerAddress], flags: int, default_port: int
) -> None:
    """However the list is split over repeated --host flags, it parses back to itself."""
    items = [str(address) for address in addresses]
    values = [",".join(items[start::flags]) for start in range(flags)]
    values = [value for value in values if value]
    expected = list(dict.fromkeys(addresses))
    parsed = parse_addresses(values, default_port)
    assert sorted(parsed, key=str) == sorted(expected, key=str)
    if flags == 1:
        assert parsed == expected


@given(st.text(max_size=40), st.integers(1, 65535))
def test_any_text_parses_or_is_refused_with_a_reason(text: str, default_port: int) -> None:
    try:
        parsed = parse_addresses([text], default_port)
    except AddressError as error:
        assert str(error)
    else:
        assert parsed
        assert all(address.host and 1 <= address.port <= 65535 for address in parsed)


# --- round robin -----------------------------------------------------------------------------

ENDPOINTS = [Endpoint(A, "192.0.2.1"), Endpoint(A, "192.0.2.2"), Endpoint(B, "192.0.2.3")]


@pytest.mark.parametrize(
    ("last", "order"),
    [
        (None, [0, 1, 2]),
        (ENDPOINTS[0], [1, 2, 0]),
        (ENDPOINTS[1], [2, 0, 1]),
        (ENDPOINTS[2], [0, 1, 2]),
        (Endpoint(C, "::1"), [0, 1, 2]),  # the last one no longer resolves: from the first
    ],
)
def test_sweep_order_starts_after_the_last_server(last: Endpoint | None, order: list[int]) -> None:
    assert sweep_order(ENDPOINTS, last) == [ENDPOINTS[index] for index in order]


class Recorder:
    """A session's Output that keeps what it is given."""

    def __init__(self) -> None:
        self.traces: list[str] = []
        self.warnings: list[str] = []
        self.states: list[tuple[str, str]] = []

    def trace(self, text: str) -> None:
        self.traces.append(text)

    def warn(self, text: str) -> None:
        self.warnings.append(text)

    def show(self, line: Line, current_room: str = "") -> None:
        raise AssertionError(f"nothing to show yet: {line}")

    def status(self, state: str, detail: str = "") -> None:
        self.states.append((state, detail))

    def outage(self, text: str, first: bool, changed: bool) -> None:
        raise AssertionError(f"the sweep says nothing of an outage: {text}")

    def changed(self) -> None:
        """Nothing shows the chat client's state here."""


@pytest.fixture
def settings(tmp_path: Path) -> ClientSettings:
    servers = parse_addresses(["127.0.0.1:8443,127.0.0.2:8444", "[::1]:8445"], 8443)
    return ClientSettings(
        home=tmp_path, host=servers[0].host, port=servers[0].port, servers=tuple(servers)
    )


def _connect_all_refused(
    settings: ClientSettings,
    monkeypatch: pytest.MonkeyPatch,
    last: Endpoint | None,
    addresses: dict[str, list[Any]] | None = None,
) -> tuple[list[tuple[str, int]], Recorder, Attempt]:
    """One sweep in which no server answers: whom it tried, in which order, what it said, and
    the attempt (with its trouble: what the session loop tells the user)."""
    tried: list[tuple[str, int]] = []

    async def refuse(host: str, port: int, **_: Any) -> Any:
        tried.append((host, port))
        raise ConnectionRefusedError(111, f"Connect call failed ({host!r}, {port})")

    monkeypatch.setattr(asyncio, "open_connection", refuse)
    output = Recorder()
    chat = ChatClient(IdentityKey.generate("ed25519"))

    async def sweep() -> Attempt:
        if addresses is not None:
            loop = asyncio.get_running_loop()

            async def resolve(host: str, port: int, **_: Any) -> list[Any]:
                if host not in addresses:
                    raise socket.gaierror(-2, "Name or service not known")
                return [(0, 0, 0, "", (ip, port)) for ip in addresses[host]]

            monkeypatch.setattr(loop, "getaddrinfo", resolve)
        return await client_sessions.connect_any(settings, chat.identity, chat, None, output, last)

    return tried, output, asyncio.run(sweep())


def test_first_connection_tries_every_server_in_the_order_given(
    settings: ClientSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    tried, output, attempt = _connect_all_refused(settings, monkeypatch, None)
    assert tried == [("127.0.0.1", 8443), ("127.0.0.2", 8444), ("::1", 8445)]
    assert output.warnings == []  # the session loop says it, once for the attempt
    assert attempt.trouble is not None
    assert attempt.trouble.words == (
        "No server answered: "
        "Can't reach 127.0.0.1:8443 (nothing is listening there); "
        "Can't reach 127.0.0.2:8444 (nothing is listening there); "
        "Can't reach [::1]:8445 (nothing is listening there)"
    )
    assert attempt.trouble.detail == (
        "[Errno 111] Connect call failed ('127.0.0.1', 8443); "
        "[Errno 111] Connect call failed ('127.0.0.2', 8444); "
        "[Errno 111] Connect call failed ('::1', 8445)"
    )
    assert [state for state in output.states if state[0] == "connecting"] == [
        ("connecting", "127.0.0.1:8443"),
        ("connecting", "127.0.0.2:8444"),
        ("connecting", "[::1]:8445"),
    ]
    assert attempt.code == EXIT_CONNECTION_FAILED
    assert attempt.session is not None and attempt.session.lost  # worth reconnecting to


def test_after_a_loss_the_sweep_starts_at_the_next_server(
    settings: ClientSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    lost = Endpoint(settings.addresses[1], "127.0.0.2")
    tried, _, _ = _connect_all_refused(settings, monkeypatch, lost)
    assert tried == [("::1", 8445), ("127.0.0.1", 8443), ("127.0.0.2", 8444)]


def test_a_name_with_several_addresses_counts_as_several_servers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = ClientSettings(home=tmp_path, host="chat.example", port=8443)
    addresses = {"chat.example": ["192.0.2.1", "192.0.2.2", "192.0.2.1"]}
    tried, _, attempt = _connect_all_refused(settings, monkeypatch, None, addresses)
    assert tried == [("192.0.2.1", 8443), ("192.0.2.2", 8443)]
    # One trouble for the name, the reason once, the detail of each address.
    assert attempt.trouble is not None
    assert attempt.trouble.words == "Can't reach chat.example:8443 (nothing is listening there)"
    assert attempt.trouble.detail == (
        "[Errno 111] Connect call failed ('192.0.2.1', 8443), "
        "[Errno 111] Connect call failed ('192.0.2.2', 8443)"
    )
    lost = Endpoint(ServerAddress("chat.example", 8443), "192.0.2.1")
    tried, _, _ = _connect_all_refused(settings, monkeypatch, lost, addresses)
    assert tried == [("192.0.2.2", 8443), ("192.0.2.1", 8443)]


def test_a_name_that_does_not_resolve_is_reported_and_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    servers = (ServerAddress("gone.example", 8443), ServerAddress("chat.example", 8443))
    settings = ClientSettings(home=tmp_path, servers=servers)
    addresses = {"chat.example": ["192.0.2.1"]}
    tried, _, attempt = _connect_all_refused(settings, monkeypatch, None, addresses)
    assert tried == [("192.0.2.1", 8443)]
    assert attempt.trouble is not None
    assert attempt.trouble.words == (
        "No server answered: "
        "Can't find the server gone.example for gone.example:8443 (no such name); "
        "Can't reach chat.example:8443 (nothing is listening there)"
    )
    assert "[Errno -2] Name or service not known" in attempt.trouble.detail


def test_one_server_alone_is_not_announced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = ClientSettings(home=tmp_path, host="127.0.0.1", port=8443)
    tried, output, attempt = _connect_all_refused(settings, monkeypatch, None)
    assert tried == [("127.0.0.1", 8443)]
    assert attempt.session is not None and attempt.session.announce is False
    assert output.traces == [] and output.warnings == []
    assert attempt.trouble is not None
    assert attempt.trouble.words == "Can't reach 127.0.0.1:8443 (nothing is listening there)"


def test_the_server_that_answers_is_announced_when_there_were_several(
    settings: ClientSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first refuses, the second answers (then the test stops at the handshake)."""
    tried: list[str] = []

    class Unreadable:
        async def read(self, size: int) -> bytes:
            raise ConnectionResetError(104, "Connection reset by peer")

    class Writer:
        def write(self, data: bytes) -> None:
            pass

        def is_closing(self) -> bool:
            return False

        def close(self) -> None:
            pass

    async def open_connection(host: str, port: int, **_: Any) -> Any:
        tried.append(host)
        if host == "127.0.0.1":
            raise ConnectionRefusedError(111, "refused")
        return Unreadable(), Writer()

    monkeypatch.setattr(asyncio, "open_connection", open_connection)
    output = Recorder()
    chat = ChatClient(IdentityKey.generate("ed25519"))
    session = asyncio.run(
        client_sessions.connect_any(settings, chat.identity, chat, None, output, None)
    ).session
    assert "[+] Connected to 127.0.0.2:8444" in output.traces
    # Reset during its handshake, the second counts as lost too: the sweep went on to the third.
    assert tried == ["127.0.0.1", "127.0.0.2", "::1"]
    assert session is not None and session.endpoint.ip == "::1"


# --- one key, one known_hosts name -----------------------------------------------------------


def test_known_hosts_names_every_server_by_the_first(
    settings: ClientSettings, tmp_path: Path
) -> None:
    server_key = IdentityKey.generate("ed25519")
    event = ServerAuthenticated(PeerIdentity.from_spki(server_key.spki_der))
    chat = ChatClient(IdentityKey.generate("ed25519"))
    verdicts = []
    outputs = []
    for endpoint in (
        Endpoint(settings.addresses[1], "127.0.0.2"),  # the first to answer is not the first
        Endpoint(settings.addresses[2], "::1"),
        Endpoint(settings.addresses[0], "127.0.0.1"),
    ):
        output = Recorder()
        session = ChatClientSession(settings, chat.identity, chat, endpoint, output)
        verdicts.append(asyncio.run(session._check_server(event, None)))
        outputs.append(output)
    assert verdicts == [EXIT_OK, EXIT_OK, EXIT_OK]
    assert outputs[0].warnings == [
        f"[KNOWN_HOSTS] New server 127.0.0.1:8443 with key fingerprint "
        f"{server_key.fingerprint}: accepted and recorded"
    ]
    for output in outputs[1:]:
        assert output.traces == [
            f"[KNOWN_HOSTS] Server key {server_key.fingerprint} matches known_hosts"
        ]
        assert output.warnings == []
    known_hosts = KnownHosts(tmp_path / "known_hosts")
    assert known_hosts.lookup("127.0.0.1", 8443) == (1, server_key.fingerprint)
    assert known_hosts.lookup("127.0.0.2", 8444) is None
    assert known_hosts.lookup("::1", 8445) is None


def test_a_changed_key_on_any_server_is_refused(settings: ClientSettings, tmp_path: Path) -> None:
    KnownHosts(tmp_path / "known_hosts").add("127.0.0.1", 8443, "SHA256:" + "A" * 43)
    impostor = IdentityKey.generate("ed25519")
    event = ServerAuthenticated(PeerIdentity.from_spki(impostor.spki_der))
    chat = ChatClient(IdentityKey.generate("ed25519"))
    output = Recorder()
    endpoint = Endpoint(settings.addresses[2], "::1")
    session = ChatClientSession(settings, chat.identity, chat, endpoint, output)
    assert asyncio.run(session._check_server(event, None)) == EXIT_UNTRUSTED_SERVER
    assert "REMOTE HOST IDENTIFICATION HAS CHANGED" in output.warnings[0]
    assert "127.0.0.1:8443" in output.warnings[0]


def test_pin_applies_to_every_server(settings: ClientSettings) -> None:
    server_key = IdentityKey.generate("ed25519")
    event = ServerAuthenticated(PeerIdentity.from_spki(server_key.spki_der))
    chat = ChatClient(IdentityKey.generate("ed25519"))
    for pin, expected in ((server_key.fingerprint, EXIT_OK), ("SHA256:" + "B" * 43, 2)):
        pinned = ClientSettings(
            home=settings.home,
            host=settings.host,
            port=settings.port,
            servers=settings.servers,
            pin=pin,
        )
        for endpoint in (Endpoint(address, address.host) for address in settings.addresses):
            session = ChatClientSession(pinned, chat.identity, chat, endpoint, Recorder())
            assert asyncio.run(session._check_server(event, None)) == expected, endpoint


def test_two_names_of_one_address_are_one_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    servers = parse_addresses(["chat.example,www.example,192.0.2.1,chat.example:9"], 8443)
    settings = ClientSettings(home=tmp_path, servers=tuple(servers))
    addresses = {
        "chat.example": ["192.0.2.1", "192.0.2.2"],
        "www.example": ["192.0.2.2"],
        "192.0.2.1": ["192.0.2.1"],
    }
    tried, _, _ = _connect_all_refused(settings, monkeypatch, None, addresses)
    # www.example and 192.0.2.1 add nothing; another port is another server.
    assert tried == [("192.0.2.1", 8443), ("192.0.2.2", 8443), ("192.0.2.1", 9), ("192.0.2.2", 9)]
