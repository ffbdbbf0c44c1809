"""End to end: the real server and real ``--plain`` clients as processes, talking over TCP.

Each test starts its own server on a free port of 127.0.0.1 (``--port 0``) with its own data
directory, and clients with their own homes, so the tests are independent of each other and of the
user running them.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import stat
from pathlib import Path

import pytest

from tlschat.protocol import IdentityKey

from .harness import CLOCK, EXIT_WAIT, HOST, Client, Harness, Server, json_event, stop

SERVER_TRACE = [
    "[TLS] Step 1: ClientHello received",
    "[TLS] Step 2: ServerHello + Certificate sent | Cipher: AES-GCM-256",
    "[TLS] Step 3: Shared secret derived via ECDHE",
    "[TLS] Step 4: Session key derived (HKDF)",
    "[TLS] Step 5: Client Finished verified ✅",
    "[TLS] Step 6: Server Finished sent ✅",
    "[TLS] ✅ Handshake complete — Secure channel established",
]
CLIENT_TRACE = [
    "[TLS] Step 1: ClientHello sent",
    "[TLS] Step 2: ServerHello received and verified ✅ | Cipher: AES-GCM-256",
    "[TLS] Step 3: Shared secret computed",
    "[TLS] Step 4: Session key derived (HKDF)",
    "[TLS] Step 5: Client Finished sent ✅",
    "[TLS] Step 6: Server Finished verified ✅",
    "[TLS] ✅ Handshake complete — Secure channel established",
]
CHANGED_KEY = "REMOTE HOST IDENTIFICATION HAS CHANGED"


def message_line(nick: str, text: str) -> re.Pattern[str]:
    """A whole plain-mode line: a verified message from ``nick`` with exactly ``text``."""
    return re.compile(rf"^{CLOCK} ✓ <{re.escape(nick)}> {re.escape(text)}$")


def notice_line(text: str) -> re.Pattern[str]:
    return re.compile(rf"^{CLOCK} \*\*\* {re.escape(text)}$")


def fingerprint_of(home: Path) -> str:
    return IdentityKey.load(home / "identity.pem").fingerprint


def peer_of(server: Server, fingerprint: str) -> str:
    """The "('127.0.0.1', port)" the server logged for the client with this identity."""
    line = server.wait_for_line(f"identity {fingerprint}")
    found = re.search(r"\[TLS\] Client (\('127\.0\.0\.1', \d+\)) identity", line)
    assert found is not None, line
    return found.group(1)


NOT_DELIVERED = 4


def quit_cleanly(client: Client, code: int = 0) -> None:
    """End the input; exit 0, or 4 when a line of the client's was refused."""
    client.close_stdin()
    assert client.wait_exit() == code, client.describe()


def assert_no_traceback(*processes: Server | Client) -> None:
    for process in processes:
        for stream in ("stdout", "stderr"):
            assert "Traceback" not in process.output(stream), process.describe()


# ----- 1. chatting -----


def test_three_clients_chat_join_and_leave(harness: Harness, server: Server) -> None:
    # alice has no identity yet: her client creates the default RSA key itself.
    alice_home = harness.home("alice", key_type=None)
    alice = harness.joined_client("alice", server.port, home=alice_home)
    assert alice.find(notice_line("You are alice in #general (nobody else is here)"))
    assert alice.find("[KEY] Created your identity key SHA256:", stream="stderr")
    assert IdentityKey.load(alice_home / "identity.pem").scheme.name == "rsa_pss_rsae_sha256"

    bob = harness.joined_client("bob", server.port, json=True)
    alice.wait_for_line(notice_line("bob joined #general"))
    assert bob.find(json_event(kind="joined", text="You are bob in #general with alice"))

    carol = harness.joined_client("carol", server.port)
    alice.wait_for_line(notice_line("carol joined #general"))
    bob.wait_for_line(json_event(kind="join", nick="carol", text="carol joined #general"))

    text = "hello from alice — ünïcode ✓ and <angle> brackets 42"
    alice.send(text)
    carol.wait_for_line(message_line("alice", text))
    delivered = json.loads(bob.wait_for_line(json_event(kind="message", text=text)))
    assert delivered["verified"] is True
    assert delivered["nick"] == "alice"
    assert delivered["room"] == "#general"
    assert delivered["fingerprint"] == fingerprint_of(alice_home)

    # Anything relayed back to alice would reach her before this later message from bob.
    barrier = "bob answers after seeing it"
    bob.send(barrier)
    alice.wait_for_line(message_line("bob", barrier))
    carol.wait_for_line(message_line("bob", barrier))
    # Alice sees her line once, as sent, never relayed back to her.
    assert alice.find(message_line("alice", text)) is None, alice.describe()
    assert alice.find(f"sent <alice> {text}") is not None, alice.describe()
    assert bob.find(message_line("bob", barrier)) is None, bob.describe()

    # End of input quits cleanly; everyone else is told.
    quit_cleanly(carol)
    alice.wait_for_line(notice_line("carol left #general (quit)"))
    bob.wait_for_line(json_event(kind="leave", nick="carol", text="carol left #general (quit)"))
    assert carol.find("[!]", stream="stderr") is None, carol.describe()

    # /quit does the same.
    bob.send("/quit")
    assert bob.wait_exit() == 0, bob.describe()
    alice.wait_for_line(notice_line("bob left #general (quit)"))
    quit_cleanly(alice)
    server.wait_for_line(lambda line: line.endswith("disconnected (quit)") and "[-]" in line)
    assert server.running
    assert_no_traceback(server, alice, bob, carol)


