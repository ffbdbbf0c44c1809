"""/verify: two users' devices run SAS through a fake mailbox (real vodozemac underneath)."""

from __future__ import annotations

import base64
import dataclasses
import json
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import vodozemac
from hypothesis import given, settings
from hypothesis import strategies as st

from tlschat.chat.client.verification import (
    FLOW_TIMEOUT,
    PROMPT,
    Verifications,
    VerificationStep,
)
from tlschat.chat.client.verification_payloads import (
    VERIFY_TYPES,
    Accept,
    Cancel,
    Key,
    Mac,
    Request,
    accept_payload,
    cancel_payload,
    key_payload,
    mac_payload,
    parse_payload,
    request_payload,
)
from tlschat.chat.e2e_frames import FINGERPRINT
from tlschat.chat.frames import FrameError
from tlschat.e2e.device import Device, DeviceKeys, sign_device_keys
from tlschat.e2e.sas import FLOW_ID_PATTERN, SasMacs
from tlschat.e2e.sas_emoji import SAS_EMOJI
from tlschat.protocol.identity import IdentityKey

from .helpers import NOW

FIELDS = {
    "verify_request": {"type", "flow", "devices"},
    "verify_accept": {"type", "flow", "commitment"},
    "verify_key": {"type", "flow", "key"},
    "verify_mac": {"type", "flow", "keys", "device"},
    "verify_cancel": {"type", "flow", "reason"},
}
Tamper = Callable[["Party", DeviceKeys, dict[str, Any]], dict[str, Any] | None]


@dataclass
class Party:
    nick: str
    keys: DeviceKeys
    verifications: Verifications
    steps: list[VerificationStep] = field(default_factory=list)

    @property
    def notices(self) -> list[str]:
        return [notice for step in self.steps for notice in step.notices]

    @property
    def verified(self) -> list[str]:
        return [step.verified for step in self.steps if step.verified is not None]

    @property
    def failed(self) -> list[str]:
        return [step.failed for step in self.steps if step.failed is not None]

    def sent(self, kind: str) -> list[tuple[DeviceKeys, dict[str, Any]]]:
        return [(to, p) for step in self.steps for to, p in step.send if p["type"] == kind]


def assert_well_formed(step: VerificationStep) -> None:
    """What a step may hold: payloads this module's parser reads back, with only their fields;
    one-line notices; a fingerprint as ``verified``; never both outcomes."""
    assert isinstance(step, VerificationStep)
    for to, payload in step.send:
        assert isinstance(to, DeviceKeys)
        assert set(payload) == FIELDS[payload["type"]]
        assert parse_payload(json.loads(json.dumps(payload))) is not None
    assert all(isinstance(n, str) and n and "\n" not in n for n in step.notices)
    assert step.verified is None or FINGERPRINT.fullmatch(step.verified)
    assert step.failed is None or (isinstance(step.failed, str) and step.failed)
    assert step.verified is None or step.failed is None


class Mailbox:
    """Delivers what each party sends, in order, as JSON, through an optional ``tamper``."""

    def __init__(self, *parties: Party) -> None:
        self.parties = {party.keys.device_id: party for party in parties}
        self.queue: deque[tuple[Party, DeviceKeys, dict[str, Any]]] = deque()
        self.now = NOW
        self.tamper: Tamper | None = None

    def post(self, sender: Party, step: VerificationStep) -> VerificationStep:
        assert_well_formed(step)
        sender.steps.append(step)
        for to, payload in step.send:
            self.queue.append((sender, to, json.loads(json.dumps(payload))))
        return step

    def deliver_one(self) -> None:
        sender, to, payload = self.queue.popleft()
        if self.tamper is not None:
            changed = self.tamper(sender, to, payload)
            if changed is None:
                return
            payload = changed
        recipient = self.parties[to.device_id]
        assert recipient.keys == to
        self.post(
            recipient, recipient.verifications.receive(sender.keys, sender.nick, payload, self.now)
        )

    def run(self) -> None:
        while self.queue:
            self.deliver_one()

    def start(self, party: Party, *peers: Party) -> VerificationStep:
        step = party.verifications.start(peers[0].nick, [p.keys for p in peers], self.now)
        return self.post(party, step)

    def answer(self, party: Party, matches: bool) -> VerificationStep:
        return self.post(party, party.verifications.answer(matches, self.now))

    def tick(self, party: Party) -> VerificationStep:
        return self.post(party, party.verifications.tick(self.now))


