"""The search index timer: a backlog is indexed a slice per pass until a slice is not full (lines
that arrived meanwhile wait for the interval), then once per interval."""

from __future__ import annotations

import asyncio

import pytest

from tlschat.server.search_index import SearchIndexTimer


class SlicedStore:
    def __init__(self, slices: list[int]) -> None:
        self.slices = slices
        self.calls = 0

    def index_for_search(self) -> int:
        self.calls += 1
        if not self.slices:
            return 0
        slice_ = self.slices.pop(0)
        if slice_ < 0:
            raise OSError("disk I/O error")
        return slice_


def run_for(loop: asyncio.AbstractEventLoop, seconds: float) -> None:
    loop.call_later(seconds, loop.stop)
    loop.run_forever()


def test_a_backlog_goes_a_slice_per_pass_then_the_timer_waits_its_interval() -> None:
    loop = asyncio.new_event_loop()
    store = SlicedStore([2000, 2000, 5])
    timer = SearchIndexTimer(store, loop, interval=0.2)  # type: ignore[arg-type]
    timer.start()
    run_for(loop, 0.05)
    assert store.calls == 3  # two full slices, then one that was not: the backlog is done
    run_for(loop, 0.25)
    assert store.calls == 4
    timer.stop()
    run_for(loop, 0.3)
    assert store.calls == 4
    loop.close()


def test_a_failing_pass_is_logged_and_tried_again(caplog: pytest.LogCaptureFixture) -> None:
    loop = asyncio.new_event_loop()
    store = SlicedStore([-1, 3])
    timer = SearchIndexTimer(store, loop, interval=0.05)  # type: ignore[arg-type]
    timer.start()
    run_for(loop, 0.12)
    assert store.calls >= 3  # the failure, then the slice of 3, then nothing left
    assert store.slices == []
    assert "Search indexing failed: OSError: disk I/O error" in caplog.text
    timer.stop()
    loop.close()
