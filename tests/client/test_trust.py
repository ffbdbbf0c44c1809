"""The trust decision over known_hosts: a name's own entry, then the key under other names."""

from __future__ import annotations

from pathlib import Path

from tlschat.client.trust import changed_key_warning, decide
from tlschat.protocol.identity import HostKeyChanged, IdentityKey, KnownHosts

KEY = IdentityKey.generate("ed25519").fingerprint
OTHER = IdentityKey.generate("ed25519").fingerprint


def test_a_known_key_under_another_name_is_trusted_and_remembered(tmp_path: Path) -> None:
    known_hosts = KnownHosts(tmp_path / "known_hosts")
    known_hosts.add("127.0.0.1", 8443, KEY)
    known_hosts.add("::1", 8443, KEY)
    decision = decide(known_hosts, "localhost", 8443, KEY, None)
    assert (decision.trusted, decision.is_new, decision.remember) == (True, False, True)
    assert decision.message == (
        f"Server key {KEY} is known as 127.0.0.1:8443, [::1]:8443; remembering localhost:8443 too"
    )
    assert known_hosts.names_of(KEY) == ["127.0.0.1:8443", "[::1]:8443"]
    assert known_hosts.names_of(OTHER) == []


def test_a_changed_key_under_a_known_name_is_refused_even_if_known_elsewhere(
    tmp_path: Path,
) -> None:
    known_hosts = KnownHosts(tmp_path / "known_hosts")
    known_hosts.add("localhost", 8443, OTHER)
    known_hosts.add("127.0.0.1", 8443, KEY)
    decision = decide(known_hosts, "localhost", 8443, KEY, None)
    assert (decision.trusted, decision.remember) == (False, False)
    change = known_hosts.check("localhost", 8443, KEY)
    assert isinstance(change, HostKeyChanged)
    assert decision.message == changed_key_warning(change)


def test_another_port_is_another_name_and_a_new_key_is_still_asked_about(tmp_path: Path) -> None:
    known_hosts = KnownHosts(tmp_path / "known_hosts")
    known_hosts.add("127.0.0.1", 8443, KEY)
    assert decide(known_hosts, "127.0.0.1", 9443, KEY, None).remember
    fresh = decide(known_hosts, "localhost", 8443, OTHER, None)
    assert (fresh.trusted, fresh.is_new, fresh.remember) == (True, True, False)


def test_a_pin_decides_alone(tmp_path: Path) -> None:
    known_hosts = KnownHosts(tmp_path / "known_hosts")
    known_hosts.add("127.0.0.1", 8443, KEY)
    pinned = decide(known_hosts, "localhost", 8443, KEY, OTHER)
    assert (pinned.trusted, pinned.remember) == (False, False)
