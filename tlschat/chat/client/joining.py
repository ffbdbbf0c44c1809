"""The rooms the user asked to join (``/join``) whose answer has not come yet. Pure.

A ``/join`` moves the room the user talks in only once the server's ``joined`` comes, so the line
modes hold what is typed after it until then (a script's ``/topic`` or ``/me`` after a ``/join``
is for the room it joins). The wait is bounded: the join's ``joined``, an error after it went out,
the connection lost after it went out, or JOIN_PATIENCE after it went out. A join still waiting in
the queue when the connection is lost goes out on the next connection, and is waited for there.
"""

from __future__ import annotations

from dataclasses import dataclass

# How long a join that went out holds the input without an answer.
JOIN_PATIENCE = 10.0
# More joins than this without an answer (typed quickly in the full-screen client, which does not
# wait for them): the oldest are forgotten.
MAX_ASKED = 64


def room_joined_by(args: str) -> str:
    """The room a ``/join`` names, as the server reads it: '#' added when it is left out."""
    return args if args.startswith("#") else f"#{args}"


@dataclass
class JoinAsked:
    ref: int  # of the queued command
    room: str
    sent_at: float | None = None  # when it went out; None while it waits in the queue


class JoinRequests:
    """The joins the user asked for, until each is answered."""

    def __init__(self) -> None:
        self._asked: list[JoinAsked] = []

    def asked(self, ref: int, args: str) -> None:
        """The user's ``/join ARGS``, queued as the command ``ref``."""
        self._asked.append(JoinAsked(ref, room_joined_by(args)))
        del self._asked[:-MAX_ASKED]

    def went_out(self, ref: int, now: float) -> None:
        for join in self._asked:
            if join.ref == ref:
                join.sent_at = now

    def answered(self, room: str) -> bool:
        """``joined`` came for ``room``: whether the user had asked for it (it is done with)."""
        folded = room.casefold()
        kept = [join for join in self._asked if join.room.casefold() != folded]
        asked = len(kept) < len(self._asked)
        self._asked = kept
        return asked

    def refused(self) -> None:
        """An error came that answers no message: the joins that went out are done with. It may
        answer an earlier command instead; waiting no longer is the bound that stays safe."""
        self._asked = [join for join in self._asked if join.sent_at is None]

    def connection_lost(self) -> None:
        """The answers of the joins that went out will not come; those still queued go out on
        the next connection."""
        self.refused()

    def holds(self, now: float) -> bool:
        """Whether a join still waits for its answer (and JOIN_PATIENCE has not passed since it
        went out)."""
        self._asked = [
            join
            for join in self._asked
            if join.sent_at is None or now < join.sent_at + JOIN_PATIENCE
        ]
        return bool(self._asked)
