"""The checkpoint timer: a checkpoint per interval, each on the timer's own thread, never on the
event loop's; a failing one is logged and tried again; stopping closes the connection there."""

from __future__ import annotations

import asyncio
import threading

import pytest

from tlschat.server.checkpoints import CheckpointTimer
from tlschat.store.sqlite_checkpoint import CheckpointResult


class RecordingCheckpointer:
    def __init__(self, failures: int = 0) -> None:
        self.threads: list[threading.Thread] = []
        self.failures = failures
        self.closed_on: threading.Thread | None = None

    def checkpoint(self) -> CheckpointResult:
        self.threads.append(threading.current_thread())
        if self.failures:
            self.failures -= 1
            raise OSError("disk I/O error")
        return CheckpointResult(log_frames=len(self.threads), copied_frames=len(self.threads))

    def close(self) -> None:
        self.closed_on = threading.current_thread()


async def run_timer(checkpointer: RecordingCheckpointer, seconds: float) -> CheckpointTimer:
    timer = CheckpointTimer(checkpointer, asyncio.get_running_loop(), interval=0.05)  # type: ignore[arg-type]
    timer.start()
    await asyncio.sleep(seconds)
    await timer.stop()
    return timer


def test_checkpoints_run_each_interval_on_one_thread_that_is_not_the_loops() -> None:
    checkpointer = RecordingCheckpointer()
    timer = asyncio.run(run_timer(checkpointer, 0.4))
    assert 3 <= len(checkpointer.threads) <= 9
    assert len(set(checkpointer.threads)) == 1
    assert checkpointer.threads[0] is not threading.main_thread()
    assert checkpointer.closed_on is checkpointer.threads[0]
    assert timer.last == CheckpointResult(len(checkpointer.threads), len(checkpointer.threads))


def test_a_failing_checkpoint_is_logged_and_the_next_one_still_runs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    checkpointer = RecordingCheckpointer(failures=1)
    timer = asyncio.run(run_timer(checkpointer, 0.3))
    assert "Checkpoint failed: OSError: disk I/O error" in caplog.text
    assert len(checkpointer.threads) >= 2
    assert timer.last is not None and timer.last.complete


def test_no_checkpoint_starts_after_stop() -> None:
    checkpointer = RecordingCheckpointer()

    async def stop_then_wait() -> int:
        timer = CheckpointTimer(checkpointer, asyncio.get_running_loop(), interval=0.05)  # type: ignore[arg-type]
        timer.start()
        await asyncio.sleep(0.12)
        await timer.stop()
        ran = len(checkpointer.threads)
        await asyncio.sleep(0.2)
        return ran

    ran = asyncio.run(stop_then_wait())
    assert ran >= 1
    assert len(checkpointer.threads) == ran
