"""Richer messages with real processes: alice (line mode) edits, deletes, reacts, replies and
sends a multi-line message; bob's --json output shows each result on its line, and a later
client's history replays the operations after their targets."""

from __future__ import annotations

import json
from typing import Any

from .harness import Client, Harness, Server, json_event


def _event(client: Client, start: int = 0, **fields: Any) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(client.wait_for_line(json_event(**fields), start=start))
    return found


def test_edit_delete_react_reply_and_multi_line(harness: Harness, server: Server) -> None:
    port = server.port
    alice = harness.joined_client("alice", port)
    bob = harness.client("bob", port, json=True)
    _event(bob, kind="joined")
    alice.wait_for_line("bob joined #general")

    alice.send("first draft")
    draft = _event(bob, kind="message", text="first draft")
    # "last" is the last of alice's lines her client knows delivered: wait for its "sent".
    alice.wait_for_line("sent <alice> first draft")
    assert draft["id"].startswith(draft["fingerprint"] + ":"), draft
    mark = bob.mark()
    alice.send("/edit last final text")
    edited = _event(bob, mark, id=draft["id"], text="final text")
    assert edited["edited"] is True and edited["verified"] is True, edited

    alice.send("to be taken back")
    gone = _event(bob, kind="message", text="to be taken back")
    alice.wait_for_line("sent <alice> to be taken back")
    mark = bob.mark()
    alice.send("/delete last")
    deleted = _event(bob, mark, id=gone["id"], deleted=True)
    assert "text" not in deleted, deleted

    bob.send("ship it?")
    alice.wait_for_line("<bob> ship it?")
    question = _event(bob, kind="message", text="ship it?", delivery="delivered")
    mark = bob.mark()
    alice.send("/react last 👍")
    reacted = _event(bob, mark, id=question["id"], reactions=[["👍", 1]])
    assert reacted["text"] == "ship it?", reacted

    # In line mode a typed \n is a newline: one message, two lines.
    alice.send("/re last sure\\nwith two lines")
    reply = _event(bob, kind="message", text="sure\nwith two lines")
    assert reply["reply_to"] == question["id"] and reply["quote"] == "bob: ship it?", reply
    shown = alice.wait_for_line("sure ↵ with two lines")
    assert "(↪ bob: ship it?)" in shown, shown

    # A client that comes later sees the same, from the history.
    carol = harness.client("carol", port, json=True)
    _event(carol, kind="notice", text="Last 7 messages of #general:")
    assert _event(carol, id=draft["id"], text="final text")["edited"] is True
    assert _event(carol, id=gone["id"], deleted=True)["history"] is True
    _event(carol, id=question["id"], reactions=[["👍", 1]])
    _event(carol, kind="message", text="sure\nwith two lines", quote="bob: ship it?")
    for client in (alice, bob, carol):
        client.send("/quit")
        assert client.wait_exit() == 0, client.describe()
