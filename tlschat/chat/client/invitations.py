"""The invitation an operator made (/invitation), shown as the one string a new user pastes into
``tlschat client --invite``. Pure.

The server sends the secret and, if the operator named one, the address; the server's key is the
one this client verified in its handshake (never a fingerprint the server merely claims), and the
address is otherwise the one this client reached the server by.
"""

from __future__ import annotations

from typing import Any

from ..frames import FrameError, field_int, field_str
from ..invitation import (
    ID_PATTERN,
    MAX_SECRET,
    Invitation,
    InvitationError,
    parse_address,
    valid_secret,
)
from ..lines import Line
from ..server.durations import describe_duration
from .base import ClientBase
from .commands import notice

MAX_VALID_FOR = 10 * 365 * 86400


MAX_ADDRESS = 300


def on_invitation(client: ClientBase, frame: dict[str, Any], now: float) -> list[Line]:
    made_id = field_str(frame, "id", 16)
    secret = field_str(frame, "secret", MAX_SECRET)
    if not ID_PATTERN.fullmatch(made_id) or not valid_secret(secret):
        raise FrameError("not an invitation's id and secret")
    valid_for = field_int(frame, "valid_for", MAX_VALID_FOR)
    address = field_str(frame, "address", MAX_ADDRESS) if "address" in frame else ""
    try:
        host, port = parse_address(address or client.server_address)
    except InvitationError as error:
        raise FrameError(f"no address for the invitation: {error}") from None
    invitation = Invitation(host, port, client.network, secret)
    text = (
        f"Invitation {made_id}: one new key may join with it, once, within "
        f"{describe_duration(valid_for)}: {invitation}"
    )
    return notice(text, now)