def make_party(nick: str, identity: IdentityKey) -> Party:
    keys = sign_device_keys(Device.create(), identity)
    return Party(nick, keys, Verifications(keys))


@pytest.fixture
def alice(ed_alice: IdentityKey) -> Party:
    return make_party("alice", ed_alice)


@pytest.fixture
def bob(ed_bob: IdentityKey) -> Party:
    return make_party("bob", ed_bob)


@pytest.fixture
def bob2(ed_bob: IdentityKey) -> Party:
    return make_party("bob", ed_bob)


@pytest.fixture
def carol(ed_carol: IdentityKey) -> Party:
    return make_party("carol", ed_carol)


@pytest.fixture
def mailbox(alice: Party, bob: Party, bob2: Party, carol: Party) -> Mailbox:
    return Mailbox(alice, bob, bob2, carol)


def flow_of(party: Party) -> str:
    """The flow of the last payload ``party`` sent."""
    flow: str = [p for step in party.steps for _, p in step.send][-1]["flow"]
    return flow


def emoji_lines(party: Party) -> list[str]:
    start = party.notices.index(PROMPT) - 3
    return party.notices[start : start + 4]


def to_comparison(mailbox: Mailbox, alice: Party, bob: Party) -> None:
    mailbox.start(alice, bob)
    mailbox.run()
    mailbox.answer(bob, True)
    mailbox.run()


# --- the whole flow ------------------------------------------------------------------------


@pytest.mark.parametrize("bob_first", [False, True])
def test_both_confirm_and_each_verifies_the_other(
    mailbox: Mailbox, alice: Party, bob: Party, bob_first: bool
) -> None:
    step = mailbox.start(alice, bob)
    assert [to for to, _ in step.send] == [bob.keys]
    assert FLOW_ID_PATTERN.fullmatch(flow_of(alice))
    assert step.send[0][1]["devices"] == [bob.keys.device_id]
    mailbox.run()
    assert bob.notices[-1] == (
        f"alice ({alice.keys.user}) wants to verify you:"
        " /verify yes to start, /verify no to refuse."
    )
    assert bob.verifications.waiting_for_answer
    assert not alice.verifications.waiting_for_answer
    mailbox.answer(bob, True)
    mailbox.run()
    # Both show the same seven emoji (with names) and three numbers, then ask.
    assert emoji_lines(alice)[1:] == emoji_lines(bob)[1:]
    shown = emoji_lines(alice)[1].strip().split("  ")
    assert len(shown) == 7 and all(e.split(" ")[0] in {x.emoji for x in SAS_EMOJI} for e in shown)
    assert len(emoji_lines(alice)[2].split()) == 6  # "or the numbers N N N"
    assert alice.verifications.waiting_for_answer and bob.verifications.waiting_for_answer
    first, second = (bob, alice) if bob_first else (alice, bob)
    mailbox.answer(first, True)
    assert first.steps[-1].verified is None
    mailbox.run()
    assert second.verified == [] and second.verifications.waiting_for_answer
    mailbox.answer(second, True)
    assert second.steps[-1].verified == first.keys.user
    mailbox.run()
    assert alice.verified == [bob.keys.user]
    assert bob.verified == [alice.keys.user]
    assert alice.failed == [] and bob.failed == []
    assert not alice.verifications.waiting_for_answer
    assert alice.notices[-1].startswith("✓✓ bob is verified")
    # The order of the payloads on each side.
    assert [p["type"] for s in alice.steps for _, p in s.send] == [
        "verify_request",
        "verify_key",
        "verify_mac",
    ]
    assert [p["type"] for s in bob.steps for _, p in s.send] == [
        "verify_accept",
        "verify_key",
        "verify_mac",
    ]


