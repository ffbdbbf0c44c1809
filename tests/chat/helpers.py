"""Constants and small builders shared by the chat-domain tests."""

from __future__ import annotations

import json
from typing import Any

from tlschat.chat.client.receiving import ChatClient
from tlschat.chat.envelope import SignedMessage
from tlschat.chat.frames import b64, decode_frame, encode_frame, say_frame
from tlschat.chat.lines import Line
from tlschat.chat.seen import SeenLedger
from tlschat.chat.server.cluster_events import ClusterEvent
from tlschat.chat.server.event_codec import event_from_json, event_json
from tlschat.chat.server.events import ChatServer
from tlschat.chat.server.line_events import RelayedLine
from tlschat.chat.server.model import DEFAULT_ROOM, ChatSettings
from tlschat.chat.server.typed_json import from_json
from tlschat.protocol.identity import IdentityKey, PeerIdentity
from tlschat.store import SQLiteStore, Store

ALICE, BOB, CAROL, DAVE = 1, 2, 3, 4
# The network the test server's lines are signed for: the fingerprint of its key.
NETWORK = "SHA256:testnetworktestnetworktestnetworktestnetwor"
OTHER_NETWORK = "SHA256:othernetworkothernetworkothernetworkotherne"
NOW = 1_700_000_000.0
NOW_MS = 1_700_000_000_000

Frames = list[tuple[int, dict[str, Any]]]


def peer_of(key: IdentityKey) -> PeerIdentity:
    return PeerIdentity.from_spki(key.spki_der)


def make_server(store: Store | None = None, **settings: Any) -> ChatServer:
    """A ChatServer named 'testsrv' over an in-memory store unless one is given."""
    settings.setdefault("server_name", "testsrv")
    return ChatServer(
        ChatSettings(**settings),
        store if store is not None else SQLiteStore(":memory:"),
        network=NETWORK,
    )


def client_on(key: IdentityKey, nick: str = "", network: str = NETWORK) -> ChatClient:
    """A ChatClient connected (as far as it knows) to ``network``, with nothing seen on it."""
    client = ChatClient(key, nick)
    client.use_network(network, SeenLedger())
    return client


def throttled(session_id: int, wait: float, counter: int) -> Frames:
    """Flood control's refusal of a 'say': the counter, and when to send again."""
    text = f"flood control: message not sent; you can send again in {wait:.1f} s"
    return [(session_id, {"type": "error", "text": text, "counter": counter, "retry_after": wait})]


def connect(server: ChatServer, session_id: int, key: IdentityKey, now: float = NOW) -> Frames:
    return server.connect(session_id, peer_of(key), f"127.0.0.1:{40000 + session_id}", now)


def hello(
    server: ChatServer, session_id: int, key: IdentityKey, nick: object, now: float = NOW
) -> Frames:
    assert connect(server, session_id, key, now) == []
    return server.receive(session_id, {"type": "hello", "nick": nick}, now)


def command(
    server: ChatServer, session_id: int, name: str, args: str = "", now: float = NOW
) -> Frames:
    return server.receive(session_id, {"type": "command", "name": name, "args": args}, now)


def say(
    key: IdentityKey,
    counter: int = 1,
    ts: int = NOW_MS,
    body: str = "hello",
    target: str = DEFAULT_ROOM,
    network: str = NETWORK,
) -> dict[str, Any]:
    return say_frame(SignedMessage.create(key, network, target, counter, ts, body))


def relayed(frame: dict[str, Any], nick: str, key: IdentityKey) -> dict[str, Any]:
    """The 'message' frame the server relays for the 'say' frame ``frame``."""
    fields = {k: v for k, v in frame.items() if k != "type"}
    return {"type": "message", "from": nick, "key": b64(key.spki_der), **fields}


def relayed_line(frame: dict[str, Any], nick: str, key: IdentityKey) -> RelayedLine:
    """The line a committed 'message' event carries for the 'say' frame ``frame``."""
    return from_json(RelayedLine, relayed(frame, nick, key))


