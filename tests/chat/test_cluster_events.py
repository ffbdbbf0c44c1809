"""The cluster's events as typed values and their one codec (chat/server/cluster_events.py,
line_events.py, event_codec.py, typed_json.py): every event survives the log's JSON unchanged,
the wire keeps the form the commit script and older servers know, the fields the script adds are
read, and anything else is refused with an EventError that says why."""

from __future__ import annotations

import base64
import dataclasses
import json
import types
import typing
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tlschat.chat.server import event_codec
from tlschat.chat.server.cluster_events import (
    Allow,
    ClusterEvent,
    InvitationMade,
    Join,
    NodeUp,
    Online,
    Release,
    RoomBan,
    RoomMode,
    Snapshot,
    SnapshotSession,
    handler,
)
from tlschat.chat.server.event_codec import (
    EVENT_TYPES,
    EventError,
    decode_event,
    encode_event,
    event_from_json,
    event_json,
)
from tlschat.chat.server.events import EVENT_HANDLERS, ChatServer
from tlschat.chat.server.line_events import (
    ClaimedKey,
    DeviceKeys,
    E2EPrivate,
    InboxItem,
    KeysClaim,
    KeysUpload,
    Megolm,
    Message,
    OlmCiphertext,
    RelayedLine,
    ToDevice,
)
from tlschat.chat.server.typed_json import MAX_INT, MAX_TEXT, to_json

FP = "SHA256:" + "A" * 43
SIG = base64.b64encode(b"signature").decode()
KEY = base64.b64encode(b"key").decode()

# ----- every event, any value -----

TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=8)
BASE64 = st.binary(max_size=12).map(lambda data: base64.b64encode(data).decode())


def _line() -> st.SearchStrategy[RelayedLine]:
    def line(**variant: Any) -> st.SearchStrategy[RelayedLine]:
        return st.builds(
            RelayedLine,
            nick=TEXT,
            key=BASE64,
            network=TEXT,
            target=TEXT,
            sender=TEXT,
            counter=st.integers(0, MAX_INT),
            ts=st.integers(0, MAX_INT),
            **variant,
        )

    return st.one_of(
        line(body=TEXT, sig=BASE64),
        line(megolm=st.builds(Megolm, session=TEXT, ct=TEXT)),
        line(olm_private=st.builds(OlmCiphertext, ct=TEXT)),
    )


def _value(hint: Any) -> st.SearchStrategy[Any]:
    """Any value of the type ``hint`` that typed_json can carry (within its bounds)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is types.UnionType:
        (inner,) = [arg for arg in args if arg is not type(None)]
        return st.none() | _value(inner)
    simple = {
        str: TEXT,
        int: st.integers(0, MAX_INT),
        float: st.floats(allow_nan=False, allow_infinity=False),
        bool: st.booleans(),
    }
    if hint in simple:
        return simple[hint]
    if origin is tuple and args[-1] is Ellipsis:
        return st.lists(_value(args[0]), max_size=3).map(tuple)
    if origin is tuple:
        return st.tuples(*(_value(arg) for arg in args))
    if origin is dict:
        return st.dictionaries(TEXT, _value(args[1]), max_size=3)
    if hint is RelayedLine:
        return _line()
    return _instance(hint)


def _instance(cls: type[Any]) -> st.SearchStrategy[Any]:
    """Any ``cls``: its fields drawn by their types, the combinations it refuses left out."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: _value(hints[f.name]) for f in dataclasses.fields(cls)}

    def build(values: dict[str, Any]) -> Any:
        try:
            return cls(**values)
        except ValueError:  # e.g. ids that are not one per item: never published
            return None

    return st.fixed_dictionaries(fields).map(build).filter(lambda value: value is not None)


EVENTS = st.sampled_from(sorted(EVENT_TYPES.values(), key=lambda cls: cls.kind)).flatmap(_instance)


@settings(max_examples=1000, deadline=None)
@given(EVENTS)
def test_every_event_survives_the_logs_json(event: ClusterEvent) -> None:
    assert decode_event(json.loads(json.dumps(encode_event(event)))) == event
    assert event_from_json(event_json(event)) == event
    assert encode_event(event)["type"] == event.kind


def test_every_event_type_is_in_the_codec_and_has_one_handler() -> None:
    def concrete(cls: type[ClusterEvent]) -> set[type[ClusterEvent]]:
        found = {cls} if "kind" in vars(cls) else set()
        for sub in cls.__subclasses__():
            found |= concrete(sub)
        return found

    everyone = concrete(ClusterEvent)
    assert len(everyone) == 39
    assert set(EVENT_TYPES.values()) == everyone
    assert set(EVENT_HANDLERS) == everyone
    assert all(EVENT_TYPES[cls.kind] is cls for cls in everyone)


def test_a_handler_takes_only_its_class() -> None:
    kind, checked = handler(Join, ChatServer._apply_join)
    assert kind is Join
    with pytest.raises(TypeError, match="a Join handler given a NodeUp"):
        checked(ChatServer.__new__(ChatServer), NodeUp(node="a"))


