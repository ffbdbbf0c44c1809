"""Runs: lists over many frames, split by the server and put together by the client."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tlschat.chat.frames import MAX_FRAME, FrameError, decode_frame, encode_frame
from tlschat.chat.runs import MAX_RUN_PARTS, PAGE_ITEMS, RunAssembler, split_run

MEMBER = st.fixed_dictionaries(
    {
        "nick": st.text(min_size=1, max_size=24),
        "fingerprint": st.text(min_size=1, max_size=51),
        "away": st.text(max_size=300),
    }
)


def assemble(frames: list[dict[str, Any]], continuation: str = "") -> dict[str, Any]:
    assembler = RunAssembler()
    decoded = [decode_frame(encode_frame(frame)) for frame in frames]
    whole = assembler.start(decoded[0], "members", continuation, ("room",))
    for frame in decoded[1:]:
        assert whole is None
        whole = assembler.add(frame)
    assert whole is not None
    assert assembler.expecting == ""
    return whole


@settings(max_examples=60, deadline=None)
@given(st.lists(MEMBER, max_size=1500), st.text(max_size=300))
def test_every_list_arrives_whole_in_order_in_frames_that_fit(
    members: list[dict[str, str]], topic: str
) -> None:
    head = {"type": "joined", "room": "#big", "topic": topic}
    frames = split_run(head, "members", members, ("room",), continuation="members")
    assert all(len(encode_frame(frame)) <= MAX_FRAME for frame in frames)
    assert all(len(frame["members"]) <= PAGE_ITEMS for frame in frames)
    whole = assemble(frames, "members")
    assert whole == {**head, "members": members}
    if len(frames) > 1:
        assert [frame["part"] for frame in frames] == list(range(len(frames)))
        assert [frame["more"] for frame in frames] == [True] * (len(frames) - 1) + [False]
        assert all(frame["type"] == "members" for frame in frames[1:])
        assert all(
            set(frame) == {"type", "room", "members", "part", "more"} for frame in frames[1:]
        )


def test_a_list_that_fits_is_one_frame_without_part_or_more() -> None:
    frames = split_run({"type": "info", "title": "Rooms"}, "lines", ["#a (1 member)"])
    assert frames == [{"type": "info", "title": "Rooms", "lines": ["#a (1 member)"]}]


def test_pages_are_bounded_by_items_as_well_as_bytes() -> None:
    frames = split_run({"type": "info", "title": "T"}, "lines", ["x"] * (PAGE_ITEMS * 2 + 1))
    assert [len(frame["lines"]) for frame in frames] == [PAGE_ITEMS, PAGE_ITEMS, 1]


def test_an_item_bigger_than_a_frame_is_refused_rather_than_cut() -> None:
    with pytest.raises(ValueError, match="cannot fit"):
        split_run({"type": "info", "title": "T"}, "lines", ["x" * MAX_FRAME])


def run_of(count: int) -> list[dict[str, Any]]:
    frames = split_run({"type": "info", "title": "T"}, "lines", ["y" * 1000] * count, ("title",))
    assert len(frames) > 2
    return frames


def test_a_frame_of_another_type_in_the_middle_breaks_the_run() -> None:
    frames = run_of(200)
    assembler = RunAssembler()
    assert assembler.start(frames[0], "lines", naming=("title",)) is None
    assert assembler.interrupted("notice")
    assert assembler.expecting == ""
    with pytest.raises(FrameError, match="continues no run"):
        assembler.add(frames[1])


def test_a_part_out_of_order_drops_the_run() -> None:
    frames = run_of(200)
    assembler = RunAssembler()
    assembler.start(frames[0], "lines", naming=("title",))
    with pytest.raises(FrameError, match="out of order"):
        assembler.add(frames[2])
    assert assembler.expecting == ""


def test_a_part_naming_another_run_drops_it() -> None:
    frames = run_of(200)
    assembler = RunAssembler()
    assembler.start(frames[0], "lines", naming=("title",))
    with pytest.raises(FrameError, match="out of order"):
        assembler.add({**frames[1], "title": "Other"})


def test_a_run_must_start_at_part_zero() -> None:
    with pytest.raises(FrameError, match="part 0"):
        RunAssembler().start({"type": "info", "lines": [], "part": 1, "more": True}, "lines")


@pytest.mark.parametrize(
    "position",
    [{"part": -1}, {"part": True}, {"part": MAX_RUN_PARTS}, {"more": "yes"}, {"part": "0"}],
)
def test_bad_positions_are_refused(position: dict[str, Any]) -> None:
    with pytest.raises(FrameError):
        RunAssembler().start({"type": "info", "lines": [], **position}, "lines")


def test_an_endless_run_is_dropped_at_its_bound() -> None:
    assembler = RunAssembler()
    assembler.start({"type": "info", "title": "T", "lines": [], "part": 0, "more": True}, "lines")
    with pytest.raises(FrameError, match=f"from 0 to {MAX_RUN_PARTS - 1}"):
        for part in range(1, MAX_RUN_PARTS + 1):
            assembler.add({"type": "info", "lines": ["z"], "part": part, "more": True})
    assert assembler.expecting == ""


def test_lists_that_are_not_lists_are_refused() -> None:
    with pytest.raises(FrameError, match="must be a list"):
        RunAssembler().start({"type": "info", "lines": "x"}, "lines")
