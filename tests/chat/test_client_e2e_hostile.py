"""A hostile server: whatever it sends a client with device keys (end-to-end frames, encrypted
lines, real frames with any part changed), the client shows lines and never raises."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tlschat.chat.client.crypto import ClientCrypto
from tlschat.chat.client.receiving import FRAME_HANDLERS, ChatClient
from tlschat.chat.frames import decode_frame, encode_frame
from tlschat.chat.lines import Line
from tlschat.chat.seen import SeenLedger
from tlschat.protocol.identity import IdentityKey

from .e2e_net import PICKLE_KEY, Device, E2eNet
from .helpers import NETWORK, NOW, make_server

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)


class Scene:
    """Bob's state files before anything was said, and every frame the server then sent him:
    the keys of alice's devices, room keys and a private message in his inbox, encrypted room
    lines and their history."""

    def __init__(self, ed_alice: IdentityKey, ed_bob: IdentityKey) -> None:
        net = E2eNet(make_server(operators=frozenset({ed_alice.fingerprint})))
        alice, bob = Device(ed_alice, "alice"), Device(ed_bob, "bob")
        net.connect(1, alice)
        net.connect(2, bob)
        net.type(1, "/encrypt #general", NOW)
        self.files = dict(bob.files)
        start = len(net.received)
        net.type(1, "in the room", NOW + 1)
        net.type(1, "/msg bob in private", NOW + 2)
        net.type(2, "/join #general", NOW + 3)  # 'joined' and the history again
        self.identity = ed_bob
        self.frames = [copy.deepcopy(f) for s, f in net.received[start:] if s == 2]
        self.setup = [
            f for s, f in net.received[:start] if s == 2 and f["type"] in ("welcome", "joined")
        ]
        assert {f["type"] for f in self.frames} >= {"keys", "device_messages", "message"}

    def client(self) -> ChatClient:
        crypto = ClientCrypto(self.identity, PICKLE_KEY, dict(self.files))
        client = ChatClient(self.identity, "bob", crypto=crypto)
        client.use_network(NETWORK, SeenLedger())
        for frame in self.setup:
            client.handle(copy.deepcopy(frame), NOW)
        return client


@pytest.fixture(scope="module")
def scene(ed_alice: IdentityKey, ed_bob: IdentityKey) -> Scene:
    return Scene(ed_alice, ed_bob)


def _shows_lines(client: ChatClient, frame: dict[str, Any], now: float) -> None:
    lines = client.handle(decode_frame(encode_frame(frame)), now)
    assert isinstance(lines, list) and all(isinstance(line, Line) for line in lines)
    for line in lines:
        line.render("#general")
        encode_frame(line.to_json())
    client.tick(now + 60)
    for sent in client.take_outbox():
        encode_frame(sent)
    assert client.crypto is not None
    client.crypto.take_dirty()


def test_the_scene_decrypts_unchanged(scene: Scene) -> None:
    client = scene.client()
    shown = [line for frame in scene.frames for line in client.handle(frame, NOW + 4)]
    texts = {line.text for line in shown if line.verified and line.encrypted}
    assert texts == {"in the room", "in private"}


def _mutate(value: Any, data: st.DataObject) -> Any:
    """``value`` with one part somewhere inside it replaced, or removed."""
    if isinstance(value, dict) and value and data.draw(st.booleans()):
        key = data.draw(st.sampled_from(sorted(value)))
        if data.draw(st.integers(0, 4)) == 0 and key != "type":
            return {k: v for k, v in value.items() if k != key}
        return {**value, key: _mutate(value[key], data)}
    if isinstance(value, list) and value and data.draw(st.booleans()):
        index = data.draw(st.integers(0, len(value) - 1))
        return [*value[:index], _mutate(value[index], data), *value[index + 1 :]]
    if isinstance(value, str) and value and data.draw(st.booleans()):
        cut = data.draw(st.integers(0, len(value) - 1))
        return value[:cut] + data.draw(st.text(max_size=4)) + value[cut + 1 :]
    return data.draw(JSON)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_real_frames_changed_anywhere_give_lines(scene: Scene, data: st.DataObject) -> None:
    client = scene.client()
    count = data.draw(st.integers(0, len(scene.frames) - 1))
    for frame in scene.frames[:count]:
        client.handle(copy.deepcopy(frame), NOW + 4)
    changed = _mutate(copy.deepcopy(scene.frames[count]), data)
    if not isinstance(changed, dict) or not isinstance(changed.get("type"), str):
        changed = {"type": "device_messages", "messages": [changed]}
    _shows_lines(client, changed, NOW + 4)


E2E_FIELDS = {
    "keys": ["fingerprint", "devices"],
    "claimed": ["keys"],
    "keys_changed": ["fingerprint"],
    "keys_uploaded": ["device", "one_time_keys", "fallback"],
    "encrypted": ["room", "by"],
    "device_messages": ["messages", "more"],
    "message": ["from", "key", "network", "target", "sender", "counter", "ts", "megolm"],
    "history": ["room", "messages"],
    "joined": ["room", "members", "encrypted", "topic"],
    "error": ["text", "counter", "stale", "retry_after"],
}


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    kind=st.sampled_from(sorted(FRAME_HANDLERS)),
    values=st.dictionaries(
        st.sampled_from(sorted({f for fields in E2E_FIELDS.values() for f in fields})),
        JSON,
        max_size=6,
    ),
)
def test_any_frame_of_any_type_gives_lines(scene: Scene, kind: str, values: dict[str, Any]) -> None:
    client = scene.client()
    _shows_lines(client, {**values, "type": kind}, NOW + 4)