def test_a_new_flow_can_start_after_one_ends(mailbox: Mailbox, alice: Party, bob: Party) -> None:
    to_comparison(mailbox, alice, bob)
    mailbox.answer(alice, True)
    mailbox.answer(bob, True)
    mailbox.run()
    first = flow_of(alice)
    mailbox.start(bob, alice)
    assert flow_of(bob) != first
    mailbox.run()
    assert alice.verifications.waiting_for_answer


# --- refusals ------------------------------------------------------------------------------


@pytest.mark.parametrize("refuser", ["alice", "bob"])
def test_a_mismatch_said_by_either_side_verifies_nothing(
    mailbox: Mailbox, alice: Party, bob: Party, refuser: str
) -> None:
    to_comparison(mailbox, alice, bob)
    no, other = (alice, bob) if refuser == "alice" else (bob, alice)
    mailbox.answer(other, True)  # the other already said yes and sent its MACs
    mailbox.run()
    mailbox.answer(no, False)
    assert no.steps[-1].failed == "you said they do not match"
    assert no.steps[-1].notices[-1].startswith("If they really differ, someone may be between")
    assert [p["reason"] for _, p in no.steps[-1].send] == ["the emoji did not match"]
    mailbox.run()
    assert other.failed == [f"{no.nick} cancelled it (the emoji did not match)"]
    assert alice.verified == [] and bob.verified == []
    assert not other.verifications.waiting_for_answer
    mailbox.answer(other, True)
    assert other.steps[-1].notices == ("There is no verification to answer.",)


def test_the_request_refused(mailbox: Mailbox, alice: Party, bob: Party) -> None:
    mailbox.start(alice, bob)
    mailbox.run()
    mailbox.answer(bob, False)
    assert bob.failed == ["you refused"]
    mailbox.run()
    assert alice.failed == ["bob cancelled it (refused)"]
    assert (
        alice.notices[-1]
        == "Verification of bob ended: bob cancelled it (refused). Nothing was verified."
    )


def test_the_requester_stops_waiting(mailbox: Mailbox, alice: Party, bob: Party) -> None:
    mailbox.start(alice, bob)
    mailbox.answer(alice, True)
    assert alice.notices[-1] == "Nothing to compare yet: waiting for bob's device."
    mailbox.answer(alice, False)
    assert alice.failed == ["you cancelled it"]
    mailbox.run()  # the request, then the cancel
    assert bob.failed == ["alice cancelled it (cancelled by the user)"]
    assert not bob.verifications.waiting_for_answer


# --- an attacker in the path ---------------------------------------------------------------


def test_a_key_other_than_the_committed_one_is_refused_loudly(
    mailbox: Mailbox, alice: Party, bob: Party
) -> None:
    mallory_key = vodozemac.Sas().public_key.to_base64()

    def swap_bobs_key(sender: Party, to: DeviceKeys, payload: dict[str, Any]) -> dict[str, Any]:
        if sender is bob and payload["type"] == "verify_key":
            return {**payload, "key": mallory_key}
        return payload

    mailbox.tamper = swap_bobs_key
    to_comparison(mailbox, alice, bob)
    assert alice.failed == ["their key is not the one they committed to"]
    assert any(n.startswith("WARNING") for n in alice.notices)
    assert PROMPT not in alice.notices
    # Bob had shown his emoji; Alice's cancel ends his side too.
    assert bob.failed == ["alice cancelled it (the key did not match its commitment)"]
    assert alice.verified == [] and bob.verified == []


