"""Server settings: defaults, overridden by a TOML file (--config), overridden by flags."""

from __future__ import annotations

import asyncio
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ..chat.envelope import MAX_BODY_BYTES
from ..chat.server import FINGERPRINT_PATTERN, ChatSettings
from ..protocol.connection import DEFAULT_HANDSHAKE_TIMEOUT

# A client whose unsent output grows past this has stopped reading; it is disconnected rather
# than allowed to hold the server's memory.
DEFAULT_MAX_WRITE_BUFFER = 4 * 1024 * 1024
# "auto": uvloop when it is installed (the `uvloop` extra), else asyncio's own loop. asyncio is
# the default: uvloop asks a socket for its peer's address only when asked, so a peer that resets
# right after connecting is logged without its address.
EVENT_LOOPS = ("auto", "asyncio", "uvloop")
BROKER_SCHEMES = ("redis://", "rediss://", "unix://")


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
    max_connections: int = 10000
    max_connections_per_ip: int = 64
    max_unauthenticated: int = 256
    idle_timeout: float = 300.0
    ping_timeout: float = 60.0
    event_loop: str = "asyncio"
    broker: str = ""

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
        limits = (self.max_connections, self.max_connections_per_ip, self.max_unauthenticated)
        if min(limits) < 1 or self.max_write_buffer < 65536:
            raise ConfigError("connection limits must be >= 1 and max_write_buffer >= 65536")
        if min(self.handshake_timeout, self.idle_timeout, self.ping_timeout) <= 0:
            raise ConfigError("timeouts must be positive")
        if self.broker and not self.broker.startswith(BROKER_SCHEMES):
            raise ConfigError(f"broker must be a Redis URL ({', '.join(BROKER_SCHEMES)}...)")
        if self.event_loop not in EVENT_LOOPS:
            raise ConfigError(f"event_loop must be one of {', '.join(EVENT_LOOPS)}")
        if not 1 <= self.max_message_bytes <= MAX_BODY_BYTES:
            raise ConfigError(f"max_message_bytes must be in [1, {MAX_BODY_BYTES}]")

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
    "max_connections": int,
    "max_connections_per_ip": int,
    "max_unauthenticated": int,
    "idle_timeout": (int, float),
    "ping_timeout": (int, float),
    "event_loop": str,
    "broker": str,
}


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
