"""Multi-line bodies, rendered so that no body can forge a line of its own, and the operation
forms of PROTOCOL.md 21.1 read back as written."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from tlschat.chat.frames import has_unsafe_body
from tlschat.chat.lines import CONTINUATION, Line, body_lines
from tlschat.chat.operations import (
    Delete,
    Edit,
    React,
    Reply,
    line_id,
    operation_body,
    parse_operation,
    unescape_newlines,
    valid_reaction,
)
from tlschat.client.view import render_line

FP = "SHA256:" + "A" * 43
# What starts a line of its own: its time (plain and full-screen), or a warning of the client.
FORGED = re.compile(r"^(\[?\d\d:\d\d:\d\d|!!!|\*\*\*|⚠)")


def _message(text: str, **fields: object) -> Line:
    return Line("message", 0.0, text, "mallory", FP, "#r", True, False, **fields)  # type: ignore[arg-type]


def test_a_multi_line_body_is_indented_in_the_full_screen_client() -> None:
    shown = render_line(_message("first\n12:00:00 ✓ <alice> I owe you\n\x1b[2Jgone")).plain
    lines = shown.split("\n")
    assert lines[0].endswith("<mallory> first")
    assert lines[1] == CONTINUATION + "12:00:00 ✓ <alice> I owe you"
    assert lines[2] == CONTINUATION + "\ufffd[2Jgone"


def test_plain_mode_keeps_one_line_per_message() -> None:
    shown = _message("one\ntwo").render("#r")
    assert "\n" not in shown and shown.endswith("<mallory> one ↵ two")


@given(st.text(max_size=200))
def test_no_body_renders_a_line_that_looks_like_a_line_of_its_own(body: str) -> None:
    plain = _message(body).render("#r")
    assert "\n" not in plain and "\r" not in plain
    shown = render_line(_message(body, edited=True, reactions=(("👍", 2),))).plain
    first, *rest = shown.split("\n")
    assert FORGED.match(first)  # the real start: the time
    for line in rest:
        assert line.startswith(CONTINUATION)
        assert not any(c in line for c in "\r\x1b\x85\u2028\u2029")


@given(st.text(max_size=100))
def test_body_lines_split_only_on_newline(body: str) -> None:
    parts = body_lines(body)
    assert len(parts) == body.count("\n") + 1
    assert not any(has_unsafe_body(part) or "\n" in part for part in parts)


def test_newline_is_the_only_control_a_body_may_carry() -> None:
    assert not has_unsafe_body("a\nb\tc")
    assert all(has_unsafe_body(f"a{c}b") for c in "\r\x00\x1b\x0b\x0c\x7f\x85\u202e")


def test_edited_deleted_and_reacted_lines_say_so() -> None:
    assert _message("new", edited=True).render("#r").endswith("<mallory> new (edited)")
    deleted = _message("", deleted=True, edited=True).render("#r")
    assert deleted.endswith("<mallory> message deleted")
    assert _message("x", reactions=(("👍", 2),)).to_json()["reactions"] == (("👍", 2),)
    assert "reactions" not in _message("x").to_json()


ids = st.builds(line_id, st.just(FP), st.integers(0, 2**64 - 1))
texts = st.text(min_size=1, max_size=50).filter(lambda t: t.strip() != "")


@given(
    st.one_of(
        st.builds(Edit, ids, texts),
        st.builds(Delete, ids),
        st.builds(React, ids, st.sampled_from(["👍", "🎉", "+1", "❤️"])),
        st.builds(Reply, ids, texts),
    )
)
def test_operation_forms_read_back(operation: Edit | Delete | React | Reply) -> None:
    assert parse_operation(operation_body(operation)) == operation


def test_malformed_operation_forms_are_ordinary_lines() -> None:
    target = line_id(FP, 7)
    for body in (
        "/edit 7 new",
        f"/edit {target}",
        f"/delete {target} extra",
        f"/react {target} two words",
        f"/react {target} {'x' * 17}",
        "/re nobody text",
        "/edited something",
    ):
        assert parse_operation(body) is None, body
    assert not valid_reaction("") and not valid_reaction("a\u202eb") and valid_reaction("👍🏽")


def test_a_typed_backslash_n_is_a_newline() -> None:
    assert unescape_newlines(r"one\ntwo") == "one\ntwo"
    assert unescape_newlines(r"C:\\new \x") == r"C:\new \x"
    assert unescape_newlines("trailing\\") == "trailing\\"