# ----- the wire the commit script and older servers know -----


def test_the_wire_form_is_the_one_the_log_has_always_kept() -> None:
    online = Online(
        node="a", sid=1, nick="al", fingerprint=FP, away="", connected_at=5.0, claim=True
    )
    assert encode_event(online) == {
        "type": "online",
        "node": "a",
        "sid": 1,
        "nick": "al",
        "fingerprint": FP,
        "away": "",
        "connected_at": 5.0,
        "claim": True,
    }
    line = RelayedLine(
        nick="al", key=KEY, network="n", target="#r", sender=FP, counter=3, ts=9, body="hi", sig=SIG
    )
    assert encode_event(Message(node="a", sid=1, message=line, eid="a:7")) == {
        "type": "message",
        "eid": "a:7",
        "node": "a",
        "sid": 1,
        "message": {
            "type": "message",
            "from": "al",
            "key": KEY,
            "network": "n",
            "target": "#r",
            "sender": FP,
            "counter": 3,
            "ts": 9,
            "body": "hi",
            "sig": SIG,
        },
    }
    upload = KeysUpload(
        node="a", sid=1, fingerprint=FP, device="D", keys=(("k", "{}"),), fallback=None
    )
    assert encode_event(upload) == {
        "type": "keys_upload",
        "node": "a",
        "sid": 1,
        "fingerprint": FP,
        "device": "D",
        "keys": [["k", "{}"]],
        "fallback": None,
    }
    opened = RoomMode(node="a", sid=1, confirm="done", room="#r", invite_only=False, by="al")
    assert encode_event(opened) == {
        "type": "room_mode",
        "node": "a",
        "sid": 1,
        "confirm": "done",
        "room": "#r",
        "invite_only": False,
        "by": "al",
    }
    banned = RoomBan(
        node="a",
        sid=1,
        confirm="c",
        room="#r",
        fingerprint=FP,
        until=None,
        reason="r",
        by=FP,
        text="t",
        leave="l",
        expired_bans=(),
    )
    assert encode_event(banned)["until"] is None
    assert encode_event(banned)["expired_bans"] == []
    allowed = Allow(node="a", sid=1, confirm="c", fingerprint=FP, allowed=True)
    assert "text" not in encode_event(allowed)
    released = Release(node="a", sid=1, confirm="c", nick="bob", fingerprint=FP)
    assert set(encode_event(released)) == {"type", "node", "sid", "confirm", "nick", "fingerprint"}
    # `tlschat invite --broker` names no session.
    made = InvitationMade(
        node="tlschat-invite", id="ab", digest="d", made_by="op", made_at=1.0, expires_at=2.0
    )
    assert "sid" not in encode_event(made) and made.origin is None
    snapshot = Snapshot(
        node="b",
        sessions=(
            SnapshotSession(
                sid=4,
                nick="bo",
                fingerprint=FP,
                away="",
                rooms=("#general",),
                connected_at=1.0,
                last_active=2.0,
            ),
        ),
        mutes={FP: None},
        operators=(FP,),
    )
    assert encode_event(snapshot)["sessions"] == [
        {
            "sid": 4,
            "nick": "bo",
            "fingerprint": FP,
            "away": "",
            "rooms": ["#general"],
            "connected_at": 1.0,
            "last_active": 2.0,
        }
    ]


def with_field(text: str, name: str, value: str) -> str:
    """What the commit script's ``with_field`` does to an event's JSON text."""
    return text[:-1] + f',"{name}":{value}' + "}"


def test_the_fields_the_commit_script_adds_are_read() -> None:
    items = tuple(InboxItem(fingerprint=FP, device=d, payload="{}") for d in ("A", "B"))
    sent = event_json(ToDevice(node="a", sid=1, ts=5, items=items))
    assert event_from_json(with_field(sent, "ids", "[7,0]")) == ToDevice(
        node="a", sid=1, ts=5, items=items, ids=(7, 0)
    )
    device = DeviceKeys(
        node="a", sid=1, fingerprint=FP, device="D", keys="{}", seen=1.5, keys_follow=False
    )
    evicted = event_from_json(with_field(event_json(device), "evicted", '"OLD"'))
    assert isinstance(evicted, DeviceKeys) and evicted.evicted == "OLD"
    claim = KeysClaim(node="a", sid=1, devices=((FP, "A"), (FP, "B")))
    key = '{"id":"k1","key":"K","fallback":false,"sig":"S"}'
    taken = event_from_json(with_field(event_json(claim), "keys", f"[{key},null]"))
    assert isinstance(taken, KeysClaim)
    assert taken.keys == (ClaimedKey(id="k1", key="K", fallback=False, sig="S"), None)


def test_a_field_a_newer_server_adds_is_ignored() -> None:
    join = Join(node="a", sid=1, nick="al", fingerprint=FP, away="", room="#r")
    assert decode_event({**encode_event(join), "colour": "blue"}) == join


# ----- what is refused -----


