"""End to end: onboarding without fingerprints, with the real server and real clients. An operator
makes an invitation; a brand-new client home joins an allowlist server with `--invite`, pinning
the server's key from it (no trust question; known_hosts gets the key), comes back later without
it, and a second user of the same invitation is refused. `tlschat invite` writes one into the
running server's database. An invitation whose fingerprint is not the server's is refused by the
client before it reveals anything.
"""

from __future__ import annotations

import os
import pty
import re
import subprocess
import threading
from pathlib import Path

from tlschat.chat.invitation import Invitation, parse_invitation
from tlschat.chat.server.invitations import ADMITTED
from tlschat.protocol.identity import IdentityKey

from .harness import EXIT_WAIT, Client, Harness, Server
from .test_chat_features_e2e import notice, quit_cleanly, refused
from .test_line_mode_e2e import QUESTION, TerminalClient

INVITATION = re.compile(r"tlschat-invite:\S+")
UNTRUSTED_SERVER = 2


def allowlist_server(harness: Harness, operator: str) -> Server:
    return harness.server(
        data_dir=harness.root / "data", extra=("--allowlist-only", "--operator", operator)
    )


def invited_client(harness: Harness, nick: str, invitation: str, home: Path) -> Client:
    """A ``--plain`` client that knows nothing but the invitation (no --host, --port or --pin)."""
    argv = harness.command(
        "client", "--plain", "--nick", nick, "--home", str(home), "--invite", invitation
    )
    client = Client(nick, argv, harness.env, harness.root)
    harness.processes.append(client)
    return client


def cli_invitation(harness: Harness, server: Server, *flags: str) -> str:
    """`tlschat invite` on the server's data directory while it runs: the invitation."""
    result = subprocess.run(
        harness.command(
            "invite", "--data-dir", str(harness.root / "data"), "--port", str(server.port), *flags
        ),
        env=harness.env,
        capture_output=True,
        text=True,
        timeout=EXIT_WAIT,
        check=True,
    )
    assert result.stderr.startswith("Invitation "), result
    return result.stdout.strip()


class InvitedTerminalClient(TerminalClient):
    """`tlschat client --line --invite …` on a pty: the interactive mode, which would ask."""

    def __init__(self, harness: Harness, invitation: str, home: Path) -> None:
        argv = harness.command(
            "client", "--line", "--nick", "lin", "--home", str(home), "--invite", invitation
        )
        self.master, slave = pty.openpty()
        self.proc = subprocess.Popen(
            argv,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env={**harness.env, "TERM": "xterm"},
            cwd=harness.root,
            close_fds=True,
        )
        os.close(slave)
        self._output = b""
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()


def test_a_new_user_joins_with_an_invitation_and_comes_back_without_it(harness: Harness) -> None:
    alice_home = harness.home("alice")
    server = allowlist_server(harness, harness.key_fingerprint(alice_home))
    alice = harness.joined_client("alice", server.port, home=alice_home)
    alice.send("/invitation")
    found = INVITATION.search(alice.wait_for_line(INVITATION))
    assert found is not None
    invitation = parse_invitation(found.group(0))
    assert (invitation.host, invitation.port) == ("127.0.0.1", server.port)
    assert invitation.fingerprint == server.fingerprint
    made_line = alice.find(INVITATION)
    assert made_line is not None and "within 7d" in made_line

    # A brand-new home: no identity, no known_hosts. The key is pinned from the invitation.
    bob_home = harness.root / "homes" / "bob"
    bob = invited_client(harness, "bob", str(invitation), bob_home)
    assert bob.wait_joined() == "bob"
    bob.wait_for_line(notice(ADMITTED))
    remembered = (
        f"[KNOWN_HOSTS] Server key {server.fingerprint} matches the invitation; "
        f"remembering it for 127.0.0.1:{server.port}"
    )
    bob.wait_for_line(remembered, stream="stderr")
    assert "New server" not in bob.output("stderr"), bob.describe()
    assert (bob_home / "known_hosts").read_text().splitlines() == [
        f"127.0.0.1:{server.port} {server.fingerprint}"
    ]
    bob_fp = harness.key_fingerprint(bob_home)
    used = re.compile(rf"invitation [0-9a-f]{{8}} was used by {re.escape(bob_fp)}, now on the")
    alice.wait_for_line(used)
    quit_cleanly(bob)

    # Later, without the invitation: the allowlist and known_hosts admit and trust as usual.
    bob = harness.joined_client("bob", server.port, home=bob_home)
    assert bob.find(ADMITTED) is None
    assert "New server" not in bob.output("stderr"), bob.describe()

    # Someone else with the same invitation: refused, and not admitted.
    carol = invited_client(harness, "carol", str(invitation), harness.root / "homes" / "carol")
    refused(carol, "this invitation was used already")

    start = alice.mark()
    alice.send("/invitations")
    alice.wait_for_line(notice("Invitations:"), start=start)
    alice.wait_for_line(
        re.compile(rf"made \d+s ago by alice .*: used \d+s ago by bob \({re.escape(bob_fp)}\)"),
        start=start,
    )
    assert invitation.secret not in "\n".join(alice.snapshot()[start:])
    assert invitation.secret not in server.output() + server.output("stderr")
    quit_cleanly(alice, bob)


def test_tlschat_invite_while_the_server_runs_and_the_line_mode_asks_nothing(
    harness: Harness,
) -> None:
    alice_home = harness.home("alice")
    server = allowlist_server(harness, harness.key_fingerprint(alice_home))
    text = cli_invitation(harness, server, "--expires", "1h")
    invitation = parse_invitation(text)
    assert invitation.fingerprint == server.fingerprint
    home = harness.root / "homes" / "lin"
    client = InvitedTerminalClient(harness, text, home)
    try:
        client.wait_for(r"\*\*\* You are lin in #general")
        client.wait_for(re.escape(ADMITTED))
        assert QUESTION not in client.text()
        assert "matches the invitation; remembering it" in client.text()
        assert client.quit() == 0
    finally:
        client.close()
    assert (home / "known_hosts").read_text().splitlines() == [
        f"127.0.0.1:{server.port} {server.fingerprint}"
    ]
    # The operator sees it made by the command line, and used.
    alice = harness.joined_client("alice", server.port, home=alice_home)
    alice.send("/invitations")
    alice.wait_for_line(re.compile(r"made \d+s ago by tlschat invite .*: used \d+s ago by lin "))
    quit_cleanly(alice)


def test_an_invitation_whose_key_is_not_the_servers_is_refused_by_the_client(
    harness: Harness,
) -> None:
    alice_home = harness.home("alice")
    server = allowlist_server(harness, harness.key_fingerprint(alice_home))
    genuine = parse_invitation(cli_invitation(harness, server))
    impostor = IdentityKey.generate("ed25519").fingerprint
    forged = Invitation(genuine.host, genuine.port, impostor, genuine.secret)
    home = harness.root / "homes" / "mallory"
    client = invited_client(harness, "mallory", str(forged), home)
    assert client.wait_exit() == UNTRUSTED_SERVER, client.describe()
    said = (
        f"Server key {server.fingerprint} does not match the fingerprint in the invitation "
        f"{impostor}; refusing to connect"
    )
    assert said in client.output("stderr"), client.describe()
    assert not (home / "known_hosts").exists()
    # Nothing was presented: the invitation is still open for the genuine string.
    bob = invited_client(harness, "bob", str(genuine), harness.root / "homes" / "bob")
    assert bob.wait_joined() == "bob"
    bob.wait_for_line(notice(ADMITTED))
    quit_cleanly(bob)
