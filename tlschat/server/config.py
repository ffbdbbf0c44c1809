"""Server settings: defaults, overridden by a TOML file (--config), overridden by flags."""

from __future__ import annotations

import asyncio
import math
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ..chat.envelope import MAX_BODY_BYTES
from ..chat.presence import DEFAULT_PRESENCE_BURST, DEFAULT_PRESENCE_RATE
from ..chat.server.model import DEFAULT_LARGE_ROOM, FINGERPRINT_PATTERN, ChatSettings
from ..protocol.connection import DEFAULT_HANDSHAKE_TIMEOUT
from ..store.base import Retention

# A client whose unsent output grows past this has stopped reading; it is disconnected rather
# than allowed to hold the server's memory.
DEFAULT_MAX_WRITE_BUFFER = 4 * 1024 * 1024
DEFAULT_MAX_TOTAL_WRITE_BUFFER = 32 * 1024 * 1024
# "auto": uvloop when it is installed (the `uvloop` extra), else asyncio's own loop. asyncio is
# the default: uvloop asks a socket for its peer's address only when asked, so a peer that resets
# right after connecting is logged without its address.
EVENT_LOOPS = ("auto", "asyncio", "uvloop")
BROKER_SCHEMES = ("redis://", "rediss://", "unix://")
# Handshakes started per second by the whole server, after a burst; past it new connections wait
# their turn, unread (server/pacing.py). A handshake costs the server about 1.1 ms of CPU (a
# signature, a key exchange: docs/BENCHMARKS.md), so 400 a second take at most about half a core.
DEFAULT_HANDSHAKE_RATE = 400.0
DEFAULT_HANDSHAKE_RATE_BURST = 20
# History retention (issue 13): per room, by age (seconds; "30d", "12h", "90m" or "45s" in TOML
# and flags), and by the database's size in bytes. 0 turns a bound off.
DAY = 86400.0
DEFAULT_HISTORY_KEEP_PER_ROOM = 10_000
DEFAULT_HISTORY_MAX_AGE = 30 * DAY
DEFAULT_HISTORY_MAX_BYTES = 1 << 30  # 1 GiB
MIN_HISTORY_MAX_BYTES = 1 << 20  # 1 MiB: below it, the schema and counters alone could fill it
DURATION_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": DAY}


class ConfigError(ValueError):
    pass


