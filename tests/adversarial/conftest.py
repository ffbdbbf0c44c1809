"""The arena: one real server per test module, with two real ``--plain`` clients that stay connected
for the whole module, and the checks every probe ends with.

Every probe asserts four things: (1) the failure the victim reports, (2) the alert that reached the
wire (or that none could be sent), (3) that the victim then closed the socket, and (4) that the
server still serves: :meth:`Arena.check_service` runs a fresh well-behaved handshake and has it
chat with the two clients connected since the start of the module, who chat with each other too.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.e2e.harness import CLOCK, Client, Harness, Server
from tlschat.protocol import AlertDescription, IdentityKey

from .evil import EvilClient, new_identity

HANDSHAKE_TIMEOUT = 2.0
SERVER_FLAGS = (
    "--handshake-timeout",
    str(HANDSHAKE_TIMEOUT),
    # Flood control is not under test here, and the two clients talk after every probe.
    "--rate",
    "1000",
    "--burst",
    "1000",
    "--no-history",
    # Nor is the handshake rate per address block: every probe is a new connection from
    # 127.0.0.1, many per second (tests/e2e/test_admission_e2e.py tests that limit).
    "--handshake-burst",
    "100000",
    # Nor the sessions per key: test_rooms_listing_of_many_long_rooms_still_fits_one_frame
    # holds a dozen sessions of one key (test_admission_e2e.py tests that cap).
    "--max-sessions-per-key",
    "100",
    # Every probe waits for its own connection's lines; at INFO a failed handshake is only
    # counted in its address block's periodic summary.
    "--verbose",
)


def said(nick: str, text: str) -> re.Pattern[str]:
    """A whole plain-mode line: a verified message from ``nick`` in the current room."""
    return re.compile(rf"^{CLOCK} ✓ <{re.escape(nick)}> {re.escape(text)}$")


@dataclass
class Arena:
    harness: Harness
    server: Server
    alice: Client
    bob: Client
    fingerprints: dict[str, str]
    good_identity: IdentityKey = field(default_factory=new_identity)
    _serial: Iterator[int] = field(default_factory=itertools.count)

    # ----- evil peers -----

    def evil(
        self, identity: IdentityKey | None = None, cipher_suites: tuple[int, ...] | None = None
    ) -> EvilClient:
        """An evil client connected to the server, its log lines marked from here."""
        mark = self.server.mark()
        client = EvilClient(self.server.port, identity=identity, cipher_suites=cipher_suites)
        client.mark = mark
        return client

    def unique(self, what: str) -> str:
        return f"{what} #{next(self._serial)}"

    # ----- (1): what the server reports -----

    def expect_failure(self, evil: EvilClient, alert: AlertDescription, reason: str = "") -> str:
        """The server logged ``alert`` (its reason containing ``reason``) as raised by itself for
        this peer, then let the peer go."""
        start = evil.mark
        prefix = f"[!] {evil.label}: {alert.name} (server alert raised): "
        line = self.server.wait_for_line(
            lambda text: text.startswith(prefix) and reason in text[len(prefix) :], start=start
        )
        self.server.wait_for_line(
            f"[-] Client {evil.label} disconnected (protocol error: {alert.name})", start=start
        )
        return line

    def expect_received(self, evil: EvilClient, alert: AlertDescription) -> str:
        """The server logged the peer's own alert as received."""
        start = evil.mark
        line = self.server.wait_for_line(
            f"[!] {evil.label}: {alert.name} (client alert received)", start=start
        )
        self.server.wait_for_line(f"[-] Client {evil.label} disconnected", start=start)
        return line

    def expect_connection_lost(self, evil: EvilClient) -> str:
        start = evil.mark
        line = self.server.wait_for_line(f"[!] {evil.label}: connection lost", start=start)
        self.server.wait_for_line(
            f"[-] Client {evil.label} disconnected (connection lost)", start=start
        )
        return line

    def expect_quit(self, evil: EvilClient) -> None:
        """The peer left cleanly: nothing was logged against it."""
        start = evil.mark
        self.server.wait_for_line(f"[-] Client {evil.label} disconnected (quit)", start=start)
        assert self.server.find(f"[!] {evil.label}", start=start) is None, self.server.describe()

    # ----- (4): the server still serves -----

    def check_service(self, probe: str = "probe") -> None:
        """A fresh client completes a handshake and chats with the two long-connected clients."""
        assert self.server.running, self.server.describe()
        assert not self.harness.tracebacks(), self.server.describe()
        text = self.unique(f"still here after {probe}")
        with EvilClient(self.server.port, identity=self.good_identity) as good:
            good.handshake()
            nick = good.join_chat("good")["nick"]
            good.say(text)
            for bystander in (self.alice, self.bob):
                bystander.wait_for_line(said(nick, text))
            good.close_cleanly()
        reply = self.unique("alice answers")
        self.alice.send(reply)
        self.bob.wait_for_line(said("alice", reply))
        assert self.alice.running and self.bob.running

    def home(self, name: str) -> Path:
        """A client home with a fresh Ed25519 identity (made in-process: no keygen run)."""
        home = self.harness.root / "homes" / self.unique(name).replace(" #", "-")
        new_identity().save(home / "identity.pem")
        return home


@pytest.fixture(scope="module")
def arena(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Arena]:
    harness = Harness(tmp_path_factory.mktemp("adversarial"))
    try:
        server = harness.server(extra=SERVER_FLAGS)
        homes = {name: harness.home(name) for name in ("alice", "bob")}
        alice = harness.joined_client("alice", server.port, home=homes["alice"])
        bob = harness.joined_client("bob", server.port, home=homes["bob"])
        alice.wait_for_line("bob joined #general")
        fingerprints = {
            name: IdentityKey.load(home / "identity.pem").fingerprint
            for name, home in homes.items()
        }
        arena = Arena(harness, server, alice, bob, fingerprints)
        yield arena
        # The two clients connected at the start are still there, still talking.
        arena.check_service("the whole module")
    finally:
        harness.close()
    assert not harness.tracebacks(), "\n".join(p.describe() for p in harness.processes)
