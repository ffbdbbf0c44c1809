"""What went wrong with a connection, in a chat user's words (issue 20, point 4); the jargon
only as detail (shown with -v)."""

from __future__ import annotations

import errno
import socket

import pytest

from tlschat.client.trouble import (
    Trouble,
    cannot_reach,
    cannot_resolve,
    closed_by_server,
    closed_while_connecting,
    final_line,
    lost_while_chatting,
    of_sweep,
    retry_line,
    server_full,
)
from tlschat.protocol.alerts import AlertDescription, ProtocolError

REFUSED = ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 8443)")
TRUNCATED = ProtocolError(AlertDescription.truncated, "connection ended without close_notify")


def test_nothing_listening() -> None:
    trouble = cannot_reach("127.0.0.1:8443", [REFUSED])
    assert trouble == Trouble(
        "Can't reach 127.0.0.1:8443 (nothing is listening there)",
        "[Errno 111] Connect call failed ('127.0.0.1', 8443)",
    )


@pytest.mark.parametrize(
    ("error", "why"),
    [
        (TimeoutError(), "no answer"),
        (OSError(errno.ETIMEDOUT, "Connection timed out"), "no answer"),
        (OSError(errno.EHOSTUNREACH, "No route to host"), "no route to it"),
        (
            OSError(errno.ENETUNREACH, "Network is unreachable"),
            "no route to it: is the network down?",
        ),
        (OSError(errno.ECONNRESET, "Connection reset by peer"), "the connection was reset"),
        (OSError(errno.EACCES, "Permission denied"), "permission denied"),
    ],
)
def test_each_failure_in_plain_words(error: OSError, why: str) -> None:
    assert (
        cannot_reach("chat.example:8443", [error]).words == f"Can't reach chat.example:8443 ({why})"
    )


def test_the_addresses_of_one_name_say_each_reason_once() -> None:
    other = ConnectionRefusedError(111, "Connect call failed ('192.0.2.2', 8443)")
    trouble = cannot_reach("chat.example:8443", [REFUSED, other])
    assert trouble.words == "Can't reach chat.example:8443 (nothing is listening there)"
    assert "192.0.2.2" in trouble.detail and "127.0.0.1" in trouble.detail


@pytest.mark.parametrize(
    ("code", "why"),
    [(socket.EAI_NONAME, "no such name"), (socket.EAI_AGAIN, "the name could not be looked up")],
)
def test_a_name_that_does_not_resolve(code: int, why: str) -> None:
    error = socket.gaierror(code, "Name or service not known")
    trouble = cannot_resolve("gone.example:8443", "gone.example", error)
    assert trouble.words.startswith(
        f"Can't find the server gone.example for gone.example:8443 ({why}"
    )


def test_the_servers_own_endings() -> None:
    assert lost_while_chatting(TRUNCATED) == Trouble(
        "The server closed the connection unexpectedly",
        "truncated (alert raised): connection ended without close_notify",
    )
    assert lost_while_chatting(ConnectionResetError(104, "Connection reset by peer")).words == (
        "The connection to the server broke (the connection was reset)"
    )
    assert closed_by_server() == Trouble(
        "The server closed the connection", "close_notify received", clean=True
    )
    assert closed_while_connecting("127.0.0.1:8443", TRUNCATED).words == (
        "The server at 127.0.0.1:8443 closed the connection while connecting"
    )
    # The client's own stand-in for an end of stream carries no errno: not a "broken" line.
    assert closed_while_connecting("h:1", ConnectionError("the server closed")).words == (
        "The server at h:1 closed the connection while connecting"
    )
    assert closed_while_connecting("h:1", BrokenPipeError(errno.EPIPE, "Broken pipe")).words == (
        "The connection to h:1 broke while connecting (the connection was cut)"
    )
    busy = ProtocolError(AlertDescription.server_busy, "server full", received=True)
    assert server_full("h:1", busy).words == "The server at h:1 is full (too many connections)"


def test_no_jargon_in_the_words() -> None:
    troubles = [
        cannot_reach("127.0.0.1:8443", [REFUSED]),
        lost_while_chatting(TRUNCATED),
        closed_while_connecting("127.0.0.1:8443", TRUNCATED),
        closed_by_server(),
    ]
    for trouble in troubles:
        for jargon in ("Errno", "close_notify", "alert", "truncated", "Connect call"):
            assert jargon not in trouble.words, trouble


def test_one_attempt_over_several_servers() -> None:
    one = cannot_reach("a:1", [REFUSED])
    two = lost_while_chatting(TRUNCATED)
    assert of_sweep([]) is None
    assert of_sweep([one]) == one
    both = of_sweep([one, two])
    assert both is not None
    assert both.words == f"No server answered: {one.words}; {two.words}"
    assert both.detail == f"{one.detail}; {two.detail}"


def test_what_the_client_does_next() -> None:
    lost = lost_while_chatting(TRUNCATED)
    assert retry_line(lost, 2.04, 1, after_loss=True) == (
        "[*] The server closed the connection unexpectedly; reconnecting in 2.0 s…"
    )
    unreachable = cannot_reach("127.0.0.1:8443", [REFUSED])
    assert retry_line(unreachable, 4.0, 3, after_loss=False) == (
        "[*] Can't reach 127.0.0.1:8443 (nothing is listening there); retrying in 4.0 s "
        "(attempt 3)…"
    )
    assert final_line(lost) == "[!] The server closed the connection unexpectedly."
    assert final_line(closed_by_server()) == "[*] The server closed the connection."
