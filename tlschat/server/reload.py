"""Reloading the configuration file at run time, on SIGHUP or an operator's /reload.

The file is read and checked anew, as at start (the flags given at start still win over it). A
file that is refused (its syntax, an unknown setting, a bad value, an unreadable motd_file)
changes nothing: the old settings stay in force, and the log (and the operator, for /reload) is
told why. An accepted file is applied setting by setting: the LIVE ones at once, to what the
server does from then on; the others are reported as needing a restart and keep their running
value until then. In a cluster each server reloads its own file.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from ..chat.server.admin import ReloadOutcome
from ..chat.server.model import ChatSettings, Outgoing
from .config import ConfigError, ServerSettings, load_settings

log = logging.getLogger("tlschat.server")

# Applied at once: to new connections, sessions and messages, and to the sessions already there
# where that means something (flood buckets resized, operators told, keys the allowlist no longer
# admits disconnected; idle and ping timeouts, output budgets, retention on their next check).
LIVE = frozenset(
    {
        "server_name",
        "motd",
        "motd_file",
        "history",
        "operators",
        "allowlist_only",
        "allowlist",
        "rate",
        "burst",
        "max_message_bytes",
        "handshake_timeout",
        "max_write_buffer",
        "max_total_write_buffer",
        "max_connections",
        "max_connections_per_ip",
        "max_connections_per_block",
        "max_sessions_per_key",
        "handshakes_per_block",
        "handshake_burst",
        "handshake_rate",
        "handshake_rate_burst",
        "hello_timeout",
        "large_room",
        "max_unauthenticated",
        "idle_timeout",
        "ping_timeout",
        "history_keep_per_room",
        "history_max_age",
        "history_max_bytes",
    }
)
# Need a restart: the listening sockets, the data directory and the broker are opened once; the
# event loop is chosen before anything runs; connections are counted per address block and
# presence budgets kept per room as those were sized at start.
RESTART = frozenset(
    {
        "host",
        "port",
        "web",
        "data_dir",
        "broker",
        "event_loop",
        "block_prefix_v4",
        "block_prefix_v6",
        "presence_rate",
        "presence_burst",
    }
)
# Live on one server; in a cluster every server's replica keeps this many messages per room, as
# many as it loaded from Redis when it joined, so a change needs a restart there.
RESTART_IN_A_CLUSTER = frozenset({"history"})
MAX_SHOWN = 60


@dataclass(frozen=True)
class ConfigSource:
    """Where the settings come from: the --config file (None: there is none) and the flags,
    which win over the file on every reload as they did at start."""

    file: Path | None = None
    overrides: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclass(frozen=True)
class Change:
    """One setting that differs in the new file, and whether it took effect now."""

    name: str
    text: str
    live: bool


def _show(value: object) -> str:
    if isinstance(value, str):
        shown = value if len(value) <= MAX_SHOWN else value[: MAX_SHOWN - 1] + "…"
        return repr(shown)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else f"{value:g}"
    return "none" if value is None else str(value)


def _describe(name: str, old: object, new: object) -> str:
    if isinstance(old, list) and isinstance(new, list):
        added = [f"+ {item}" for item in new if item not in old]
        removed = [f"- {item}" for item in old if item not in new]
        return f"{name}: {', '.join(added + removed) or 'reordered'}"
    return f"{name}: {_show(old)} -> {_show(new)}"


def setting_changes(
    old: ServerSettings, new: ServerSettings, old_motd: str, new_motd: str, clustered: bool
) -> list[Change]:
    """Every setting of ``new`` that differs from ``old`` (in the order of ServerSettings), and
    the message of the day when its file's text changed; ``old_motd`` and ``new_motd`` are the
    texts shown (a motd_file's text wins over motd)."""
    changes: list[Change] = []
    for setting in fields(ServerSettings):
        name = setting.name
        before, after = getattr(old, name), getattr(new, name)
        if before == after:
            if name == "motd_file" and after is not None and old_motd != new_motd:
                text = f"motd_file: {after}: its text is now {_show(new_motd)}"
                changes.append(Change(name, text, True))
            continue
        text = _describe(name, before, after)
        live = name in LIVE and not (clustered and name in RESTART_IN_A_CLUSTER)
        if not live:
            text += f": needs a restart ({_show(before)} stays in force until then)"
        changes.append(Change(name, text, live))
    return changes


class Reloader:
    """Reloads one server's configuration file and applies it (``apply`` does it to the
    server: see :meth:`ChatService.apply_settings`)."""

    def __init__(
        self,
        source: ConfigSource,
        running: ServerSettings,
        chat_settings: Callable[[], ChatSettings],
        apply: Callable[[ServerSettings, ChatSettings], list[Outgoing]],
    ) -> None:
        self.source = source
        # The settings in force, as configured (before any limit the server fitted them to), so
        # that a file that did not change is no change.
        self.running = running
        self.chat_settings = chat_settings
        self.apply = apply

    @property
    def name(self) -> str:
        return str(self.source.file) if self.source.file is not None else "the configuration"

    def reload(self, origin: str) -> ReloadOutcome:
        """Read, check and apply the file; ``origin`` (SIGHUP, or who ran /reload) is logged."""
        try:
            new, chat = self._load()
        except ConfigError as error:
            reason = str(error).removeprefix(f"{self.name}: ")
            log.warning(
                "[CONFIG] %s: %s refused: %s; the old configuration stays in force",
                origin,
                self.name,
                reason,
            )
            return ReloadOutcome(self.name, refused=reason)
        clustered = bool(self.running.broker)
        changes = setting_changes(
            self.running, new, self.chat_settings().motd, chat.motd, clustered
        )
        kept = {c.name: getattr(self.running, c.name) for c in changes if not c.live}
        self.running = dataclasses.replace(new, **kept)
        chat = dataclasses.replace(chat, history_limit=self.running.history)
        out = self.apply(self.running, chat)
        lines = tuple(change.text for change in changes)
        count = f"{len(lines)} setting{'s' if len(lines) != 1 else ''} changed"
        log.info(
            "[CONFIG] %s: reloaded %s: %s", origin, self.name, count if lines else "no changes"
        )
        for line in lines:
            log.info("[CONFIG]   %s", line)
        return ReloadOutcome(self.name, changes=lines, out=tuple(out))

    def _load(self) -> tuple[ServerSettings, ChatSettings]:
        if self.source.file is None:
            raise ConfigError("the server was started without --config: there is no file to read")
        new = load_settings(self.source.file, self.source.overrides)
        if self.source.overrides.get("allowlist") and not new.allowlist_only:
            # As at start (cli_flags.allow_problem): listed keys that nothing would look at.
            raise ConfigError("--allow (given at start) does nothing without allowlist_only = true")
        try:
            return new, new.chat_settings()
        except (OSError, UnicodeDecodeError) as error:
            raise ConfigError(f"motd_file {new.motd_file}: {error}") from None