def via_log(event: ClusterEvent) -> ClusterEvent:
    """``event`` as a cluster's server reads it back from the log: through its JSON text, so
    that nothing depends on sharing Python objects."""
    read = event_from_json(event_json(event))
    assert read == event and json.loads(event_json(read)) == json.loads(event_json(event))
    return read


def member(nick: str, key: IdentityKey, away: str = "") -> dict[str, str]:
    return {"nick": nick, "fingerprint": key.fingerprint, "away": away}


def error(session_id: int, text: str) -> Frames:
    return [(session_id, {"type": "error", "text": text})]


def rejected(session_id: int, text: str, counter: int) -> Frames:
    """The error refusing a signed 'say' frame: it names the refused message's counter."""
    return [(session_id, {"type": "error", "text": text, "counter": counter})]


def sent(session_id: int, target: str, counter: int) -> tuple[int, dict[str, Any]]:
    """The acknowledgement to the sender's session: its message was stored and relayed."""
    return (session_id, {"type": "sent", "target": target, "counter": counter})


def notice(session_id: int, text: str) -> tuple[int, dict[str, Any]]:
    return (session_id, {"type": "notice", "text": text})


def info(session_id: int, title: str, lines: list[str]) -> Frames:
    return [(session_id, {"type": "info", "title": title, "lines": lines})]


def welcome(nick: str, key: IdentityKey, operator: bool = False) -> dict[str, Any]:
    return {
        "type": "welcome",
        "server": "testsrv",
        "nick": nick,
        "fingerprint": key.fingerprint,
        "operator": operator,
        "rate": 2.0,
        "burst": 10,
        "work_rate": 30.0,
        "work_burst": 300,
        "large_room": 1000,
    }


def joined(room: str, members: list[dict[str, str]], topic: str = "") -> dict[str, Any]:
    return {
        "type": "joined",
        "room": room,
        "topic": topic,
        "member_count": len(members),
        "members": members,
    }


def fingerprint_tag(key: IdentityKey) -> str:
    return "".join(c for c in key.fingerprint.removeprefix("SHA256:") if c.isalnum())[:6].lower()


def fallback_nick(key: IdentityKey) -> str:
    return "user-" + fingerprint_tag(key)


class Net:
    """A ChatServer and the ChatClients of some of its sessions, wired through the wire encoding.

    Frames addressed to a session without a client here are dropped, as if unread.
    """

    def __init__(self, server: ChatServer) -> None:
        self.server = server
        self.clients: dict[int, ChatClient] = {}

    def add(self, session_id: int, client: ChatClient, now: float = NOW) -> dict[int, list[Line]]:
        self.clients[session_id] = client
        client.use_network(NETWORK, SeenLedger())
        assert connect(self.server, session_id, client.identity, now) == []
        return self.deliver(self.server.receive(session_id, client.hello_frame(), now), now)

    def deliver(self, out: Frames, now: float = NOW) -> dict[int, list[Line]]:
        shown: dict[int, list[Line]] = {}
        for session_id, frame in out:
            client = self.clients.get(session_id)
            if client is not None:
                lines = client.handle(decode_frame(encode_frame(frame)), now)
                shown.setdefault(session_id, []).extend(lines)
        return shown

    def flush(self, session_id: int, now: float = NOW) -> dict[int, list[Line]]:
        """Send what the client queued, and what it queues in answer, until it is quiet."""
        shown: dict[int, list[Line]] = {}
        client = self.clients[session_id]
        while frames := client.take_outbox():
            for frame in frames:
                out = self.server.receive(session_id, decode_frame(encode_frame(frame)), now)
                for target, lines in self.deliver(out, now).items():
                    shown.setdefault(target, []).extend(lines)
        return shown

    def type(
        self, session_id: int, text: str, now: float = NOW
    ) -> tuple[list[Line], dict[int, list[Line]]]:
        """The user of ``session_id`` types ``text``: their own lines, then what everyone sees."""
        own = self.clients[session_id].user_input(text, now)
        return own, self.flush(session_id, now)
