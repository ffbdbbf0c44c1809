"""One chaos scenario, start to end: a cluster, clients, traffic, one fault, the checker's verdict.

The timeline: receivers and senders join; senders type one unique line each per 1/rate seconds
for ``traffic_seconds``; the fault is injected ``fault_at`` seconds in and healed ``duration``
later; then at most ``settle_seconds`` for outcomes and deliveries still on their way; then every
client is told to quit (SIGTERM) and Redis's history is read.
"""

from __future__ import annotations

import contextlib
import json
import signal
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import redis

from tlschat.broker.redis import PREFIX

from ..e2e.harness import EXIT_WAIT, WAIT, Client
from .checker import Observation, ReceiverLog, ScenarioResult, SenderLog, body, check
from .cluster import ChaosCluster
from .faults import Fault
from .scenarios import Profile, Scenario

ROOM = "#general"
POLL = 0.25  # between looks at the clients' output while settling
TAIL = 15  # lines of each process's output in a failure's description


@dataclass
class Sender:
    client: Client
    typed: list[str] = field(default_factory=list)
    gone: bool = False

    def type_line(self, seq: int) -> None:
        if self.gone:
            return
        text = body(self.client.name, seq)
        try:
            self.client.send(text)
        except (OSError, ValueError):  # its stdin is closed: the client has exited
            self.gone = True
            return
        self.typed.append(text)


class FaultTimeline(threading.Thread):
    """Injects ``fault`` at ``start + at`` and heals it ``fault.duration`` later, noting when."""

    def __init__(self, fault: Fault, cluster: ChaosCluster, start: float, at: float) -> None:
        super().__init__(name="fault-timeline", daemon=True)
        self.fault, self.cluster, self.start_time, self.at = fault, cluster, start, at
        self.events: list[str] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._sleep_until(self.start_time + self.at)
            self._note("inject")
            self.fault.inject(self.cluster)
            self._note("injected")
            self._sleep_until(time.monotonic() + self.fault.duration)
            self._note("heal")
            self.fault.heal(self.cluster)
            self._note("healed")
        except BaseException as error:  # re-raised in the scenario's thread by finish()
            self.error = error

    def finish(self, timeout: float) -> None:
        self.join(timeout)
        if self.is_alive():
            raise AssertionError(f"the fault did not finish within {timeout:g} s: {self.events}")
        if self.error is not None:
            raise self.error

    def _note(self, what: str) -> None:
        self.events.append(f"{time.monotonic() - self.start_time:.1f} s: {what}")

    @staticmethod
    def _sleep_until(moment: float) -> None:
        time.sleep(max(0.0, moment - time.monotonic()))


@dataclass
class ScenarioRun:
    profile: str
    scenario: str
    fault: str
    result: ScenarioResult
    timeline: list[str]
    seconds: float
    tracebacks: list[str]
    logs: str = ""
    tails: dict[str, list[str]] = field(default_factory=dict, repr=False)

    def describe(self) -> str:
        """Everything a failing test should say: figures, examples, timeline, output tails."""
        figures = {k: v for k, v in vars(self.result).items() if k not in ("examples", "scenario")}
        parts = [
            f"{self.scenario} ({self.fault}), {self.profile} profile, {self.seconds:.0f} s",
            "violations: " + ("; ".join(self.result.violations()) or "none"),
            f"figures: {json.dumps(figures)}",
            f"examples: {json.dumps(self.result.examples)}",
            f"fault timeline (from the first line typed): {self.timeline}",
        ]
        if self.tracebacks:
            parts.append(f"tracebacks in: {self.tracebacks}")
        if self.logs:
            parts.append(f"every process's output: {self.logs}")
        for name, tail in self.tails.items():
            parts.append(f"--- {name}, last lines:\n" + "\n".join(tail))
        return "\n".join(parts)


def run_scenario(
    profile: Profile,
    scenario: Scenario,
    root: Path,
    logs: Path | None = None,
    tree: Path | None = None,
) -> ScenarioRun:
    """Run ``scenario`` under ``root`` (its processes' files); every process ends before this
    returns. With ``logs``, every process's output is kept there; with ``tree``, the processes
    run that checkout's tlschat."""
    began = time.monotonic()
    cluster = ChaosCluster.start(root, profile.servers, scenario.proxied, tree)
    try:
        receivers, senders = _join(profile, cluster)
        timeline = _traffic_with_fault(profile, scenario, cluster, senders)
        _settle(scenario, senders, receivers, profile.settle_seconds)
        clients = [*receivers, *(sender.client for sender in senders)]
        exited_early = {c.name: c.proc.returncode for c in clients if not c.running}
        stop_marks = _stop(clients)
        observation = _observe(
            scenario, senders, receivers, stop_marks, _stored_bodies(cluster), exited_early
        )
        run = ScenarioRun(
            profile.name,
            scenario.name,
            scenario.describe(),
            check(observation),
            timeline,
            time.monotonic() - began,
            cluster.harness.tracebacks(),
            tails=_tails(cluster),
        )
        if logs is not None:
            cluster.save_logs(logs / scenario.name)
            run.logs = str(logs / scenario.name)
        return run
    finally:
        cluster.close()