def _online(**changes: Any) -> dict[str, Any]:
    wire = {
        "type": "online",
        "node": "a",
        "sid": 1,
        "nick": "al",
        "fingerprint": FP,
        "away": "",
        "connected_at": 5.0,
        "claim": True,
    }
    return {**wire, **changes}


def _private(**changes: Any) -> dict[str, Any]:
    line = {
        "type": "message",
        "from": "al",
        "key": KEY,
        "network": "n",
        "target": "@" + FP,
        "sender": FP,
        "counter": 3,
        "ts": 9,
        "olm_private": {"ct": "c"},
    }
    item = {"fingerprint": FP, "device": "D", "payload": "{}"}
    wire = {
        "type": "e2e_private",
        "node": "a",
        "sid": 1,
        "message": line,
        "digest": "e2e:x",
        "ts": 9,
        "items": [item],
    }
    return {**wire, **changes}


REFUSED: list[tuple[object, str]] = [
    ([], "not an event: no type"),
    ({"node": "a"}, "not an event: no type"),
    ({"type": 7}, "not an event: no type"),
    ({"type": "reboot"}, "not an event: 'reboot' type"),
    ({"type": "x" * 1000}, "not an event: 'xxxxxxxx"),
    ({k: v for k, v in _online().items() if k != "sid"}, "'online' event has no 'sid'"),
    (_online(sid="1"), "'online' event.sid must be an integer"),
    (_online(sid=True), "'online' event.sid must be an integer"),
    (_online(sid=-1), "'online' event.sid must be an integer"),
    (_online(sid=MAX_INT + 1), "'online' event.sid must be an integer"),
    (_online(claim=1), "'online' event.claim must be true or false"),
    (_online(connected_at="5"), "'online' event.connected_at must be a number"),
    (_online(connected_at=float("nan")), "'online' event.connected_at must be a finite number"),
    (_online(nick=None), "'online' event.nick must be a string"),
    (_online(nick="\ud800"), "'online' event.nick is not valid Unicode"),
    (_online(nick="n" * (MAX_TEXT + 1)), f"'online' event.nick is longer than {MAX_TEXT} bytes"),
    (_online(eid=5), "'online' event.eid must be a string"),
    (
        {"type": "offline", **{k: v for k, v in _online().items() if k != "type"}},
        "'offline' event has no 'rooms'",
    ),
    (_private(items={}), "'e2e_private' event.items must be a list"),
    (_private(items=[{"device": "D", "payload": "{}"}]), "event.items[0] has no 'fingerprint'"),
    (_private(items=[{}] * 17), "'e2e_private' event.items has more than 16 items"),
    (_private(ids=[1, 2]), "'ids' must name one id per item"),
    (_private(digest=None), "'e2e_private' event.digest must be a string"),
    (_private(message="hi"), "'e2e_private' event.message must be an object"),
    (
        _private(message={**_private()["message"], "type": "say"}),
        "event.message must have the type 'message'",
    ),
    (
        _private(message={**_private()["message"], "body": "hi", "sig": SIG}),
        "a line is plain ('body' and 'sig'), 'megolm' or 'olm_private'",
    ),
    (_private(message={**_private()["message"], "key": "not base64!"}), "'key' is not base64"),
    (
        {"type": "keys_upload", "node": "a", "sid": 1, "fingerprint": FP, "device": "D"}
        | {"keys": [["k"]], "fallback": None},
        "'keys_upload' event.keys[0] must have 2 items",
    ),
    (
        {"type": "snapshot", "node": "b", "sessions": [], "operators": [], "mutes": {"x": "1"}},
        "'snapshot' event.mutes['x'] must be a number",
    ),
    (
        {"type": "release", "node": "a", "sid": 1, "confirm": "c", "nick": "n"}
        | {"fingerprint": FP, "fallback": "m"},
        "'fallback' and 'text' come together",
    ),
]


@pytest.mark.parametrize(("value", "why"), REFUSED)
def test_what_is_not_an_event_is_refused_with_why(value: object, why: str) -> None:
    with pytest.raises(EventError) as refused:
        decode_event(value)
    assert why in str(refused.value)


def test_log_text_that_is_not_json_or_too_long_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(EventError, match="not JSON"):
        event_from_json('{"type": "node_up", "node": ')
    with pytest.raises(EventError, match="not JSON"):
        event_from_json("[" * 100_000)
    text = event_json(NodeUp(node="a"))
    monkeypatch.setattr(event_codec, "MAX_EVENT_TEXT", len(text) - 1)
    with pytest.raises(EventError, match="an event of 29 characters"):
        event_from_json(text)


def test_a_private_line_reads_as_its_typed_value() -> None:
    event = decode_event(_private())
    assert isinstance(event, E2EPrivate)
    assert event.message.olm_private == OlmCiphertext(ct="c") and event.ids is None


@given(_line())
def test_a_lines_frame_is_its_generic_json(line: RelayedLine) -> None:
    """The plain line's frame is built by hand for speed: it must stay what ``to_json`` gives,
    key order included (the bytes the clients get)."""
    assert json.dumps(line.frame()) == json.dumps(to_json(line))
