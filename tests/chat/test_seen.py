"""SeenLedger: what a client has shown on one network, so that a replayed line is never new."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tlschat.chat.seen import MAX_SENDERS, MAX_SKEW_MS, SeenEntry, SeenLedger

from .helpers import NOW_MS

SKEW = MAX_SKEW_MS
A, B, C, D = "SHA256:aaaa", "SHA256:bbbb", "SHA256:cccc", "SHA256:dddd"


def _state(ledger: SeenLedger) -> dict[str, tuple[int, int]]:
    """What the ledger holds per sender: (counter, newest time)."""
    return {e.sender: (e.counter, e.timestamp_ms) for e in ledger.entries() if e.sender}


# --- is_new, was_shown, is_stale -------------------------------------------------------------


def test_a_fresh_ledger_calls_a_recent_line_new() -> None:
    ledger = SeenLedger()
    assert (ledger.max_senders, ledger.skew_ms, ledger.horizon_ms) == (MAX_SENDERS, SKEW, 0)
    assert len(ledger) == 0
    assert ledger.is_new(A, 1, NOW_MS, NOW_MS)
    assert not ledger.was_shown(A, 0)
    assert ledger.entries() == []


def test_is_stale_at_the_skew_and_at_the_horizon() -> None:
    ledger = SeenLedger()
    assert not ledger.is_stale(NOW_MS - SKEW, NOW_MS)
    assert ledger.is_stale(NOW_MS - SKEW - 1, NOW_MS)
    # A line from the future is not stale (the verifier refuses it for its own reason).
    assert not ledger.is_stale(NOW_MS + SKEW * 5, NOW_MS)
    ledger = SeenLedger.restore([SeenEntry("", 0, NOW_MS - 5)], NOW_MS)
    assert ledger.horizon_ms == NOW_MS - 5
    assert ledger.is_stale(NOW_MS - 5, NOW_MS)
    assert not ledger.is_stale(NOW_MS - 4, NOW_MS)
    assert ledger.is_new(A, 1, NOW_MS - 4, NOW_MS)
    assert not ledger.is_new(A, 1, NOW_MS - 5, NOW_MS)


def test_was_shown_covers_the_counter_recorded_and_every_one_below() -> None:
    ledger = SeenLedger()
    ledger.record(A, 10, NOW_MS, NOW_MS)
    assert ledger.was_shown(A, 10) and ledger.was_shown(A, 0)
    assert not ledger.was_shown(A, 11)
    assert not ledger.was_shown(B, 10)
    assert not ledger.is_new(A, 10, NOW_MS + 1, NOW_MS)
    assert not ledger.is_new(A, 3, NOW_MS + 1, NOW_MS)
    assert ledger.is_new(A, 11, NOW_MS + 1, NOW_MS)
    assert ledger.is_new(B, 10, NOW_MS + 1, NOW_MS)


# --- record ----------------------------------------------------------------------------------


def test_record_keeps_the_highest_counter_and_the_newest_time_per_sender() -> None:
    ledger = SeenLedger()
    ledger.record(A, 5, NOW_MS, NOW_MS)
    ledger.record(A, 3, NOW_MS + 200, NOW_MS)  # an older counter, signed later (history)
    assert _state(ledger) == {A: (5, NOW_MS + 200)}
    ledger.record(A, 7, NOW_MS - 100, NOW_MS)  # a higher counter, signed earlier
    assert _state(ledger) == {A: (7, NOW_MS + 200)}
    ledger.record(B, 1, NOW_MS, NOW_MS)
    assert _state(ledger) == {A: (7, NOW_MS + 200), B: (1, NOW_MS)}
    assert len(ledger) == 2


def test_take_journal_returns_exactly_the_changes() -> None:
    ledger = SeenLedger()
    assert ledger.take_journal() == []
    ledger.record(A, 5, NOW_MS, NOW_MS)
    ledger.record(A, 5, NOW_MS, NOW_MS)  # nothing new
    ledger.record(A, 4, NOW_MS - 1, NOW_MS)  # nothing new either
    ledger.record(A, 4, NOW_MS + 1, NOW_MS)  # a newer time
    ledger.record(B, 2, NOW_MS, NOW_MS)
    assert ledger.take_journal() == [
        SeenEntry(A, 5, NOW_MS),
        SeenEntry(A, 5, NOW_MS + 1),
        SeenEntry(B, 2, NOW_MS),
    ]
    assert ledger.take_journal() == []
    ledger.record(B, 2, NOW_MS, NOW_MS)
    assert ledger.take_journal() == []
    ledger.record(B, 3, NOW_MS, NOW_MS)
    assert ledger.take_journal() == [SeenEntry(B, 3, NOW_MS)]


# --- restore ---------------------------------------------------------------------------------


def test_restore_applies_the_entries_in_order_and_a_higher_one_wins() -> None:
    entries = [
        SeenEntry(A, 1, NOW_MS - 10),
        SeenEntry(B, 4, NOW_MS - 5),
        SeenEntry(A, 2, NOW_MS - 3),
        SeenEntry(A, 3, NOW_MS - 3),
    ]
    ledger = SeenLedger.restore(entries, NOW_MS)
    assert _state(ledger) == {A: (3, NOW_MS - 3), B: (4, NOW_MS - 5)}
    assert ledger.take_journal() == []  # what was restored is on file already
    assert ledger.horizon_ms == 0


def test_restore_never_lowers_what_was_shown() -> None:
    """A later entry with a lower counter or an older time does not undo a shown line: the file
    only ever grows by the journal, whose entries never go down."""
    entries = [SeenEntry(A, 9, NOW_MS), SeenEntry(A, 2, NOW_MS - 50)]
    ledger = SeenLedger.restore(entries, NOW_MS)
    assert _state(ledger) == {A: (9, NOW_MS)}
    assert not ledger.is_new(A, 5, NOW_MS, NOW_MS)


def test_restore_takes_the_horizon_from_the_entry_without_a_sender() -> None:
    entries = [
        SeenEntry("", 0, NOW_MS - 100),
        SeenEntry(A, 1, NOW_MS),
        SeenEntry("", 0, NOW_MS - 500),  # an older horizon does not lower it
    ]
    ledger = SeenLedger.restore(entries, NOW_MS)
    assert ledger.horizon_ms == NOW_MS - 100
    assert _state(ledger) == {A: (1, NOW_MS)}
    assert ledger.entries() == [SeenEntry("", 0, NOW_MS - 100), SeenEntry(A, 1, NOW_MS)]
    assert not ledger.is_new(B, 1, NOW_MS - 100, NOW_MS)
    assert ledger.is_new(B, 1, NOW_MS - 99, NOW_MS)


def test_restore_prunes_as_of_now_and_keeps_its_bounds() -> None:
    entries = [SeenEntry(A, 1, NOW_MS - SKEW - 1), SeenEntry(B, 1, NOW_MS - SKEW)]
    ledger = SeenLedger.restore(entries, NOW_MS, max_senders=7, skew_ms=SKEW)
    assert _state(ledger) == {B: (1, NOW_MS - SKEW)}
    assert (ledger.max_senders, ledger.skew_ms) == (7, SKEW)
    # A is forgotten, but a replay of its line is too old to pass as new anyway.
    assert not ledger.is_new(A, 1, NOW_MS - SKEW - 1, NOW_MS)


def test_entries_rewrite_the_file_compactly() -> None:
    ledger = SeenLedger(max_senders=2)
    for counter, sender in enumerate((A, B, C, A, D), start=1):
        ledger.record(sender, counter, NOW_MS + counter, NOW_MS)
    compact = ledger.entries()
    again = SeenLedger.restore(compact, NOW_MS, max_senders=2)
    assert again.entries() == compact
    assert again.horizon_ms == ledger.horizon_ms > 0


# --- forgetting ------------------------------------------------------------------------------


def test_prune_forgets_senders_quiet_for_longer_than_the_skew() -> None:
    ledger = SeenLedger()
    ledger.record(A, 1, NOW_MS, NOW_MS)
    ledger.record(B, 1, NOW_MS + 1, NOW_MS)
    ledger.take_journal()
    ledger.prune(NOW_MS + SKEW)
    assert _state(ledger) == {A: (1, NOW_MS), B: (1, NOW_MS + 1)}
    ledger.prune(NOW_MS + SKEW + 1)
    assert _state(ledger) == {B: (1, NOW_MS + 1)}
    ledger.prune(NOW_MS + SKEW + 2)
    assert len(ledger) == 0
    # Forgetting by age moves no horizon and journals nothing: the lines are stale by age.
    assert (ledger.horizon_ms, ledger.take_journal()) == (0, [])
    assert not ledger.is_new(A, 1, NOW_MS, NOW_MS + SKEW + 1)
    assert not ledger.is_new(B, 1, NOW_MS + 1, NOW_MS + SKEW + 2)


def test_past_the_bound_the_oldest_sender_is_forgotten_and_the_horizon_rises() -> None:
    ledger = SeenLedger(max_senders=2)
    ledger.record(A, 7, NOW_MS + 10, NOW_MS)
    ledger.record(B, 3, NOW_MS + 30, NOW_MS)
    ledger.record(C, 5, NOW_MS + 20, NOW_MS)
    assert _state(ledger) == {B: (3, NOW_MS + 30), C: (5, NOW_MS + 20)}
    assert ledger.horizon_ms == NOW_MS + 10
    assert ledger.take_journal() == [
        SeenEntry(A, 7, NOW_MS + 10),
        SeenEntry(B, 3, NOW_MS + 30),
        SeenEntry(C, 5, NOW_MS + 20),
        SeenEntry("", 0, NOW_MS + 10),
    ]
    # A's shown line is not new although A was forgotten; A's next line is.
    assert not ledger.is_new(A, 7, NOW_MS + 10, NOW_MS)
    assert not ledger.is_new(A, 1, NOW_MS + 10, NOW_MS)
    assert ledger.is_new(A, 8, NOW_MS + 11, NOW_MS)


def test_past_the_bound_several_at_once_the_horizon_is_the_newest_forgotten() -> None:
    entries = [SeenEntry(s, 1, NOW_MS + t) for s, t in ((A, 40), (B, 10), (C, 30), (D, 20))]
    ledger = SeenLedger.restore(entries, NOW_MS, max_senders=2)
    assert _state(ledger) == {A: (1, NOW_MS + 40), C: (1, NOW_MS + 30)}
    assert ledger.horizon_ms == NOW_MS + 20
    for sender, offset in ((B, 10), (D, 20)):
        assert not ledger.is_new(sender, 1, NOW_MS + offset, NOW_MS)


def test_the_newly_recorded_sender_may_be_the_one_forgotten() -> None:
    ledger = SeenLedger(max_senders=1)
    ledger.record(A, 1, NOW_MS + 100, NOW_MS)
    ledger.record(B, 1, NOW_MS + 50, NOW_MS)  # a history line, older than A's
    assert _state(ledger) == {A: (1, NOW_MS + 100)}
    assert ledger.horizon_ms == NOW_MS + 50
    assert not ledger.is_new(B, 1, NOW_MS + 50, NOW_MS)


# --- properties ------------------------------------------------------------------------------

# A small skew so that forgetting by age happens within a few steps of the clock.
PROPERTY_SKEW = 1_000
SENDERS = st.sampled_from([A, B, C, D, "SHA256:eeee", "SHA256:ffff"])
# (sender, counter, signed this long before now (negative: in the future), clock step first)
RECORDS = st.lists(
    st.tuples(
        SENDERS,
        st.integers(0, 30),
        st.integers(-PROPERTY_SKEW, 3 * PROPERTY_SKEW),
        st.integers(0, PROPERTY_SKEW),
    ),
    max_size=40,
)


def _replay(
    ledger: SeenLedger, records: list[tuple[str, int, int, int]], check_each: bool = False
) -> tuple[list[tuple[str, int, int]], int]:
    """Record each line at its clock; the lines recorded, and the clock at the end."""
    now, recorded = NOW_MS, []
    for sender, counter, age, step in records:
        now += step
        ledger.record(sender, counter, now - age, now)
        recorded.append((sender, counter, now - age))
        assert len(ledger) <= ledger.max_senders
        if check_each:
            for line in recorded:
                assert not ledger.is_new(*line, now), line
    return recorded, now


@settings(max_examples=300, deadline=None)
@given(max_senders=st.integers(1, 4), records=RECORDS, later=st.integers(0, 5 * PROPERTY_SKEW))
def test_no_recorded_line_is_ever_new_again(
    max_senders: int, records: list[tuple[str, int, int, int]], later: int
) -> None:
    ledger = SeenLedger(max_senders=max_senders, skew_ms=PROPERTY_SKEW)
    recorded, now = _replay(ledger, records, check_each=True)
    for line in recorded:
        assert not ledger.is_new(*line, now + later), line
    ledger.prune(now + later)
    for line in recorded:
        assert not ledger.is_new(*line, now + later), line
    # The bound costs no line signed after every recorded one its "new".
    if recorded:
        fresh = max(now + later, *(ts + 1 for _, _, ts in recorded))
        top = max(counter for _, counter, _ in recorded)
        assert ledger.horizon_ms <= max(ts for _, _, ts in recorded)
        for sender, _, _ in recorded:
            assert ledger.is_new(sender, top + 1, fresh, now + later)


@settings(max_examples=300, deadline=None)
@given(
    max_senders=st.integers(1, 4),
    records=RECORDS,
    takes=st.lists(st.booleans(), max_size=40),
    later=st.integers(0, 2 * PROPERTY_SKEW),
)
def test_the_journal_restores_a_ledger_that_agrees(
    max_senders: int, records: list[tuple[str, int, int, int]], takes: list[bool], later: int
) -> None:
    ledger = SeenLedger(max_senders=max_senders, skew_ms=PROPERTY_SKEW)
    journal: list[SeenEntry] = []
    now, recorded = NOW_MS, []
    for index, (sender, counter, age, step) in enumerate(records):
        now += step
        ledger.record(sender, counter, now - age, now)
        recorded.append((sender, counter, now - age))
        if index < len(takes) and takes[index]:
            journal += ledger.take_journal()
    journal += ledger.take_journal()
    now += later
    restored = SeenLedger.restore(journal, now, max_senders, PROPERTY_SKEW)
    assert restored.take_journal() == []
    assert len(restored) <= max_senders
    for line in recorded:
        assert restored.is_new(*line, now) == ledger.is_new(*line, now) is False, line
    if recorded:
        fresh = max(now, *(ts + 1 for _, _, ts in recorded))
        top = max(counter for _, counter, _ in recorded)
        for sender, _, _ in recorded:
            assert restored.is_new(sender, top + 1, fresh, now)
            assert ledger.is_new(sender, top + 1, fresh, now)
