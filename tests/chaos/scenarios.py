"""The chaos scenarios of issue 19, and the two sizes they run at.

FULL is the issue's setup: 3 servers on one Redis, 6 senders at 2 lines/s, 3 receivers, 60 s of
traffic with the fault at 20 s (``make chaos``). BOUNDED is the same with 2 senders, 2 receivers
and 10 s of traffic, short enough to run inside ``make test``.
"""

from __future__ import annotations

from dataclasses import dataclass

from .faults import CutOff, Fault, RedisCrash, RedisStall, ServerCrash, ServerRestart
from .proxy import ProxyMode


@dataclass(frozen=True)
class Profile:
    name: str
    servers: int
    # The server each sender or receiver connects to first (it knows the others for failover).
    sender_homes: tuple[int, ...]
    receiver_homes: tuple[int, ...]
    lines_per_second: float
    traffic_seconds: float
    fault_at: float
    cut_off_seconds: float
    redis_stall_seconds: float
    redis_down_seconds: float
    server_down_seconds: float
    # After the traffic: the longest wait for outcomes and deliveries still on their way.
    settle_seconds: float


FULL = Profile(
    name="full",
    servers=3,
    sender_homes=(0, 1, 2, 0, 1, 2),
    receiver_homes=(0, 1, 2),
    lines_per_second=2.0,
    traffic_seconds=60.0,
    fault_at=20.0,
    cut_off_seconds=10.0,
    redis_stall_seconds=5.0,
    redis_down_seconds=3.0,
    server_down_seconds=3.0,
    settle_seconds=15.0,
)

# The faulted server 0 has a sender and a receiver; the other receiver sees it from server 2.
BOUNDED = Profile(
    name="bounded",
    servers=3,
    sender_homes=(0, 1),
    receiver_homes=(0, 2),
    lines_per_second=2.0,
    traffic_seconds=8.0,
    fault_at=2.0,
    cut_off_seconds=5.0,
    # As long as the full run's: a shorter stall stays within every timeout and shows nothing.
    redis_stall_seconds=5.0,
    redis_down_seconds=2.0,
    server_down_seconds=2.0,
    settle_seconds=6.0,
)

PROFILES = {profile.name: profile for profile in (FULL, BOUNDED)}


@dataclass(frozen=True)
class Scenario:
    name: str
    fault: Fault | None

    @property
    def proxied(self) -> bool:
        """Server 0 reaches Redis through the fault proxy."""
        return isinstance(self.fault, CutOff)

    def describe(self) -> str:
        return "no fault" if self.fault is None else self.fault.describe()


def scenarios(profile: Profile) -> list[Scenario]:
    cut = profile.cut_off_seconds
    return [
        Scenario("baseline", None),
        Scenario("cut-off-pause", CutOff(ProxyMode.PAUSE, cut)),
        Scenario("cut-off-reset", CutOff(ProxyMode.RESET, cut)),
        Scenario("cut-off-refuse", CutOff(ProxyMode.REFUSE, cut)),
        Scenario("redis-sigstop", RedisStall(profile.redis_stall_seconds)),
        Scenario("redis-kill", RedisCrash(profile.redis_down_seconds)),
        Scenario("server-kill", ServerCrash()),
        Scenario("server-restart", ServerRestart(profile.server_down_seconds)),
    ]