def test_a_tampered_mac_is_refused_loudly(mailbox: Mailbox, alice: Party, bob: Party) -> None:
    def flip_alices_mac(sender: Party, to: DeviceKeys, payload: dict[str, Any]) -> dict[str, Any]:
        if sender is alice and payload["type"] == "verify_mac":
            raw = bytearray(base64.b64decode(payload["device"] + "="))
            raw[0] ^= 1
            return {**payload, "device": base64.b64encode(bytes(raw)).decode().rstrip("=")}
        return payload

    mailbox.tamper = flip_alices_mac
    to_comparison(mailbox, alice, bob)
    mailbox.answer(alice, True)
    mailbox.run()
    assert bob.failed == ["their keys are not the ones the server showed"]
    assert any(n.startswith("WARNING") for n in bob.notices)
    assert alice.failed == ["bob cancelled it (the MACs did not match the keys)"]
    mailbox.answer(bob, True)
    assert bob.steps[-1].send == ()
    assert alice.verified == [] and bob.verified == []


def test_macs_replayed_into_a_later_flow_are_refused(
    mailbox: Mailbox, alice: Party, bob: Party
) -> None:
    """The MACs bind the flow id: Alice's MACs of one flow do not verify her in the next."""
    to_comparison(mailbox, alice, bob)
    mailbox.answer(alice, True)
    old_macs = alice.sent("verify_mac")[0][1]
    mailbox.answer(bob, True)
    mailbox.run()
    to_comparison(mailbox, alice, bob)
    replay = {**old_macs, "flow": flow_of(alice)}
    mailbox.post(alice, VerificationStep(send=((bob.keys, replay),)))
    mailbox.run()
    assert bob.failed == ["their keys are not the ones the server showed"]
    assert bob.verified == [alice.keys.user]  # from the first flow only


def test_a_third_device_using_the_flow_id_cancels_the_flow(
    mailbox: Mailbox, alice: Party, bob: Party, carol: Party
) -> None:
    mailbox.start(alice, bob)
    mailbox.run()
    mailbox.answer(bob, True)
    forged = {"type": "verify_accept", "flow": flow_of(alice), "commitment": "A" * 43}
    step = alice.verifications.receive(carol.keys, "carol", forged, NOW)
    assert_well_formed(step)
    assert step.failed == "a device not in this verification used its id"
    assert sorted(to.device_id for to, _ in step.send) == sorted(
        [bob.keys.device_id, carol.keys.device_id]
    )
    assert not alice.verifications.waiting_for_answer


def test_other_flows_and_unreadable_payloads_leave_the_flow_alone(
    mailbox: Mailbox, alice: Party, bob: Party, carol: Party
) -> None:
    to_comparison(mailbox, alice, bob)
    unknown = {"type": "verify_key", "flow": "not-ours", "key": "A" * 43}
    step = alice.verifications.receive(carol.keys, "carol", unknown, NOW)
    assert step.send == (
        (
            carol.keys,
            {"type": "verify_cancel", "flow": "not-ours", "reason": "no such verification"},
        ),
    )
    assert step.notices == () and step.failed is None
    # A cancel of an unknown flow is never answered; a payload without a flow id from a device
    # other than the peer's has nothing to answer with.
    for payload in ({"type": "verify_cancel", "flow": "not-ours", "reason": "x"}, {"type": "x"}):
        assert alice.verifications.receive(carol.keys, "carol", payload, NOW) == VerificationStep()
    assert alice.verifications.waiting_for_answer
    mailbox.answer(alice, True)
    mailbox.answer(bob, True)
    mailbox.run()
    assert alice.verified == [bob.keys.user]


@pytest.mark.parametrize(
    "payload",
    [
        {"type": "verify_key", "key": "not a key"},
        {"type": "verify_key"},
        {"type": "verify_accept", "commitment": "A" * 43},  # out of order
        {"type": "verify_request", "devices": ["A" * 16]},
        {"type": "verify_mac", "keys": "A" * 43, "device": "A" * 43},  # before the keys
        {"type": "surprise"},
        {"type": "verify_cancel", "reason": 7},
    ],
)
def test_a_malformed_or_unexpected_payload_from_the_peer_cancels(
    mailbox: Mailbox, alice: Party, bob: Party, payload: dict[str, Any]
) -> None:
    mailbox.start(alice, bob)
    mailbox.run()
    mailbox.answer(bob, True)  # Bob waits for Alice's key now
    step = bob.verifications.receive(alice.keys, "alice", {**payload, "flow": flow_of(bob)}, NOW)
    assert_well_formed(step)
    assert step.failed is not None
    assert [(to, p["type"]) for to, p in step.send] == [(alice.keys, "verify_cancel")]
    assert not bob.verifications.waiting_for_answer


