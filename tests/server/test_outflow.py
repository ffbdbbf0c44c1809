"""The outflow: one write per client per pass, after the pass's lines are committed, and a
commit that fails reaches no one."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from tlschat.server.outflow import Outflow
from tlschat.store.base import HistoryNotCommitted

LINES = (("SHA256:alice", 7), ("SHA256:bob", 3))


class FakeStore:
    def __init__(self, log: list[str], fail: bool = False) -> None:
        self.log = log
        self.fail = fail

    def commit(self) -> None:
        self.log.append("commit")
        if self.fail:
            self.fail = False
            raise HistoryNotCommitted(LINES, "OperationalError: disk I/O error")


@dataclass
class FakeWriter:
    session_id: int
    log: list[str]
    holds: int = 0
    dropped: list[str] = field(default_factory=list)

    def flush(self) -> None:
        self.log.append(f"write {self.session_id}")

    def queued(self) -> int:
        return self.holds

    def drop_slow_reader(self, why: str) -> None:
        self.dropped.append("slow")

    def drop_unsent(self, why: str) -> None:
        self.dropped.append(why)


def outflow(store: FakeStore, writers: dict[int, FakeWriter], forgotten: list[object]) -> Outflow:
    loop = asyncio.new_event_loop()
    return Outflow(loop, store, writers.get, lambda: 1000, forgotten.append)  # type: ignore[arg-type]


def test_a_pass_is_committed_once_before_any_write_and_each_client_written_once() -> None:
    log: list[str] = []
    writers = {n: FakeWriter(n, log) for n in (1, 2)}
    flow = outflow(FakeStore(log), writers, [])
    for writer in (writers[1], writers[2], writers[1]):
        flow.soon(writer)
    flow.loop.call_soon(flow.loop.stop)
    flow.loop.run_forever()
    assert log == ["commit", "write 1", "write 2"]
    flow.loop.close()


def test_a_failed_commit_drops_every_waiting_client_unsent_and_forgets_its_lines() -> None:
    log: list[str] = []
    writers = {n: FakeWriter(n, log) for n in (1, 2)}
    forgotten: list[object] = []
    flow = outflow(FakeStore(log, fail=True), writers, forgotten)
    flow.soon(writers[1])
    flow.soon(writers[2])
    flow.flush_all()
    assert log == ["commit"]  # nothing written
    assert forgotten == [LINES]
    assert writers[1].dropped == writers[2].dropped == ["the server could not store the history"]
    # The next pass goes on as usual.
    flow.soon(writers[1])
    flow.flush_all()
    assert log == ["commit", "commit", "write 1"]
    flow.loop.close()


def test_past_the_budget_the_biggest_holders_are_shed_first() -> None:
    log: list[str] = []
    writers = {1: FakeWriter(1, log, holds=700), 2: FakeWriter(2, log, holds=200)}
    flow = outflow(FakeStore(log), writers, [])
    flow.account(writers[2], 200)
    assert flow.queued_total == 200
    flow.account(writers[1], 700)
    assert writers[1].dropped == [] and flow.queued_total == 900
    writers[1].holds = 900
    flow.account(writers[1], 900)  # 1,100 > 1,000: the biggest goes
    assert writers[1].dropped == ["slow"] and writers[2].dropped == []
    assert flow.queued_total == 200
    flow.forget(2)
    assert flow.queued_total == 0
    flow.loop.close()
