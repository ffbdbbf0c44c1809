"""``python -m benchmarks.attack``: the attacks of issue 13 against a tlschat tree, measured.

Each attack gets a fresh server (``python -m tlschat.cli server`` run from the tree, with its
default settings, umask 022 and a soft open-file limit of 1,024), a legitimate user in #general
from 127.0.0.1 pinging it every 50 ms, and an attacker process from other 127.0.N.x addresses
(benchmarks/attack_clients.py, attack_admission.py). Meanwhile the server's RSS, CPU, log, data
directory and database are read every 0.25 s. Attacks:

  parked   150 sessions from 3 addresses each write 60 /part + /join pairs, then never read
  flood    4 sessions write 20 /part + /join pairs at a time, dropping the answers unread
  slots    one key from 20 addresses holds what sessions it can; sessions that never say hello
  replay   one recorded ClientHello replayed on new connections from one /24
  keys     RSA-3072 identities with e = 65537 and with a 3,070-bit e
  history  60 fresh keys from one address send long lines (history_max_bytes at its minimum,
           where the tree has it)
  files    the data directory's modes under umask 022; a server key made 0644

With --before-tree the same attacks run first against the tree before issue 13 (a git worktree
of BEFORE_COMMIT, made there when missing); the table puts the runs side by side. Results go to
benchmarks/results/attack-DATE.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import multiprocessing
import multiprocessing.connection
import multiprocessing.process
import os
import re
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tlschat.server.config import MIN_HISTORY_MAX_BYTES

from . import attack_report
from .__main__ import RESULTS, machine_info
from .attack_admission import ConnectionSlots, ExpensiveKey, HandshakeReplay
from .attack_clients import (
    ROOM,
    Attack,
    AttackTarget,
    HistoryFlood,
    JoinPartFlood,
    ParkedOutput,
    attack_worker,
    legit_worker,
    new_key,
)
from .attack_link import LEGIT_SOURCE, LegitFigures, LinkFailed, open_link, wait_until
from .attack_monitor import DATABASE, Monitor, ServerFigures
from .servers import HOST, REPO, Server, wait_for_log

BEFORE_COMMIT = "f146120"  # the last commit before issue 13's work
ATTACKS: dict[str, type[Attack]] = {
    attack.name: attack
    for attack in (
        ParkedOutput,
        JoinPartFlood,
        ConnectionSlots,
        HandshakeReplay,
        ExpensiveKey,
        HistoryFlood,
    )
}
ORDER = (*ATTACKS, "files")
# The usual default soft limit of a login shell or a systemd service: the server may raise it
# to the hard limit itself (the tree after issue 13 does).
SERVER_SOFT_FILE_LIMIT = 1024
SAMPLE_INTERVAL = 0.25
READY_TIMEOUT = 180.0
RUN_TIMEOUT = 240.0


@dataclass
class Tree:
    path: Path
    label: str
    commit: str
    server_flags: frozenset[str]

    @classmethod
    def inspect(cls, path: Path, label: str) -> Tree:
        def git(*command: str) -> str:
            result = subprocess.run(
                ["git", "-C", str(path), *command], capture_output=True, text=True, check=False
            )
            return result.stdout.strip()

        commit = git("rev-parse", "--short", "HEAD") or "unknown"
        if git("status", "--porcelain", "--", "tlschat"):
            commit += " + uncommitted tlschat/ changes"
        usage = subprocess.run(
            [sys.executable, "-m", "tlschat.cli", "server", "--help"],
            cwd=path,
            env=cls.environment(path),
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return cls(path, label, commit, frozenset(re.findall(r"--[a-z0-9-]+", usage)))

    @staticmethod
    def environment(path: Path) -> dict[str, str]:
        """Python finds this tree's tlschat before the one installed in the venv."""
        return {**os.environ, "PYTHONPATH": str(path)}


def ensure_before_tree(path: Path) -> None:
    if not path.exists():
        subprocess.run(
            ["git", "-C", str(REPO), "worktree", "add", "--detach", str(path), BEFORE_COMMIT],
            check=True,
        )


def _usual_file_limit() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > SERVER_SOFT_FILE_LIMIT:
        resource.setrlimit(resource.RLIMIT_NOFILE, (SERVER_SOFT_FILE_LIMIT, hard))