@dataclass
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 8443
    data_dir: Path = Path("data")
    server_name: str = "tlschat"
    motd: str = ""
    motd_file: Path | None = None
    history: int = 50
    operators: list[str] = field(default_factory=list)
    allowlist_only: bool = False
    allowlist: list[str] = field(default_factory=list)
    rate: float = 2.0
    burst: int = 10
    max_message_bytes: int = MAX_BODY_BYTES
    handshake_timeout: float = DEFAULT_HANDSHAKE_TIMEOUT
    max_write_buffer: int = DEFAULT_MAX_WRITE_BUFFER
    max_total_write_buffer: int = DEFAULT_MAX_TOTAL_WRITE_BUFFER
    max_connections: int = 10000
    max_connections_per_ip: int = 64
    max_connections_per_block: int = 256
    block_prefix_v4: int = 24
    block_prefix_v6: int = 64
    max_sessions_per_key: int = 8
    handshakes_per_block: float = 20.0
    handshake_burst: int = 40
    handshake_rate: float = DEFAULT_HANDSHAKE_RATE
    handshake_rate_burst: int = DEFAULT_HANDSHAKE_RATE_BURST
    hello_timeout: float = 10.0
    presence_rate: float = DEFAULT_PRESENCE_RATE
    presence_burst: int = DEFAULT_PRESENCE_BURST
    large_room: int = DEFAULT_LARGE_ROOM
    max_unauthenticated: int = 256
    idle_timeout: float = 300.0
    ping_timeout: float = 60.0
    event_loop: str = "asyncio"
    broker: str = ""
    history_keep_per_room: int = DEFAULT_HISTORY_KEEP_PER_ROOM
    history_max_age: float = DEFAULT_HISTORY_MAX_AGE
    history_max_bytes: int = DEFAULT_HISTORY_MAX_BYTES
    # "HOST:PORT" where the web client (its files and /ws) is served; "" (the default): nowhere.
    web: str = ""

    def check(self) -> None:
        for name in ("operators", "allowlist"):
            for fingerprint in getattr(self, name):
                if not isinstance(fingerprint, str) or not FINGERPRINT_PATTERN.fullmatch(
                    fingerprint
                ):
                    raise ConfigError(f"{name}: {fingerprint!r} is not a SHA256:... fingerprint")
        if self.motd_file is not None:
            try:
                if not self.motd_file.is_file():
                    raise OSError("not a file")
                self.motd_file.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                raise ConfigError(f"motd_file {self.motd_file} is not a readable file") from None
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port {self.port} is out of range")
        if self.history < 0 or self.burst < 1 or self.rate <= 0:
            raise ConfigError("history must be >= 0, burst >= 1 and rate > 0")
        limits = (
            self.max_connections,
            self.max_connections_per_ip,
            self.max_connections_per_block,
            self.max_sessions_per_key,
            self.handshake_burst,
            self.handshake_rate_burst,
            self.max_unauthenticated,
        )
        if min(limits) < 1 or self.max_write_buffer < 65536:
            raise ConfigError("connection limits must be >= 1 and max_write_buffer >= 65536")
        if self.max_total_write_buffer < 65536:
            raise ConfigError("max_total_write_buffer must be >= 65536")
        # Not (x > 0) refuses NaN too; an infinite rate would make the pacer's arithmetic NaN.
        if not (self.handshakes_per_block > 0 and 0 < self.handshake_rate < math.inf):
            raise ConfigError("handshakes_per_block and handshake_rate must be > 0 (and finite)")
        if self.presence_rate <= 0 or self.presence_burst < 1:
            raise ConfigError("presence_rate must be > 0 and presence_burst >= 1")
        if self.large_room < 1:
            raise ConfigError("large_room must be >= 1")
        if not 0 <= self.block_prefix_v4 <= 32 or not 0 <= self.block_prefix_v6 <= 128:
            raise ConfigError("block_prefix_v4 must be in [0, 32] and block_prefix_v6 in [0, 128]")
        timeouts = (
            self.handshake_timeout,
            self.hello_timeout,
            self.idle_timeout,
            self.ping_timeout,
        )
        if min(timeouts) <= 0:
            raise ConfigError("timeouts must be positive")
        if self.broker and not self.broker.startswith(BROKER_SCHEMES):
            raise ConfigError(f"broker must be a Redis URL ({', '.join(BROKER_SCHEMES)}...)")
        if self.event_loop not in EVENT_LOOPS:
            raise ConfigError(f"event_loop must be one of {', '.join(EVENT_LOOPS)}")
        if not 1 <= self.max_message_bytes <= MAX_BODY_BYTES:
            raise ConfigError(f"max_message_bytes must be in [1, {MAX_BODY_BYTES}]")
        self.check_retention()
        if self.web and self.web_address() == (self.host, self.port) and self.port:
            raise ConfigError(f"web {self.web} is the chat's own host and port: give another")

    def web_address(self) -> tuple[str, int]:
        """``web`` as (host, port): "HOST:PORT", an IPv6 host in brackets ("[::1]:8080")."""
        host, colon, port = self.web.rpartition(":")
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        elif ":" in host:
            host = ""  # an IPv6 address needs its brackets to be told from its port
        if not (colon and host and port.isascii() and port.isdigit() and int(port) <= 65535):
            raise ConfigError(f"web {self.web!r} is not HOST:PORT (e.g. 127.0.0.1:8080)")
        return host, int(port)

    def check_retention(self) -> None:
        keep = self.history_keep_per_room
        if keep < 0 or (keep and keep < self.history):
            raise ConfigError("history_keep_per_room must be 0 (no bound) or at least history")
        if self.history_max_age < 0:
            raise ConfigError("history_max_age must be 0 (no bound) or positive")
        if 0 < self.history_max_bytes < MIN_HISTORY_MAX_BYTES or self.history_max_bytes < 0:
            raise ConfigError(
                f"history_max_bytes must be 0 (no bound) or at least {MIN_HISTORY_MAX_BYTES}"
            )

    def retention(self) -> Retention:
        return Retention(
            keep_per_room=self.history_keep_per_room,
            max_age=self.history_max_age,
            max_bytes=self.history_max_bytes,
        )

    def chat_settings(self) -> ChatSettings:
        motd = self.motd
        if self.motd_file is not None:
            motd = self.motd_file.read_text(encoding="utf-8").strip()
        return ChatSettings(
            server_name=self.server_name,
            motd=motd,
            history_limit=self.history,
            operators=frozenset(self.operators),
            allowlist=frozenset(self.allowlist) if self.allowlist_only else None,
            rate_per_second=self.rate,
            burst=self.burst,
            max_body_bytes=self.max_message_bytes,
            presence_rate=self.presence_rate,
            presence_burst=self.presence_burst,
            large_room=self.large_room,
        )