def test_a_payload_without_a_flow_id_from_the_peer_cancels(
    mailbox: Mailbox, alice: Party, bob: Party
) -> None:
    to_comparison(mailbox, alice, bob)
    step = alice.verifications.receive(bob.keys, "bob", {"type": "verify_mac", "flow": 3}, NOW)
    assert step.failed == "a malformed verify_mac"
    assert step.send[0][0] == bob.keys


def test_a_second_mac_cancels(mailbox: Mailbox, alice: Party, bob: Party) -> None:
    to_comparison(mailbox, alice, bob)
    mailbox.answer(bob, True)
    mailbox.run()
    macs = bob.sent("verify_mac")[0][1]
    step = alice.verifications.receive(bob.keys, "bob", macs, NOW)
    assert step.failed == "an unexpected verify_mac while comparing"


def test_answering_yes_twice_only_waits(mailbox: Mailbox, alice: Party, bob: Party) -> None:
    to_comparison(mailbox, alice, bob)
    mailbox.answer(alice, True)
    step = mailbox.answer(alice, True)
    assert step == VerificationStep(notices=("You said yes; waiting for bob to answer.",))
    assert not alice.verifications.waiting_for_answer
    mailbox.answer(bob, True)
    mailbox.run()
    assert alice.verified == [bob.keys.user] and bob.verified == [alice.keys.user]
    assert alice.steps[-1].nick == "bob"


def test_a_key_without_contributory_behaviour_cancels(
    mailbox: Mailbox, alice: Party, bob: Party
) -> None:
    mailbox.start(alice, bob)
    mailbox.run()
    mailbox.answer(bob, True)
    zero_key = {"type": "verify_key", "flow": flow_of(bob), "key": "A" * 43}
    step = bob.verifications.receive(alice.keys, "alice", zero_key, NOW)
    assert step.failed == "the SAS refused a step (a public key without contributory behaviour)"
    assert [(to, p["type"]) for to, p in step.send] == [(alice.keys, "verify_cancel")]


def test_a_request_from_keys_the_sas_cannot_bind_is_refused(alice: Party, bob: Party) -> None:
    """Device keys with a '|' could make two SAS info strings equal; the SAS refuses them."""
    odd = dataclasses.replace(alice.keys, device_id="A|B")
    request = {"type": "verify_request", "flow": "f1", "devices": [bob.keys.device_id]}
    step = bob.verifications.receive(odd, "alice", request, NOW)
    assert step.send == ((odd, cancel_payload("f1", "unusable device keys")),)
    assert not bob.verifications.waiting_for_answer


@pytest.mark.parametrize(
    "devices",
    [[], "x", ["A" * 16] * 2, ["a" * 16], [1], ["A" * 16] * 9],
)
def test_a_malformed_request_is_refused(alice: Party, bob: Party, devices: Any) -> None:
    request = {"type": "verify_request", "flow": "f1", "devices": devices}
    step = bob.verifications.receive(alice.keys, "alice", request, NOW)
    assert step.send == ((alice.keys, cancel_payload("f1", "a malformed request")),)
    assert step.notices[0].startswith("alice sent a malformed verification request ('devices'")
    assert not bob.verifications.waiting_for_answer


def test_the_parser_reads_back_what_is_built_and_nothing_else() -> None:
    macs = SasMacs("B" * 43, "C" * 43)
    built = [
        request_payload("f", ("A" * 16,)),
        accept_payload("f", "A" * 43),
        key_payload("f", A_KEY),
        mac_payload("f", macs),
        cancel_payload("f", "why"),
    ]
    assert [parse_payload(p) for p in built] == [
        Request("f", ("A" * 16,)),
        Accept("f", "A" * 43),
        Key("f", A_KEY),
        Mac("f", macs),
        Cancel("f", "why"),
    ]
    for bad in (
        {**built[1], "flow": "a b"},
        {**built[2], "key": A_KEY + "A"},
        {**built[3], "keys": None},
        {**built[4], "reason": "x" * 201},
        {"type": ["verify_key"], "flow": "f"},
    ):
        with pytest.raises(FrameError):
            parse_payload(bad)


