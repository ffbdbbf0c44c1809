"""The chaos checker on hand-written client output: what it counts and calls a violation."""

from __future__ import annotations

import json
from collections.abc import Sequence

from .checker import (
    Observation,
    ReceiverLog,
    ScenarioResult,
    SenderLog,
    body,
    check,
    markdown_table,
    reorderings,
    showings,
)

DEGRADED = "message not sent: chat degraded (the cluster's store is unreachable)"
GAVE_UP = "the client stopped before the server answered"


def own(ref: int, text: str, delivery: str, problem: str = "") -> str:
    """A line of the sender's own, as its ``--json`` client prints each of its states."""
    event = {"kind": "message", "text": text, "nick": "s0", "ref": ref, "delivery": delivery}
    if problem:
        event["problem"] = problem
    return json.dumps(event)


def acknowledged(ref: int, text: str) -> list[str]:
    return [own(ref, text, "pending"), own(ref, text, "delivered")]


def shown(text: str, history: bool = False, verified: bool = True) -> str:
    """A received message as a ``--json`` client prints it."""
    event: dict[str, object] = {"kind": "message", "text": text, "nick": text.split("-")[0]}
    event["verified"] = verified
    if history:
        event["history"] = True
    return json.dumps(event)


def sender(lines: Sequence[str], typed: Sequence[str], stop_mark: int | None = None) -> SenderLog:
    return SenderLog("s0", lines, typed, len(lines) if stop_mark is None else stop_mark)


def checked(
    senders: Sequence[SenderLog],
    receivers: dict[str, Sequence[str]],
    stored: Sequence[str] | None = None,
    exited_early: dict[str, int] | None = None,
) -> ScenarioResult:
    logs = [ReceiverLog(name, lines) for name, lines in receivers.items()]
    return check(Observation("test", senders, logs, stored, exited_early or {}))


A, B, C = body("s0", 0), body("s0", 1), body("s0", 2)


def test_bodies_are_unique_per_sender_and_sequence() -> None:
    assert body("s3", 123) == "s3-000123"


def test_a_clean_run_has_every_line_acknowledged_shown_and_stored() -> None:
    lines = [*acknowledged(1, A), *acknowledged(2, B)]
    result = checked(
        [sender(lines, [A, B])],
        {"r0": [shown(A), shown(B)], "r1": [shown(A), shown(B, history=True)]},
        stored=[A, B],
    )
    assert (result.typed, result.sent, result.acknowledged) == (2, 2, 2)
    assert result.missing_from_redis == 0
    assert result.violations() == []
    assert result.settled()


def test_a_refusal_with_a_reason_is_an_outcome_not_a_violation() -> None:
    lines = [*acknowledged(1, A), own(2, B, "pending"), own(2, B, "refused", DEGRADED)]
    result = checked([sender(lines, [A, B])], {"r0": [shown(A)]}, stored=[A])
    assert (result.acknowledged, result.refused) == (1, 1)
    assert result.refusal_reasons == {DEGRADED: 1}
    assert result.violations() == []


def test_no_outcome_or_the_clients_own_giving_up_at_the_end_is_unanswered() -> None:
    lines = [*acknowledged(1, A), own(2, B, "pending"), own(3, C, "pending")]
    stop_mark = len(lines)
    lines.append(own(3, C, "refused", GAVE_UP))
    result = checked([sender(lines, [A, B, C], stop_mark)], {"r0": [shown(A)]})
    assert (result.acknowledged, result.refused, result.unanswered) == (1, 0, 2)
    assert result.examples["unanswered"] == [B, C]
    assert result.violations() == ["2 unanswered"]
    assert not result.settled()


def test_an_acknowledgement_after_the_stop_still_counts() -> None:
    lines = [own(1, A, "pending")]
    result = checked([sender([*lines, own(1, A, "delivered")], [A], 1)], {"r0": [shown(A)]})
    assert (result.acknowledged, result.unanswered) == (1, 0)


def test_two_outcomes_for_one_line_are_a_violation() -> None:
    lines = [own(1, A, "pending"), own(1, A, "refused", DEGRADED), own(1, A, "delivered")]
    result = checked([sender(lines, [A])], {"r0": [shown(A)]})
    assert (result.acknowledged, result.refused, result.conflicting) == (1, 0, 1)
    assert result.violations() == ["1 with two outcomes"]


