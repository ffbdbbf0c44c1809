"""Operations on lines (PROTOCOL.md 21.1) in an end-to-end encrypted room and in private
messages: sealed like any line, applied the same way, and never readable by the server."""

from __future__ import annotations

import pytest

from tlschat.chat.lines import Line
from tlschat.protocol.identity import IdentityKey

from .e2e_net import Device, E2eNet
from .helpers import NOW, make_server

ALICE, BOB = 1, 2


@pytest.fixture
def net(ed_alice: IdentityKey) -> E2eNet:
    # Alice may /encrypt: an operator.
    return E2eNet(make_server(operators=frozenset({ed_alice.fingerprint})))


def _latest(device: Device, line_id: str) -> Line:
    """The newest version of the line ``line_id`` that ``device`` showed."""
    versions = [line for line in device.shown if line.id == line_id]
    assert versions, [line.render() for line in device.shown]
    return versions[-1]


def _own_id(device: Device, text: str) -> str:
    [line] = [line for line in device.shown if line.text == text and line.id]
    return line.id


def test_operations_in_an_encrypted_room(
    net: E2eNet, ed_alice: IdentityKey, ed_bob: IdentityKey
) -> None:
    alice, bob = Device(ed_alice, "alice"), Device(ed_bob, "bob")
    net.connect(ALICE, alice)
    net.connect(BOB, bob)
    net.type(ALICE, "/encrypt #general", NOW + 1)
    net.type(ALICE, "helo", NOW + 2)
    net.type(ALICE, "oops", NOW + 3)
    target, gone = _own_id(alice, "helo"), _own_id(alice, "oops")
    net.type(ALICE, "/edit " + target + " hello", NOW + 4)
    net.type(ALICE, "/delete " + gone, NOW + 5)
    net.type(BOB, f"/react {target} 👍", NOW + 6)
    net.type(BOB, f"/re {target} hi alice", NOW + 7)
    edited = _latest(bob, target)
    assert (edited.text, edited.edited, edited.encrypted, edited.verified) == (
        "hello",
        True,
        True,
        True,
    )
    assert _latest(bob, gone).deleted is True
    assert _latest(alice, target).reactions == (("👍", 1),)
    [reply] = [line for line in alice.shown if line.text == "hi alice"]
    assert (reply.quote, reply.encrypted) == ("alice: hello", True)
    # The server relayed and stored ciphertext only: no operation can be read there.
    for message in net.server.store.recent_messages("#general", 20):
        assert message.body == "" and message.encrypted


def test_operations_in_private_messages(
    net: E2eNet, ed_alice: IdentityKey, ed_bob: IdentityKey
) -> None:
    alice, bob = Device(ed_alice, "alice"), Device(ed_bob, "bob")
    net.connect(ALICE, alice)
    net.connect(BOB, bob)
    net.type(ALICE, "/msg bob the secret is 42", NOW + 1)
    target = _own_id(alice, "the secret is 42")
    net.type(ALICE, f"/edit {target} the secret is 43", NOW + 2)
    net.type(BOB, f"/react {target} 🤫", NOW + 3)
    line = _latest(bob, target)
    assert (line.kind, line.text, line.edited, line.reactions) == (
        "private",
        "the secret is 43",
        True,
        (("🤫", 1),),
    )
    assert _latest(alice, target).reactions == (("🤫", 1),)
    net.type(ALICE, f"/delete {target}", NOW + 4)
    assert _latest(bob, target).deleted is True
