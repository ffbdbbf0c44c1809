"""The frames the server answers with. Pure."""

from __future__ import annotations

from typing import Any

from ..runs import split_run
from .model import Outgoing


def error_frame(text: str) -> dict[str, Any]:
    return {"type": "error", "text": text}


def notice_frame(text: str) -> dict[str, Any]:
    return {"type": "notice", "text": text}


def bye_frame(reason: str) -> dict[str, Any]:
    return {"type": "bye", "reason": reason}


def sent_frame(target: str, counter: int) -> dict[str, Any]:
    """The acknowledgement of a message: stored and relayed (committed to the cluster's log)."""
    return {"type": "sent", "target": target, "counter": counter}


def info_frames(title: str, lines: list[str]) -> list[dict[str, Any]]:
    """An 'info' answer: a run of as many frames as its lines need."""
    return split_run({"type": "info", "title": title}, "lines", lines, ("title",))


def to_session(session_id: int, frames: list[dict[str, Any]]) -> list[Outgoing]:
    return [(session_id, frame) for frame in frames]
