"""Edits, deletions, reactions and replies (PROTOCOL.md 21.1), between real ChatClients through
a real ChatServer: live, in history, and refused when they are not the author's."""

from __future__ import annotations

import pytest

from tlschat.chat.client.operating import REFUSED_OPERATION
from tlschat.chat.client.receiving import ChatClient
from tlschat.chat.lines import Line
from tlschat.chat.message_book import NO_QUOTE, Applied, MessageBook, conversation
from tlschat.chat.operations import Delete, React, Reply, line_id
from tlschat.protocol.identity import IdentityKey

from .helpers import ALICE, BOB, NOW, Net, client_on, make_server

CAROL = 3


@pytest.fixture
def net(ed_alice: IdentityKey, ed_bob: IdentityKey) -> Net:
    net = Net(make_server())
    net.add(ALICE, client_on(ed_alice, "alice"))
    net.add(BOB, client_on(ed_bob, "bob"))
    return net


class Talk:
    """Typing, one second apart, so that pacing never holds a line back."""

    def __init__(self, net: Net) -> None:
        self.net, self.now = net, NOW

    def type(self, session: int, text: str) -> tuple[list[Line], dict[int, list[Line]]]:
        self.now += 1
        own, shown = self.net.type(session, text, self.now)
        return own, shown


def _delivered_id(shown: dict[int, list[Line]], session: int) -> str:
    [line] = [line for line in shown[session] if line.delivery == "delivered"]
    return line.id


def test_every_line_has_its_signed_id(net: Net, ed_alice: IdentityKey) -> None:
    talk = Talk(net)
    _, shown = talk.type(ALICE, "hello")
    own_id = _delivered_id(shown, ALICE)
    [received] = shown[BOB]
    assert received.id == own_id
    assert own_id.startswith(ed_alice.fingerprint + ":")
    assert net.clients[BOB].book.get(own_id) == received


def test_own_edit_shows_the_new_text_marked_edited(net: Net) -> None:
    talk = Talk(net)
    _, shown = talk.type(ALICE, "helo")
    target = _delivered_id(shown, ALICE)
    own, shown = talk.type(ALICE, "/edit last hello")
    assert [(line.text, line.delivery) for line in own] == [("(edit) hello", "pending")]
    [edited] = shown[BOB]
    assert (edited.id, edited.text, edited.edited) == (target, "hello", True)
    assert edited.render("#general").endswith("<alice> hello (edited)")
    # The author's own client shows its line edited too (same ref: it replaces the line).
    mine = [line for line in shown[ALICE] if line.id == target]
    assert [(line.text, line.edited) for line in mine] == [("hello", True)]
    assert mine[0].ref != 0


def test_edit_by_counter_and_without_id(net: Net) -> None:
    talk = Talk(net)
    _, shown = talk.type(ALICE, "one")
    first = _delivered_id(shown, ALICE)
    talk.type(ALICE, "two")
    _, shown = talk.type(ALICE, f"/edit {first.rpartition(':')[2]} uno")
    assert [(line.id, line.text) for line in shown[BOB]] == [(first, "uno")]
    _, shown = talk.type(ALICE, "/edit dos")  # no id: the last line
    assert [line.text for line in shown[BOB]] == ["dos"]
    # A counter that names no line of hers is an error, not text for the last line.
    own, shown = talk.type(ALICE, "/edit 999 tres")
    assert own[0].kind == "error" and "no such line here" in own[0].text
    assert shown.get(BOB, []) == []
    # Digits that are not ASCII are no counter: text for the last line.
    _, shown = talk.type(ALICE, "/edit ²³ tres")
    assert [line.text for line in shown[BOB]] == ["²³ tres"]


def test_a_foreign_edit_or_delete_is_refused_and_changes_nothing(
    net: Net, ed_alice: IdentityKey
) -> None:
    talk = Talk(net)
    _, shown = talk.type(BOB, "bob's words")
    target = _delivered_id(shown, BOB)
    # Alice's client refuses to name bob's line for an edit (it is not hers)...
    own, _ = talk.type(ALICE, f"/edit {target} alice's words")
    assert own[0].kind == "error" and "no such line" in own[0].text
    # ...and a forged operation line typed raw (//) is refused by every client that gets it.
    _, shown = talk.type(ALICE, f"//edit {target} alice's words")
    [refused] = shown[BOB]
    assert refused.kind == REFUSED_OPERATION
    assert refused.text == "alice's edit was refused: only its author can change a line"
    _, shown = talk.type(ALICE, f"//delete {target}")
    assert [line.kind for line in shown[BOB]] == [REFUSED_OPERATION]
    for client in net.clients.values():
        kept = client.book.get(target)
        assert kept is not None
        assert (kept.text, kept.edited, kept.deleted) == ("bob's words", None, None)


