"""End to end: the server learns only metadata (issue 14). Real clients exchange end-to-end
encrypted room lines and private messages that carry a canary, a unique string; it appears
nowhere on the server side: not in its logs (``--verbose``), not in any file of its data
directory, not in its process's memory while it runs, and not in any frame it decodes or
encodes once the channel layer is removed (a server run in this process, its connections
watched). The cluster's Redis is checked in tests/cluster/test_e2ee_cluster_e2e.py.

Each test has its positive control, so that it cannot pass by looking in the wrong place: a
plain room line with a second canary is found in the same places (files, memory, frames), and
the recipients print the encrypted canary text, decrypted.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import secrets
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest

from tlschat.chat.frames import decode_frame
from tlschat.protocol import DataReceived, Event, ServerConnection
from tlschat.protocol.connection import MESSAGE_LENGTH_BYTES
from tlschat.server.app import ChatService
from tlschat.server.config import ServerSettings

from .harness import HOST, WAIT, Client, Harness, stop
from .test_chat_features_e2e import quit_cleanly
from .test_e2ee_e2e import Join, event, joiner, received, second_device, sent

# /proc/PID/mem is read this much at a time; successive reads overlap by the longest needle.
CHUNK = 8 * 1024 * 1024
# A Python server maps far more than this: a scan that read less looked in the wrong place.
MIN_SCANNED = 16 * 1024 * 1024
# Kernel pages that cannot be read through /proc/PID/mem.
UNREADABLE_MAPPINGS = ("[vvar]", "[vvar_vclock]", "[vsyscall]")


def canaries() -> tuple[str, str]:
    """The secret (only ever sent encrypted) and the control (sent in the clear)."""
    return f"CANARY-{secrets.token_hex(12)}", f"CONTROL-{secrets.token_hex(12)}"


def forms(text: str) -> dict[str, bytes]:
    """The bytes ``text`` could be found as: UTF-8 (also how CPython keeps an ASCII str),
    UTF-16 and UTF-32 (how it keeps a str with wider characters), and base64, standard and
    URL-safe, at each of the three alignments (only the characters that depend on ``text``
    alone)."""
    data = text.encode()
    found = {
        "utf-8": data,
        "utf-16": text.encode("utf-16-le"),
        "utf-32": text.encode("utf-32-le"),
    }
    for pad in range(3):
        encoded = base64.b64encode(bytes(pad) + data)
        first, last = -(-8 * pad // 6), 8 * (pad + len(data)) // 6
        inner = encoded[first:last]
        found[f"base64+{pad}"] = inner
        found[f"base64url+{pad}"] = inner.translate(bytes.maketrans(b"+/", b"-_"))
    return found


def found_in(data: bytes, text: str) -> list[str]:
    """The forms of ``text`` that ``data`` holds."""
    return [name for name, needle in forms(text).items() if needle in data]


def files_under(directory: Path) -> dict[Path, bytes]:
    """Every file under ``directory`` (database, its -wal and -shm, keys, anything), as bytes."""
    return {path: path.read_bytes() for path in sorted(directory.rglob("*")) if path.is_file()}


def where(files: dict[Path, bytes], text: str) -> dict[str, list[str]]:
    return {str(path): hits for path, data in files.items() if (hits := found_in(data, text))}


@dataclass
class MemoryScan:
    """What a scan of a process's memory found, and how much it read."""

    scanned: int
    hits: dict[str, list[str]]


def scan_memory(pid: int, *texts: str) -> MemoryScan:
    """Every readable mapping of process ``pid`` (a child of this one: ptrace access is
    allowed), searched for each form of each of ``texts``. Regions that fail to read (guard
    pages, mappings that went away meanwhile) are skipped."""
    needles = {(text, name): needle for text in texts for name, needle in forms(text).items()}
    overlap = max(len(needle) for needle in needles.values())
    hits: dict[str, set[str]] = {text: set() for text in texts}
    scanned = 0
    with open(f"/proc/{pid}/maps", encoding="ascii") as maps_file:
        maps = maps_file.read().splitlines()
    with open(f"/proc/{pid}/mem", "rb", buffering=0) as memory:
        for mapping in maps:
            fields = mapping.split()
            if "r" not in fields[1] or (len(fields) > 5 and fields[5] in UNREADABLE_MAPPINGS):
                continue
            start, end = (int(address, 16) for address in fields[0].split("-"))
            for offset in range(start, end, CHUNK):
                try:
                    memory.seek(offset)
                    data = memory.read(min(CHUNK + overlap, end - offset))
                except (OSError, OverflowError, ValueError):
                    break
                scanned += min(CHUNK, len(data))
                for (text, name), needle in needles.items():
                    if needle in data:
                        hits[text].add(name)
    return MemoryScan(scanned, {text: sorted(names) for text, names in hits.items()})


