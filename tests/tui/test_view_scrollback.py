"""Older lines put above a buffer's (scrollback), and where its history starts, in the view."""

from __future__ import annotations

from tlschat.chat.lines import Line
from tlschat.client.view import Buffers, pane_rows

NOW = 1_700_000_000.0


def said(counter: int, text: str = "", ref: int = 0) -> Line:
    body = text or f"line {counter}"
    return Line(
        "message",
        NOW + counter,
        body,
        "bob",
        "SHA256:b",
        "#a",
        True,
        id=f"SHA256:b:{counter}",
        ref=ref,
    )


def test_a_page_goes_above_what_is_held_and_the_marker_moves_with_it() -> None:
    buffers = Buffers()
    buffers.switch("#a")
    for counter in (10, 11):
        buffers.add(said(counter))
    buffer = buffers.get("#a")
    assert buffer.read_upto == 2
    assert buffers.prepend("#a", [said(8), said(9)]) == 2
    assert [line.text for line in buffer.lines] == ["line 8", "line 9", "line 10", "line 11"]
    assert buffer.read_upto == 4


def test_lines_of_a_page_are_found_for_their_later_versions() -> None:
    buffers = Buffers()
    buffers.add(said(10))
    buffers.prepend("#a", [said(1, "waiting", ref=-5)])
    buffers.add(said(1, "decrypted", ref=-5))  # the line with the same ref, replacing it
    assert [line.text for line in buffers.get("#a").lines] == ["decrypted", "line 10"]
    edited = said(1, "edited")
    assert buffers.find(edited) == ("#a", 0)


def test_an_operation_of_a_page_replaces_its_target_there_and_held_lines_stay_out() -> None:
    buffers = Buffers()
    buffers.add(said(10))
    page = [said(3), said(4), said(3, "fixed"), said(10, "a copy")]
    assert buffers.prepend("#a", page) == 2
    assert [line.text for line in buffers.get("#a").lines] == ["fixed", "line 4", "line 10"]


def test_the_start_of_a_rooms_history_is_its_first_row() -> None:
    buffers = Buffers()
    buffers.add(said(1))
    buffer = buffers.get("#a")
    assert pane_rows(buffer, None)[0] == buffer.lines[0]
    buffer.at_start = True
    assert pane_rows(buffer, None) == ["start", buffer.lines[0]]