# ----- 2. the handshake trace -----


def test_handshake_trace_on_server_and_client(harness: Harness, server: Server) -> None:
    start = server.mark()
    home = harness.home("tracy")
    client = harness.joined_client("tracy", server.port, home=home)

    connected = server.wait_for_line(
        re.compile(r"^\[\+\] Client connected from \('127\.0\.0\.1', \d+\)$"), start=start
    )
    server.wait_for_line(f"identity {fingerprint_of(home)}", start=start)
    lines = server.snapshot()
    first = lines.index(connected, start)
    assert lines[first + 1 : first + 1 + len(SERVER_TRACE)] == SERVER_TRACE, server.describe()
    address = connected.removeprefix("[+] Client connected from ")
    assert lines[first + 1 + len(SERVER_TRACE)] == (
        f"[TLS] Client {address} identity {fingerprint_of(home)}"
    )

    client.wait_for_line("[TLS] Server ", stream="stderr")
    trace = client.snapshot("stderr")
    assert [line for line in trace if line.startswith("[TLS] Step") or "✅ Handshake" in line] == (
        CLIENT_TRACE
    ), client.describe()
    # The trust decision comes before the client reveals its identity (step 5).
    known = trace.index(
        f"[KNOWN_HOSTS] New server {HOST}:{server.port} with key fingerprint "
        f"{server.fingerprint}: accepted and recorded"
    )
    assert trace.index(CLIENT_TRACE[3]) < known < trace.index(CLIENT_TRACE[4])
    assert trace[-1] == f"[TLS] Server {server.fingerprint} | Cipher: AES-GCM-256"

    # --quiet drops the trace but not the chat.
    quiet = harness.joined_client("hush", server.port, extra=("--quiet",))
    client.wait_for_line(notice_line("hush joined #general"))
    assert not [line for line in quiet.snapshot("stderr") if line.startswith("[TLS]")]
    quit_cleanly(quiet)
    quit_cleanly(client)


# ----- 3. what a network observer sees -----


def test_observer_sees_no_plaintext(harness: Harness, server: Server) -> None:
    proxy = harness.proxy(server.port)
    alice_home = harness.home("zaphod7f3a")
    alice = harness.joined_client("zaphod7f3a", proxy.port, home=alice_home)
    bob = harness.joined_client("quuxbob9c1e", server.port)
    alice.wait_for_line(notice_line("quuxbob9c1e joined #general"))

    outgoing = "attack at dawn 7f3a"
    incoming = "meet zaphod7f3a at the bridge 5d2b"
    alice.send(outgoing)
    bob.wait_for_line(message_line("zaphod7f3a", outgoing))
    bob.send(incoming)
    alice.wait_for_line(message_line("quuxbob9c1e", incoming))
    quit_cleanly(alice)

    c2s, s2c = proxy.recorded("c2s"), proxy.recorded("s2c")
    assert len(c2s) > 500 and len(s2c) > 500, (len(c2s), len(s2c))
    secrets = [
        outgoing,
        incoming,
        "attack at dawn",
        "7f3a",
        "5d2b",
        "zaphod7f3a",
        "quuxbob9c1e",
        "#general",
        "You are",
        '"type"',
        '"body"',
        '"hello"',
        "tlschat",
    ]
    for secret in secrets:
        for direction, data in (("client->server", c2s), ("server->client", s2c)):
            assert secret.encode() not in data, (secret, direction)
    # Neither identity crosses the wire in the clear: only the hellos are unencrypted.
    alice_key = IdentityKey.load(alice_home / "identity.pem").spki_der
    server_key = IdentityKey.load(harness.root / "server" / "server_key.pem").spki_der
    assert alice_key not in c2s
    assert server_key not in s2c
    (connection,) = proxy.connections
    for records in connection.records.values():
        assert records[0][0] == 22  # ClientHello / ServerHello: plaintext handshake
        assert {record[0] for record in records[1:]} == {23}  # all else is encrypted


# ----- 4. tampering in transit -----


def test_corrupted_record_to_server_is_rejected_and_others_continue(
    harness: Harness, server: Server
) -> None:
    proxy = harness.proxy(server.port)
    alice = harness.joined_client("alice", proxy.port)
    bob = harness.joined_client("bob", server.port)
    carol = harness.joined_client("carol", server.port)
    alice.wait_for_line(notice_line("carol joined #general"))
    bob.wait_for_line(notice_line("carol joined #general"))

    start = server.mark()
    proxy.tamper_next("c2s")
    alice.send("this record is corrupted in transit 1a2b")

    server.wait_for_line(
        re.compile(r"\[!\] .*: bad_record_mac \(server alert raised\): record \d+ failed"),
        start=start,
    )
    server.wait_for_line(
        re.compile(r"\[-\] Client .* disconnected \(protocol error: bad_record_mac\)$"),
        start=start,
    )
    assert alice.wait_exit() != 0, alice.describe()
    assert alice.find("[!] Connection closed: bad_record_mac", stream="stderr"), alice.describe()
    assert proxy.tampered == {"c2s": 1, "s2c": 0}

    for other in (bob, carol):
        other.wait_for_line(notice_line("alice left #general (protocol error: bad_record_mac)"))
    bob.send("still here after the attack 3c4d")
    carol.wait_for_line(message_line("bob", "still here after the attack 3c4d"))
    carol.send("me too 5e6f")
    bob.wait_for_line(message_line("carol", "me too 5e6f"))
    for other in (bob, carol):
        assert other.find("corrupted in transit") is None
    assert server.running
    quit_cleanly(bob)
    quit_cleanly(carol)


def test_corrupted_record_to_client_is_rejected_by_the_client(
    harness: Harness, server: Server
) -> None:
    proxy = harness.proxy(server.port)
    alice_home = harness.home("alice")
    alice = harness.joined_client("alice", proxy.port, home=alice_home)
    bob = harness.joined_client("bob", server.port)
    alice.wait_for_line(notice_line("bob joined #general"))
    address = peer_of(server, fingerprint_of(alice_home))

    start = server.mark()
    proxy.tamper_next("s2c")
    bob.send("corrupted on its way to alice 7a7a")

    alice.wait_for_line(
        re.compile(
            r"^\[!\] Connection closed: bad_record_mac \(client alert raised\): "
            r"record \d+ failed authentication$"
        ),
        stream="stderr",
    )
    assert alice.wait_exit() != 0, alice.describe()
    assert alice.find("corrupted on its way") is None
    assert proxy.tampered == {"c2s": 0, "s2c": 1}
    server.wait_for_line(
        f"[-] Client {address} disconnected (protocol error: bad_record_mac)", start=start
    )
    bob.wait_for_line(notice_line("alice left #general (protocol error: bad_record_mac)"))
    assert server.running
    quit_cleanly(bob)


# ----- 5. a different server key: man in the middle -----


def test_changed_server_key_is_refused_and_pin_decides(harness: Harness) -> None:
    first_dir, second_dir = harness.root / "first", harness.root / "second"
    first = harness.server(first_dir, name="first")
    port = first.port
    home = harness.home("dave")
    known_hosts = home / "known_hosts"
    quit_cleanly(harness.joined_client("dave", port, home=home))
    assert known_hosts.read_text() == f"{HOST}:{port} {first.fingerprint}\n"
    assert stop(first) == 0

    # Another key on the same host:port, as a man in the middle would present.
    # --verbose: at INFO, a failed handshake is only counted in the block's summary.
    second = harness.server(second_dir, port=port, name="second", extra=("--verbose",))
    old, new = harness.fingerprint(first_dir), harness.fingerprint(second_dir)
    assert (old, new) == (first.fingerprint, second.fingerprint)
    assert old != new

    start = second.mark()
    refused = harness.client("dave", port, home=home)
    assert refused.wait_exit() == 2, refused.describe()
    warning = refused.output("stderr")
    assert CHANGED_KEY in warning
    assert old in warning and new in warning
    assert f"Offending key in {known_hosts}:1" in warning
    assert "Client Finished sent" not in warning
    assert refused.output("stdout") == ""
    assert known_hosts.read_text() == f"{HOST}:{port} {old}\n"
    # The client said no before revealing who it is.
    second.wait_for_line("bad_certificate", start=start)
    assert second.find(fingerprint_of(home)) is None

    wrong = harness.client("dave", port, home=home, pin=old)
    assert wrong.wait_exit() == 2, wrong.describe()
    assert wrong.find(
        f"Server key {new} does not match the pinned fingerprint {old}; refusing to connect.",
        stream="stderr",
    ), wrong.describe()
    assert wrong.output("stdout") == ""

    right = harness.joined_client("dave", port, home=home, pin=new)
    assert right.find(f"Server key matches the pinned fingerprint {new}", stream="stderr")
    assert right.find(CHANGED_KEY, stream="stderr") is None
    quit_cleanly(right)
    assert known_hosts.read_text() == f"{HOST}:{port} {old}\n"


def test_wrong_pin_refuses_a_new_server_without_recording_it(
    harness: Harness, server: Server
) -> None:
    home = harness.home("erin")
    wrong = harness.client("erin", server.port, home=home, pin="SHA256:" + "A" * 43)
    assert wrong.wait_exit() == 2, wrong.describe()
    assert wrong.find("does not match the pinned fingerprint", stream="stderr")
    assert not (home / "known_hosts").exists()


# ----- 6. restart with the same key -----


def test_restart_keeps_the_key_and_known_clients_reconnect(harness: Harness) -> None:
    data = harness.root / "data"
    first = harness.server(data, name="first")
    port, fingerprint = first.port, first.fingerprint
    assert first.find(f"[KEY] Created server key {data / 'server_key.pem'}")
    certificate = (data / "server_cert.der").read_bytes()

    home = harness.home("frank", key_type=None)  # the client makes its own RSA key
    client = harness.joined_client("frank", port, home=home)
    assert client.find("accepted and recorded", stream="stderr")
    quit_cleanly(client)
    assert (data / "server_key.pem").stat().st_mode & 0o777 == 0o600
    assert (home / "identity.pem").stat().st_mode & 0o777 == 0o600
    assert stop(first, signal.SIGTERM) == 0

    second = harness.server(data, port=port, name="second")
    assert second.port == port
    assert second.find(f"[KEY] Loaded server key {data / 'server_key.pem'}")
    assert second.fingerprint == fingerprint == harness.fingerprint(data)
    assert (data / "server_cert.der").read_bytes() == certificate
    assert (data / "server_key.pem").stat().st_mode & 0o777 == 0o600

    again = harness.joined_client("frank", port, home=home)
    errors = again.output("stderr")
    assert f"[KNOWN_HOSTS] Server key {fingerprint} matches known_hosts" in errors
    for unwanted in ("WARNING", "New server", "[KEY] Created", "[!]"):
        assert unwanted not in errors, again.describe()
    quit_cleanly(again)
    assert (home / "known_hosts").read_text() == f"{HOST}:{port} {fingerprint}\n"


# ----- 7. shutting down -----


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_server_shutdown_tells_clients(harness: Harness, server: Server, signum: int) -> None:
    alice = harness.joined_client("alice", server.port)
    bob = harness.joined_client("bob", server.port, json=True, extra=("--no-reconnect",))
    alice.wait_for_line(notice_line("bob joined #general"))

    assert stop(server, signum) == 0, server.describe()
    assert server.find("[SHUTDOWN] Server stopped")
    assert server.output("stderr") == ""
    alice.wait_for_line(notice_line("server is shutting down"))
    bob.wait_for_line(json_event(kind="notice", text="server is shutting down"))
    # A clean shutdown may be a restart: alice waits for the server to come back (as after a
    # crash); bob, with --no-reconnect, ends.
    alice.wait_for_line("[*] The server closed the connection; reconnecting ", stream="stderr")
    assert bob.wait_exit() == 0, bob.describe()
    assert bob.find("[*] The server closed the connection.", stream="stderr"), bob.describe()
    assert alice.running, alice.describe()
    assert_no_traceback(server, alice, bob)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_client_interrupt_quits_cleanly(harness: Harness, server: Server, signum: int) -> None:
    alice_home = harness.home("alice")
    alice = harness.joined_client("alice", server.port, home=alice_home)
    bob = harness.joined_client("bob", server.port)
    alice.wait_for_line(notice_line("bob joined #general"))
    address = peer_of(server, fingerprint_of(alice_home))

    assert stop(alice, signum) == 0, alice.describe()
    server.wait_for_line(f"[-] Client {address} disconnected (quit)")
    bob.wait_for_line(notice_line("alice left #general (quit)"))
    assert alice.find("[!]", stream="stderr") is None, alice.describe()
    assert_no_traceback(server, alice, bob)
    quit_cleanly(bob)


# ----- 8. the body limit -----


def test_overlong_message_is_refused_and_client_stays(harness: Harness, server: Server) -> None:
    alice = harness.joined_client("alice", server.port)
    bob = harness.joined_client("bob", server.port)
    alice.wait_for_line(notice_line("bob joined #general"))

    start = alice.mark()
    alice.send("x" * 5000)
    error = alice.wait_for_line(re.compile(rf"^{CLOCK} !!! "), start=start)
    assert "longer than 4096 bytes" in error, error

    # The limit counts UTF-8 bytes: 2049 two-byte characters are too many, 2048 just fit.
    start = alice.mark()
    alice.send("é" * 2049)
    assert "longer than" in alice.wait_for_line("!!!", start=start)
    alice.send("é" * 2048)
    bob.wait_for_line(message_line("alice", "é" * 2048))

    alice.send("a normal message after the long one 8e8e")
    bob.wait_for_line(message_line("alice", "a normal message after the long one 8e8e"))
    assert bob.find("x" * 100) is None
    assert bob.find("é" * 2049) is None
    assert alice.running
    quit_cleanly(alice, NOT_DELIVERED)
    quit_cleanly(bob)


@pytest.mark.parametrize("errors", ["strict", "surrogateescape"])
def test_undecodable_input_line_is_refused_and_client_stays(
    harness: Harness, server: Server, errors: str
) -> None:
    # A bot may pipe bytes that are not UTF-8; however stdin decodes them, the client must say
    # so and go on with the next line rather than hang or quit silently.
    alice = harness.joined_client("alice", server.port, env={"PYTHONIOENCODING": f"utf-8:{errors}"})
    bob = harness.joined_client("bob", server.port)
    alice.wait_for_line(notice_line("bob joined #general"))

    start = alice.mark()
    alice.send_bytes(b"caf\xe9 in latin-1\n")
    assert "UTF-8" in alice.wait_for_line(re.compile(rf"^{CLOCK} !!! "), start=start)
    alice.send("valid again after the bad line 4d4d")
    bob.wait_for_line(message_line("alice", "valid again after the bad line 4d4d"))
    assert bob.find("latin-1") is None
    quit_cleanly(alice)
    bob.wait_for_line(notice_line("alice left #general (quit)"))
    quit_cleanly(bob)


def test_line_too_big_for_one_message_is_refused_and_client_stays(
    harness: Harness, server: Server
) -> None:
    alice = harness.joined_client("alice", server.port)
    bob = harness.joined_client("bob", server.port)
    alice.wait_for_line(notice_line("bob joined #general"))

    for size in (100_000, 2_000_000):  # past the server's frame limit; past the record layer's
        start = alice.mark()
        alice.send("z" * size)
        alice.wait_for_line(
            re.compile(rf"^{CLOCK} !!! not sent \(longer than 4096 bytes"), start=start
        )
        assert alice.running
    alice.send("fine after the huge lines 6b6b")
    bob.wait_for_line(message_line("alice", "fine after the huge lines 6b6b"))
    assert bob.find("zzzz") is None
    quit_cleanly(alice, NOT_DELIVERED)
    quit_cleanly(bob)


def test_server_shutdown_with_an_unresponsive_peer(harness: Harness) -> None:
    # A peer that never answers close_notify (stuck, or a user still deciding whether to trust
    # the fingerprint) costs the server its grace period, not a clean exit. --verbose: the lines
    # of a connection whose handshake never completes are logged only then.
    server = harness.server(extra=("--verbose",))
    alice = harness.joined_client("alice", server.port, extra=("--no-reconnect",))
    start = server.mark()
    with socket.create_connection((HOST, server.port), timeout=EXIT_WAIT) as idle:
        connected = server.wait_for_line("[+] Client connected from", start=start)
        address = connected.removeprefix("[+] Client connected from ")
        assert stop(server, signal.SIGTERM) == 0, server.describe()
        assert idle.recv(100)  # close_notify was sent to it too
    output = server.output("stdout")
    assert "Traceback" not in output and "Exception" not in output, server.describe()
    assert server.output("stderr") == ""
    gone = server.wait_for_line(f"[-] Client {address} disconnected")
    lines = server.snapshot()
    assert lines.index(gone) < lines.index("[SHUTDOWN] Server stopped"), server.describe()
    alice.wait_for_line(notice_line("server is shutting down"))
    assert alice.wait_exit() == 0, alice.describe()


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_chat_on_either_event_loop(harness: Harness, loop: str) -> None:
    server = harness.server(extra=("--event-loop", loop))
    server.wait_for_line(f"[LOOP] Event loop: {loop}")
    alice = harness.joined_client("alice", server.port)
    bob = harness.joined_client("bob", server.port)
    alice.send("hello over " + loop)
    bob.wait_for_line(message_line("alice", "hello over " + loop))
    quit_cleanly(alice)
    quit_cleanly(bob)
    assert_no_traceback(server, alice, bob)


# ----- 8. file modes -----


def test_server_files_are_private_and_exposed_keys_are_refused(harness: Harness) -> None:
    data = harness.root / "data"
    serve = ("server", "--host", HOST, "--port", "0", "--data-dir", str(data))
    # The umask most systems give: left to it, the files would be 0644 and the directory 0755.
    argv = ["sh", "-c", 'umask 022; exec "$@"', "sh", *harness.command(*serve)]
    server = Server("server", argv, harness.env, harness.root)
    harness.processes.append(server)
    alice = harness.joined_client("alice", server.port)
    alice.send("for the members of #general only")
    alice.wait_for_line("for the members of #general only")
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    for name in ("chat.db", "chat.db-wal", "chat.db-shm", "server_key.pem", "server_cert.der"):
        assert stat.S_IMODE((data / name).stat().st_mode) == 0o600, name
    quit_cleanly(alice)
    assert stop(server) == 0, server.describe()
    assert stat.S_IMODE((data / "chat.db").stat().st_mode) == 0o600

    # A key others can read: the server says why and how to fix it, and does not start.
    key = data / "server_key.pem"
    os.chmod(key, 0o644)
    refused = harness.start("refused", *serve)
    assert refused.wait_exit() == 1, refused.describe()
    assert refused.output("stderr") == (
        f"[!] Permissions 0644 for '{key}' are too open. It is required that your private key"
        f" files are NOT accessible by others. Run: chmod 600 {key}"
    )
    assert "LISTENING" not in refused.output("stdout")

    # Fixed as told, with a data directory left open: it is tightened, and the log says so.
    os.chmod(key, 0o600)
    os.chmod(data, 0o755)
    again = harness.server(data, name="again")
    assert again.find(f"[FILES] {data} was mode 0755, open to other users: now 0700")
    assert stat.S_IMODE(data.stat().st_mode) == 0o700

    # A client identity others can read is refused the same way, before connecting.
    home = harness.home("bob")
    os.chmod(home / "identity.pem", 0o640)
    bob = harness.client("bob", again.port, home=home)
    assert bob.wait_exit() == 1, bob.describe()
    assert f"[!] Permissions 0640 for '{home / 'identity.pem'}' are too open." in bob.output(
        "stderr"
    )
    assert again.find("Client connected") is None
    assert_no_traceback(server, refused, again, bob)