def start_server(tree: Tree, directory: Path, data_dir: Path, extra: list[str]) -> Server:
    """The tree's server on a free port, default settings but ``extra``; once it listens."""
    directory.mkdir(parents=True, exist_ok=True)
    log_path = directory / "server.log"
    command = [sys.executable, "-m", "tlschat.cli", "server", "--host", HOST, "--port", "0"]
    command += ["--data-dir", str(data_dir), *extra]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            cwd=tree.path,
            env=Tree.environment(tree.path),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            umask=0o022,
            preexec_fn=_usual_file_limit,
        )
    server = Server("tlschat", process, 0, directory, log_path)
    server.port = int(wait_for_log(server, r"\[LISTENING\] Server on [^\s:]+:(\d+)").group(1))
    return server


# ----- measuring the server -----


# ----- the worker processes -----


@dataclass
class Worker:
    name: str
    process: multiprocessing.process.BaseProcess
    pipe: multiprocessing.connection.Connection

    @classmethod
    def spawn(cls, name: str, target: Callable[..., None], *args: Any) -> Worker:
        context = multiprocessing.get_context("fork")
        mine, theirs = context.Pipe()
        process = context.Process(target=target, args=(*args, theirs), daemon=True)
        process.start()
        return cls(name, process, mine)

    def expect(
        self, kind: str, timeout: float, meanwhile: Callable[[], None] = lambda: None
    ) -> Any:
        """The payload of the next message, which must be ``kind``; ``meanwhile`` runs between
        polls."""
        deadline = time.monotonic() + timeout
        while not self.pipe.poll(SAMPLE_INTERVAL):
            meanwhile()
            if not self.process.is_alive():
                code = self.process.exitcode
                raise RuntimeError(f"{self.name}: exited (code {code}) before {kind!r}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name}: no {kind!r} within {timeout:g} s")
        got, payload = self.pipe.recv()
        if got != kind:
            raise RuntimeError(f"{self.name}: {payload}" if got == "error" else f"got {got!r}")
        return payload

    @property
    def pid(self) -> int:
        assert self.process.pid is not None, "started in spawn"
        return self.process.pid

    def send(self, *message: Any) -> None:
        with contextlib.suppress(OSError):
            self.pipe.send(message)

    def stop(self) -> None:
        self.send("close")
        self.process.join(timeout=10)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()


# ----- one attack -----


@dataclass
class AttackRun:
    attack: str
    server: ServerFigures | None = None
    legit: LegitFigures | None = None
    figures: Any = None  # the attack's own dataclass
    notes: dict[str, Any] = field(default_factory=dict)
    error: str = ""


def server_flags(tree: Tree, attack: str) -> tuple[list[str], dict[str, Any]]:
    """Flags beyond the defaults, only where the tree has them; and what they set."""
    if attack == "history" and "--history-max-bytes" in tree.server_flags:
        return ["--history-max-bytes", str(MIN_HISTORY_MAX_BYTES)], {
            "history_max_bytes": MIN_HISTORY_MAX_BYTES
        }
    return [], {}


def stored_lines(database: Path) -> int:
    with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as db:
        return int(db.execute("SELECT COUNT(*) FROM messages").fetchone()[0])


def run_attack(tree: Tree, attack: str, scale: float, directory: Path) -> AttackRun:
    extra, notes = server_flags(tree, attack)
    run = AttackRun(attack, notes=notes)
    data_dir = directory / "data"
    try:
        server = start_server(tree, directory, data_dir, extra)
    except RuntimeError as error:
        run.error = str(error)
        return run
    workers: list[Worker] = []
    try:
        legit = Worker.spawn("legitimate user", legit_worker, server.port)
        workers.append(legit)
        legit.expect("ready", READY_TIMEOUT)
        target = AttackTarget(server.port, server.pid, server.log_path, scale)
        attacker = Worker.spawn(attack, attack_worker, ATTACKS[attack], target)
        workers.append(attacker)
        login_at = attacker.expect("ready", READY_TIMEOUT)
        client_pids = [os.getpid(), legit.pid, attacker.pid]
        monitor = Monitor(server, data_dir, client_pids)
        legit.send("go", login_at)
        attacker.send("go")
        run.figures = attacker.expect("result", RUN_TIMEOUT, monitor.sample)
        legit.send("stop")
        run.legit = legit.expect("result", 30, monitor.sample)
        run.server = monitor.figures()
        if attack == "history" and server.alive():
            run.notes["lines_kept"] = stored_lines(data_dir / DATABASE)
    except RuntimeError as error:
        run.error = str(error)
    finally:
        for worker in workers:
            worker.stop()
        server.stop()
    return run


# ----- files -----


@dataclass
class FilesFigures:
    umask: str
    modes: dict[str, str]  # data directory, database files and key, as the server left them
    key_0644: str  # what the server did with its key made 0644


