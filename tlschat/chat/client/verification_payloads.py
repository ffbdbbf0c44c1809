"""The to-device payloads of SAS verification (docs/PROTOCOL.md, "Verification"). Pure.

Each payload is a JSON object with ``type`` and ``flow`` and the step's fields; the crypto layer
Olm-encrypts it and adds the envelope fields, which the parsers here ignore. Every field a peer
sends is bounded and checked here, before anything uses it; a bad one raises
:class:`~tlschat.chat.frames.FrameError`.

- ``verify_request``: ``devices``, the ids of the devices the request went to (1 to 8).
- ``verify_accept``: ``commitment``, the accepter's commitment to its SAS public key.
- ``verify_key``: ``key``, the sender's SAS public key.
- ``verify_mac``: ``keys``, the MAC of the sender's identity fingerprint, and ``device``, the MAC
  of its device keys (``SasMacs.identity`` and ``SasMacs.device_keys``).
- ``verify_cancel``: ``reason``, a short text for the other user (at most 200 bytes).

Commitments and MACs are 32 bytes, keys 32 bytes: all 43 characters of unpadded base64.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ...e2e.sas import FLOW_ID_PATTERN, SasMacs
from ..e2e_frames import DEVICE_ID, MAX_DEVICES_PER_KEY, VODOZEMAC_KEY
from ..frames import FrameError, field_str, neutralize

REQUEST = "verify_request"
ACCEPT = "verify_accept"
KEY = "verify_key"
MAC = "verify_mac"
CANCEL = "verify_cancel"
MAX_REASON = 200
DIGEST_B64 = VODOZEMAC_KEY


@dataclass(frozen=True)
class Request:
    flow: str
    devices: tuple[str, ...]


@dataclass(frozen=True)
class Accept:
    flow: str
    commitment: str


@dataclass(frozen=True)
class Key:
    flow: str
    key: str


@dataclass(frozen=True)
class Mac:
    flow: str
    macs: SasMacs


@dataclass(frozen=True)
class Cancel:
    flow: str
    reason: str


Payload = Request | Accept | Key | Mac | Cancel


def new_flow_id() -> str:
    """A fresh random flow id (128 bits, URL-safe base64: within ``FLOW_ID_PATTERN``)."""
    return secrets.token_urlsafe(16)


def payload_flow(payload: dict[str, Any]) -> str | None:
    """The payload's flow id if it is a well-formed one, else None."""
    flow = payload.get("flow")
    if isinstance(flow, str) and FLOW_ID_PATTERN.fullmatch(flow):
        return flow
    return None


def _flow(payload: dict[str, Any]) -> str:
    flow = payload_flow(payload)
    if flow is None:
        raise FrameError("'flow' is not a flow id")
    return flow


def _field_pattern(payload: dict[str, Any], name: str, pattern: re.Pattern[str]) -> str:
    value = field_str(payload, name, 64)
    if not pattern.fullmatch(value):
        raise FrameError(f"'{name}' is not well formed")
    return value


def _devices(payload: dict[str, Any]) -> tuple[str, ...]:
    value = payload.get("devices")
    if not isinstance(value, list) or not 0 < len(value) <= MAX_DEVICES_PER_KEY:
        raise FrameError(f"'devices' must be a list of 1 to {MAX_DEVICES_PER_KEY} device ids")
    if not all(isinstance(item, str) and DEVICE_ID.fullmatch(item) for item in value):
        raise FrameError("'devices' must hold device ids")
    if len(set(value)) != len(value):
        raise FrameError("'devices' names a device twice")
    return tuple(value)


def parse_request(payload: dict[str, Any]) -> Request:
    return Request(_flow(payload), _devices(payload))


def _accept(payload: dict[str, Any]) -> Accept:
    return Accept(_flow(payload), _field_pattern(payload, "commitment", DIGEST_B64))


def _key(payload: dict[str, Any]) -> Key:
    return Key(_flow(payload), _field_pattern(payload, "key", VODOZEMAC_KEY))


def _mac(payload: dict[str, Any]) -> Mac:
    identity = _field_pattern(payload, "keys", DIGEST_B64)
    return Mac(_flow(payload), SasMacs(identity, _field_pattern(payload, "device", DIGEST_B64)))


def _cancel(payload: dict[str, Any]) -> Cancel:
    # A reason is only ever shown: a screen-rewriting character in it is neutralized.
    return Cancel(_flow(payload), neutralize(field_str(payload, "reason", MAX_REASON)))


_PARSERS: dict[str, Callable[[dict[str, Any]], Payload]] = {
    REQUEST: parse_request,
    ACCEPT: _accept,
    KEY: _key,
    MAC: _mac,
    CANCEL: _cancel,
}
# The payload types this module reads: what the crypto layer hands to verification.
VERIFY_TYPES = frozenset(_PARSERS)


def parse_payload(payload: dict[str, Any]) -> Payload:
    """The verification step ``payload`` carries; FrameError if it is not a well-formed one."""
    kind = payload.get("type")
    parser = _PARSERS.get(kind) if isinstance(kind, str) else None
    if parser is None:
        raise FrameError("not a verification payload")
    return parser(payload)


def request_payload(flow: str, devices: tuple[str, ...]) -> dict[str, Any]:
    return {"type": REQUEST, "flow": flow, "devices": list(devices)}


def accept_payload(flow: str, commitment: str) -> dict[str, Any]:
    return {"type": ACCEPT, "flow": flow, "commitment": commitment}


def key_payload(flow: str, key: str) -> dict[str, Any]:
    return {"type": KEY, "flow": flow, "key": key}


def mac_payload(flow: str, macs: SasMacs) -> dict[str, Any]:
    return {"type": MAC, "flow": flow, "keys": macs.identity, "device": macs.device_keys}


def cancel_payload(flow: str, reason: str) -> dict[str, Any]:
    return {"type": CANCEL, "flow": flow, "reason": reason}
