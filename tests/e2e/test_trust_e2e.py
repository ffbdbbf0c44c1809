"""End to end: what a ✓ promises, and that every line sent gets its outcome.

A line captured on one server and replayed by another (live and as history), or replayed by the
same network after the victim's client restarted, never gets a ✓. A burst piped into a client
arrives whole and in order; a muted user's line is marked not sent, with the reason, and the
client exits non-zero naming it. Real server and client processes; the replaying server is a
minimal tlschat server written here on the sans-IO protocol library, serving one connection.
"""

from __future__ import annotations

import base64
import re
import socket
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from tlschat.chat.frames import decode_frame, encode_frame
from tlschat.protocol import (
    ConnectionConfig,
    DataReceived,
    HandshakeComplete,
    IdentityKey,
    ProtocolError,
    ServerConnection,
)

from .harness import (
    CLOCK,
    HOST,
    TEST_ONLY_SERVER_CERTIFICATE,
    TEST_ONLY_SERVER_KEY,
    Harness,
    stop,
)

REPLAYER_KEY, REPLAYER_CERTIFICATE = TEST_ONLY_SERVER_KEY, TEST_ONLY_SERVER_CERTIFICATE
NOT_DELIVERED = 4
SERVE_TIMEOUT = 20.0


def captured_lines(data_dir: Path) -> list[dict[str, Any]]:
    """Every room line server ``data_dir`` stored, as it relays them: what a member recorded."""
    network = IdentityKey.load(data_dir / "server_key.pem").fingerprint
    with sqlite3.connect(data_dir / "chat.db") as db:
        rows = db.execute(
            "SELECT room, sender, nick, key_der, counter, timestamp_ms, body, signature "
            "FROM messages ORDER BY id"
        ).fetchall()
    return [
        {
            "type": "message",
            "from": nick,
            "key": base64.b64encode(key_der).decode(),
            "network": network,
            "target": room,
            "sender": sender,
            "counter": counter,
            "ts": timestamp_ms,
            "body": body,
            "sig": base64.b64encode(signature).decode(),
        }
        for room, sender, nick, key_der, counter, timestamp_ms, body, signature in rows
    ]


class ReplayingServer:
    """Serves one client: welcome, #general with ``history``, then each of ``live``."""

    def __init__(
        self,
        key: IdentityKey,
        certificate: bytes,
        history: list[dict[str, Any]],
        live: list[dict[str, Any]],
    ) -> None:
        self.key, self.certificate = key, certificate
        self.history, self.live = history, live
        self.problem: BaseException | None = None
        self._listener = socket.create_server((HOST, 0))
        self._listener.settimeout(SERVE_TIMEOUT)
        self.port: int = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._run, name="replayer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            sock, _ = self._listener.accept()
            with sock:
                sock.settimeout(SERVE_TIMEOUT)
                self._serve(sock)
        except (OSError, ProtocolError) as error:
            self.problem = error
        finally:
            self._listener.close()

    def _serve(self, sock: socket.socket) -> None:
        config = ConnectionConfig(identity=self.key, certificate_der=self.certificate)
        connection = ServerConnection(config, time.monotonic())
        deadline = time.monotonic() + SERVE_TIMEOUT
        while time.monotonic() < deadline:
            data = sock.recv(65536)
            if not data:
                return
            for event in connection.receive_data(data):
                if isinstance(event, HandshakeComplete):
                    self.client = event.peer
                elif (
                    isinstance(event, DataReceived) and decode_frame(event.data)["type"] == "hello"
                ):
                    for frame in self._script():
                        connection.send_data(encode_frame(frame))
            sock.sendall(connection.data_to_send())

    def _script(self) -> list[dict[str, Any]]:
        member = {"nick": "victim", "fingerprint": self.client.fingerprint, "away": ""}
        frames: list[dict[str, Any]] = [
            {"type": "welcome", "server": "replayer", "nick": "victim", "operator": False},
            {"type": "joined", "room": "#general", "topic": "", "members": [member]},
        ]
        if self.history:
            frames.append({"type": "history", "room": "#general", "messages": self.history})
        frames += self.live
        frames.append({"type": "notice", "text": "end of replay"})
        return frames

    def join(self) -> None:
        self._thread.join(SERVE_TIMEOUT)
        assert self.problem is None, self.problem


def _line(text: str) -> re.Pattern[str]:
    return re.compile(rf"^{CLOCK} .*{re.escape(text)}")


def _shown_to_the_victim(harness: Harness, text: str) -> tuple[Path, Path, dict[str, Any]]:
    """On server A, alice says ``text`` and the victim's client shows it ✓; both quit and A
    stops. A's data dir, the victim's home, and the line as A relayed it (what anyone in the
    room could have recorded)."""
    data_dir = harness.root / "server-a"
    server = harness.server(data_dir)
    alice = harness.joined_client("alice", server.port)
    victim_home = harness.home("victim")
    victim = harness.joined_client("victim", server.port, home=victim_home)
    alice.send(text)
    victim.wait_for_line(re.compile(rf"^{CLOCK} ✓ <alice> {re.escape(text)}$"))
    alice.close_stdin()
    victim.close_stdin()
    assert alice.wait_exit() == 0 and victim.wait_exit() == 0
    [captured] = captured_lines(data_dir)
    assert stop(server) == 0
    return data_dir, victim_home, captured


