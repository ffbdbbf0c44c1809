"""The commands the chat client runs itself, as one table of small handlers. Pure.

Each handler gets the client (through the :class:`CommandClient` interface, so this module does
not depend on the client's) and the command's arguments, and returns the lines to show.

A command's usage line says which arguments it needs (those not in brackets): typed without
them, any command, the client's or the server's, shows its usage and sends nothing
(:func:`without_argument`), so no handler checks for that itself.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from ..lines import Line
from ..server.commands import COMMANDS as SERVER_COMMANDS

ACTION_PREFIX = "/me "


class CommandClient(Protocol):
    ui_commands: dict[str, tuple[str, str]]
    keys_help: list[str]
    nick: str
    directory: dict[str, str]
    ignored: set[str]
    last_private: tuple[str, str] | None
    room: str
    quit_requested: bool

    def say(self, body: str, now: float, target: str = "", recipient: str = "") -> list[Line]: ...

    def send_command(self, frame: dict[str, Any], text: str, now: float) -> list[Line]: ...

    def verify_command(self, args: str, now: float) -> list[Line]: ...

    def devices_command(self, args: str, now: float) -> list[Line]: ...

    def operate(self, name: str, args: str, now: float) -> list[Line]: ...

    def search_command(self, args: str, now: float) -> list[Line]: ...

    def load_older(self, room: str, now: float) -> list[Line]: ...


Handler = Callable[[CommandClient, str, float], list[Line]]


@dataclass(frozen=True)
class ClientCommand:
    name: str
    usage: str
    summary: str
    handler: Handler


def notice(text: str, now: float) -> list[Line]:
    return [Line("notice", now, text)]


def error(text: str, now: float) -> list[Line]:
    return [Line("error", now, text)]


def server_command(name: str, args: str) -> dict[str, Any]:
    return {"type": "command", "name": name, "args": args}


def own_commands(ui_commands: dict[str, tuple[str, str]]) -> dict[str, tuple[str, str]]:
    """The commands the client answers itself (the chat client's, then the glue's), by name:
    usage and summary. Their syntax is the one /help shows; the server's help leaves them out."""
    table = {name: (c.usage, c.summary) for name, c in CLIENT_COMMANDS.items()}
    return table | ui_commands


def every_command(ui_commands: dict[str, tuple[str, str]]) -> dict[str, tuple[str, str]]:
    """Every command a user types, by name, usage and summary: the server's (those its /help
    lists: not those the client sends by itself), and the client's own, whose syntax wins as it
    does in /help."""
    table = {
        name: (command.usage, command.summary)
        for name, command in SERVER_COMMANDS.items()
        if command.listed
    }
    return table | own_commands(ui_commands)


def needs_argument(usage: str) -> bool:
    """Whether a usage line ("/kick NICK [REASON]") names an argument that is not optional."""
    _, _, arguments = usage.partition(" ")
    return bool(re.sub(r"\[[^\]]*\]", "", arguments).strip())


def usage_error(usage: str, summary: str, now: float) -> list[Line]:
    return error(f"usage: {usage} — {summary}", now)


def usage_of(name: str, now: float) -> list[Line]:
    """The usage of one of the client's own commands, as an error."""
    command = CLIENT_COMMANDS[name]
    return usage_error(command.usage, command.summary, now)


# What a command typed without its argument shows beside its usage: what it would change.
_CURRENT: dict[str, Callable[[CommandClient], str]] = {
    "nick": lambda client: f"Your nick is {client.nick}" if client.nick else "",
}


def without_argument(client: CommandClient, name: str, now: float) -> list[Line] | None:
    """The answer to command ``name`` typed with no argument when it needs one: its usage
    (and, for /nick, the current nick); None when it needs none, or is not known here."""
    known = every_command(client.ui_commands).get(name)
    if known is None or not needs_argument(known[0]):
        return None
    current = _CURRENT[name](client) if name in _CURRENT else ""
    return (notice(current, now) if current else []) + usage_error(*known, now)


def command_name(help_line: str) -> str:
    """The command a line of the server's help is about: its first word, "/name"."""
    first = help_line.split(maxsplit=1)[0] if help_line.strip() else ""
    return first.removeprefix("/").lower()


def _help(client: CommandClient, args: str, now: float) -> list[Line]:
    """Every command once: the client's own with their syntax here, then the server's others
    (the answer to the 'help' command, without the commands listed here)."""
    lines = [Line("info", now, "Client commands:")]
    # As wide as the server's usage column: the two lists line up.
    lines += [
        Line("info", now, f"  {usage:<28} {summary}")
        for usage, summary in own_commands(client.ui_commands).values()
    ]
    if client.keys_help:
        lines += [Line("info", now, "Keys:")] + [
            Line("info", now, f"  {keys}") for keys in client.keys_help
        ]
    return lines + client.send_command(server_command("help", ""), "/help", now)


def _me(client: CommandClient, args: str, now: float) -> list[Line]:
    return client.say(ACTION_PREFIX + args, now)


def _msg(client: CommandClient, args: str, now: float) -> list[Line]:
    nick, _, body = args.partition(" ")
    if not body.strip():
        return usage_of("msg", now)
    # Signed for the recipient's key: looked up first when not known.
    fingerprint = client.directory.get(nick.casefold())
    return client.say(body, now, "@" + fingerprint if fingerprint else "", nick)


