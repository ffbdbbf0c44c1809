"""Alert codes and the one exception that carries them."""

from __future__ import annotations

from enum import IntEnum


class AlertLevel(IntEnum):
    WARNING = 1
    FATAL = 2


class AlertDescription(IntEnum):
    """TLS 1.3's codes where the meaning is the same; ours from 200 on."""

    close_notify = 0
    unexpected_message = 10
    bad_record_mac = 20
    record_overflow = 22
    handshake_failure = 40
    bad_certificate = 42
    unsupported_certificate = 43
    certificate_unknown = 46
    illegal_parameter = 47
    decode_error = 50
    decrypt_error = 51
    protocol_version = 70
    insufficient_security = 71
    internal_error = 80
    user_canceled = 90
    # Our own: conditions TLS leaves to the implementation.
    truncated = 200
    key_exhausted = 201
    handshake_timeout = 202
    too_many_records = 203
    server_busy = 204


class ProtocolError(Exception):
    """A fatal protocol failure: the alert, why, and which side raised it.

    ``sender`` is the role ("client" or "server") whose checks failed and who sent the alert;
    ``received`` is true when the alert came from the peer rather than from a local check.
    """

    def __init__(
        self,
        alert: AlertDescription,
        reason: str,
        sender: str = "",
        received: bool = False,
    ) -> None:
        super().__init__(reason)
        self.alert = alert
        self.reason = reason
        self.sender = sender
        self.received = received

    def __str__(self) -> str:
        origin = f"{self.sender} " if self.sender else ""
        verb = "received" if self.received else "raised"
        return f"{self.alert.name} ({origin}alert {verb}): {self.reason}"


def alert_name(code: int) -> str:
    try:
        return AlertDescription(code).name
    except ValueError:
        return f"unknown_alert_{code}"