# ----- the exchange -----


def everyone(port: int) -> dict[str, int]:
    return dict.fromkeys(("alice", "bob", "carol"), port)


@dataclass
class Exchanged:
    alice: Client
    bob: Client
    carol: Client


def exchange(
    harness: Harness,
    ports: dict[str, int],
    homes: dict[str, Path],
    secret: str,
    control: str,
    join: Join,
) -> Exchanged:
    """alice (an operator), bob and carol, each through ``ports[nick]``: a plain line with
    ``control`` in #general, then, in #vault made end-to-end encrypted, room lines and an
    action with ``secret``, and private messages with ``secret`` each way round. Each recipient
    prints each decrypted; the control arrives verified and not encrypted. bob has a second
    device, offline all along: the server keeps what is sent to it."""
    phone = second_device(harness, homes["bob"], "bob-phone")
    quit_cleanly(join("bob", ports["bob"], phone))
    alice, bob, carol = (join(nick, ports[nick], homes[nick]) for nick in ("alice", "bob", "carol"))
    plain = f"in the clear: {control}"
    alice.send(plain)
    for reader in (bob, carol):
        line = event(reader, kind="message", nick="alice", text=plain)
        assert line["verified"] is True and "encrypted" not in line, line

    for member in (alice, bob, carol):
        member.send("/join #vault")
        event(member, kind="joined", room="#vault")
    for member in (alice, bob):
        event(member, kind="join", nick="carol", room="#vault")
    alice.send("/encrypt #vault")
    for member in (alice, bob, carol):
        event(member, kind="notice", text="#vault is now end-to-end encrypted (by alice)")

    room = {"alice": f"the vault code is {secret}", "bob": f"{secret} it is, said bob"}
    members = {"alice": alice, "bob": bob, "carol": carol}
    for nick, text in room.items():
        members[nick].send(text)
        sent(members[nick], "message", text)
    carol.send(f"/me hides {secret}")
    sent(carol, "action", f"hides {secret}")
    for nick, text in room.items():
        for reader in members.values():
            if reader.name != nick:
                assert received(reader, "message", nick, text)["room"] == "#vault"
    for reader in (alice, bob):
        received(reader, "action", "carol", f"hides {secret}")

    for sender, recipient in (("alice", "bob"), ("bob", "carol"), ("carol", "alice")):
        text = f"privately, {sender} to {recipient}: {secret}"
        members[sender].send(f"/msg {recipient} {text}")
        sent(members[sender], "private", text)
        received(members[recipient], "private", sender, text)
    return Exchanged(alice, bob, carol)


# ----- a server process: its logs, its files, its memory -----


def test_the_canary_is_nowhere_in_the_servers_logs_files_or_memory(harness: Harness) -> None:
    secret, control = canaries()
    homes = {nick: harness.home(nick) for nick in ("alice", "bob", "carol")}
    data_dir = harness.root / "server-data"
    server = harness.server(
        data_dir, extra=("--verbose", "--operator", harness.key_fingerprint(homes["alice"]))
    )
    chat = exchange(harness, everyone(server.port), homes, secret, control, joiner(harness))

    # While the server runs, with everything relayed: its memory.
    memory = scan_memory(server.pid, secret, control)
    assert memory.scanned >= MIN_SCANNED, memory.scanned
    assert memory.hits[control], "control: the plain line should be in the server's memory"
    assert not memory.hits[secret], f"the canary is in the server's memory as {memory.hits}"
    # And its files as they are now (the database's write-ahead log included).
    files = files_under(data_dir)
    assert any(path.name.startswith("chat.db") for path in files), sorted(files)
    assert where(files, control), "control: the plain line should be in the database files"
    assert not where(files, secret), where(files, secret)

    # After it stopped (the log checkpointed into chat.db), its files and its whole log.
    quit_cleanly(chat.alice, chat.bob, chat.carol)
    assert stop(server) == 0, server.describe()
    files = files_under(data_dir)
    assert where(files, control), "control: the plain line should be in chat.db"
    # What was scanned holds the encrypted lines: the room's history, and the private messages
    # kept for bob's offline device.
    with contextlib.closing(sqlite3.connect(data_dir / "chat.db")) as db:
        history = db.execute("SELECT encrypted FROM messages WHERE room = '#vault'").fetchall()
        inbox = db.execute("SELECT payload FROM inbox").fetchall()
    assert len(history) == 3 and all(encrypted for (encrypted,) in history), history
    assert sum("olm_private" in payload for (payload,) in inbox) >= 2, inbox
    assert not where(files, secret), where(files, secret)
    log = "\n".join(server.snapshot("stdout") + server.snapshot("stderr"))
    assert "[TLS] Client" in log and "[SHUTDOWN]" in log, server.describe()  # the real log
    assert not found_in(log.encode(), secret), server.describe()