def test_a_cancel_reason_cannot_rewrite_the_screen(
    mailbox: Mailbox, alice: Party, bob: Party
) -> None:
    mailbox.start(alice, bob)
    mailbox.run()
    cancel = {"type": "verify_cancel", "flow": flow_of(alice), "reason": "x\n\x1b[2Jverified"}
    step = bob.verifications.receive(alice.keys, "alice", cancel, NOW)
    assert step.failed == "alice cancelled it (x\ufffd\ufffd[2Jverified)"
    assert step.send == ()


# --- several devices -----------------------------------------------------------------------


def test_the_first_device_to_accept_wins(
    mailbox: Mailbox, alice: Party, bob: Party, bob2: Party
) -> None:
    step = mailbox.start(alice, bob, bob2)
    assert [to for to, _ in step.send] == [bob.keys, bob2.keys]
    assert step.send[0][1]["devices"] == [bob.keys.device_id, bob2.keys.device_id]
    assert "its 2 devices" in step.notices[0]
    mailbox.run()
    assert bob.verifications.waiting_for_answer and bob2.verifications.waiting_for_answer
    # Both say yes before either accept arrives: bob2's arrives first.
    mailbox.answer(bob2, True)
    mailbox.answer(bob, True)
    mailbox.run()
    assert bob.failed == ["alice cancelled it (accepted on another device)"]
    assert bob.verifications.answer(True, NOW).notices == ("There is no verification to answer.",)
    assert emoji_lines(alice)[1:] == emoji_lines(bob2)[1:]
    mailbox.answer(alice, True)
    mailbox.answer(bob2, True)
    mailbox.run()
    assert alice.verified == [bob.keys.user]
    assert bob2.verified == [alice.keys.user]
    assert alice.failed == [] and bob.verified == []


def test_a_refusal_on_one_device_ends_the_request_on_all(
    mailbox: Mailbox, alice: Party, bob: Party, bob2: Party
) -> None:
    mailbox.start(alice, bob, bob2)
    mailbox.run()
    mailbox.answer(bob, False)
    mailbox.run()
    assert alice.failed == ["bob cancelled it (refused)"]
    assert bob2.failed == ["alice cancelled it (cancelled on another device)"]
    assert not bob2.verifications.waiting_for_answer


def test_a_request_must_name_the_device(mailbox: Mailbox, alice: Party, bob: Party) -> None:
    request = {"type": "verify_request", "flow": "f1", "devices": [alice.keys.device_id]}
    step = bob.verifications.receive(alice.keys, "alice", request, NOW)
    assert step.send == (
        (
            alice.keys,
            {
                "type": "verify_cancel",
                "flow": "f1",
                "reason": "the request does not name this device",
            },
        ),
    )
    assert not bob.verifications.waiting_for_answer


def test_a_request_from_the_same_user_is_refused(bob: Party, bob2: Party) -> None:
    request = {"type": "verify_request", "flow": "f1", "devices": [bob.keys.device_id]}
    step = bob.verifications.receive(bob2.keys, "bob", request, NOW)
    assert step.send[0][1]["reason"] == "a user does not verify themselves"
    assert not bob.verifications.waiting_for_answer


# --- one flow at a time --------------------------------------------------------------------


def test_a_request_while_busy_is_refused(
    mailbox: Mailbox, alice: Party, bob: Party, carol: Party
) -> None:
    to_comparison(mailbox, alice, bob)
    mailbox.start(carol, alice)
    mailbox.run()
    assert carol.failed == ["alice cancelled it (busy with another verification)"]
    assert alice.notices[-1] == "carol asked to verify you, but you are verifying bob: refused."
    assert alice.verifications.waiting_for_answer
    mailbox.answer(alice, True)
    mailbox.answer(bob, True)
    mailbox.run()
    assert alice.verified == [bob.keys.user]


