"""``/verify NICK``: SAS verification between this device and a device of another user, as a
state machine over the to-device payloads of ``verification_payloads``. Pure: time is passed in.

How it looks to the users:

- ``/verify bob`` (:meth:`Verifications.start`) sends a request to every device of bob. Each of
  those shows "alice wants to verify you: /verify yes to start, /verify no to refuse". The device
  whose user answers yes first wins; the others get a cancel ("accepted on another device"). A
  request is not accepted by itself: the user's consent starts it, and the device the user sits
  at wins, not whichever of their devices happens to be online. A refusal (or any cancel) from
  one of bob's devices ends the request for all of them.
- The accepter commits to its SAS key, the requester sends its key, the accepter reveals its key
  (checked against the commitment). Both show the seven emoji with their names and the three
  numbers, and ask "do they match? /verify yes or /verify no".
- On yes a device sends the MACs of its keys; a device whose user said yes and which holds valid
  MACs from the other reports the other user's fingerprint as verified. On no both sides stop.
- ``/verify no`` ends a flow at any stage. A flow ends after 10 minutes whatever its stage.

One flow at a time: a request that arrives during another flow is refused ("busy"). When two
users ask each other at the same time, the request of the user with the smaller fingerprint goes
on and the other device accepts it at once (its user asked for exactly this).

Every payload of the flow's id from the device the flow is with is checked, and anything
malformed, out of order or failing a check cancels the flow both ways and says so. A payload of
the flow's id from any other device cancels it too (only the devices a request went to know the
id), except from a device of the peer that lost the race to accept, whose late answers are
dropped. A payload of another flow id is answered with a cancel (unless it is a cancel: cancels
are never answered, so two devices never cancel each other in a loop); one without a readable
flow id from anyone else is dropped, since there is nothing to answer it with.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from ...e2e.device import DeviceKeys
from ...e2e.sas import (
    SasCommitmentMismatch,
    SasError,
    SasMacMismatch,
    SasRole,
    SasVerification,
)
from ..e2e_frames import MAX_DEVICES_PER_KEY
from ..frames import FrameError, valid_nick
from .verification_payloads import (
    VERIFY_TYPES,
    Accept,
    Cancel,
    Key,
    Mac,
    Payload,
    Request,
    accept_payload,
    cancel_payload,
    key_payload,
    mac_payload,
    new_flow_id,
    parse_payload,
    parse_request,
    payload_flow,
    request_payload,
)

FLOW_TIMEOUT = 600.0
ANSWER = "/verify yes or /verify no"
PROMPT = f"Do they match? {ANSWER}"
MISMATCH = (
    "If they really differ, someone may be between you and {nick}: do not trust the key the"
    " server shows for {nick} until a verification succeeds."
)
INTERCEPTED = (
    "WARNING: someone may be between you and {nick} (a man in the middle): "
    "do not trust the key the server shows for {nick} until a verification succeeds."
)


@dataclass(frozen=True)
class VerificationStep:
    """What one call asks of the caller: payloads to send (each to one device), lines to show,
    and the outcome of a flow that ended. ``failed`` repeats, for the caller's logic, the reason
    the notices already give; show the notices. ``nick`` is the nick of the user the flow that
    ended was with ("" if the caller gave none): the one to record with ``verified``."""

    send: tuple[tuple[DeviceKeys, dict[str, Any]], ...] = ()
    notices: tuple[str, ...] = ()
    verified: str | None = None
    failed: str | None = None
    nick: str = ""


class Stage(Enum):
    REQUESTED = "requested"  # we asked; waiting for one of their devices to accept
    INCOMING = "incoming"  # they asked; waiting for our user to accept or refuse
    ACCEPTED = "accepted"  # we accepted (commitment sent); waiting for their key
    KEY_SENT = "key sent"  # their device accepted and we sent our key; waiting for theirs
    COMPARING = "comparing"  # emoji shown; waiting for our user (their MACs may be in already)
    CONFIRMED = "confirmed"  # our user said yes and our MACs went out; waiting for theirs


@dataclass
class _Flow:
    flow_id: str
    nick: str  # as shown: the nick, or the fingerprint when the caller gave no nick
    user: str
    stage: Stage
    started: float
    # The requester's request went to these devices; the accepter's flow has none.
    requested: tuple[DeviceKeys, ...] = ()
    # With the device the flow is with (``sas.theirs``); None while the requester waits for an
    # accept.
    sas: SasVerification | None = None
    their_macs: bool = False

    def peers(self) -> tuple[DeviceKeys, ...]:
        """The devices a cancel goes to."""
        return (self.sas.theirs,) if self.sas is not None else self.requested

    def is_peer(self, sender: DeviceKeys) -> bool:
        return any(same_device(sender, device) for device in self.peers())

    def lost_the_race(self, sender: DeviceKeys) -> bool:
        """A device the request went to, other than the one that accepted first."""
        if self.sas is None or same_device(sender, self.sas.theirs):
            return False
        return any(same_device(sender, device) for device in self.requested)

    def require_sas(self) -> SasVerification:
        if self.sas is None:
            raise SasError("no SAS in this stage")
        return self.sas


@dataclass
class _Out:
    send: list[tuple[DeviceKeys, dict[str, Any]]] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    verified: str | None = None
    failed: str | None = None
    nick: str = ""

    def step(self) -> VerificationStep:
        return VerificationStep(
            tuple(self.send), tuple(self.notices), self.verified, self.failed, self.nick
        )


def same_device(a: DeviceKeys, b: DeviceKeys) -> bool:
    """The same device with the same keys (the identity signature may differ: RSA-PSS is
    randomized, so a re-signed entry is still the same device)."""
    return _device_fields(a) == _device_fields(b)


def _device_fields(keys: DeviceKeys) -> tuple[str, str, str, str]:
    return keys.user, keys.device_id, keys.curve25519, keys.ed25519


def same_flow(a: str, b: str) -> bool:
    """Two flow ids (ASCII, as ``FLOW_ID_PATTERN`` says) compared in constant time: only the
    devices a request went to know its id."""
    return hmac.compare_digest(a.encode("ascii"), b.encode("ascii"))


def _nick_of(flow: _Flow) -> str:
    return flow.nick if valid_nick(flow.nick) else ""


def _describe(payload: dict[str, Any]) -> str:
    kind = payload.get("type")
    return kind if isinstance(kind, str) and kind in VERIFY_TYPES else "payload"


class Verifications:
    """This device's verifications with other users' devices: at most one flow at a time."""

    def __init__(self, own: DeviceKeys) -> None:
        self.own = own
        self._flow: _Flow | None = None

    @property
    def waiting_for_answer(self) -> bool:
        """Our user has a question to answer with ``/verify yes`` or ``/verify no``."""
        return self._flow is not None and self._flow.stage in (Stage.INCOMING, Stage.COMPARING)

    # --- what our user does --------------------------------------------------------------

    def start(self, peer_nick: str, peer_devices: list[DeviceKeys], now: float) -> VerificationStep:
        """``/verify NICK``: a request to every device of the peer (their verified device keys)."""
        out = self._expire(now)
        refusal = self._start_refusal(peer_nick, peer_devices)
        if refusal is not None:
            out.notices.append(refusal)
            return out.step()
        flow = _Flow(
            new_flow_id(),
            peer_nick,
            peer_devices[0].user,
            Stage.REQUESTED,
            now,
            requested=tuple(peer_devices),
        )
        payload = request_payload(flow.flow_id, tuple(d.device_id for d in peer_devices))
        out.send += [(device, payload) for device in peer_devices]
        self._flow = flow
        count = "its device" if len(peer_devices) == 1 else f"its {len(peer_devices)} devices"
        out.notices.append(
            f"Asked {peer_nick} ({flow.user}, {count}) to verify; waiting for them to accept"
            " (/verify no to stop)."
        )
        return out.step()

    def answer(self, matches: bool, now: float) -> VerificationStep:
        """``/verify yes`` or ``/verify no``."""
        out = self._expire(now)
        flow = self._flow
        if flow is None:
            out.notices.append("There is no verification to answer.")
        elif not matches:
            self._refuse(flow, out)
        elif flow.stage is Stage.INCOMING:
            self._accept(flow, out)
        elif flow.stage is Stage.COMPARING:
            self._confirm(flow, out)
        elif flow.stage is Stage.CONFIRMED:
            out.notices.append(f"You said yes; waiting for {flow.nick} to answer.")
        else:
            out.notices.append(f"Nothing to compare yet: waiting for {flow.nick}'s device.")
        return out.step()

    def tick(self, now: float) -> VerificationStep:
        """Ends a flow that has run for ``FLOW_TIMEOUT`` seconds."""
        return self._expire(now).step()

    # --- what the other device sends -----------------------------------------------------

    def receive(
        self, sender: DeviceKeys, sender_nick: str, payload: dict[str, Any], now: float
    ) -> VerificationStep:
        """A verification payload from ``sender`` (whose device keys the caller verified)."""
        out = self._expire(now)
        flow = self._flow
        flow_id = payload_flow(payload)
        if flow is not None and flow_id is not None and same_flow(flow_id, flow.flow_id):
            self._in_flow(flow, sender, payload, out)
        elif flow is not None and flow_id is None and flow.is_peer(sender):
            self._abort(flow, out, f"a malformed {_describe(payload)}")
        elif flow_id is not None:
            self._outside_flow(sender, sender_nick or sender.user, flow_id, payload, now, out)
        return out.step()

    def _in_flow(self, flow: _Flow, sender: DeviceKeys, payload: dict[str, Any], out: _Out) -> None:
        if flow.lost_the_race(sender):
            return
        if not flow.is_peer(sender):
            self._abort(flow, out, "a device not in this verification used its id", also=sender)
            return
        try:
            step = parse_payload(payload)
        except FrameError as error:
            self._abort(flow, out, f"a malformed {_describe(payload)} ({error})")
            return
        try:
            self._dispatch(flow, sender, step, _describe(payload), out)
        except SasCommitmentMismatch:
            why = "their key is not the one they committed to"
            self._abort(flow, out, why, reason="the key did not match its commitment", alarm=True)
        except SasMacMismatch:
            why = "their keys are not the ones the server showed"
            self._abort(flow, out, why, reason="the MACs did not match the keys", alarm=True)
        except (SasError, ValueError) as error:
            self._abort(flow, out, f"the SAS refused a step ({error})")

    def _dispatch(
        self, flow: _Flow, sender: DeviceKeys, payload: Payload, kind: str, out: _Out
    ) -> None:
        match flow.stage, payload:
            case _, Cancel(reason=reason):
                self._peer_cancelled(flow, sender, reason, out)
            case Stage.REQUESTED, Accept() as accept:
                self._accepted(flow, sender, accept, out)
            case Stage.ACCEPTED, Key(key=key):
                sas = flow.require_sas()
                sas.receive_public_key(key)
                out.send.append((sender, key_payload(flow.flow_id, sas.public_key)))
                self._compare(flow, out)
            case Stage.KEY_SENT, Key(key=key):
                flow.require_sas().receive_public_key(key)
                self._compare(flow, out)
            case Stage.COMPARING | Stage.CONFIRMED, Mac(macs=macs) if not flow.their_macs:
                flow.require_sas().receive_mac(macs)
                flow.their_macs = True
                if flow.stage is Stage.CONFIRMED:
                    self._verified(flow, out)
                else:
                    out.notices.append(f"{flow.nick} has answered. Your answer: {ANSWER}")
            case _:
                self._abort(flow, out, f"an unexpected {kind} while {flow.stage.value}")

    def _outside_flow(
        self,
        sender: DeviceKeys,
        nick: str,
        flow_id: str,
        payload: dict[str, Any],
        now: float,
        out: _Out,
    ) -> None:
        kind = payload.get("type")
        if kind == "verify_cancel":
            return
        if kind != "verify_request":
            out.send.append((sender, cancel_payload(flow_id, "no such verification")))
            return
        try:
            request = parse_request(payload)
        except FrameError as error:
            out.send.append((sender, cancel_payload(flow_id, "a malformed request")))
            out.notices.append(f"{nick} sent a malformed verification request ({error}): refused.")
            return
        refusal = self._request_refusal(sender, request)
        if refusal is not None:
            out.send.append((sender, cancel_payload(flow_id, refusal)))
            out.notices.append(f"A verification request from {nick} was refused: {refusal}.")
            return
        current = self._flow
        crossed = current is not None and self._crossed(current, sender)
        if current is not None and crossed and self.own.user < sender.user:
            # They drop their request and accept ours (the branch below, on their side).
            out.send.append((sender, cancel_payload(flow_id, "requests crossed; ours goes on")))
            return
        if current is not None and not crossed:
            out.send.append((sender, cancel_payload(flow_id, "busy with another verification")))
            out.notices.append(
                f"{nick} asked to verify you, but you are verifying {current.nick}: refused."
            )
            return
        if current is not None:
            out.send += [
                (d, cancel_payload(current.flow_id, "requests crossed")) for d in current.peers()
            ]
            out.notices.append(f"You and {nick} asked at the same time: going on with theirs.")
        try:
            sas = SasVerification(self.own, sender, flow_id, SasRole.ACCEPTER)
        except ValueError:
            self._flow = None
            out.send.append((sender, cancel_payload(flow_id, "unusable device keys")))
            return
        flow = _Flow(flow_id, nick, sender.user, Stage.INCOMING, now, sas=sas)
        self._flow = flow
        if crossed:
            self._accept(flow, out)
        else:
            out.notices.append(
                f"{nick} ({sender.user}) wants to verify you:"
                " /verify yes to start, /verify no to refuse."
            )

    # --- steps ---------------------------------------------------------------------------

    def _accept(self, flow: _Flow, out: _Out) -> None:
        sas = flow.require_sas()
        out.send.append((sas.theirs, accept_payload(flow.flow_id, sas.commitment)))
        flow.stage = Stage.ACCEPTED
        out.notices.append(f"Verifying {flow.nick}: exchanging keys with their device.")

    def _accepted(self, flow: _Flow, sender: DeviceKeys, accept: Accept, out: _Out) -> None:
        sas = SasVerification(self.own, sender, flow.flow_id, SasRole.STARTER)
        sas.receive_commitment(accept.commitment)
        flow.sas, flow.stage = sas, Stage.KEY_SENT
        others = [d for d in flow.requested if not same_device(d, sender)]
        out.send += [
            (d, cancel_payload(flow.flow_id, "accepted on another device")) for d in others
        ]
        out.send.append((sender, key_payload(flow.flow_id, sas.public_key)))
        out.notices.append(f"{flow.nick} accepted on device {sender.device_id}: exchanging keys.")

    def _compare(self, flow: _Flow, out: _Out) -> None:
        sas = flow.require_sas()
        flow.stage = Stage.COMPARING
        emoji = "  ".join(f"{entry.emoji} {entry.name}" for entry in sas.emoji())
        numbers = " ".join(str(number) for number in sas.decimals())
        out.notices += [
            f"Verify {flow.nick}: compare with what {flow.nick} sees (in person or on a call):",
            f"  {emoji}",
            f"  or the numbers {numbers}",
            PROMPT,
        ]

    def _confirm(self, flow: _Flow, out: _Out) -> None:
        sas = flow.require_sas()
        out.send.append((sas.theirs, mac_payload(flow.flow_id, sas.confirm())))
        if flow.their_macs:
            self._verified(flow, out)
        else:
            flow.stage = Stage.CONFIRMED
            out.notices.append(f"You said yes; waiting for {flow.nick} to answer.")

    def _verified(self, flow: _Flow, out: _Out) -> None:
        self._flow = None
        out.verified, out.nick = flow.user, _nick_of(flow)
        out.notices.append(
            f"✓✓ {flow.nick} is verified: their key {flow.user} is the one you compared with."
        )

    def _refuse(self, flow: _Flow, out: _Out) -> None:
        if flow.stage is Stage.INCOMING:
            self._abort(flow, out, "you refused", reason="refused")
        elif flow.stage is Stage.COMPARING:
            self._abort(flow, out, "you said they do not match", reason="the emoji did not match")
            out.notices.append(MISMATCH.format(nick=flow.nick))
        else:
            self._abort(flow, out, "you cancelled it", reason="cancelled by the user")

    def _peer_cancelled(self, flow: _Flow, sender: DeviceKeys, reason: str, out: _Out) -> None:
        others = [d for d in flow.peers() if not same_device(d, sender)]
        out.send += [
            (d, cancel_payload(flow.flow_id, "cancelled on another device")) for d in others
        ]
        self._end(flow, out, f"{flow.nick} cancelled it ({reason})")

    def _abort(
        self,
        flow: _Flow,
        out: _Out,
        why: str,
        *,
        reason: str | None = None,
        alarm: bool = False,
        also: DeviceKeys | None = None,
    ) -> None:
        """We end the flow: a cancel to each device it is with (and ``also``), and why."""
        payload = cancel_payload(flow.flow_id, reason or why)
        out.send += [(device, payload) for device in flow.peers()]
        if also is not None:
            out.send.append((also, payload))
        self._end(flow, out, why)
        if alarm:
            out.notices.append(INTERCEPTED.format(nick=flow.nick))

    def _end(self, flow: _Flow, out: _Out, why: str) -> None:
        self._flow = None
        out.failed, out.nick = why, _nick_of(flow)
        out.notices.append(f"Verification of {flow.nick} ended: {why}. Nothing was verified.")

    def _expire(self, now: float) -> _Out:
        out = _Out()
        flow = self._flow
        if flow is not None and now - flow.started >= FLOW_TIMEOUT:
            self._abort(flow, out, f"no answer within {FLOW_TIMEOUT / 60:.0f} minutes")
        return out

    # --- refusals ------------------------------------------------------------------------

    def _start_refusal(self, nick: str, devices: list[DeviceKeys]) -> str | None:
        if self._flow is not None:
            return f"You are verifying {self._flow.nick} already: /verify no ends that first."
        if not devices:
            return f"{nick} has no device with end-to-end keys: nothing to verify with."
        users = {device.user for device in devices}
        ids = {device.device_id for device in devices}
        if len(users) != 1 or len(ids) != len(devices) or len(devices) > MAX_DEVICES_PER_KEY:
            return f"The device list the server gave for {nick} is not valid: not verifying."
        if self.own.user in users:
            return "That is you: verify another user."
        return None

    def _request_refusal(self, sender: DeviceKeys, request: Request) -> str | None:
        if sender.user == self.own.user:
            return "a user does not verify themselves"
        if self.own.device_id not in request.devices:
            return "the request does not name this device"
        return None

    def _crossed(self, current: _Flow, sender: DeviceKeys) -> bool:
        """We asked ``sender``'s user, no device of theirs answered yet, and they asked us."""
        return current.stage is Stage.REQUESTED and current.user == sender.user
