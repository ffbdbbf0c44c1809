"""The terminal client's end-to-end state (tlschat.chat.client.crypto.ClientCrypto, over
vodozemac), driven one JSON command per line on stdin, one JSON answer per line on stdout, so
that web/test/e2e_python.test.mjs can pass Olm, Megolm and SAS messages between it and the
browser's code (libolm) in both directions. Test support only: it keeps its device in memory.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from tlschat.chat.client.crypto import ClientCrypto
from tlschat.chat.client.crypto_rooms import SessionOwner
from tlschat.chat.client.verification import Verifications, VerificationStep
from tlschat.chat.e2e_frames import MegolmLine
from tlschat.e2e.codec import b64decode, b64encode
from tlschat.e2e.device import DeviceKeys
from tlschat.e2e.private import open_private, seal_private
from tlschat.protocol.identity import IdentityKey

PICKLE_KEY = bytes(range(32))


class Side:
    def __init__(self) -> None:
        self.identity = IdentityKey.generate("ed25519")
        self.crypto = ClientCrypto(self.identity, PICKLE_KEY, {})
        self.verifications = Verifications(self.crypto.own_keys)

    def device(self, fingerprint: str, device_id: str) -> DeviceKeys:
        found = self.crypto.directory.device(fingerprint, device_id)
        if found is None:
            raise LookupError(f"no verified device {device_id} of {fingerprint}")
        return found

    def step(self, step: VerificationStep) -> dict[str, Any]:
        return {
            "send": [[device.device_id, payload] for device, payload in step.send],
            "notices": list(step.notices),
            "verified": step.verified,
        }

    def handle(self, command: dict[str, Any]) -> dict[str, Any]:
        op = command["op"]
        crypto = self.crypto
        if op == "start":
            return {
                "fingerprint": self.identity.fingerprint,
                "device_keys": crypto.device_keys_fields(),
                "one_time_keys": crypto.hello_keys(),
            }
        if op == "keys":
            answer = crypto.directory.receive_keys(command["frame"])
            return {"devices": [d.device_id for d in answer.devices], "rejected": answer.rejected}
        if op == "claimed":
            crypto.directory.claim(list(crypto.directory.devices(command["fingerprint"])))
            failed = crypto.directory.receive_claimed(command["frame"])
            return {"failed": [d.device_id for d in failed]}
        if op == "encrypt":
            device = self.device(command["fingerprint"], command["device"])
            return crypto.encrypt_for(device, command["kind"], command["fields"]).to_dict()
        if op == "decrypt":
            device = self.device(command["fingerprint"], command["device"])
            payload = crypto.decrypt_from(device, command["type"], command["body"])
            return {"kind": payload.kind, "fields": payload.fields}
        if op == "room_send":
            sender, _ = crypto.rooms.sender(command["network"], command["room"], command["now"])
            room_key = sender.room_key()
            ciphertext = sender.encrypt(bytes.fromhex(command["plaintext"]), command["now"])
            return {
                "session": room_key.session_id,
                "key": room_key.session_key,
                "ct": ciphertext.ciphertext,
            }
        if op == "room_import":
            device = self.device(command["fingerprint"], command["device"])
            fresh = crypto.rooms.import_shared(
                crypto.room_keys,
                SessionOwner(device.user, device.curve25519),
                command["network"],
                command["room"],
                command["session"],
                command["key"],
            )
            return {"fresh": fresh}
        if op == "room_decrypt":
            line = MegolmLine(command["session"], command["ct"])
            plain = crypto.rooms.decrypt(
                crypto.room_keys, command["network"], command["room"], command["sender"], line
            )
            return {"plaintext": plain.plaintext.hex(), "index": plain.message_index}
        if op == "seal_private":
            key = bytes.fromhex(command["key"])
            return {"ct": b64encode(seal_private(key, bytes.fromhex(command["plaintext"])))}
        if op == "open_private":
            opened = open_private(bytes.fromhex(command["key"]), b64decode(command["ct"]))
            return {"plaintext": opened.hex()}
        if op == "verify_start":
            devices = list(crypto.directory.devices(command["fingerprint"]))
            return self.step(self.verifications.start(command["nick"], devices, command["now"]))
        if op == "verify_receive":
            device = self.device(command["fingerprint"], command["device"])
            step = self.verifications.receive(
                device, command["nick"], command["payload"], command["now"]
            )
            return self.step(step)
        if op == "verify_answer":
            return self.step(self.verifications.answer(command["yes"], command["now"]))
        raise ValueError(f"unknown op {op!r}")


def main() -> None:
    side = Side()
    for line in sys.stdin:
        answer: dict[str, Any]
        try:
            answer = {"ok": side.handle(json.loads(line))}
        except Exception as problem:  # the test shows what the Python side refused, and why
            answer = {"error": f"{type(problem).__name__}: {problem}"}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