def test_delete_and_history_replays_operations_in_order(net: Net, ed_carol: IdentityKey) -> None:
    talk = Talk(net)
    _, shown = talk.type(ALICE, "secret")
    gone = _delivered_id(shown, ALICE)
    _, shown = talk.type(ALICE, "typo")
    fixed = _delivered_id(shown, ALICE)
    talk.type(ALICE, f"/edit {fixed} fixed")
    _, shown = talk.type(ALICE, f"/delete {gone}")
    [deleted] = shown[BOB]
    assert (deleted.id, deleted.deleted, deleted.text) == (gone, True, "")
    assert deleted.render("#general").endswith("<alice> message deleted")
    # A client joining later replays the history: operations after their targets.
    joined = net.add(CAROL, client_on(ed_carol, "carol"), talk.now)[CAROL]
    messages = [line for line in joined if line.id]
    shown_by_id = {line.id: line for line in messages}
    assert shown_by_id[gone].deleted is True
    assert (shown_by_id[fixed].text, shown_by_id[fixed].edited) == ("fixed", True)
    carol = net.clients[CAROL]
    kept = carol.book.get(gone)
    assert kept is not None and kept.deleted is True
    # A deleted line can be neither edited nor deleted again.
    _, shown = talk.type(ALICE, f"//edit {gone} back")
    assert [line.kind for line in shown[BOB]] == [REFUSED_OPERATION]


def test_reactions_are_aggregated_on_their_line(
    net: Net, ed_carol: IdentityKey, ed_bob: IdentityKey
) -> None:
    net.add(CAROL, client_on(ed_carol, "carol"))
    talk = Talk(net)
    _, shown = talk.type(ALICE, "ship it?")
    target = _delivered_id(shown, ALICE)
    _, shown = talk.type(BOB, f"/react {target} 👍")
    [first] = shown[CAROL]
    assert (first.id, first.reactions) == (target, (("👍", 1),))
    talk.type(CAROL, "/react last 👍")
    _, shown = talk.type(BOB, f"/react {target} 👍")  # bob again: counted once
    _, shown = talk.type(CAROL, f"/react {target} 🎉")
    [line] = shown[ALICE]
    assert line.reactions == (("👍", 2), ("🎉", 1))
    assert line.render("#general").endswith("<alice> ship it? [👍 2 🎉 1]")
    own, _ = talk.type(BOB, f"/react {target} not-an-emoji-but-too-long")
    assert own[0].kind == "error"


def test_a_reply_quotes_what_it_answers(net: Net) -> None:
    talk = Talk(net)
    long = "a question that goes on and on, far longer than any quote should be, really"
    _, shown = talk.type(BOB, long)
    target = _delivered_id(shown, BOB)
    own, shown = talk.type(ALICE, f"/re {target} the answer")
    assert own[0].quote == "bob: " + long[:60] + "…"
    [reply] = shown[BOB]
    assert (reply.text, reply.reply_to, reply.quote) == ("the answer", target, own[0].quote)
    assert reply.render("#general").endswith(f"<alice> (↪ bob: {long[:60]}…) the answer")
    # The reply is a line of its own, kept by id: it can be reacted to and replied to.
    _, shown = talk.type(BOB, "/re last thanks")
    assert shown[ALICE][0].quote == "alice: the answer"


def test_operations_in_an_unknown_line_are_refused(net: Net, ed_bob: IdentityKey) -> None:
    talk = Talk(net)
    unknown = line_id(ed_bob.fingerprint, 12345)
    _, shown = talk.type(BOB, f"//react {unknown} 👍")
    [refused] = shown[ALICE]
    assert refused.kind == REFUSED_OPERATION and "unknown" in refused.text


def test_the_book_is_bounded(ed_alice: IdentityKey) -> None:
    client = ChatClient(ed_alice)
    client.book.limit = 3
    for counter in range(5):
        line = Line("message", NOW, "x", "a", room="#r", id=line_id(ed_alice.fingerprint, counter))
        client.book.add(line, "#r")
    assert len(client.book) == 3
    assert client.book.get(line_id(ed_alice.fingerprint, 0)) is None


def test_a_reply_quotes_only_its_own_conversation_and_a_deleted_line_takes_nothing(
    ed_alice: IdentityKey, ed_bob: IdentityKey
) -> None:
    book = MessageBook()
    secret = Line("private", NOW, "psst", "bob", id=line_id(ed_bob.fingerprint, 1))
    private = conversation(ed_bob.fingerprint, "@" + ed_alice.fingerprint)
    book.add(secret, private)
    assert private == conversation(ed_alice.fingerprint, "@" + ed_bob.fingerprint)
    said = Line("message", NOW, "", "alice", room="#general")
    applied = book.apply(ed_alice.fingerprint, "#general", Reply(secret.id, "yes"), said)
    assert applied.line is not None and applied.line.quote == NO_QUOTE
    applied = book.apply(ed_alice.fingerprint, private, Reply(secret.id, "yes"), said)
    assert applied.line is not None and applied.line.quote == "bob: psst"
    assert book.apply(ed_bob.fingerprint, private, Delete(secret.id), said).line is not None
    refused = book.apply(ed_alice.fingerprint, private, React(secret.id, "👍"), said)
    assert refused == Applied(refused="the line was deleted")
