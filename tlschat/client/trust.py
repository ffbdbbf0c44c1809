"""Deciding whether to trust the server's key: --pin, an invitation, known_hosts, trust on first
use."""

from __future__ import annotations

from dataclasses import dataclass

from ..protocol.identity import HostKeyChanged, KnownHosts, fingerprints_equal
from .settings import ClientSettings

# The user said no to a new server's key (or left while asked): the client sent nothing of its
# own, not even who it is, and exits with EXIT_UNTRUSTED_SERVER.
NOT_TRUSTED = "[!] Not trusted; nothing was sent."


def no_terminal_to_ask(where: str, fingerprint: str) -> str:
    """Why a new server's key is refused when stdin is not a terminal, and how to trust it."""
    return (
        f"[!] Not trusted: {where} is a new server (key {fingerprint}) and stdin is not a "
        "terminal to ask you on; nothing was sent. If this is its key, give "
        f"--pin {fingerprint} (or connect once from a terminal and answer y)."
    )


@dataclass(frozen=True)
class TrustDecision:
    """``is_new``: a key never seen, for the user to accept (trust on first use). ``remember``:
    a key known under other names, trusted and recorded under this one without a question."""

    trusted: bool
    message: str
    is_new: bool = False
    remember: bool = False


def changed_key_warning(change: HostKeyChanged) -> str:
    bar = "@" * 59
    return "\n".join(
        [
            bar,
            "@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @",
            bar,
            "IT IS POSSIBLE THAT SOMEONE IS DOING SOMETHING NASTY!",
            "Someone could be eavesdropping on you right now (man-in-the-middle attack)!",
            "It is also possible that the server's key has just been changed.",
            f"The fingerprint for the key sent by the remote host {change.host} is",
            f"{change.presented}.",
            f"known_hosts expects {change.expected}.",
            f"Offending key in {change.path}:{change.line_number}",
            f"Remove line {change.line_number} of {change.path} if you trust the new key.",
            f"Host key for {change.host} has changed; refusing to connect.",
        ]
    )


def decide(
    known_hosts: KnownHosts, host: str, port: int, fingerprint: str, pin: str | None
) -> TrustDecision:
    """Pinned keys must match exactly; otherwise known_hosts decides: a name's own entry first,
    then the key under other names, and a key never seen is trusted on first use."""
    if pin is not None:
        if fingerprints_equal(pin, fingerprint):
            return TrustDecision(True, f"Server key matches the pinned fingerprint {pin}")
        return TrustDecision(
            False,
            f"Server key {fingerprint} does not match the pinned fingerprint {pin}; "
            "refusing to connect.",
        )
    known = known_hosts.check(host, port, fingerprint)
    if isinstance(known, HostKeyChanged):
        return TrustDecision(False, changed_key_warning(known))
    if known:
        return TrustDecision(True, f"Server key {fingerprint} matches known_hosts")
    where = KnownHosts.host_key(host, port)
    # The same key reached under another name (localhost after 127.0.0.1) proves the same
    # server: whoever holds that key was trusted already. Only a name's own entry can refuse.
    names = known_hosts.names_of(fingerprint)
    if names:
        return TrustDecision(
            True,
            f"Server key {fingerprint} is known as {', '.join(names)}; remembering {where} too",
            remember=True,
        )
    return TrustDecision(
        True, f"New server {where} with key fingerprint {fingerprint}", is_new=True
    )


def decide_invited(
    known_hosts: KnownHosts, host: str, port: int, fingerprint: str, invited: str
) -> TrustDecision:
    """An invitation pins the server's key as --pin does, and the key it pinned is recorded in
    known_hosts, so that later connections, without the invitation, trust it from there. A
    known_hosts entry with another key for this name is refused as a changed key always is."""
    if not fingerprints_equal(invited, fingerprint):
        return TrustDecision(
            False,
            f"Server key {fingerprint} does not match the fingerprint in the invitation "
            f"{invited}; refusing to connect (the invitation is for another server, or someone "
            "is in between).",
        )
    known = known_hosts.check(host, port, fingerprint)
    if isinstance(known, HostKeyChanged):
        return TrustDecision(False, changed_key_warning(known))
    if known:
        return TrustDecision(True, f"Server key {fingerprint} matches the invitation")
    where = KnownHosts.host_key(host, port)
    return TrustDecision(
        True,
        f"Server key {fingerprint} matches the invitation; remembering it for {where}",
        remember=True,
    )


def trust_report(
    settings: ClientSettings, fingerprint: str, known_hosts: KnownHosts | None
) -> list[str]:
    """What /trust shows: the server's key, the pin if any, and its known_hosts entry (once
    ``known_hosts`` is known: a session has started)."""
    host, port = settings.known_as.host, settings.known_as.port
    lines = [f"Server {host}:{port} key: {fingerprint or 'not connected yet'}"]
    if settings.pin:
        lines.append(f"Pinned with --pin {settings.pin}")
    if settings.invitation is not None:
        lines.append(f"Pinned by the invitation (--invite) to {settings.invitation.fingerprint}")
    if known_hosts is not None:
        found = known_hosts.lookup(host, port)
        if found is None:
            lines.append(f"No entry for {host}:{port} in {known_hosts.path}")
        else:
            number, stored = found
            entry = f"{known_hosts.host_key(host, port)} {stored}"
            lines.append(f"known_hosts entry {known_hosts.path}:{number}: {entry}")
    return lines
