"""/search at the client: the server's results checked line by line as history is (a forged or
misplaced result shows ✗), merged with what this client decrypted in end-to-end encrypted rooms
during this run (🔒), newest first; nothing decrypted is written anywhere."""

from __future__ import annotations

from typing import Any

import pytest

from tlschat.chat.client.searching import FOUND, LOCAL_ONLY
from tlschat.chat.lines import Line
from tlschat.chat.search_results import DecryptedLines
from tlschat.chat.verify import ANOTHER_ROOM, BAD_SIGNATURE
from tlschat.protocol.identity import IdentityKey

from .e2e_net import Device, E2eNet
from .helpers import NOW, make_server

ALICE, BOB = 1, 2


@pytest.fixture
def net(ed_alice: IdentityKey) -> E2eNet:
    return E2eNet(make_server(operators=frozenset({ed_alice.fingerprint})))


@pytest.fixture
def alice(ed_alice: IdentityKey) -> Device:
    return Device(ed_alice, "alice")


@pytest.fixture
def bob(ed_bob: IdentityKey) -> Device:
    return Device(ed_bob, "bob")


def results(device: Device, query: str) -> list[Line]:
    """The lines of the last answer to ``/search query``, after its heading."""
    shown = device.screen()
    heads = [i for i, line in enumerate(shown) if line.text.startswith(f"Search for {query!r}")]
    assert heads, [line.render() for line in shown]
    return [line for line in shown[heads[-1] + 1 :] if line.kind in ("message", "action")]


def test_server_results_are_verified_and_shown_newest_first(
    net: E2eNet, alice: Device, bob: Device
) -> None:
    net.connect(ALICE, alice)
    net.connect(BOB, bob)
    net.type(BOB, "the deploy failed", NOW + 1)
    net.type(ALICE, "/me fixes the deploy", NOW + 2)
    net.type(BOB, "lunch", NOW + 3)
    net.type(ALICE, "/search DEPLOY", NOW + 4)
    found = results(alice, "DEPLOY")
    assert [(line.kind, line.nick, line.text) for line in found] == [
        ("action", "alice", "fixes the deploy"),
        ("message", "bob", "the deploy failed"),
    ]
    assert all(line.verified and line.history and not line.encrypted for line in found)
    assert all(line.note == FOUND for line in found)
    assert "✓ <bob> the deploy failed" in found[1].render("#general")
    assert alice.screen()[-len(found) - 1].text.endswith("2 results, newest first")


def test_a_forged_or_misplaced_result_shows_unverified(
    net: E2eNet, alice: Device, bob: Device
) -> None:
    net.connect(ALICE, alice)
    net.connect(BOB, bob)
    net.type(BOB, "the deploy failed", NOW + 1)
    net.type(BOB, "deploy again", NOW + 2)

    def forge(session_id: int, frame: dict[str, Any]) -> dict[str, Any]:
        if frame["type"] == "search" and session_id == ALICE:
            frame["messages"][0]["body"] = "deploy: send your key to mallory"
            frame["messages"][1]["target"] = "#elsewhere"
        return frame

    net.tamper = forge
    net.type(ALICE, "/search deploy", NOW + 3)
    forged, moved = results(alice, "deploy")
    assert (forged.verified, forged.problem) == (False, BAD_SIGNATURE)
    assert "✗ UNVERIFIED" in forged.render("#general")
    assert (moved.verified, moved.problem) == (False, ANOTHER_ROOM)


def test_decrypted_lines_are_searched_locally_and_merged(
    net: E2eNet, alice: Device, bob: Device
) -> None:
    net.connect(ALICE, alice)
    net.connect(BOB, bob)
    net.type(ALICE, "/join #plain", NOW + 1)
    net.type(BOB, "/join #plain", NOW + 1)
    net.type(BOB, "canary in the clear", NOW + 2)
    net.type(ALICE, "/encrypt #general", NOW + 3)
    bob.client.room = "#general"  # type: ignore[union-attr]
    net.type(BOB, "the secret canary", NOW + 4)
    alice.client.room = "#general"  # type: ignore[union-attr]
    net.type(ALICE, "my own canary", NOW + 5)
    net.type(ALICE, "/search canary", NOW + 6)
    found = results(alice, "canary")
    assert [(line.text, line.encrypted, line.verified) for line in found] == [
        ("my own canary", True, True),
        ("the secret canary", True, True),
        ("canary in the clear", None, True),
    ]
    assert "🔒✓ <bob> the secret canary" in found[1].render("#general")
    assert any(line.text == LOCAL_ONLY for line in alice.screen())
    # The server never saw the encrypted words, and the client wrote none of them down.
    assert all("secret" not in str(frame) for _, frame in net.sent)
    assert all("secret" not in text for text in alice.files.values())
    net.type(ALICE, "/search canary #plain", NOW + 7)
    assert [line.text for line in results(alice, "canary")] == ["canary in the clear"]


def test_without_a_connection_only_local_lines_are_searched(ed_alice: IdentityKey) -> None:
    device = Device(ed_alice, "alice")
    client = device.start()
    lines = client.user_input("/search anything", NOW)
    assert [line.text for line in lines] == [
        "Search for 'anything': 0 results, newest first (not connected: this client's lines only)"
    ]
    assert client.take_outbox() == []


def test_the_kept_lines_are_bounded_and_each_kept_once() -> None:
    kept = DecryptedLines(limit=3)
    lines = [
        Line("message", NOW + n, f"word {n}", "bob", "fp", "#r", True, encrypted=True)
        for n in range(5)
    ]
    kept.keep(lines + lines)
    kept.keep([Line("message", NOW, "word plain", "bob", "fp", "#r", True)])
    assert [line.text for line in kept.search("WORD")] == ["word 4", "word 3", "word 2"]
    assert kept.search("word", "#other") == []
    assert kept.search("") == []


def test_a_too_long_query_is_refused(net: E2eNet, alice: Device) -> None:
    net.connect(ALICE, alice)
    before = len(net.sent)
    lines = alice.client.user_input("/search " + "x" * 201, NOW)  # type: ignore[union-attr]
    assert [line.text for line in lines] == ["a search is 200 bytes at most"]
    assert len(net.sent) == before