def _join(profile: Profile, cluster: ChaosCluster) -> tuple[list[Client], list[Sender]]:
    """Receivers and senders, started together, each in #general before any line is typed."""
    receivers = [
        cluster.client(f"r{index}", home) for index, home in enumerate(profile.receiver_homes)
    ]
    senders = [
        Sender(cluster.client(f"s{index}", home)) for index, home in enumerate(profile.sender_homes)
    ]
    for client in [*receivers, *(sender.client for sender in senders)]:
        client.wait_joined()
    return receivers, senders


def _traffic_with_fault(
    profile: Profile, scenario: Scenario, cluster: ChaosCluster, senders: Sequence[Sender]
) -> list[str]:
    """Type the traffic while the fault happens on its own thread; the fault's timeline."""
    start = time.monotonic()
    timeline = None
    if scenario.fault is not None:
        timeline = FaultTimeline(scenario.fault, cluster, start, profile.fault_at)
        timeline.start()
    interval = 1.0 / profile.lines_per_second
    for step in range(round(profile.traffic_seconds * profile.lines_per_second)):
        for position, sender in enumerate(senders):
            # Spread over the interval, so that the cluster sees a steady stream, not bursts.
            due = start + (step + position / len(senders)) * interval
            time.sleep(max(0.0, due - time.monotonic()))
            sender.type_line(step)
    if timeline is None:
        return []
    timeline.finish(WAIT + timeline.fault.duration)
    return timeline.events


def _settle(
    scenario: Scenario, senders: Sequence[Sender], receivers: Sequence[Client], seconds: float
) -> None:
    """Wait, at most ``seconds``, for the outcomes and deliveries still on their way."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check(_observe(scenario, senders, receivers)).settled():
            return
        time.sleep(POLL)


def _observe(
    scenario: Scenario,
    senders: Sequence[Sender],
    receivers: Sequence[Client],
    stop_marks: dict[str, int] | None = None,
    stored: list[str] | None = None,
    exited_early: dict[str, int] | None = None,
) -> Observation:
    sender_logs = []
    for sender in senders:
        lines = sender.client.snapshot()
        mark = len(lines) if stop_marks is None else stop_marks[sender.client.name]
        sender_logs.append(SenderLog(sender.client.name, lines, list(sender.typed), mark))
    return Observation(
        scenario.name,
        sender_logs,
        [ReceiverLog(client.name, client.snapshot()) for client in receivers],
        stored,
        exited_early or {},
    )


def _stop(clients: Sequence[Client]) -> dict[str, int]:
    """Tell every client to quit (SIGTERM, as a user would) and wait for it; where each one's
    output stood before: what it prints after is its own giving up, not an answer."""
    marks = {client.name: client.mark() for client in clients}
    for client in clients:
        if client.running:
            client.signal(signal.SIGTERM)
    for client in clients:
        try:
            client.wait_exit(EXIT_WAIT)
        except AssertionError:
            client.kill()  # the checker sees what it printed; a hang is not this harness's
    return marks


def _stored_bodies(cluster: ChaosCluster) -> list[str] | None:
    """The bodies in the room's history stream in Redis, oldest first (None if unreadable)."""
    if not cluster.redis.running:
        return None
    connection = cluster.redis.client()
    try:
        # redis-py types a reply as the union of every reply; XRANGE's is (id, fields) pairs.
        entries = cast(
            list[tuple[bytes, dict[bytes, bytes]]],
            connection.xrange(f"{PREFIX}history:{ROOM}"),
        )
    except redis.RedisError:
        return None
    finally:
        with contextlib.suppress(redis.RedisError):
            connection.close()
    return [str(json.loads(fields[b"m"])["body"]) for _, fields in entries]


def _tails(cluster: ChaosCluster) -> dict[str, list[str]]:
    """The end of each server's log and each client's warnings."""
    tails = {}
    for process in cluster.harness.processes:
        stream = "stderr" if isinstance(process, Client) else "stdout"
        tails[f"{process.name} {stream}"] = process.snapshot(stream)[-TAIL:]
    return tails
