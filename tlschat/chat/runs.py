"""Runs: a list that outgrows one frame, sent over as many frames as it needs. Pure.

A reply whose list grows with what users stored (members, history, rooms, search results) used to
be cut to what fit one application message. A *run* carries it whole: frames of one type sent back
to back, each with ``part`` (0, 1, …) and ``more`` (true on all but the last). The first frame
holds the reply's other fields; the later ones repeat only the fields that name the run.
:func:`split_run` makes them on the server; :class:`RunAssembler` puts them together on the client
(docs/PROTOCOL.md, "Runs").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .frames import MAX_FRAME, FrameError, encode_frame

# Items in one frame of a run, whatever their size: a client's work per frame stays bounded.
PAGE_ITEMS = 500

# Frames in one run that a client accepts: 400 full frames are 25 MiB, far more than any list
# the server keeps (5,000 members are about 10 frames).
MAX_RUN_PARTS = 400

# Room for "part", "more" and the separators around them.
RUN_MARGIN = 64


def split_run(
    head: dict[str, Any],
    key: str,
    items: list[Any],
    naming: tuple[str, ...] = (),
    *,
    continuation: str = "",
) -> list[dict[str, Any]]:
    """``head`` with ``items`` under ``key``, over as many frames as keep each within MAX_FRAME
    and PAGE_ITEMS. The first frame is ``head``'s type with all its fields; the later ones are of
    type ``continuation`` (``head``'s own by default) and carry only the fields in ``naming``.
    A list that fits one frame is one frame without ``part`` or ``more``."""
    later_head = {"type": continuation or head["type"], **{name: head[name] for name in naming}}
    pages: list[list[Any]] = []
    page: list[Any] = []
    budget = _budget(head, key)
    for item in items:
        size = len(encode_frame(item)) + 1  # the item and its comma
        if page and (size > budget or len(page) >= PAGE_ITEMS):
            pages.append(page)
            page, budget = [], _budget(later_head, key)
        if size > budget:
            raise ValueError(f"one item of {size} bytes cannot fit a frame")
        page.append(item)
        budget -= size
    pages.append(page)
    if len(pages) == 1:
        return [{**head, key: pages[0]}]
    last = len(pages) - 1
    return [
        {**(head if index == 0 else later_head), key: page, "part": index, "more": index < last}
        for index, page in enumerate(pages)
    ]


def _budget(head: dict[str, Any], key: str) -> int:
    return MAX_FRAME - RUN_MARGIN - len(encode_frame({**head, key: []}))


@dataclass
class _Open:
    first: dict[str, Any]
    key: str
    continuation: str
    naming: dict[str, Any]
    items: list[Any]
    parts: int = 1


@dataclass
class RunAssembler:
    """Puts a run's frames back together: one run at a time, since the server sends a run's
    frames back to back."""

    _open: _Open | None = field(default=None)

    @property
    def expecting(self) -> str:
        """The type of the frame the open run waits for, or '' when none is open."""
        return self._open.continuation if self._open is not None else ""

    def start(
        self, frame: dict[str, Any], key: str, continuation: str = "", naming: tuple[str, ...] = ()
    ) -> dict[str, Any] | None:
        """The first frame of a run: the whole reply if it is complete, else None (it waits for
        the frames of type ``continuation``, its own type by default)."""
        items = _items(frame, key)
        part, more = _position(frame)
        if part != 0:
            raise FrameError(f"a '{frame['type']}' run must start with part 0, not {part}")
        self._open = None
        if not more:
            return frame
        named = {name: frame.get(name) for name in naming}
        self._open = _Open(frame, key, continuation or str(frame["type"]), named, list(items))
        return None

    def add(self, frame: dict[str, Any]) -> dict[str, Any] | None:
        """A later frame of the open run: the whole reply (its first frame, with every part's
        items under its key) once this was the last part, else None."""
        run = self._open
        if run is None or frame["type"] != run.continuation:
            self._open = None
            raise FrameError(f"a '{frame['type']}' frame that continues no run")
        try:
            part, more = _position(frame)
            items = _items(frame, run.key)
        except FrameError:
            self._open = None
            raise
        mismatch = any(frame.get(name) != value for name, value in run.naming.items())
        if part != run.parts or mismatch:
            self._open = None
            raise FrameError(f"part {part} of a '{run.continuation}' run out of order; dropped")
        run.items += items
        run.parts += 1
        if more:
            return None
        self._open = None
        whole = {**run.first, run.key: run.items}
        whole.pop("part", None)
        whole.pop("more", None)
        return whole

    def interrupted(self, frame_type: str) -> bool:
        """Whether a frame of ``frame_type`` breaks the open run (which is then dropped)."""
        if self._open is None or frame_type == self._open.continuation:
            return False
        self._open = None
        return True


def _items(frame: dict[str, Any], key: str) -> list[Any]:
    items = frame.get(key)
    if not isinstance(items, list):
        raise FrameError(f"'{key}' must be a list")
    return items


def _position(frame: dict[str, Any]) -> tuple[int, bool]:
    part = frame.get("part", 0)
    more = frame.get("more", False)
    if not isinstance(part, int) or isinstance(part, bool) or not 0 <= part < MAX_RUN_PARTS:
        raise FrameError(f"'part' must be an integer from 0 to {MAX_RUN_PARTS - 1}")
    if not isinstance(more, bool):
        raise FrameError("'more' must be true or false")
    return part, more
