"""/search in the stores: SQLite's FTS5 index kept in step with the history (appends, retention's
deletes), built for a database made before it, and never read as query syntax; the cluster
replica's substring match."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from tlschat.store import Retention, SQLiteStore, StoredMessage
from tlschat.store.memory import MemoryStore
from tlschat.store.search import MAX_RESULTS
from tlschat.store.sqlite_search import INDEX_SLICE, fts_query

FP = "SHA256:" + "A" * 43
NOW_MS = 1_700_000_000_000


def line(room: str, n: int, body: str, encrypted: str = "", ts_ms: int = NOW_MS) -> StoredMessage:
    return StoredMessage(
        room=room,
        sender=FP,
        nick="alice",
        key_der=b"\x30\x2a" + bytes(42),
        counter=n,
        timestamp_ms=ts_ms + n,
        body="" if encrypted else body,
        signature=b"" if encrypted else bytes(64),
        encrypted=encrypted,
    )


def counters(messages: list[StoredMessage]) -> list[int]:
    return [m.counter for m in messages]


@pytest.fixture
def store() -> Iterator[SQLiteStore]:
    store = SQLiteStore(":memory:")
    yield store
    store.close()


def test_finds_every_word_newest_first_in_the_given_rooms(store: SQLiteStore) -> None:
    store.append_message(line("#a", 1, "the deploy failed"))
    store.append_message(line("#a", 2, "Deploy is green now"))
    store.append_message(line("#b", 3, "deploy in #b"))
    store.append_message(line("#a", 4, "lunch?"))
    assert counters(store.search_messages(["#a"], "deploy", 50)) == [2, 1]
    assert counters(store.search_messages(["#a", "#b"], "DEPLOY", 50)) == [3, 2, 1]
    assert counters(store.search_messages(["#a"], "deploy green", 50)) == [2]
    assert store.search_messages(["#c"], "deploy", 50) == []
    assert store.search_messages([], "deploy", 50) == []
    assert counters(store.search_messages(["#a", "#b"], "deploy", 2)) == [3, 2]


def test_accents_and_case_are_folded(store: SQLiteStore) -> None:
    store.append_message(line("#a", 1, "Café au lait"))
    assert counters(store.search_messages(["#a"], "cafe", 50)) == [1]


def test_encrypted_lines_are_never_found(store: SQLiteStore) -> None:
    store.append_message(line("#a", 1, "", encrypted='{"session":"s","ct":"secretword"}'))
    store.append_message(line("#a", 2, "secretword in the clear"))
    assert counters(store.search_messages(["#a"], "secretword", 50)) == [2]
    assert store.search_messages(["#a"], "session", 50) == []


def test_results_are_bounded(store: SQLiteStore) -> None:
    for n in range(1, MAX_RESULTS + 20):
        store.append_message(line("#a", n, f"spam {n}"))
    found = store.search_messages(["#a"], "spam", 1000)
    assert len(found) == MAX_RESULTS
    assert found[0].counter == MAX_RESULTS + 19


@pytest.mark.parametrize(
    "query",
    ['"', "*", "NEAR(", "NEAR(a b", "a AND", "OR", "-x", "body:x", "^", "(", ")", "x" * 5000],
)
def test_hostile_queries_are_words_never_syntax(store: SQLiteStore, query: str) -> None:
    store.append_message(line("#a", 1, "plain words only"))
    assert store.search_messages(["#a"], query, 50) == []


def test_punctuation_in_a_line_is_found_as_words(store: SQLiteStore) -> None:
    store.append_message(line("#a", 1, 'call NEAR(x) with "quotes" and a*b'))
    assert counters(store.search_messages(["#a"], "NEAR(", 50)) == [1]
    assert counters(store.search_messages(["#a"], '"quotes"', 50)) == [1]
    assert counters(store.search_messages(["#a"], "a*b", 50)) == [1]


def test_query_is_quoted_word_by_word() -> None:
    assert fts_query('say "hi" NEAR(') == '"say" """hi""" "near("'


def test_retention_deletes_leave_the_index(store: SQLiteStore) -> None:
    for n in range(1, 6):
        store.append_message(line("#a", n, f"needle {n}"))
    store.enforce_retention(Retention(keep_per_room=2), NOW_MS / 1000)
    assert counters(store.search_messages(["#a"], "needle", 50)) == [5, 4]
    store.append_message(line("#a", 6, "needle old", ts_ms=NOW_MS - 10 * 86400_000))
    store.enforce_retention(Retention(max_age=86400), NOW_MS / 1000)
    assert counters(store.search_messages(["#a"], "needle", 50)) == [5, 4]
    rows = store._db.execute("SELECT count(*) FROM messages_fts WHERE messages_fts MATCH 'needle'")
    assert rows.fetchone()[0] == 2
    store._db.execute("INSERT INTO messages_fts (messages_fts) VALUES ('integrity-check')")


def test_size_bound_deletes_leave_the_index(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "chat.db")
    for n in range(1, 400):
        store.append_message(line("#a", n, f"needle {n} " + "x" * 500))
    store.enforce_retention(Retention(max_bytes=256 * 1024), NOW_MS / 1000)
    kept = store.recent_messages("#a", 1000)
    assert 0 < len(kept) < 399
    found = store.search_messages(["#a"], "needle", 1000)
    assert counters(found) == counters(kept[::-1])[:MAX_RESULTS]
    store._db.execute("INSERT INTO messages_fts (messages_fts) VALUES ('integrity-check')")
    store.close()


def test_a_database_from_before_search_is_indexed_on_open(tmp_path: Path) -> None:
    path = tmp_path / "chat.db"
    SQLiteStore(path).close()
    db = sqlite3.connect(path)
    for name in ("messages_fts_delete", "messages_fts_update"):
        db.execute(f"DROP TRIGGER {name}")
    db.execute("DROP TABLE messages_fts")
    db.execute("DROP TABLE search_progress")
    db.execute(
        "INSERT INTO messages (room, sender, nick, key_der, counter, timestamp_ms, body,"
        " signature) VALUES ('#a', ?, 'alice', x'00', 1, 1, 'older history', x'00')",
        (FP,),
    )
    db.commit()
    db.close()
    store = SQLiteStore(path)
    assert counters(store.search_messages(["#a"], "history", 50)) == [1]
    store.append_message(line("#a", 2, "newer history"))
    assert counters(store.search_messages(["#a"], "history", 50)) == [2, 1]
    store.close()
    reopened = SQLiteStore(path)  # not indexed twice
    assert counters(reopened.search_messages(["#a"], "history", 50)) == [2, 1]
    reopened.close()


def test_memory_replica_matches_substrings_of_its_capped_history() -> None:
    store = MemoryStore(history_limit=3)
    store.append_message(line("#a", 1, "deploy one"))
    store.append_message(line("#a", 2, "", encrypted='{"session":"s","ct":"deploy"}'))
    for n in range(3, 6):
        store.append_message(line("#a", n, f"Redeploy {n}"))
    store.append_message(line("#b", 6, "deploy b"))
    # The first line is past the cap; "deploy" matches inside "Redeploy", in any case.
    assert counters(store.search_messages(["#a"], "DEPLOY", 50)) == [5, 4, 3]
    assert counters(store.search_messages(["#a", "#b"], "deploy 5", 50)) == [5]
    assert counters(store.search_messages(["#a", "#b"], "deploy", 2)) == [6, 5]
    assert store.search_messages(["#a"], "   ", 50) == []


OLD_INSERT_TRIGGER = """
CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
    INSERT INTO messages_fts (rowid, body) VALUES (new.id, new.body);
