"""The README's cluster section, run as written right after its quick start (issue 20, points 1
and 2), in a temporary directory that stands for the clone: a server alone ran there on the
quick start's data dir and someone chatted; then every command of the section, in order. Only
the ports are changed (to free ones, so that tests never take a real server's), the virtualenv's
`tlschat` is this interpreter's, and Redis runs in the foreground (--daemonize no) so that the
test can end it."""

from __future__ import annotations

import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from ..e2e.harness import CLOCK, EXIT_WAIT, HOST, WAIT, Client, Harness, Server, stop
from .harness import JOINED, POLL, free_port

ROOT = Path(__file__).resolve().parents[2]
PORTS = ("8443", "9443", "9444", "9445", "6380")


def section_blocks(title: str) -> list[list[str]]:
    """The commands of each bash block of the README's section ``title``, comments dropped."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, re.DOTALL)
    commands = [[line.split(" #", 1)[0].strip() for line in b.splitlines()] for b in blocks]
    return [[command for command in block if command] for block in commands]


def wait_for_redis(process: subprocess.Popen[bytes], port: int) -> None:
    deadline = time.monotonic() + WAIT
    while True:
        try:
            with redis.Redis(host=HOST, port=port, retry=Retry(NoBackoff(), 0)) as probe:
                if probe.ping():
                    return
        except redis.exceptions.ConnectionError:
            pass
        assert process.poll() is None and time.monotonic() < deadline, "no redis-server"
        time.sleep(POLL)


def test_the_cluster_section_runs_as_written_after_the_quick_start(harness: Harness) -> None:
    clone = harness.root
    ports = {port: str(free_port()) for port in PORTS}

    def as_run(command: str) -> str:
        command = command.replace(".venv/bin/tlschat ", f"{sys.executable} -m tlschat.cli ")
        command = command.replace("--daemonize yes", "--daemonize no")
        return re.sub(r"\b(8443|9443|9444|9445|6380)\b", lambda m: ports[m.group(1)], command)

    # The quick start: `make server` (tlschat server, data dir `data`), and alice said something.
    alone = Server(
        "quick-start",
        shlex.split(as_run(".venv/bin/tlschat server --port 8443")),
        harness.env,
        clone,
    )
    harness.processes.append(alone)
    alice_home = harness.home("alice")
    alice = harness.joined_client("alice", alone.port, home=alice_home)
    alice.send("said before the cluster")
    alice.wait_for_line("sent <alice> said before the cluster")
    alice.close_stdin()
    assert alice.wait_exit() == 0, alice.describe()
    assert stop(alone, signal.SIGINT) == 0, alone.describe()  # "stop the quick-start server"

    servers_block, client_block = section_blocks("A cluster of servers (Redis)")
    redis_server: subprocess.Popen[bytes] | None = None
    try:
        for index, command in enumerate(map(as_run, servers_block)):
            if command.startswith("redis-server "):
                redis_server = subprocess.Popen(
                    shlex.split(command), cwd=clone, stdin=subprocess.DEVNULL
                )
                wait_for_redis(redis_server, int(ports["6380"]))
            elif command.endswith("&"):
                argv = shlex.split(command.removesuffix("&"))
                server = Server(f"node{index}", argv, harness.env, clone)
                harness.processes.append(server)
                server.wait_for_line(JOINED)
                # The history was carried over before: nothing to warn about.
                assert server.find("the cluster does not show") is None, server.describe()
            else:
                done = subprocess.run(
                    command,
                    shell=True,
                    cwd=clone,
                    env=harness.env,
                    capture_output=True,
                    text=True,
                    timeout=WAIT,
                )
                assert done.returncode == 0, (command, done.stdout, done.stderr)
                if "cluster-import" in command:
                    assert done.stdout.startswith("Carried 1 history line of data/chat.db")

        # In another terminal, alice (her home from the quick start), in line mode for the test.
        [client_command] = client_block
        argv = [*shlex.split(as_run(client_command)), "--plain", "--home", str(alice_home)]
        client = Client("alice-cluster", argv, harness.env, clone)
        harness.processes.append(client)
        client.wait_for_line(re.compile(rf"^{CLOCK} ✓ <alice> said before the cluster"))
        client.close_stdin()
        assert client.wait_exit(EXIT_WAIT) == 0, client.describe()
    finally:
        if redis_server is not None:
            redis_server.kill()
            redis_server.wait(EXIT_WAIT)

    # Redis kept its files in redis-data/, which git ignores; none were left in the clone.
    assert (clone / "redis-data" / "appendonlydir").is_dir()
    assert not (clone / "appendonlydir").exists() and not (clone / "dump.rdb").exists()
    assert "/redis-data/" in (ROOT / ".gitignore").read_text().splitlines()
