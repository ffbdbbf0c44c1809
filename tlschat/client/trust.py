"""Deciding whether to trust the server's key: --pin, known_hosts, trust on first use."""

from __future__ import annotations

from dataclasses import dataclass

from ..protocol.identity import HostKeyChanged, KnownHosts, fingerprints_equal


@dataclass(frozen=True)
class TrustDecision:
    trusted: bool
    message: str
    is_new: bool = False


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
    """Pinned keys must match exactly; otherwise known_hosts decides, and new hosts are TOFU."""
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
    return TrustDecision(
        True, f"New server {where} with key fingerprint {fingerprint}", is_new=True
    )
