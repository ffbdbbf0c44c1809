"""The ingress figure of issue 16: how the load client counts the messages a server accepted,
and the fan-out tables with and without it (an old results JSON has none)."""

from __future__ import annotations

import asyncio
import json
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from benchmarks import report
from benchmarks.__main__ import main as benchmarks_main
from benchmarks.load import (
    LineClient,
    Phase,
    SenderState,
    Target,
    TlschatClient,
    Worker,
    WorkerSpec,
)
from benchmarks.runner import ingress_source
from tlschat.protocol import IdentityKey


def open_phase() -> Phase:
    """A phase whose window holds every count these tests make (nothing is timed)."""
    now = time.monotonic()
    return Phase("fixed", 1.0, 256, now - 3600.0, now + 3600.0)


def worker_of(kind: str) -> Worker:
    send_times: defaultdict[int, float] = defaultdict(float)
    return Worker(WorkerSpec(Target(kind, 0), [0, 1, 2], [0]), send_times)


def test_ingress_source_is_tlschats_confirmation_else_what_the_watcher_saw() -> None:
    assert ingress_source("tlschat", None) == "confirmed"
    assert ingress_source("tlschat-uvloop", None) == "confirmed"
    assert ingress_source("ssl", None) == "watched"
    assert ingress_source("ngircd", None) == "watched"
    # A room of other clients (benchmarks.encrypted_load) reads its own frames, not 'sent'.
    assert ingress_source(
        "tlschat", lambda worker, index, mode: LineClient(worker, index, mode)
    ) == ("watched")


def test_a_relayed_line_is_counted_once_at_the_senders_watcher() -> None:
    async def scenario() -> Worker:
        worker = worker_of("tcp")  # the ssl relay without TLS: the same lines
        sender, watcher, other = (LineClient(worker, index, "room") for index in range(3))
        worker.senders[0] = SenderState(0, sender)
        worker.watchers[0] = watcher
        worker.phase = open_phase()
        for receiver, seq in ((watcher, 0), (other, 0), (watcher, 1), (other, 1), (watcher, 1)):
            worker.on_message(receiver, 0, seq)
        return worker

    worker = asyncio.run(scenario())
    assert worker.delivered == 5  # every receipt is a delivery ...
    assert worker.watched == 2  # ... but lines 0 and 1 were each relayed once


def test_tlschat_counts_each_sent_confirmation_once_and_only_in_the_window() -> None:
    async def scenario() -> Worker:
        worker = worker_of("tlschat")
        client = TlschatClient(worker, 0, "room", IdentityKey.generate("ed25519"), "")
        client._frame(b'{"type":"sent","target":"#general","counter":5}')  # before the window
        worker.phase = open_phase()
        for counter in (6, 7, 7):  # 7 confirmed twice: the server answers a repeat again
            client._frame(b'{"type":"sent","target":"#general","counter":%d}' % counter)
        return worker

    worker = asyncio.run(scenario())
    assert worker.confirmed == 2


def results_json(ingress: bool) -> dict[str, Any]:
    def fanout(kind: str, accepted: float) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "n": 10,
            "connected": 10,
            "offered_deliveries_per_s": 1800.0,
            "delivered_per_s": 1800.0,
            "per_server_cpu_s": 15000.0,
            "cpu_us_per_msg": 66.7,
            "p50_ms": 1.4,
            "p99_ms": 5.4,
            "limited_by": "offered load",
        }
        if ingress:
            entry |= {"accepted_per_s": 200.0, "accepted_per_server_cpu_s": accepted}
        return entry

    return {
        "mode": "quick",
        "machine": {"nproc": 2, "cpu_model": "Test CPU"},
        "settings": {"repeat": 1, "seconds": 2.0},
        "crypto_floor": {},
        "results": {
            "fanout/fixed/10/tlschat": fanout("tlschat", 1666.0),
            "fanout/fixed/10/ssl": fanout("ssl", 5555.0),
        },
    }


def table_row(text: str, kind: str) -> list[str]:
    return next(line.split() for line in text.splitlines() if line.split()[:2] == ["10", kind])


def markdown_cells(text: str, kind: str) -> dict[str, str]:
    rows = [line.strip("| ").split(" | ") for line in text.splitlines() if line.startswith("| ")]
    header = next(row for row in rows if row[0] == "N")
    return dict(zip(header, next(row for row in rows if row[:2] == ["10", kind]), strict=True))


@pytest.mark.parametrize("ingress", [True, False])
def test_fanout_tables_show_ingress_or_a_dash(ingress: bool) -> None:
    data = results_json(ingress)
    row = table_row(report.table(data), "tlschat")
    # N, server, offered, delivered, per CPU-s, CPU us, vs ssl, p50, p99, acc./s, acc./CPU-s
    assert row[9:11] == (["200", "1,666"] if ingress else ["-", "-"])
    cells = markdown_cells(report.markdown(data), "ssl")
    assert cells["accepted/s"] == ("200" if ingress else "-")
    assert cells["accepted per server CPU-s"] == ("5,555" if ingress else "-")


def test_from_prints_an_old_results_file_without_ingress(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "quick-old.json"
    path.write_text(json.dumps(results_json(ingress=False)))
    assert benchmarks_main(["--from", str(path)]) == 0
    assert table_row(capsys.readouterr().out, "tlschat")[9:11] == ["-", "-"]
    assert benchmarks_main(["--from", str(path), "--markdown"]) == 0
    assert markdown_cells(capsys.readouterr().out, "tlschat")["accepted/s"] == "-"