async def _say_once(port: int) -> None:
    """One stored line, so that chat.db and its WAL have been written."""
    link = await open_link(port, LEGIT_SOURCE, new_key(), "filer")
    link.send_frames([link.say(ROOM, "a line")])
    await wait_until(lambda: link.counts["sent"] > 0, 10.0)
    link.close()


def run_files(tree: Tree, directory: Path) -> AttackRun:
    data_dir = directory / "data"
    try:
        server = start_server(tree, directory / "first", data_dir, [])
    except RuntimeError as error:
        return AttackRun("files", error=str(error))
    try:
        asyncio.run(_say_once(server.port))
        names = ("", DATABASE, DATABASE + "-wal", DATABASE + "-shm", "server_key.pem")
        modes = {
            (name or "data directory"): oct((data_dir / name).stat().st_mode & 0o777)
            for name in names
            if (data_dir / name).exists()
        }
    except (LinkFailed, OSError) as error:
        return AttackRun("files", error=f"files: {error}")
    finally:
        server.stop()
    (data_dir / "server_key.pem").chmod(0o644)
    restart = directory / "key-0644"
    try:
        start_server(tree, restart, data_dir, []).stop()
        verdict = "accepted: the server started"
    except RuntimeError:
        lines = (restart / "server.log").read_text(errors="replace").splitlines() or ["-"]
        said = next((line for line in lines if "permissions" in line.lower()), lines[-1])
        verdict = f"refused: {said.strip().replace(str(data_dir), 'DATA_DIR')}"
    return AttackRun("files", figures=FilesFigures("022", modes, verdict))


# ----- the whole run -----


def run_tree(
    tree: Tree, attacks: list[str], scale: float, record: dict[str, Any], save: Callable[[], None]
) -> None:
    """Every attack against one tree, into ``record``; saved after each."""
    with tempfile.TemporaryDirectory(prefix="tlschat-attack-") as scratch:
        for attack in attacks:
            print(
                f"[{time.strftime('%H:%M:%S')}] {tree.label} ({tree.commit}): {attack}", flush=True
            )
            started = time.monotonic()
            directory = Path(scratch) / attack
            if attack == "files":
                run = run_files(tree, directory)
            else:
                run = run_attack(tree, attack, scale, directory)
            if run.error:
                print(f"  FAILED: {run.error}", flush=True)
            record["attacks"][attack] = {
                **dataclasses.asdict(run),
                "elapsed_s": time.monotonic() - started,
            }
            save()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.attack",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--tree", type=Path, default=REPO, help="tlschat tree (default: this one)")
    parser.add_argument("--label", help="its name in the table (default: after, or its directory)")
    parser.add_argument(
        "--before-tree",
        type=Path,
        help=f"first run the tree before issue 13 here (a worktree of {BEFORE_COMMIT}, "
        "made if missing)",
    )
    parser.add_argument("--only", default=",".join(ORDER), help="comma-separated attacks")
    parser.add_argument("--seconds", type=float, default=1.0, help="scale of every timed window")
    parser.add_argument("--out", type=Path, help="JSON file (default benchmarks/results/...)")
    parser.add_argument("--from", dest="source", type=Path, help="only print this JSON's table")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.source:
        print(attack_report.table(json.loads(args.source.read_text())))
        return 0
    attacks = [attack for attack in args.only.split(",") if attack]
    unknown = sorted(set(attacks) - set(ORDER))
    if unknown:
        sys.exit(f"unknown attacks {', '.join(unknown)}; choose from {', '.join(ORDER)}")
    trees = []
    if args.before_tree:
        ensure_before_tree(args.before_tree)
        trees.append(Tree.inspect(args.before_tree.resolve(), "before"))
    label = args.label or ("after" if args.before_tree else args.tree.resolve().name)
    trees.append(Tree.inspect(args.tree.resolve(), label))
    out = args.out or RESULTS / f"attack-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}.json"
    data: dict[str, Any] = {
        "mode": "attack",
        "machine": machine_info(),
        "settings": {
            "seconds_scale": args.seconds,
            "attacks": attacks,
            "server_soft_file_limit": SERVER_SOFT_FILE_LIMIT,
        },
        "runs": [],
    }

    def save() -> None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(data, indent=1, default=str))

    started = time.monotonic()
    for tree in trees:
        record = {"label": tree.label, "tree": str(tree.path), "commit": tree.commit, "attacks": {}}
        data["runs"].append(record)
        run_tree(tree, attacks, args.seconds, record, save)
    data["elapsed_s"] = time.monotonic() - started
    save()
    print()
    print(attack_report.table(data))
    print(f"\nJSON: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