def test_an_acknowledged_line_a_receiver_never_showed_is_lost_once() -> None:
    lines = [*acknowledged(1, A), *acknowledged(2, B)]
    result = checked([sender(lines, [A, B])], {"r0": [shown(A)], "r1": [shown(A)]})
    assert result.lost == 1
    assert result.lost_by_receiver == {"r0": 1, "r1": 1}
    assert result.examples["lost"] == [B]
    assert not result.settled()


def test_a_line_shown_live_and_again_as_history_is_a_duplicate() -> None:
    result = checked([sender(acknowledged(1, A), [A])], {"r0": [shown(A), shown(A, history=True)]})
    assert (result.duplicated, result.reordered) == (1, 0)
    assert result.examples["duplicated"] == [f"r0: {A}"]
    assert result.violations() == ["1 duplicated"]


def test_a_senders_line_first_shown_after_a_later_one_is_reordered() -> None:
    receiver = ReceiverLog("r0", [shown(B), shown(A), shown(C), shown(A)])
    assert reorderings(showings(receiver)) == [A]
    # Another sender's lines have an order of their own.
    other = body("s1", 0)
    assert reorderings(showings(ReceiverLog("r0", [shown(B), shown(other), shown(C)]))) == []


def test_unverified_lines_are_counted_live_and_in_history_apart() -> None:
    lines = [*acknowledged(1, A), *acknowledged(2, B)]
    result = checked(
        [sender(lines, [A, B])],
        {"r0": [shown(A, verified=False), shown(B, history=True, verified=False)]},
    )
    assert (result.unverified_live, result.unverified_history) == (1, 1)
    assert result.violations() == ["1 unverified live", "1 unverified history"]


def test_redis_must_hold_every_acknowledged_line_once_and_no_refused_one() -> None:
    lines = [*acknowledged(1, A), *acknowledged(2, B)]
    lines += [own(3, C, "pending"), own(3, C, "refused", DEGRADED)]
    result = checked([sender(lines, [A, B, C])], {"r0": [shown(A), shown(B)]}, stored=[A, A, C])
    assert (result.missing_from_redis, result.stored_twice) == (1, 1)
    assert result.refused_but_delivered == 1
    assert result.violations() == [
        "1 missing from Redis's history",
        "1 stored twice in Redis",
        "1 refused yet delivered",
    ]


def test_a_refused_line_a_receiver_showed_is_refused_yet_delivered() -> None:
    lines = [own(1, A, "pending"), own(1, A, "refused", DEGRADED)]
    result = checked([sender(lines, [A])], {"r0": [shown(A)]})
    assert result.refused_but_delivered == 1


def test_lines_typed_to_a_client_that_had_exited_and_the_exit_are_violations() -> None:
    result = checked(
        [sender(acknowledged(1, A), [A, B])], {"r0": [shown(A)]}, exited_early={"s0": 0}
    )
    assert result.unread == 1
    assert result.violations() == ["1 typed but never read (client gone)", "1 clients exited early"]
    assert not result.settled()


def test_other_output_is_ignored() -> None:
    receiver = [
        "[KEY] not JSON",
        json.dumps({"kind": "notice", "text": "chat degraded"}),
        json.dumps({"kind": "message", "text": "hello", "nick": "x", "verified": True}),
        own(7, body("r0", 1), "pending"),  # a receiver's own line is not one it received
        shown(A),
    ]
    assert [showing.body for showing in showings(ReceiverLog("r0", receiver))] == [A]


def test_the_table_has_one_row_per_scenario_and_names_what_else_broke() -> None:
    lines = [*acknowledged(1, A), *acknowledged(2, B)]
    result = checked(
        [sender(lines, [A, B])], {"r0": [shown(A)]}, stored=[A], exited_early={"r1": 0}
    )
    table = markdown_table([result]).splitlines()
    assert table[0].startswith("| scenario | sent | acknowledged |")
    assert table[2] == (
        "| test | 2 | 2 | 0 | 0 | 1 (r0: 1) | 0 | 0 | 0 | 1 not in Redis; r1 exited (0) |"
    )
