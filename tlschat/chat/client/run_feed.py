"""The server's replies that may come as runs, put together before the client acts on them. Pure.

A reply whose list outgrows one frame comes as a run (docs/PROTOCOL.md, "Runs"): frames back to
back, in part order, the last with ``more: false``. :class:`RunFeed` holds one connection's open
run (a :class:`~tlschat.chat.runs.RunAssembler`) and hands each frame back either whole (a reply
that fits one frame, a frame that is no run, or the last part of one, with every part's items),
or not yet (a part that waits for the rest). A frame that breaks an open run drops it: the feed
says why, and the breaking frame is acted on as any frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..frames import FrameError
from ..runs import RunAssembler


@dataclass(frozen=True)
class RunSpec:
    """How a reply's run is put together: its list, the type of its later frames, and the
    fields every frame repeats to name the run."""

    key: str
    continuation: str
    naming: tuple[str, ...]


# Every reply that may come as a run, by the type of its first frame.
RUNS: dict[str, RunSpec] = {
    "joined": RunSpec("members", "members", ("room",)),
    "members": RunSpec("members", "members", ("room",)),
    "history": RunSpec("messages", "history", ("room",)),
    "presence": RunSpec("changes", "presence", ("room",)),
    "info": RunSpec("lines", "info", ("title",)),
    "search": RunSpec("messages", "search", ("query",)),
    "whois": RunSpec("rooms", "whois", ("query",)),
}


@dataclass(frozen=True)
class Fed:
    """What became of one frame: ``frame`` to act on now (None while its run waits for more
    parts, or when it was dropped), and ``dropped``, why a run was dropped, if one was."""

    frame: dict[str, Any] | None
    dropped: str = ""


@dataclass
class RunFeed:
    """One connection's runs, one open at a time: the server sends a run's frames back to back."""

    _assembler: RunAssembler = field(default_factory=RunAssembler)
    _open: str = ""  # the type of the open run's first frame

    @property
    def open(self) -> str:
        """The type of the reply whose run is open, or '' when none is."""
        return self._open if self._assembler.expecting else ""

    def feed(self, frame: dict[str, Any]) -> Fed:
        """Take one frame. A malformed first frame of a run raises FrameError."""
        kind = str(frame["type"])
        if self.open and kind == self._assembler.expecting:
            return self._continue(frame)
        dropped = ""
        if self._assembler.interrupted(kind):
            dropped = (
                f"dropped an unfinished {self._open!r} reply from the server:"
                f" a {kind!r} frame came in the middle of it"
            )
        spec = RUNS.get(kind)
        if spec is None or ("part" not in frame and "more" not in frame):
            return Fed(frame, dropped)  # a reply that fits one frame is one frame, as it was
        self._open = kind
        whole = self._assembler.start(frame, spec.key, spec.continuation, spec.naming)
        return Fed(whole, dropped)

    def _continue(self, frame: dict[str, Any]) -> Fed:
        try:
            whole = self._assembler.add(frame)
        except FrameError as problem:
            return Fed(
                None, f"dropped an unfinished {self._open!r} reply from the server: {problem}"
            )
        return Fed(whole)
