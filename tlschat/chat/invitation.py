"""Invitations as people pass them around: one string that names the server, its key and a
one-time secret. Pure.

    tlschat-invite:HOST:PORT#SHA256:FINGERPRINT#SECRET

HOST is a host name or an IPv4 address, or an IPv6 address in brackets (``[::1]:8443``); PORT is
1 to 65535; FINGERPRINT is the server key's (``SHA256:`` and 43 base64 characters, as
``tlschat fingerprint`` prints it), which the new user's client pins; SECRET is 22 to 64
characters of unpadded base64url (tlschat makes 32: 192 random bits). ``#`` occurs in none of
them. The server keeps only the SHA-256 of the secret; the first 8 hex digits of that hash are
the invitation's id, which operators see and revoke it by (docs/PROTOCOL.md, section 22).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from typing import TypeGuard

PREFIX = "tlschat-invite:"


# 24 random bytes: 32 base64url characters. Anything tlschat accepts has at least 128 bits.
SECRET_BYTES = 24


MIN_SECRET = 22


MAX_SECRET = 64


ID_LENGTH = 8


# Attempts at a secret whose id no kept invitation has (ids are 32 bits of its hash).
MAKE_ATTEMPTS = 8


DEFAULT_LIFETIME = 7 * 86400.0


MAX_LIFETIME = 365 * 86400.0


MAX_HOST = 253


MAX_PORT = 65535


# Prefix, a bracketed host, ':' and a port, two '#', a fingerprint and a secret, with room.
MAX_INVITATION = 400


SECRET_PATTERN = re.compile(rf"[A-Za-z0-9_-]{{{MIN_SECRET},{MAX_SECRET}}}")


FINGERPRINT_PATTERN = re.compile(r"SHA256:[A-Za-z0-9+/]{43}")


ID_PATTERN = re.compile(rf"[0-9a-f]{{{ID_LENGTH}}}")


_HOST_NAME = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?")


_IPV6 = re.compile(r"[0-9A-Fa-f:.]{2,45}")


_PORT = re.compile(r"[0-9]{1,5}")


class InvitationError(ValueError):
    """A string that is not an invitation; the text says what is wrong and how it should look."""


@dataclass(frozen=True)
class Invitation:
    host: str
    port: int
    fingerprint: str
    secret: str

    @property
    def address(self) -> str:
        return format_address(self.host, self.port)

    def __str__(self) -> str:
        return f"{PREFIX}{self.address}#{self.fingerprint}#{self.secret}"


def new_secret() -> str:
    return secrets.token_urlsafe(SECRET_BYTES)


def secret_digest(secret: str) -> str:
    """What the server keeps of a secret: the hex SHA-256 of its ASCII text."""
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def invitation_id(digest: str) -> str:
    """The public name of the invitation whose secret hashes to ``digest``."""
    return digest[:ID_LENGTH]


def valid_secret(value: object) -> TypeGuard[str]:
    """Whether ``value`` could be a secret tlschat made (checked before it is hashed)."""
    return isinstance(value, str) and SECRET_PATTERN.fullmatch(value) is not None


def format_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def parse_address(text: str) -> tuple[str, int]:
    """'HOST:PORT' or '[IPV6]:PORT' -> (host, port); InvitationError if it is neither."""
    usage = f"{text!r} is not a server address (HOST:PORT, or [IPV6]:PORT)"
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or not rest.startswith(":") or ":" not in host or not _IPV6.fullmatch(host):
            raise InvitationError(usage)
        port_text = rest[1:]
    else:
        host, colon, port_text = text.partition(":")
        if not colon or len(host) > MAX_HOST or not _HOST_NAME.fullmatch(host):
            raise InvitationError(usage)
    if not _PORT.fullmatch(port_text) or not 1 <= int(port_text) <= MAX_PORT:
        raise InvitationError(f"{text!r}: the port must be a number from 1 to {MAX_PORT}")
    return host, int(port_text)


def parse_invitation(text: str) -> Invitation:
    """The invitation in ``text`` (surrounding spaces, as a paste brings them, are ignored)."""
    text = text.strip()
    if len(text) > MAX_INVITATION:
        raise InvitationError(f"an invitation is at most {MAX_INVITATION} characters")
    if not text.startswith(PREFIX):
        raise InvitationError(f"an invitation starts with {PREFIX!r}")
    parts = text[len(PREFIX) :].split("#")
    if len(parts) != 3:
        raise InvitationError(
            f"an invitation is {PREFIX}HOST:PORT#FINGERPRINT#SECRET: three parts separated by '#'"
        )
    address, fingerprint, secret = parts
    host, port = parse_address(address)
    if not FINGERPRINT_PATTERN.fullmatch(fingerprint):
        raise InvitationError(
            f"{fingerprint!r} is not a server key's fingerprint (SHA256: and 43 base64 characters)"
        )
    if not valid_secret(secret):
        raise InvitationError(
            f"the secret is not one tlschat makes ({MIN_SECRET} to {MAX_SECRET} of "
            "A-Z a-z 0-9 - _); was the invitation cut short?"
        )
    return Invitation(host, port, fingerprint, secret)
