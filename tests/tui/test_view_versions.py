"""The full-screen client's buffers put a later version of a line (edited, deleted, reacted to;
same id) in place of the earlier one, and show a multi-line body indented."""

from __future__ import annotations

from dataclasses import replace

from tlschat.chat.lines import Line
from tlschat.client.view import Buffers, render_line

FP = "SHA256:" + "B" * 43
ID = FP + ":42"


def _line(text: str, **fields: object) -> Line:
    return Line("message", 0.0, text, "bob", FP, "#general", True, False, id=ID, **fields)  # type: ignore[arg-type]


def test_a_later_version_of_a_line_replaces_it_in_its_buffer() -> None:
    buffers = Buffers()
    buffers.add(_line("first"))
    buffers.add(Line("message", 1.0, "other", "carol", room="#general", verified=True))
    name, _ = buffers.add(_line("fixed", edited=True))
    assert name == "#general"
    texts = [(line.text, line.edited) for line in buffers.get("#general").lines]
    assert texts == [("fixed", True), ("other", None)]
    buffers.add(replace(_line("fixed", edited=True), reactions=(("👍", 2),)))
    [shown, _] = buffers.get("#general").lines
    assert render_line(shown).plain.endswith("<bob> fixed (edited) [👍 2]")


def test_a_deleted_line_says_so_and_a_reply_shows_its_quote() -> None:
    assert render_line(_line("", deleted=True)).plain.endswith("<bob> message deleted")
    reply = _line("yes\nand more", quote="alice: ship it?", reply_to=FP + ":1")
    assert render_line(reply).plain.endswith("<bob> (↪ alice: ship it?) yes\n    │ and more")