def _reply(client: CommandClient, args: str, now: float) -> list[Line]:
    if client.last_private is None:
        return error("nobody has sent you a private message yet", now)
    nick, fingerprint = client.last_private
    return client.say(args, now, "@" + fingerprint, nick)


def _ignore(client: CommandClient, args: str, now: float) -> list[Line]:
    if not args:
        shown = ", ".join(sorted(client.ignored)) or "nobody"
        return notice(f"Ignoring: {shown}", now)
    fingerprint = client.directory.get(args.casefold(), args if args.startswith("SHA256:") else "")
    if not fingerprint:
        return error(f"unknown nick {args}; /whois it first", now)
    client.ignored.add(fingerprint)
    return notice(f"Ignoring {args} ({fingerprint})", now)


def _unignore(client: CommandClient, args: str, now: float) -> list[Line]:
    fingerprint = client.directory.get(args.casefold(), args)
    if fingerprint not in client.ignored:
        return error(f"you are not ignoring {args}", now)
    client.ignored.discard(fingerprint)
    return notice(f"No longer ignoring {args}", now)


def _part(client: CommandClient, args: str, now: float) -> list[Line]:
    frame = server_command("part", args or client.room)
    return client.send_command(frame, f"/part {args}".strip(), now)


def _topic(client: CommandClient, args: str, now: float) -> list[Line]:
    full = args if args.startswith("#") else f"{client.room} {args}".strip()
    return client.send_command(server_command("topic", full), f"/topic {args}".strip(), now)


def _names(client: CommandClient, args: str, now: float) -> list[Line]:
    frame = server_command("names", args or client.room)
    return client.send_command(frame, f"/names {args}".strip(), now)


def _more(client: CommandClient, args: str, now: float) -> list[Line]:
    room = args.split(" ", 1)[0]
    if room and not room.startswith("#"):
        return usage_of("more", now)
    return client.load_older(room, now)


def _search(client: CommandClient, args: str, now: float) -> list[Line]:
    return client.search_command(args, now)


def _encrypt(client: CommandClient, args: str, now: float) -> list[Line]:
    frame = server_command("encrypt", args or client.room)
    return client.send_command(frame, f"/encrypt {args}".strip(), now)


def _verify(client: CommandClient, args: str, now: float) -> list[Line]:
    return client.verify_command(args, now)


def _devices(client: CommandClient, args: str, now: float) -> list[Line]:
    return client.devices_command(args, now)


def _edit(client: CommandClient, args: str, now: float) -> list[Line]:
    return client.operate("edit", args, now)


def _delete(client: CommandClient, args: str, now: float) -> list[Line]:
    return client.operate("delete", args, now)


def _react(client: CommandClient, args: str, now: float) -> list[Line]:
    return client.operate("react", args, now)


def _re(client: CommandClient, args: str, now: float) -> list[Line]:
    return client.operate("re", args, now)


def _quit(client: CommandClient, args: str, now: float) -> list[Line]:
    client.quit_requested = True
    return []


CLIENT_COMMANDS: dict[str, ClientCommand] = {
    c.name: c
    for c in (
        ClientCommand("help", "/help", "this help, then the server's commands", _help),
        ClientCommand("me", "/me ACTION", "say that you do something", _me),
        ClientCommand(
            "msg", "/msg NICK TEXT", "a private message, end-to-end encrypted for NICK", _msg
        ),
        ClientCommand("reply", "/reply TEXT", "answer the last private message", _reply),
        ClientCommand("re", "/re ID|last TEXT", "answer a line, quoting it", _re),
        ClientCommand("edit", "/edit [ID|last] TEXT", "change a line of yours", _edit),
        ClientCommand("delete", "/delete [ID|last]", "take back a line of yours", _delete),
        ClientCommand("react", "/react ID|last EMOJI", "react to a line", _react),
        ClientCommand(
            "ignore", "/ignore [NICK]", "hide someone's messages (list if no NICK)", _ignore
        ),
        ClientCommand("unignore", "/unignore NICK", "show someone's messages again", _unignore),
        ClientCommand("part", "/part [#room]", "leave a room (the current one by default)", _part),
        ClientCommand("topic", "/topic [#room] [TEXT]", "show or set a topic", _topic),
        ClientCommand("names", "/names [#room]", "who is in a room", _names),
        ClientCommand(
            "more", "/more [#room]", "the page of a room's history before what is shown", _more
        ),
        ClientCommand(
            "search",
            "/search TEXT [#room]",
            "search your rooms' history, and what this client decrypted (this run)",
            _search,
        ),
        ClientCommand(
            "encrypt", "/encrypt [#room]", "make a room end-to-end encrypted, for good", _encrypt
        ),
        ClientCommand(
            "verify", "/verify NICK|yes|no", "compare emoji with NICK to verify their key", _verify
        ),
        ClientCommand(
            "devices", "/devices [remove ID]", "list your devices, or remove one", _devices
        ),
        ClientCommand("quit", "/quit", "leave (also Ctrl-D, or end of input)", _quit),
    )
}
