"""``/verify`` and ``/devices``: the user's own devices, and SAS verification of another user
over to-device payloads (``verification.Verifications`` runs the flow). Pure.

Payloads for another device go Olm-encrypted in ``to_device`` frames; one for a device there is
no Olm session with waits for a one-time key (``keys_claim``), and later payloads for that device
wait behind it, so that each device gets them in order.
"""

from __future__ import annotations

from typing import Any

from ...e2e.device import DeviceKeys
from ...e2e.errors import E2eError
from ...protocol.identity import IdentityKey
from ..e2e_frames import DEVICE_ID, OlmItem
from ..frames import valid_nick
from ..lines import Line
from .commands import error, notice
from .crypto import VERIFIED, ClientCrypto
from .crypto_directory import KeysAnswer
from .decrypting import ClientDecrypting
from .encrypting import to_device_frames
from .verification import Verifications, VerificationStep

NO_KEYS = "this client has no device keys (end-to-end encryption is off)"
NOT_CONNECTED = "not connected; try again once connected"


class ClientVerifying(ClientDecrypting):
    """The user's devices, and verification of other users."""

    def __init__(
        self, identity: IdentityKey, nick: str = "", crypto: ClientCrypto | None = None
    ) -> None:
        super().__init__(identity, nick, crypto)
        self.verifications = Verifications(crypto.own_keys) if crypto is not None else None
        # Payloads waiting for an Olm session with their device, in the order they were made.
        self._held: list[tuple[DeviceKeys, dict[str, Any]]] = []
        self._listing_devices = False
        # A /verify waiting for the device list of (nick, fingerprint).
        self._verify_asked: tuple[str, str] | None = None
        # The nick each verified fingerprint had in its flow, for the ledger.
        self._verify_nicks: dict[str, str] = {}

    def tick(self, now: float) -> list[Line]:
        lines = super().tick(now)
        if self.verifications is not None:
            lines = self._apply(self.verifications.tick(now), now) + lines
        return lines

    # --- commands -------------------------------------------------------------------------

    def verify_command(self, args: str, now: float) -> list[Line]:
        """``/verify NICK``, ``/verify yes``, ``/verify no``."""
        if self.crypto is None or self.verifications is None:
            return error(f"cannot verify: {NO_KEYS}", now)
        if args.lower() in ("yes", "no"):
            return self._apply(self.verifications.answer(args.lower() == "yes", now), now)
        if not valid_nick(args):
            return error("usage: /verify NICK, then /verify yes or /verify no", now)
        if not self._welcomed:
            return error(f"cannot verify: {NOT_CONNECTED}", now)
        fingerprint = self.directory.get(args.casefold())
        if fingerprint is None:
            return error(f"unknown nick {args}; /whois {args} first", now)
        directory = self.crypto.directory
        if directory.known(fingerprint):
            return self._start_verification(args, fingerprint, now)
        self._verify_asked = (args, fingerprint)
        self.outbox += directory.query([fingerprint], now)
        return notice(f"Asking the server for the devices of {args}…", now)

    def devices_command(self, args: str, now: float) -> list[Line]:
        """``/devices`` lists this user's devices; ``/devices remove ID`` removes one."""
        if self.crypto is None:
            return error(f"no devices: {NO_KEYS}", now)
        if not self._welcomed:
            return error(NOT_CONNECTED, now)
        words = args.split()
        if not words:
            own = self.identity.fingerprint
            self.crypto.directory.forget(own)
            self.outbox += self.crypto.directory.query([own], now)
            self._listing_devices = True
            return []
        if len(words) != 2 or words[0].lower() != "remove" or not DEVICE_ID.fullmatch(words[1]):
            return error("usage: /devices, or /devices remove DEVICE_ID", now)
        if words[1] == self.crypto.device_id:
            return error("that is this device: remove it from another one", now)
        self.outbox.append({"type": "device_remove", "device": words[1]})
        return notice(f"Asked the server to remove device {words[1]}", now)

    # --- answers --------------------------------------------------------------------------

    def _devices_answered(self, answer: KeysAnswer, now: float) -> list[Line]:
        """A user's device list came: what a /devices or a /verify waited for."""
        lines: list[Line] = []
        crypto = self.crypto
        if crypto is None:
            return lines
        if self._listing_devices and answer.fingerprint == self.identity.fingerprint:
            self._listing_devices = False
            lines.append(Line("info", now, "Your devices:"))
            lines.append(Line("info", now, f"  {crypto.device_id} (this device)"))
            lines += [Line("info", now, f"  {d.device_id}") for d in answer.devices]
            lines.append(Line("info", now, "  /devices remove ID removes one"))
        if self._verify_asked is not None and self._verify_asked[1] == answer.fingerprint:
            nick, fingerprint = self._verify_asked
            self._verify_asked = None
            lines += self._start_verification(nick, fingerprint, now)
        return lines

    def _start_verification(self, nick: str, fingerprint: str, now: float) -> list[Line]:
        assert self.crypto is not None and self.verifications is not None
        devices = list(self.crypto.directory.devices(fingerprint))
        self._verify_nicks[fingerprint] = nick
        return self._apply(self.verifications.start(nick, devices, now), now)

    def _verification_payload(
        self, device: DeviceKeys, kind: str, fields: dict[str, Any], now: float
    ) -> list[Line]:
        """A ``verify_*`` payload from ``device`` (verified keys, checked envelope)."""
        if self.verifications is None:
            return []
        nick = self._nick_of(device.user)
        self._verify_nicks.setdefault(device.user, nick)
        step = self.verifications.receive(device, nick, {**fields, "type": kind}, now)
        return self._apply(step, now)

    def _apply(self, step: VerificationStep, now: float) -> list[Line]:
        """Show a verification step, keep its outcome, send its payloads."""
        lines = [Line("notice", now, text) for text in step.notices]
        crypto = self.crypto
        if step.verified is not None and crypto is not None:
            nick = self._verify_nicks.get(step.verified, "")
            if not valid_nick(nick):
                nick = self._nick_of(step.verified)
            if valid_nick(nick):
                crypto.verified.add(step.verified, nick, now)
                crypto.mark(VERIFIED)
            else:
                lines += error("the verified key could not be kept: no nick is known for it", now)
        return lines + self._send_to_devices(list(step.send), now)

    # --- to-device payloads ---------------------------------------------------------------

    def _send_to_devices(
        self, payloads: list[tuple[DeviceKeys, dict[str, Any]]], now: float
    ) -> list[Line]:
        """Olm-encrypt each payload for its device and send it, or hold it until there is a
        session with that device."""
        crypto = self.crypto
        if crypto is None or not payloads:
            return []
        directory = crypto.directory
        lines: list[Line] = []
        held = {(d.user, d.device_id) for d, _ in self._held}
        ready: list[OlmItem] = []
        claim: list[DeviceKeys] = []
        for device, payload in payloads:
            ref = (device.user, device.device_id)
            if ref in held or crypto.needs_session(device):
                if directory.is_unreachable(device):
                    lines += error(f"device {device.device_id} cannot be reached: no keys", now)
                    continue
                self._held.append((device, payload))
                held.add(ref)
                if not directory.is_claiming(device) and crypto.needs_session(device):
                    claim.append(device)
                continue
            fields = {name: value for name, value in payload.items() if name != "type"}
            try:
                ready.append(crypto.encrypt_for(device, str(payload.get("type")), fields))
            except (E2eError, ValueError) as problem:
                lines += error(f"not sent to device {device.device_id}: {problem}", now)
        self.outbox += directory.claim(claim)
        self.outbox += to_device_frames(ready)
        return lines

    def _flush_held(self, now: float) -> list[Line]:
        """One-time keys came: what waited for them goes (or is given up), in order."""
        held, self._held = self._held, []
        return self._send_to_devices(held, now)