_PATHS = {"data_dir", "motd_file"}
_TYPES: dict[str, type | tuple[type, ...]] = {
    "host": str,
    "port": int,
    "data_dir": str,
    "server_name": str,
    "motd": str,
    "motd_file": str,
    "history": int,
    "operators": list,
    "allowlist_only": bool,
    "allowlist": list,
    "rate": (int, float),
    "burst": int,
    "max_message_bytes": int,
    "handshake_timeout": (int, float),
    "max_write_buffer": int,
    "max_total_write_buffer": int,
    "max_connections": int,
    "max_connections_per_ip": int,
    "max_connections_per_block": int,
    "block_prefix_v4": int,
    "block_prefix_v6": int,
    "max_sessions_per_key": int,
    "handshakes_per_block": (int, float),
    "handshake_burst": int,
    "handshake_rate": (int, float),
    "handshake_rate_burst": int,
    "hello_timeout": (int, float),
    "presence_rate": (int, float),
    "presence_burst": int,
    "large_room": int,
    "max_unauthenticated": int,
    "idle_timeout": (int, float),
    "ping_timeout": (int, float),
    "event_loop": str,
    "broker": str,
    "history_keep_per_room": int,
    "history_max_age": (int, float, str),
    "history_max_bytes": int,
    "web": str,
}


def parse_duration(value: str | float) -> float:
    """Seconds from a number of seconds or a string: "30d", "12h", "90m", "45s" or "3600"."""
    if isinstance(value, int | float):
        return float(value)
    text = value.strip().lower()
    unit = DURATION_UNITS.get(text[-1:])
    number = text[:-1] if unit is not None else text
    try:
        seconds = float(number) * (unit or 1.0)
    except ValueError:
        raise ConfigError(f"{value!r} is not a duration (like 30d, 12h, 90m, 45s)") from None
    if seconds != seconds or seconds in (float("inf"), float("-inf")):
        raise ConfigError(f"{value!r} is not a duration (like 30d, 12h, 90m, 45s)")
    return seconds


def load_settings(config_file: Path | None, overrides: dict[str, Any]) -> ServerSettings:
    """Defaults, then the TOML file's keys, then every override that is not None."""
    values: dict[str, Any] = {}
    known = {f.name for f in fields(ServerSettings)}
    if config_file is not None:
        try:
            loaded = tomllib.loads(config_file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
            raise ConfigError(f"{config_file}: {error}") from None
        unknown = sorted(set(loaded) - known)
        if unknown:
            raise ConfigError(f"{config_file}: unknown settings {', '.join(unknown)}")
        for name, value in loaded.items():
            if not isinstance(value, _TYPES[name]) or (
                isinstance(value, bool) and _TYPES[name] is not bool
            ):
                raise ConfigError(f"{config_file}: {name} has the wrong type")
        values.update(loaded)
    values.update({k: v for k, v in overrides.items() if v is not None and v != []})
    for name in _PATHS & values.keys():
        values[name] = Path(values[name])
    if "history_max_age" in values:
        values["history_max_age"] = parse_duration(values["history_max_age"])
    try:
        settings = ServerSettings(**values)
    except TypeError as error:
        raise ConfigError(str(error)) from None
    settings.check()
    return settings


def event_loop_factory(choice: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The loop factory for ``asyncio.Runner``: None is asyncio's own loop."""
    if choice == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        if choice == "uvloop":
            raise ConfigError("event_loop uvloop: pip install 'tlschat[uvloop]'") from None
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory
