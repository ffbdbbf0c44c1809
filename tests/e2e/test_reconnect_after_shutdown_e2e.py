"""Staying connected (issue 12): a clean shutdown or restart of the server (SIGTERM: a notice,
then close_notify) is followed by a reconnect, exactly as a crash is; a kick or a ban is final;
``--no-reconnect`` keeps the old ending (exit 0).
"""

from __future__ import annotations

import re
import signal

from .harness import CLOCK, Harness, stop

REFUSED_BY_SERVER = 3
# One line: what happened, and what the client does (issue 20); "." when it does nothing more.
CLOSED = "[*] The server closed the connection"
LOST = "[*] The server closed the connection; reconnecting "
RECONNECT_WAIT = 20.0  # the backoff (jittered, up to 1, 2, 4 s) while the server restarts


def said(nick: str, text: str) -> re.Pattern[str]:
    return re.compile(rf"^{CLOCK} ✓ <{re.escape(nick)}> {re.escape(text)}$")


def notice(text: str) -> re.Pattern[str]:
    return re.compile(rf"^{CLOCK} \*\*\* {re.escape(text)}$")


def test_clients_reconnect_after_the_server_is_stopped_cleanly_and_started_again(
    harness: Harness,
) -> None:
    data = harness.root / "data"
    server = harness.server(data)
    port = server.port
    alice = harness.joined_client("alice", port)
    bob = harness.joined_client("bob", port)
    carol = harness.joined_client("carol", port, extra=("--no-reconnect",))
    marks = {client.name: (client.mark(), client.mark("stderr")) for client in (alice, bob)}

    assert stop(server, signal.SIGTERM) == 0, server.describe()
    # --no-reconnect: the clean shutdown ends the client, as it always did.
    carol.wait_for_line(notice("server is shutting down"))
    assert carol.wait_exit() == 0, carol.describe()
    assert carol.find(CLOSED, stream="stderr"), carol.describe()
    assert carol.find("reconnecting", stream="stderr") is None, carol.describe()
    # The others were told, saw the clean close, and are reconnecting.
    for client in (alice, bob):
        out, err = marks[client.name]
        client.wait_for_line(notice("server is shutting down"), start=out)
        client.wait_for_line(CLOSED, stream="stderr", start=err)
        client.wait_for_line(LOST, stream="stderr", start=err)
        assert client.running, client.describe()

    # Typed while the server is down: queued, and sent once the client is back.
    alice.send("typed while the server was down 5e5e")

    restarted = harness.server(data, port=port, name="restarted")
    for client in (alice, bob):
        out, err = marks[client.name]
        client.wait_for_line(
            f"You are {client.name} in #general", start=out, timeout=RECONNECT_WAIT
        )
        trace = "\n".join(client.snapshot("stderr")[err:])
        assert f"Server key {restarted.fingerprint} matches known_hosts" in trace, trace

    bob.wait_for_line(said("alice", "typed while the server was down 5e5e"))
    alice.wait_for_line(re.compile(rf"^{CLOCK} sent <alice> typed while the server was down 5e5e$"))
    # A line sent after the reconnect reaches the other client, over the restarted server.
    alice.send("back after the restart 7c7c")
    bob.wait_for_line(said("alice", "back after the restart 7c7c"))
    bob.send("so am I 8d8d")
    alice.wait_for_line(said("bob", "so am I 8d8d"))
    for client in (alice, bob):
        client.close_stdin()
    for client in (alice, bob):
        assert client.wait_exit() == 0, client.describe()


def test_a_kicked_client_does_not_reconnect(harness: Harness) -> None:
    alice_home = harness.home("alice")
    server = harness.server(extra=("--operator", harness.key_fingerprint(alice_home)))
    alice = harness.joined_client("alice", server.port, home=alice_home)
    bob = harness.joined_client("bob", server.port)
    alice.wait_for_line(notice("bob joined #general"))
    start = server.mark()

    alice.send("/kick bob out")
    assert bob.wait_exit() == REFUSED_BY_SERVER, bob.describe()
    bob.wait_for_line("Disconnected by the server: kicked by alice: out")
    assert bob.find("reconnecting", stream="stderr") is None, bob.describe()
    alice.wait_for_line(notice("bob left #general (kicked by alice: out)"))
    assert server.find("[+] Client connected from", start=start) is None, server.describe()
    alice.close_stdin()
    assert alice.wait_exit() == 0, alice.describe()