# ----- a server in this process: every frame it decodes and encodes -----


class FrameRecorder:
    """Every application message a server connection sends or receives: the frames as they are
    once the channel layer is removed."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.frames: dict[str, list[bytes]] = {"received": [], "sent": []}

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        # send_data frames its message and queues it with send_framed, which the server also
        # calls itself for a message relayed to many: every message sent passes here.
        receive, send = ServerConnection.receive_data, ServerConnection.send_framed
        recorder = self

        def receive_data(connection: ServerConnection, data: bytes) -> list[Event]:
            events = receive(connection, data)
            with recorder.lock:
                recorder.frames["received"] += [
                    e.data for e in events if isinstance(e, DataReceived)
                ]
            return events

        def send_framed(connection: ServerConnection, framed: bytes) -> None:
            send(connection, framed)
            with recorder.lock:
                recorder.frames["sent"].append(bytes(framed[MESSAGE_LENGTH_BYTES:]))

        monkeypatch.setattr(ServerConnection, "receive_data", receive_data)
        monkeypatch.setattr(ServerConnection, "send_framed", send_framed)

    def all(self, direction: str) -> list[bytes]:
        with self.lock:
            return list(self.frames[direction])


class InProcessServer:
    """A ChatService on its own event loop in a thread of this process."""

    def __init__(self, settings: ServerSettings) -> None:
        self.settings = settings
        self.ready = threading.Event()
        self.problem: BaseException | None = None
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="in-process-server", daemon=True)
        self._thread.start()
        assert self.ready.wait(WAIT), "the in-process server did not start"
        assert self.problem is None, self.problem

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as problem:  # reported to the test by close()
            self.problem = problem
            self.ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        service = ChatService(self.settings)
        await service.start()
        self.port = service.port
        self.ready.set()
        await self._stopping.wait()
        await service.stop()

    def close(self) -> None:
        if self._loop is not None and self._stopping is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stopping.set)
        self._thread.join(WAIT)
        assert not self._thread.is_alive(), "the in-process server did not stop"
        assert self.problem is None, self.problem


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> FrameRecorder:
    recorder = FrameRecorder()
    recorder.install(monkeypatch)
    return recorder


def test_the_canary_is_in_no_frame_the_server_decodes_or_encodes(
    harness: Harness, recorder: FrameRecorder, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret, control = canaries()
    homes = {nick: harness.home(nick) for nick in ("alice", "bob", "carol")}
    settings = ServerSettings(
        host=HOST,
        port=0,
        data_dir=harness.root / "in-process",
        operators=[harness.key_fingerprint(homes["alice"])],
    )
    server = InProcessServer(settings)
    try:
        chat = exchange(harness, everyone(server.port), homes, secret, control, joiner(harness))
        quit_cleanly(chat.alice, chat.bob, chat.carol)
    finally:
        server.close()

    received, sent_frames = recorder.all("received"), recorder.all("sent")
    types = {
        direction: [decode_frame(data) for data in frames]
        for direction, frames in (("received", received), ("sent", sent_frames))
    }
    # The encrypted lines did pass through what was recorded, both ways.
    megolm = [f for f in types["received"] if f.get("type") == "say" and "megolm" in f]
    private = [f for f in types["received"] if f.get("type") == "say" and "olm_private" in f]
    assert len(megolm) == 3 and len(private) == 3, types["received"]
    assert any(f.get("type") == "to_device" for f in types["received"])
    relayed = [f for f in types["sent"] if "megolm" in f or f.get("type") == "device_messages"]
    assert relayed, types["sent"]
    # The control, sent in the clear, is in both directions; the canary in neither.
    for direction, frames in (("received", received), ("sent", sent_frames)):
        joined_frames = b"\n".join(frames)
        assert found_in(joined_frames, control), f"control: not in any frame {direction}"
        leaks = [n for n, data in enumerate(frames) if found_in(data, secret)]
        assert not leaks, [frames[n] for n in leaks]
    # Nor in what it logged (at debug level), nor in its files.
    assert not found_in(caplog.text.encode(), secret)
    assert "[LISTENING]" in caplog.text
    files = files_under(settings.data_dir)
    assert where(files, control) and not where(files, secret), where(files, secret)
