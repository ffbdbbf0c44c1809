"""The frames the server answers with, and the fitting of a list into one frame. Pure."""

from __future__ import annotations

from typing import Any

from ..frames import (
    MAX_FRAME,
    encode_frame,
)


def error_frame(text: str) -> dict[str, Any]:
    return {"type": "error", "text": text}


def notice_frame(text: str) -> dict[str, Any]:
    return {"type": "notice", "text": text}


def bye_frame(reason: str) -> dict[str, Any]:
    return {"type": "bye", "reason": reason}


def sent_frame(target: str, counter: int) -> dict[str, Any]:
    """The acknowledgement of a message: stored and relayed (committed to the cluster's log)."""
    return {"type": "sent", "target": target, "counter": counter}


# Room for what is added to a fitted frame: its "type", and the "... and N more" line.
FIT_MARGIN = 256


def fit_list(frame: dict[str, Any], key: str, items: list[Any], newest_last: bool = False) -> int:
    """Set ``frame[key]`` to as many ``items`` as keep the frame within one application message
    (MAX_FRAME, which the channel enforces): the first ones, or the last with ``newest_last``.
    Lists that grow with what users stored (history, rooms, members) would otherwise make a reply
    no connection can carry. Returns how many were left out."""
    budget = MAX_FRAME - FIT_MARGIN - len(encode_frame({**frame, key: []}))
    kept: list[Any] = []
    for item in reversed(items) if newest_last else items:
        budget -= len(encode_frame(item)) + 1  # the item and its comma
        if budget < 0:
            break
        kept.append(item)
    frame[key] = kept[::-1] if newest_last else kept
    return len(items) - len(kept)


def info_frame(title: str, lines: list[str]) -> dict[str, Any]:
    frame: dict[str, Any] = {"type": "info", "title": title}
    left_out = fit_list(frame, "lines", lines)
    if left_out:
        frame["lines"].append(f"… and {left_out} more")
    return frame
