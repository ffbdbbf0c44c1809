"""What happened to every line of a chaos run, from what the clients printed and Redis stored.

Pure: it reads the ``--json`` lines of each client (tlschat/chat/lines.py, ``Line.to_json``) and
the bodies in Redis's history stream, and counts. Senders type unique bodies ``<sender>-<seq>``
(``s3-000123``), so each line is followed by its body from the keyboard to every screen:

- a sender's line is *sent* once its client shows it pending, and its one outcome is
  *acknowledged* (the server's 'sent': delivery ``delivered``) or *refused* (with the reason); a
  line with neither by the end is *unanswered*, and so is one the client refused itself when the
  harness told it to quit (after the sender's ``stop_mark``): the client gave up, nobody answered;
- an acknowledged line is *lost* if a receiver never showed it, live or as history, or if Redis's
  history does not hold it;
- a receiver showing a line twice is a *duplicate*, a sender's line shown after a later one of
  the same sender is *reordered*, a message shown as not verified is *unverified*.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

BODY = re.compile(r"^(s\d+)-(\d+)$")
MESSAGE_KINDS = ("message", "action", "private")
PENDING, DELIVERED, REFUSED = "pending", "delivered", "refused"


def body(sender: str, seq: int) -> str:
    """The line a sender types as its ``seq``-th: unique across the run."""
    return f"{sender}-{seq:06d}"


def parse_events(lines: Iterable[str]) -> list[tuple[int, dict[str, Any]]]:
    """The JSON objects among a client's stdout lines, each with its line's index."""
    events = []
    for index, line in enumerate(lines):
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict):
            events.append((index, event))
    return events


# ----- what the harness hands the checker -----


@dataclass(frozen=True)
class SenderLog:
    """A sender: its client's stdout, the bodies typed into it, and where its stdout was when it
    was told to quit (``len(lines)`` if it never was)."""

    name: str
    lines: Sequence[str]
    typed: Sequence[str]
    stop_mark: int


@dataclass(frozen=True)
class ReceiverLog:
    name: str
    lines: Sequence[str]


@dataclass(frozen=True)
class Observation:
    """Everything one scenario left behind. ``stored`` is None when Redis was not read."""

    scenario: str
    senders: Sequence[SenderLog]
    receivers: Sequence[ReceiverLog]
    stored: Sequence[str] | None = None
    exited_early: dict[str, int] = field(default_factory=dict)


# ----- senders: one outcome per line -----


@dataclass
class Outcomes:
    """The fate of each line one sender's client took, by body."""

    sent: list[str] = field(default_factory=list)
    acknowledged: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)
    unanswered: list[str] = field(default_factory=list)
    # Two outcomes for one line (say refused, then acknowledged): never allowed.
    conflicting: list[str] = field(default_factory=list)
    # Typed but never taken by the client (it had exited).
    unread: list[str] = field(default_factory=list)


def sender_outcomes(log: SenderLog) -> Outcomes:
    bodies: dict[int, str] = {}
    endings: dict[int, list[tuple[int, dict[str, Any]]]] = {}
    for index, event in parse_events(log.lines):
        ref, delivery = event.get("ref"), event.get("delivery")
        if event.get("kind") not in MESSAGE_KINDS or not isinstance(ref, int) or not delivery:
            continue
        bodies.setdefault(ref, str(event.get("text", "")))
        if delivery in (DELIVERED, REFUSED):
            endings.setdefault(ref, []).append((index, event))
    outcomes = Outcomes(sent=list(bodies.values()))
    for ref, text in bodies.items():
        answers = [
            event
            for index, event in endings.get(ref, [])
            if event["delivery"] == DELIVERED or index < log.stop_mark
        ]
        if len(answers) > 1:
            outcomes.conflicting.append(text)
        if any(event["delivery"] == DELIVERED for event in answers):
            outcomes.acknowledged.append(text)
        elif answers:
            outcomes.refused[text] = str(answers[0].get("problem", ""))
        else:
            outcomes.unanswered.append(text)
    taken = set(outcomes.sent)
    outcomes.unread = [text for text in log.typed if text not in taken]
    return outcomes


# ----- receivers: every acknowledged line, once, in order, verified -----


@dataclass(frozen=True)
class Showing:
    """One of our senders' lines as a receiver showed it."""

    body: str
    sender: str
    seq: int
    history: bool
    verified: bool


def showings(log: ReceiverLog) -> list[Showing]:
    shown = []
    for _, event in parse_events(log.lines):
        if event.get("kind") not in MESSAGE_KINDS or event.get("delivery"):
            continue
        found = BODY.match(str(event.get("text", "")))
        if found is None:
            continue
        shown.append(
            Showing(
                found.group(0),
                found.group(1),
                int(found.group(2)),
                history=event.get("history") is True,
                verified=event.get("verified") is True,
            )
        )
    return shown


def duplicates(shown: Sequence[Showing]) -> list[str]:
    """The lines shown again, once per showing beyond the first."""
    seen: set[str] = set()
    again = []
    for showing in shown:
        if showing.body in seen:
            again.append(showing.body)
        seen.add(showing.body)
    return again


def reorderings(shown: Sequence[Showing]) -> list[str]:
    """The lines first shown after a later line of the same sender."""
    newest: dict[str, int] = {}
    seen: set[str] = set()
    late = []
    for showing in shown:
        if showing.body in seen:
            continue
        seen.add(showing.body)
        if showing.seq < newest.get(showing.sender, -1):
            late.append(showing.body)
        newest[showing.sender] = max(showing.seq, newest.get(showing.sender, -1))
    return late


# ----- the verdict -----


@dataclass
class ScenarioResult:
    """One scenario's figures; ``violations()`` says which of the issue's rules they break."""

    scenario: str
    typed: int = 0
    sent: int = 0
    acknowledged: int = 0
    refused: int = 0
    unanswered: int = 0
    conflicting: int = 0
    unread: int = 0
    # Acknowledged lines that some receiver never showed (each line once), and per receiver.
    lost: int = 0
    lost_by_receiver: dict[str, int] = field(default_factory=dict)
    # Acknowledged lines that Redis's history does not hold (None: not read).
    missing_from_redis: int | None = None
    stored_twice: int = 0
    # Refused lines that a receiver showed or Redis stored anyway: a refusal that was not one.
    refused_but_delivered: int = 0
    duplicated: int = 0
    reordered: int = 0
    unverified_live: int = 0
    unverified_history: int = 0
    exited_early: dict[str, int] = field(default_factory=dict)
    refusal_reasons: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)

    def violations(self) -> list[str]:
        """What breaks "every line one outcome; nothing lost, twice, out of order, unverified"."""
        counts = {
            "lost for some receiver": self.lost,
            "missing from Redis's history": self.missing_from_redis or 0,
            "stored twice in Redis": self.stored_twice,
            "refused yet delivered": self.refused_but_delivered,
            "duplicated": self.duplicated,
            "reordered": self.reordered,
            "unverified live": self.unverified_live,
            "unverified history": self.unverified_history,
            "unanswered": self.unanswered,
            "with two outcomes": self.conflicting,
            "typed but never read (client gone)": self.unread,
            "clients exited early": len(self.exited_early),
        }
        return [f"{count} {what}" for what, count in counts.items() if count]

    def settled(self) -> bool:
        """Every line typed was taken and has an outcome, and every receiver shows every
        acknowledged one."""
        return self.unread == 0 and self.unanswered == 0 and self.lost == 0


EXAMPLES = 5


def check(observation: Observation) -> ScenarioResult:
    result = ScenarioResult(observation.scenario, exited_early=dict(observation.exited_early))
    everyone = [sender_outcomes(log) for log in observation.senders]
    acknowledged = {text for outcomes in everyone for text in outcomes.acknowledged}
    refused = {text: why for outcomes in everyone for text, why in outcomes.refused.items()}
    result.typed = sum(len(log.typed) for log in observation.senders)
    result.sent = sum(len(outcomes.sent) for outcomes in everyone)
    result.acknowledged = len(acknowledged)
    result.refused = len(refused)
    result.refusal_reasons = dict(Counter(refused.values()))
    result.unanswered = _count(result, "unanswered", (o.unanswered for o in everyone))
    result.conflicting = _count(result, "conflicting", (o.conflicting for o in everyone))
    result.unread = _count(result, "unread", (o.unread for o in everyone))

    delivered_anywhere: set[str] = set()
    lost: set[str] = set()
    # Per receiver: "r0: s1-000012", one entry per event, so that counts add up over receivers.
    seen_wrong: dict[str, list[str]] = {}
    for log in observation.receivers:
        shown = showings(log)
        bodies = {showing.body for showing in shown}
        delivered_anywhere |= bodies
        missing = acknowledged - bodies
        lost |= missing
        if missing:
            result.lost_by_receiver[log.name] = len(missing)
        kinds = {
            "duplicated": duplicates(shown),
            "reordered": reorderings(shown),
            "unverified_live": [s.body for s in shown if not s.verified and not s.history],
            "unverified_history": [s.body for s in shown if not s.verified and s.history],
        }
        for kind, bodies_of_kind in kinds.items():
            seen_wrong.setdefault(kind, []).extend(f"{log.name}: {b}" for b in bodies_of_kind)
    for kind, events in seen_wrong.items():
        setattr(result, kind, len(events))
        if events:
            result.examples[kind] = events[:EXAMPLES]
    if observation.stored is not None:
        stored = Counter(observation.stored)
        delivered_anywhere |= set(stored)
        result.missing_from_redis = _count(
            result, "missing_from_redis", [acknowledged - set(stored)]
        )
        result.stored_twice = sum(copies > 1 for copies in stored.values())
    result.lost = _count(result, "lost", [lost])
    result.refused_but_delivered = _count(
        result, "refused_but_delivered", [set(refused) & delivered_anywhere]
    )
    return result


def _count(result: ScenarioResult, name: str, groups: Iterable[Iterable[str]]) -> int:
    """How many lines ``groups`` hold; the first few are kept in the result as examples."""
    lines = sorted({text for group in groups for text in group})
    if lines:
        result.examples[name] = lines[:EXAMPLES]
    return len(lines)


# ----- the table -----

COLUMNS = (
    "scenario",
    "sent",
    "acknowledged",
    "refused",
    "unanswered",
    "lost",
    "duplicated",
    "reordered",
    "unverified",
    "other",
)


def table_row(result: ScenarioResult) -> list[str]:
    lost = str(result.lost)
    if result.lost_by_receiver:
        lost += " (" + ", ".join(f"{n}: {c}" for n, c in result.lost_by_receiver.items()) + ")"
    other = []
    if result.missing_from_redis:
        other.append(f"{result.missing_from_redis} not in Redis")
    if result.stored_twice:
        other.append(f"{result.stored_twice} stored twice")
    if result.refused_but_delivered:
        other.append(f"{result.refused_but_delivered} refused yet delivered")
    if result.conflicting:
        other.append(f"{result.conflicting} with two outcomes")
    if result.unread:
        other.append(f"{result.unread} typed, never read")
    if result.unverified_history:
        other.append(f"{result.unverified_history} unverified in history")
    other += [f"{name} exited ({code})" for name, code in result.exited_early.items()]
    return [
        result.scenario,
        str(result.sent),
        str(result.acknowledged),
        str(result.refused),
        str(result.unanswered),
        lost,
        str(result.duplicated),
        str(result.reordered),
        str(result.unverified_live),
        "; ".join(other) or "-",
    ]


def markdown_table(results: Sequence[ScenarioResult]) -> str:
    rows = [list(COLUMNS), ["---"] * len(COLUMNS), *map(table_row, results)]
    return "\n".join("| " + " | ".join(row) + " |" for row in rows)