def test_a_line_replayed_by_another_server_never_shows_verified(harness: Harness) -> None:
    _, victim_home, captured = _shown_to_the_victim(harness, "meet me at noon")

    # Server B, another key: the victim accepts it on first use (--plain), as a user might.
    replayer = ReplayingServer(REPLAYER_KEY, REPLAYER_CERTIFICATE, [captured], [captured])
    victim = harness.client("victim", replayer.port, home=victim_home)
    victim.wait_for_line(_line("end of replay"))
    replayed = [line for line in victim.snapshot() if "meet me at noon" in line]
    assert replayed == [
        line
        for line in replayed
        if "✗ UNVERIFIED (signed for another network) <alice> meet me at noon" in line
    ]
    assert len(replayed) == 2  # once as history, once live: neither with a ✓
    victim.close_stdin()
    assert victim.wait_exit() == 0
    replayer.join()


def test_a_line_replayed_after_the_victims_restart_is_not_new(harness: Harness) -> None:
    data_dir, victim_home, captured = _shown_to_the_victim(harness, "the door code is 4711")

    # The same network (its key) replays the line live to the restarted client: its home
    # remembers what it showed on this network.
    key = IdentityKey.load(data_dir / "server_key.pem")
    certificate = (data_dir / "server_cert.der").read_bytes()
    replayer = ReplayingServer(key, certificate, [], [captured])
    victim = harness.client("victim", replayer.port, home=victim_home)
    victim.wait_for_line(_line("end of replay"))
    [live] = [line for line in victim.snapshot() if "the door code is 4711" in line]
    assert re.match(
        rf"^{CLOCK} ✗ UNVERIFIED \(replayed: shown before\) <alice> the door code is 4711$", live
    )
    victim.close_stdin()
    assert victim.wait_exit() == 0
    replayer.join()

    # As history it is what it is: an old line, shown as such, once.
    replayer = ReplayingServer(key, certificate, [captured], [captured])
    victim = harness.client("victim", replayer.port, home=victim_home)
    victim.wait_for_line(_line("end of replay"))
    shown = [line for line in victim.snapshot() if "the door code is 4711" in line]
    assert [line.split("] ", 1)[1] for line in shown] == ["✓ <alice> the door code is 4711"]
    assert victim.find(_line("Last 1 messages of #general:")) is not None
    victim.close_stdin()
    assert victim.wait_exit() == 0
    replayer.join()


def test_a_piped_burst_arrives_whole_and_in_order(harness: Harness) -> None:
    server = harness.server()
    bob = harness.joined_client("bob", server.port)
    alice = harness.client("alice", server.port)
    alice.wait_joined()
    lines = [f"burst line {n:02d}" for n in range(16)]
    for text in lines:
        alice.send(text)
    alice.close_stdin()
    # Paced at the server's 2 per second after its burst of 10: about 3 s.
    assert alice.wait_exit(timeout=60) == 0
    for text in lines:
        bob.wait_for_line(re.compile(rf"^{CLOCK} ✓ <alice> {re.escape(text)}$"))
    received = [line for line in bob.snapshot() if "burst line" in line]
    assert [line.rsplit(" ", 3)[-3:] for line in received] == [text.split() for text in lines]
    delivered = [line for line in alice.snapshot() if "burst line" in line]
    assert len(delivered) == 16 and all(" sent <alice> burst line" in line for line in delivered)
    assert "not sent" not in alice.output() and "flood control" not in alice.output()


def test_a_muted_users_line_is_marked_not_sent_and_the_exit_code_says_so(
    harness: Harness,
) -> None:
    operator_home = harness.home("op")
    server = harness.server(extra=("--operator", harness.key_fingerprint(operator_home)))
    op = harness.joined_client("op", server.port, home=operator_home)
    mallory = harness.joined_client("mallory", server.port)
    op.send("/mute mallory")
    op.wait_for_line(_line("muted mallory"))
    mallory.wait_for_line(_line("you were muted"))
    mallory.send("can anyone hear me")
    mallory.close_stdin()
    assert mallory.wait_exit() == NOT_DELIVERED
    refused = re.compile(
        rf"^{CLOCK} !!! not sent \(message rejected: you are muted\): <mallory> can anyone hear me$"
    )
    assert mallory.find(refused) is not None, mallory.describe()
    assert "'can anyone hear me': message rejected: you are muted" in mallory.output("stderr")
    assert "can anyone hear me" not in op.output()
