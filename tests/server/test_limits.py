"""Admission limits: address blocks, handshake buckets per block, summaries, the open-file fit."""

from __future__ import annotations

import collections
import logging

import pytest

from tlschat.server.config import ConfigError, ServerSettings, load_settings
from tlschat.server.limits import (
    FAILED_HANDSHAKE,
    NO_HELLO,
    NOFILE_RESERVE,
    OTHER_BLOCKS,
    HandshakeBuckets,
    LimitLog,
    address_block,
    describe,
    failed_handshake,
    fit_max_connections,
    open_file_limit,
)


@pytest.mark.parametrize(
    ("address", "block"),
    [
        ("127.0.0.1", "127.0.0.0/24"),
        ("127.0.0.255", "127.0.0.0/24"),
        ("127.0.1.1", "127.0.1.0/24"),
        ("192.0.2.77", "192.0.2.0/24"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),
        ("2001:db8:1:3::1", "2001:db8:1:3::/64"),
        ("::1", "::/64"),
        ("::ffff:192.0.2.77", "192.0.2.0/24"),  # IPv4-mapped: the IPv4 block
        ("fe80::1%eth0", "fe80::/64"),  # a scope id is not part of the address
        ("", ""),  # not an IP address (a Unix socket): its own block
        ("not-an-ip", "not-an-ip"),
    ],
)
def test_address_block_default_prefixes(address: str, block: str) -> None:
    assert address_block(address, 24, 64) == block


def test_address_block_configured_prefixes() -> None:
    assert address_block("10.1.2.3", 16, 48) == "10.1.0.0/16"
    assert address_block("10.1.2.3", 32, 128) == "10.1.2.3/32"
    assert address_block("2001:db8:aa:bb::1", 16, 48) == "2001:db8:aa::/48"
    assert address_block("::ffff:10.1.2.3", 8, 48) == "10.0.0.0/8"
    assert address_block("2001:db8::1", 24, 0) == "::/0"


def test_handshake_bucket_burst_then_rate_per_block() -> None:
    buckets = HandshakeBuckets(rate=20.0, burst=40)
    assert all(buckets.admit("127.0.0.0/24", 100.0) for _ in range(40))
    assert not buckets.admit("127.0.0.0/24", 100.0)
    # Another block has its own bucket.
    assert buckets.admit("127.0.1.0/24", 100.0)
    # 20 per second: one token every 50 ms.
    assert buckets.admit("127.0.0.0/24", 100.05)
    assert not buckets.admit("127.0.0.0/24", 100.05)
    assert sum(buckets.admit("127.0.0.0/24", 101.05) for _ in range(100)) == 20


def test_handshake_buckets_forget_idle_blocks() -> None:
    buckets = HandshakeBuckets(rate=10.0, burst=5)
    for _ in range(5):
        buckets.admit("a", 0.0)
    buckets.admit("b", 0.0)
    buckets.evict_idle(0.05)
    assert set(buckets.buckets) == {"a", "b"}
    buckets.evict_idle(0.3)  # b has refilled its one token, a not yet its five
    assert set(buckets.buckets) == {"a"}
    buckets.evict_idle(10.0)
    assert buckets.buckets == {}


def test_handshake_buckets_are_bounded() -> None:
    buckets = HandshakeBuckets(rate=1.0, burst=1, max_blocks=3)
    for block in "abc":
        assert buckets.admit(block, 0.0)
    assert buckets.admit("a", 0.0) is False  # a is now the most recently used
    assert buckets.admit("d", 0.0)
    assert list(buckets.buckets) == ["c", "a", "d"]  # b, the least recently used, went
    assert len(buckets.buckets) == 3


def test_limit_log_one_line_per_block(caplog: pytest.LogCaptureFixture) -> None:
    limit_log = LimitLog()
    for _ in range(812):
        limit_log.count("127.0.0.0/24", "handshake rate", 5.0)
    for _ in range(3):
        limit_log.count("127.0.0.0/24", failed_handshake("protocol error: bad_certificate"), 7.0)
    limit_log.count("127.0.0.0/24", failed_handshake("connection lost"), 7.0)
    limit_log.count("10.0.0.0/24", NO_HELLO, 9.0)
    limit_log.count("10.0.0.0/24", "too many connections from your address block", 9.0)
    with caplog.at_level(logging.INFO, logger="tlschat.server"):
        limit_log.flush(15.0)
        limit_log.flush(30.0)  # nothing new: nothing logged
    assert [record.getMessage() for record in caplog.records] == [
        "[LIMIT] 127.0.0.0/24: 812 connections refused (handshake rate), "
        "3 failed handshakes (protocol error: bad_certificate), "
        "1 failed handshake (connection lost) in the last 10 s",
        "[LIMIT] 10.0.0.0/24: 1 session closed without hello, "
        "1 connection refused (too many connections from your address block) in the last 10 s",
    ]


def test_limit_log_is_bounded() -> None:
    limit_log = LimitLog(max_blocks=2)
    for block in ("a", "b", "c", "d", "a"):
        limit_log.count(block, FAILED_HANDSHAKE, 0.0)
    assert set(limit_log.counts) == {"a", "b", OTHER_BLOCKS}
    assert limit_log.counts[OTHER_BLOCKS][FAILED_HANDSHAKE] == 2
    assert limit_log.counts["a"][FAILED_HANDSHAKE] == 2
    assert len(limit_log.lines(1.0)) == 3
    assert limit_log.counts == {}


def test_describe_plurals() -> None:
    counts = collections.Counter(
        {"the server is full": 2, failed_handshake("quit"): 1, NO_HELLO: 2}
    )
    assert describe(counts) == (
        "2 connections refused (the server is full), 1 failed handshake (quit), "
        "2 sessions closed without hello"
    )


def test_fit_max_connections() -> None:
    assert fit_max_connections(10000, 1024) == 1024 - NOFILE_RESERVE
    assert fit_max_connections(500, 1024) == 500
    assert fit_max_connections(10000, 1 << 20) == 10000
    assert fit_max_connections(10, 10) == 1


def test_open_file_limit_raises_the_soft_limit_to_the_hard_one() -> None:
    import resource

    before = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(256, before[1]), before[1]))
        soft, hard = open_file_limit()
        now = resource.getrlimit(resource.RLIMIT_NOFILE)
        if before[1] != resource.RLIM_INFINITY:
            assert soft == hard == before[1] == now[0]
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, before)


def test_new_settings_defaults_and_checks() -> None:
    settings = load_settings(None, {})
    assert settings.max_connections_per_ip == 64
    assert settings.max_connections_per_block == 256
    assert (settings.block_prefix_v4, settings.block_prefix_v6) == (24, 64)
    assert settings.max_sessions_per_key == 8
    assert (settings.handshakes_per_block, settings.handshake_burst) == (20.0, 40)
    assert settings.hello_timeout == 10.0
    for bad in (
        {"max_connections_per_block": 0},
        {"max_sessions_per_key": 0},
        {"handshake_burst": 0},
        {"handshakes_per_block": 0},
        {"block_prefix_v4": 33},
        {"block_prefix_v6": 129},
        {"block_prefix_v4": -1},
        {"hello_timeout": 0},
    ):
        with pytest.raises(ConfigError):
            ServerSettings(**bad).check()  # type: ignore[arg-type]