def test_crossed_requests_become_one_flow(mailbox: Mailbox, alice: Party, bob: Party) -> None:
    mailbox.start(alice, bob)
    mailbox.start(bob, alice)
    mailbox.run()
    smaller, larger = sorted((alice, bob), key=lambda p: p.keys.user)
    crossed = f"You and {smaller.nick} asked at the same time: going on with theirs."
    assert crossed in larger.notices
    # The smaller one's request went on: the larger one's was cancelled on both sides.
    assert [p["reason"] for _, p in smaller.sent("verify_cancel")] == [
        "requests crossed; ours goes on"
    ]
    assert [p["reason"] for _, p in larger.sent("verify_cancel")] == ["requests crossed"]
    assert smaller.failed == [] and larger.failed == []
    assert smaller.verifications.waiting_for_answer and larger.verifications.waiting_for_answer
    assert emoji_lines(alice)[1:] == emoji_lines(bob)[1:]
    mailbox.answer(alice, True)
    mailbox.answer(bob, True)
    mailbox.run()
    assert alice.verified == [bob.keys.user] and bob.verified == [alice.keys.user]


def test_start_refusals(alice: Party, bob: Party, bob2: Party, carol: Party) -> None:
    verifications = alice.verifications
    cases = [
        ([], "bob has no device with end-to-end keys: nothing to verify with."),
        (
            [bob.keys, carol.keys],
            "The device list the server gave for bob is not valid: not verifying.",
        ),
        (
            [bob.keys, bob.keys],
            "The device list the server gave for bob is not valid: not verifying.",
        ),
        ([alice.keys], "That is you: verify another user."),
    ]
    for devices, notice in cases:
        assert verifications.start("bob", devices, NOW) == VerificationStep(notices=(notice,))
    verifications.start("bob", [bob.keys, bob2.keys], NOW)
    step = verifications.start("carol", [carol.keys], NOW)
    assert step == VerificationStep(
        notices=("You are verifying bob already: /verify no ends that first.",)
    )


def test_no_more_devices_than_a_key_may_have(ed_bob: IdentityKey, alice: Party) -> None:
    devices = [sign_device_keys(Device.create(), ed_bob) for _ in range(9)]
    step = alice.verifications.start("bob", devices, NOW)
    assert step.send == () and "not valid" in step.notices[0]
    assert alice.verifications.start("bob", devices[:8], NOW).send != ()


# --- time ----------------------------------------------------------------------------------


def test_a_flow_times_out_and_both_sides_end(mailbox: Mailbox, alice: Party, bob: Party) -> None:
    to_comparison(mailbox, alice, bob)
    mailbox.now = NOW + FLOW_TIMEOUT - 1
    assert mailbox.tick(alice) == VerificationStep()
    mailbox.now = NOW + FLOW_TIMEOUT
    step = mailbox.tick(alice)
    assert step.failed == "no answer within 10 minutes"
    assert [(to, p["type"]) for to, p in step.send] == [(bob.keys, "verify_cancel")]
    # Bob's flow started at the same time: it times out as Alice's cancel arrives, and that
    # cancel, of a flow Bob no longer has, is not answered.
    mailbox.run()
    assert bob.failed == ["no answer within 10 minutes"]
    assert [p["reason"] for _, p in bob.sent("verify_cancel")] == ["no answer within 10 minutes"]
    assert alice.steps[-1] == VerificationStep()
    assert mailbox.tick(bob) == VerificationStep()


def test_the_accepter_times_out_on_its_own_clock(
    mailbox: Mailbox, alice: Party, bob: Party
) -> None:
    mailbox.start(alice, bob)
    mailbox.now = NOW + 60
    mailbox.run()  # Bob's flow starts when the request arrives
    mailbox.now = NOW + FLOW_TIMEOUT
    assert mailbox.tick(bob) == VerificationStep()
    assert mailbox.tick(alice).failed == "no answer within 10 minutes"
    mailbox.run()
    assert bob.failed == ["alice cancelled it (no answer within 10 minutes)"]


