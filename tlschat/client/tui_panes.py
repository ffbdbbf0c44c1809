"""What the full-screen client's side panes and status line show, as rich Text built from the chat
client's state (everything from the network is plain Text, never markup)."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.widgets.option_list import Option

from ..chat.client.receiving import ChatClient
from .view import Buffers, nick_colour, short_fingerprint

# The terminal widths (columns) from which each side pane shows unless the user chose otherwise
# (F2, F3): narrower, the message pane keeps most of the width (58 of 80 columns, not 24).
ROOMS_MIN_WIDTH = 60
MEMBERS_MIN_WIDTH = 110
# Members listed in the pane at most: more do not fit a screen (the count says how many there are).
MAX_MEMBERS_SHOWN = 200
STATE_STYLES = {
    "connecting": "bold yellow",
    "connected": "bold green",
    "reconnecting": "bold yellow",
    "retrying": "bold yellow",
    "disconnected": "bold red",
}


@dataclass(frozen=True)
class Server:
    """The server as the panes name it: the address given, the one connected, its key."""

    known_as: str
    name: str
    fingerprint: str


def side_panes(width: int, chosen: dict[str, bool]) -> dict[str, bool]:
    """Whether the "rooms" and the "members" pane show at ``width``: as the user last chose
    (``chosen``, by pane), else as the width allows."""
    fits = {"rooms": width >= ROOMS_MIN_WIDTH, "members": width >= MEMBERS_MIN_WIDTH}
    return {pane: chosen.get(pane, fit) for pane, fit in fits.items()}


def room_options(buffers: Buffers) -> list[Option]:
    """One entry per buffer: mentions magenta, unread bold."""
    options = []
    for name in buffers.names():
        buffer = buffers.get(name)
        label = Text(buffer.label())
        if buffer.mentioned:
            label.stylize("bold magenta")
        elif buffer.unread:
            label.stylize("bold")
        options.append(Option(label, id=name))
    return options


def members_pane(chat: ChatClient, current: str, server: Server) -> tuple[str, Text]:
    """The right pane's title and text: a room's members, a conversation's peer, or the server."""
    text = Text()
    if current.startswith("#"):
        listed = chat.members.get(current, {})
        present = sorted(listed.values(), key=lambda m: m.nick)[:MAX_MEMBERS_SHOWN]
        for member in present:
            text.append("z " if member.away else "  ", style="dim")
            text.append(f"{member.nick:<15}", style=f"bold {nick_colour(member.fingerprint)}")
            text.append(f" {short_fingerprint(member.fingerprint)}\n", style="dim")
        if len(listed) > len(present):
            text.append(f"… and {len(listed) - len(present)} more", style="dim")
        elif not listed and current in chat.lazy_rooms:
            text.append("loading the member list…", style="dim")
        return f"Members ({chat.member_count(current)})", text
    if current.startswith("@"):
        nick = current[1:]
        fingerprint = chat.directory.get(nick.casefold(), "")
        text.append(nick, style=f"bold {nick_colour(fingerprint)}")
        text.append(f"\n{fingerprint or 'key not known yet'}", style="dim")
        return "Conversation", text
    text.append(f"{server.known_as}\n", style="bold")
    if server.name and server.name != server.known_as:
        text.append(f"via {server.name}\n")
    text.append(server.fingerprint or "not connected", style="dim")
    return "Server", text


def status_line(chat: ChatClient, server: Server, state: str, detail: str) -> Text:
    text = Text(" ")
    # The server connected (or being tried, or last connected), not merely the first given.
    shown = server.name or server.known_as
    text.append(shown, style="bold")
    if server.fingerprint:
        text.append(f"  server {short_fingerprint(server.fingerprint, 12)}")
    text.append("  ●", style=STATE_STYLES.get(state, ""))
    text.append(f" {state}", style=STATE_STYLES.get(state, ""))
    if detail and state != "connected" and detail != shown:
        text.append(f" {detail}")
    if state == "connected" and chat.latency is not None:
        text.append(f"  {chat.latency * 1000:.0f} ms")
    if state == "connected" and chat.degraded:
        text.append("  degraded", style="bold red")
    if chat.nick:
        text.append(f"  you: {chat.nick}")
    return text