END;
"""


def test_a_database_indexed_row_by_row_is_taken_as_indexed(tmp_path: Path) -> None:
    """Before bulk indexing a trigger indexed each row as it was inserted: such a database is
    indexed to its last row, so nothing is indexed twice."""
    path = tmp_path / "chat.db"
    SQLiteStore(path).close()
    db = sqlite3.connect(path)
    db.execute("DROP TABLE search_progress")
    db.executescript(OLD_INSERT_TRIGGER)
    for counter in (1, 2):
        db.execute(
            "INSERT INTO messages (room, sender, nick, key_der, counter, timestamp_ms, body,"
            " signature) VALUES ('#a', ?, 'alice', x'00', ?, 1, 'indexed history', x'00')",
            (FP, counter),
        )
    db.commit()
    db.close()
    store = SQLiteStore(path)
    assert store._db.execute("SELECT indexed_upto FROM search_progress").fetchone() == (2,)
    assert store.index_for_search() == 0
    store.append_message(line("#a", 3, "newer history"))
    assert counters(store.search_messages(["#a"], "history", 50)) == [3, 2, 1]
    store._db.execute("INSERT INTO messages_fts (messages_fts) VALUES ('integrity-check')")
    triggers = {
        str(row[0])
        for row in store._db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
    }
    assert "messages_fts_insert" not in triggers
    store.close()


def test_lines_are_indexed_in_bulk_and_searches_see_every_stored_line(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "chat.db")
    for n in range(1, 6):
        store.append_message(line("#a", n, f"needle {n}"))
    store.commit()
    # Nothing indexed yet: the bulk insert is the server's timer's, or the search's own.
    assert store._db.execute("SELECT indexed_upto FROM search_progress").fetchone() == (0,)
    assert counters(store.search_messages(["#a"], "needle", 50)) == [5, 4, 3, 2, 1]
    assert store.index_for_search() == 0
    for n in range(6, 9):
        store.append_message(line("#a", n, f"needle {n}"))
    assert store.index_for_search() == 3
    assert store.index_for_search() == 0
    store._db.execute("INSERT INTO messages_fts (messages_fts) VALUES ('integrity-check')")
    store.close()


def test_rows_deleted_or_edited_before_they_are_indexed_leave_the_index_whole(
    tmp_path: Path,
) -> None:
    store = SQLiteStore(tmp_path / "chat.db")
    for n in range(1, 4):
        store.append_message(line("#a", n, f"needle {n}"))
    store.index_for_search()
    for n in range(4, 8):
        store.append_message(line("#a", n, f"needle {n}"))
    store.commit()
    # An indexed row and a row not yet indexed, deleted; another not yet indexed, edited.
    store._db.execute("DELETE FROM messages WHERE counter IN (2, 5)")
    store._db.execute("UPDATE messages SET body = 'haystack 6' WHERE counter = 6")
    store._db.execute("UPDATE messages SET body = 'haystack 1' WHERE counter = 1")
    assert counters(store.search_messages(["#a"], "needle", 50)) == [7, 4, 3]
    assert counters(store.search_messages(["#a"], "haystack", 50)) == [6, 1]
    store._db.execute("INSERT INTO messages_fts (messages_fts) VALUES ('integrity-check')")
    store.close()


def test_a_backlog_is_indexed_in_slices(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "chat.db")
    total = INDEX_SLICE + 10
    for n in range(1, total + 1):
        store.append_message(line("#a", n, f"word{n}"))
    assert store.index_for_search() == INDEX_SLICE
    assert store.index_for_search() == 10
    assert counters(store.search_messages(["#a"], f"word{total}", 50)) == [total]
    store.close()


def matches(store: SQLiteStore, word: str) -> int:
    rows = store._db.execute(
        "SELECT count(*) FROM messages_fts WHERE messages_fts MATCH ?", (word,)
    )
    return int(rows.fetchone()[0])


def index_bytes(store: SQLiteStore) -> int:
    return int(store._db.execute("SELECT sum(length(block)) FROM messages_fts_data").fetchone()[0])


def test_many_passes_that_each_expire_an_indexed_line_leave_the_index_whole(
    tmp_path: Path,
) -> None:
    # A quiet server whose history ages out: each retention pass deletes a line or two and
    # nothing new is indexed between passes. With an 'optimize' after each such pass, SQLite
    # 3.40 reports the database malformed after about 1,240 of them.
    store = SQLiteStore(tmp_path / "chat.db")
    passes = 1500
    for n in range(1, passes + 101):  # line n is signed n seconds after NOW_MS
        store.append_message(line("#a", n, f"needle {n}", ts_ms=NOW_MS + n * 999))
    while store.index_for_search():
        pass
    retention = Retention(max_age=60.0)
    for n in range(1, passes + 1):  # at pass n, line n is the one just past max_age
        assert store.enforce_retention(retention, NOW_MS / 1000 + n + 60.5) == 1
    store._db.execute("INSERT INTO messages_fts (messages_fts) VALUES ('integrity-check')")
    assert matches(store, "needle") == 100
    found = store.search_messages(["#a"], "needle", MAX_RESULTS)
    assert counters(found) == list(range(passes + 100, passes + 100 - MAX_RESULTS, -1))
    store.close()


def test_the_index_stays_within_a_few_times_its_least_size_as_history_turns_over(
    tmp_path: Path,
) -> None:
    # Deleted lines leave markers that go only as FTS5 merges segments: the index grows with
    # what is deleted until a merge takes it back. Here it peaks at 3.6 times its least size;
    # with FTS5's automatic merging turned off (automerge 0: only its crisis merges) 9.8.
    store = SQLiteStore(tmp_path / "chat.db")
    keep = 3000
    retention = Retention(keep_per_room=keep)
    largest = 0
    # Eight times the kept history, 100 lines indexed at a time and a retention pass every 200.
    for n in range(1, 8 * keep + 1):
        store.append_message(line("#a", n, f"word{n % 1500} word{n % 7} common"))
        if n % 100 == 0:
            store.index_for_search()
        if n % 200 == 0:
            store.enforce_retention(retention, NOW_MS / 1000)
            if n > keep:
                largest = max(largest, index_bytes(store))
    store._db.execute("INSERT INTO messages_fts (messages_fts) VALUES ('integrity-check')")
    assert matches(store, "common") == keep
    assert counters(store.search_messages(["#a"], "word1499", 50)) == [23999, 22499]  # not 20999
    store._db.execute("INSERT INTO messages_fts (messages_fts) VALUES ('optimize')")
    least = index_bytes(store)
    assert largest <= 5 * least, (largest, least)
    store.close()


def test_an_index_damaged_by_many_optimize_runs_is_rebuilt_on_open(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # What older versions did on a quiet server: after each pass that expired a line, an
    # 'optimize' with little new to merge, until SQLite (3.40 here) found the index malformed.
    path = tmp_path / "chat.db"
    store = SQLiteStore(path)
    for n in range(1, 1501):
        store.append_message(line("#a", n, f"needle {n}"))
    while store.index_for_search():
        pass
    db = store._db
    damaged = False
    for n in range(1, 1401):
        try:
            db.execute("DELETE FROM messages WHERE counter = ?", (n,))
            db.execute("INSERT INTO messages_fts (messages_fts) VALUES ('optimize')")
        except sqlite3.DatabaseError:
            damaged = True
            break
    if not damaged:
        pytest.skip(f"SQLite {sqlite3.sqlite_version} does not damage an index that way")
    store.close()
    again = SQLiteStore(path)
    assert "rebuilding it from the history" in caplog.text
    again._db.execute("INSERT INTO messages_fts (messages_fts) VALUES ('integrity-check')")
    remaining = again._db.execute("SELECT count(*) FROM messages").fetchone()[0]
    assert matches(again, "needle") == remaining > 0
    # Nothing indexed twice: the rebuilt index's progress covers every row.
    again.append_message(line("#a", 1501, "needle 1501"))
    assert again.index_for_search() == 1
    assert matches(again, "needle") == remaining + 1
    again._db.execute("INSERT INTO messages_fts (messages_fts) VALUES ('integrity-check')")
    again.close()