def test_a_late_answer_finds_the_flow_timed_out(mailbox: Mailbox, alice: Party, bob: Party) -> None:
    mailbox.start(alice, bob)
    mailbox.run()
    mailbox.now = NOW + FLOW_TIMEOUT + 5
    step = mailbox.answer(bob, True)
    assert step.failed == "no answer within 10 minutes"
    assert step.notices[-1] == "There is no verification to answer."
    assert [p["type"] for _, p in step.send] == ["verify_cancel"]


def test_a_late_payload_after_a_timeout_is_answered_with_a_cancel(
    mailbox: Mailbox, alice: Party, bob: Party
) -> None:
    mailbox.start(alice, bob)
    mailbox.run()
    mailbox.answer(bob, True)
    mailbox.now = NOW + FLOW_TIMEOUT
    mailbox.deliver_one()  # Bob's accept reaches Alice after her flow timed out
    step = alice.steps[-1]
    assert step.failed == "no answer within 10 minutes"
    reasons = [p["reason"] for _, p in step.send]
    assert reasons == ["no answer within 10 minutes", "no such verification"]


# --- any payload in any state --------------------------------------------------------------

FLOW_MARK = "<flow>"
A_KEY = vodozemac.Sas().public_key.to_base64()
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=70),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
plausible = st.sampled_from([A_KEY, "A" * 43, "A" * 42, "", "x|y", "\ud800", "A" * 300])
payloads = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(sorted(VERIFY_TYPES)) | json_values,
        "flow": st.sampled_from([FLOW_MARK, "other", "a|b"]) | json_values,
        "devices": st.sampled_from([["<device>"], ["<device>", "A" * 16], []]) | json_values,
        "commitment": plausible | json_values,
        "key": plausible | json_values,
        "keys": plausible | json_values,
        "device": plausible | json_values,
        "reason": plausible | json_values,
    },
)
STAGES = ["idle", "requested", "accepted", "key sent", "comparing", "confirmed"]


def _fill(value: Any, flow: str, device: str) -> Any:
    if value == FLOW_MARK:
        return flow
    if isinstance(value, list):
        return [device if item == "<device>" else item for item in value]
    return value


@settings(max_examples=300, deadline=None)
@given(
    stage=st.sampled_from(STAGES),
    inputs=st.lists(
        st.tuples(st.booleans(), st.sampled_from(["peer", "third"]), payloads), max_size=4
    ),
)
def test_any_payload_in_any_stage_yields_one_well_formed_step(
    ed_alice: IdentityKey,
    ed_bob: IdentityKey,
    ed_carol: IdentityKey,
    stage: str,
    inputs: list[tuple[bool, str, dict[str, Any]]],
) -> None:
    alice, bob, carol = (
        make_party("alice", ed_alice),
        make_party("bob", ed_bob),
        make_party("carol", ed_carol),
    )
    mailbox = Mailbox(alice, bob, carol)
    flow = "none"
    if stage != "idle":
        mailbox.start(alice, bob)
        flow = flow_of(alice)
        mailbox.run()
    if stage in ("accepted", "key sent", "comparing", "confirmed"):
        mailbox.answer(bob, True)
    if stage == "key sent":
        mailbox.deliver_one()
    if stage in ("comparing", "confirmed"):
        mailbox.run()
    if stage == "confirmed":
        mailbox.answer(alice, True)
        mailbox.queue.clear()
    for to_alice, who, payload in inputs:
        target, peer = (alice, bob) if to_alice else (bob, alice)
        sender = peer if who == "peer" else carol
        filled = {k: _fill(v, flow, target.keys.device_id) for k, v in payload.items()}
        step = target.verifications.receive(sender.keys, sender.nick, filled, NOW)
        assert_well_formed(step)
        assert step.verified is None  # nothing forged verifies anyone
        assert all(to in (bob.keys, alice.keys, carol.keys) for to, _ in step.send)
        assert isinstance(target.verifications.waiting_for_answer, bool)
