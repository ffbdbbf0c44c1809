"""The full-screen client: a Textual app that is only a view over the line modes' session.

Connecting, the trust decision, the chat logic and reconnecting are all
:class:`~tlschat.client.session.ChatClientSession`, :class:`~tlschat.chat.client.ChatClient` and
:func:`~tlschat.client.sessions.run_sessions`, exactly as in ``--plain`` and ``--line``. This
module implements their :class:`~tlschat.client.terminal.Output` (lines, trace, warnings,
connection state), feeds their :class:`~tlschat.client.user_input.UserInput` queue, and asks the
trust question in a modal.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import sys
import time
from collections.abc import Callable
from typing import ClassVar

from rich.text import Text
from textual import events, on
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Collapsible, Input, OptionList, RichLog, Static

from ..chat.client.receiving import ChatClient
from ..chat.lines import Line
from ..protocol import IdentityKey
from .session import CLOSE_GRACE
from .sessions import run_sessions
from .settings import EXIT_OK, ClientSettings
from .trust import NOT_TRUSTED, trust_report
from .tui_messages import MessageLog
from .tui_output import ScreenOutput
from .tui_panes import Server, members_pane, room_options, side_panes, status_line
from .tui_scrollback import Scrollback, sync_watch
from .tui_widgets import ChatInput, ConfirmScreen, TuiInput
from .view import (
    PASTE_CONFIRM_LINES,
    SERVER_BUFFER,
    UI_COMMANDS,
    UI_KEYS,
    Buffers,
    command_help,
    command_table,
    day_of,
    pane_rows,
)
from .view_input import Completer

PING_INTERVAL = 10.0
KEYS_HELP = (
    "Enter send · Tab complete · ↑↓ history · Ctrl+N/P room · PgUp/PgDn scroll · "
    "Ctrl+T trace · F2/F3 panes · Ctrl+Q quit"
)


class ChatApp(App[int]):
    """Rooms on the left, messages in the middle, members on the right, status and input below."""

    TITLE = "tlschat"
    ENABLE_COMMAND_PALETTE = False
    BINDINGS: ClassVar[list[BindingType]] = [
        # Not priority bindings: the input line takes Ctrl+Q and Ctrl+C itself, after the keys
        # typed before them (tui_widgets.ChatInput); these are for when it does not have focus.
        Binding("ctrl+q", "quit_chat", "quit"),
        Binding("ctrl+c", "quit_chat", "quit", show=False),
        Binding("ctrl+n", "step_buffer(1)", "next room", priority=True),
        Binding("ctrl+p", "step_buffer(-1)", "previous room", priority=True),
        Binding("pageup", "page(-1)", "scroll up", priority=True),
        Binding("pagedown", "page(1)", "scroll down", priority=True),
        Binding("ctrl+home", "top", "top of the messages", priority=True),
        Binding("ctrl+t", "toggle_trace", "handshake trace", priority=True),
        Binding("f2", "toggle_pane('rooms')", "rooms", priority=True),
        Binding("f3", "toggle_pane('members')", "members", priority=True),
    ]
    CSS = """
    #main { height: 1fr; }
    #rooms { width: 22; height: 1fr; border: round $primary; }
    #centre { width: 1fr; }
    #trace-box { height: auto; padding: 0; border: none; }
    #trace-box Contents { padding: 0 1; }
    #trace { height: 8; }
    #messages { height: 1fr; border: round $primary; padding: 0 1; }
    #members { width: 30; height: 1fr; border: round $primary; padding: 0 1; }
    #status { height: 1; background: $primary-darken-2; color: $text; }
    #hint { height: 1; color: $text-muted; padding: 0 1; }
    #input { height: 3; }
    ConfirmScreen { align: center middle; }
    #dialog {
        width: 84; max-width: 95%; height: auto;
        border: thick $warning; background: $surface; padding: 1 2;
    }
    #question { margin-top: 1; text-style: bold; }
    #buttons { height: auto; margin-top: 1; }
    #buttons Button { margin-right: 2; }
    """

    def __init__(
        self,
        settings: ClientSettings,
        identity: IdentityKey,
        chat: ChatClient,
        connect: bool = True,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.identity = identity
        self.chat = chat
        # /help lists the commands this UI answers itself, with the chat client's own.
        chat.ui_commands = dict(UI_COMMANDS)
        chat.keys_help = list(UI_KEYS)
        self.connect = connect
        self.output = ScreenOutput(self)
        self.user_input = TuiInput()
        self.quit_requested = asyncio.Event()
        self.buffers = Buffers()
        self.completer = Completer()
        self.commands = command_table()
        self.state = "disconnected"
        self.state_detail = ""
        self.server_fingerprint = ""
        # The server this session connects or connected to (after failover, not always the
        # first --host): the session names it when it starts connecting.
        self.server_name = ""
        self.trust_message = ""
        self.exit_code = EXIT_OK
        self.finished = False
        self._chat_room = ""
        # The rooms the chat client was in at the last line shown: one missing later, and not
        # coming back with a reconnect's rejoin, was left (/part).
        self._rooms_in: set[str] = set()
        # Where the read marker of the current buffer went when it was shown.
        self.marker_at: int | None = None
        self._pending: list[Line] = []
        # Pages of older lines, put above the lines shown.
        self.scrollback = Scrollback(self)
        self._view_ready = False
        # The side panes the user showed or hid (F2, F3), by id: kept whatever the width.
        self.panes_chosen: dict[str, bool] = {}
        # The answer the trust dialog waits for, while it is open; whether the user refused.
        self._trust_answer: asyncio.Future[bool] | None = None
        self.refused_trust = False
        # The random source of the reconnect backoff's jitter.
        self.jitter: Callable[[], float] = random.random

    # ----- layout -----

    def compose(self) -> ComposeResult:
        with Horizontal(id="main"):
            yield OptionList(id="rooms")
            with Vertical(id="centre"):
                with Collapsible(title="Handshake trace (Ctrl+T)", collapsed=False, id="trace-box"):
                    yield RichLog(id="trace", wrap=True, max_lines=500, min_width=20)
                yield MessageLog(id="messages", wrap=True, max_lines=10000, min_width=20)
            yield Static(id="members")
        yield Static(id="status")
        yield Static(KEYS_HELP, id="hint")
        yield ChatInput(self, id="input", placeholder="Type a message or /help")

    def on_mount(self) -> None:
        self.query_one("#rooms", OptionList).border_title = "Rooms"
        self.query_one("#members", Static).border_title = "Members"
        self.query_one("#input", ChatInput).focus()
        self.lay_out_panes()
        self._view_ready = True
        for line in self._pending:
            self.add_line(line)
        self._pending.clear()
        self.refresh_rooms()
        self.refresh_members()
        self.refresh_status()
        self.switch_to(self.buffers.current)
        if self.connect:
            self.run_worker(self._run_sessions(), name="sessions", exit_on_error=True)
            self.set_interval(PING_INTERVAL, self.ping)

    # ----- the sessions -----

    async def _run_sessions(self) -> None:
        code = await run_sessions(
            self.settings,
            self.identity,
            self.chat,
            self.ask_trust,
            self.user_input,
            self.quit_requested,
            self.output,
            self.jitter,
        )
        self.exit_code, self.finished = code, True
        leaving = self.chat.quit_requested or self.user_input.ended or self.quit_requested.is_set()
        if leaving or self.refused_trust:
            self.exit(code)
            return
        self.add_line(Line("error", time.time(), "Disconnected; press Ctrl+Q to leave."))

    async def ask_trust(self, question: str) -> bool:
        """Trust on first use, as a modal showing the server's fingerprint."""
        answer: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

        def done(result: bool | None) -> None:
            if not answer.done():
                answer.set_result(bool(result))

        message = self.trust_message.removeprefix("[KNOWN_HOSTS] ")
        self._trust_answer = answer
        self.push_screen(
            ConfirmScreen(message, question.strip(), "Trust (y)", "Refuse (n)"), callback=done
        )
        try:
            trusted = await answer
        finally:
            self._trust_answer = None
        # A refused key leaves nothing to do here: the client ends (run_tui says why).
        self.refused_trust = not trusted
        return trusted

    def ping(self) -> None:
        session = self.user_input.session
        if session is not None and self.state == "connected":
            with contextlib.suppress(ConnectionError, OSError, ValueError):
                if session.connection.is_connected and not session.connection.close_notify_sent:
                    session.ping()
        self.refresh_status()

    # ----- what the sessions show -----

    def add_trace(self, text: str) -> None:
        if not self._view_ready:
            return
        self.query_one("#trace", RichLog).write(Text(text, style="dim"))

    def add_line(self, line: Line) -> None:
        if not self._view_ready:
            self._pending.append(line)
            return
        if line.earlier:
            self.scrollback.take(line)
            return
        self.forget_left_rooms()
        if self.chat.room in self.chat.rooms and self.chat.room != self._chat_room:
            # A join (the user's, or the first into #general) or a part moved the chat: follow
            # it. A rejoin after reconnecting leaves the chat where it was.
            self._chat_room = self.chat.room
            if self.buffers.current != self.chat.room:
                self.switch_to(self.chat.room)
        found = self.buffers.find(line)
        if found is not None:
            # A later state of a line the user sent (delivered, refused), or a later version
            # of a line (edited, deleted, reacted to): in place.
            self.buffers.replace(line)
            name, index = found
            if name == self.buffers.current:
                self.rewrite_from(index)
            self.refresh_rooms()
            return
        name, ring = self.buffers.add(line, self.chat.nick)
        if name == self.buffers.current:
            buffer = self.buffers.get(name)
            rows: list[Line | str] = [line]
            if len(buffer.lines) > 1 and day_of(buffer.lines[-2].timestamp) != day_of(
                line.timestamp
            ):
                rows.insert(0, f"day:{line.timestamp}")
            log = self.messages
            log.append_rows(rows, len(buffer.lines) - 1, self.chat.nick, log.at_end)
        if ring and self.settings.bell:
            self.bell()
        self.refresh_rooms()
        self.refresh_members()
        self.refresh_status()

    @on(MessageLog.ReachedTop)
    def reached_top(self) -> None:
        self.scrollback.reached_top()

    def forget_left_rooms(self) -> None:
        """A room the user left (/part) leaves the room list; private conversations stay. A room
        a reconnect gave up keeps its lines, rejoined or not (a refusal says why)."""
        rooms = set(self.chat.rooms)
        left = self._rooms_in - rooms - self.chat.rejoining
        self._rooms_in = rooms
        if not left:
            return
        showing_left = self.buffers.current in left
        for room in left:
            self.buffers.close(room)
        if showing_left:
            self._chat_room = ""
            self.switch_to(self.buffers.current)
        else:
            self.refresh_rooms()

    def set_state(self, state: str, detail: str = "") -> None:
        self.state, self.state_detail = state, detail
        if state == "connecting" and detail:
            self.server_name = detail
        if state == "connected":
            self.server_fingerprint = detail
            self.set_timer(1.0, self.ping)
        self.refresh_status()
        self.refresh_members()

    # ----- panes -----

    def on_resize(self, event: events.Resize) -> None:
        # The event's size: the app's own is updated after its handlers ran.
        self.lay_out_panes(event.size.width)

    def lay_out_panes(self, width: int | None = None) -> None:
        """Show the side panes the terminal's ``width`` (or the user) allows."""
        shown = side_panes(self.size.width if width is None else width, self.panes_chosen)
        for pane, display in shown.items():
            self.query_one(f"#{pane}").display = display
        sync_watch(self)

    def switch_to(self, name: str) -> None:
        buffer = self.buffers.switch(name)
        if name.startswith("#") and self.chat.talks_in(name):
            self.chat.room = name
            self._chat_room = name
        self.marker_at = buffer.read_upto if buffer.read_upto < len(buffer.lines) else None
        log = self.messages
        # Text, never a str: a str title is read as markup, and a conversation is named after a
        # nick from the network ("@[b]eve").
        log.border_title = Text(name)
        self.write_buffer()
        log.scroll_end(animate=False)
        self.refresh_rooms()
        self.refresh_members()

    @property
    def messages(self) -> MessageLog:
        return self.query_one("#messages", MessageLog)

    def rewrite_from(self, index: int) -> None:
        """Line ``index`` of the current buffer changed: the pane from that line on is written
        again, keeping the read marker, the day lines and the scroll."""
        buffer = self.buffers.get(self.buffers.current)
        self.messages.rewrite_rows_from(pane_rows(buffer, self.marker_at), index, self.chat.nick)

    def write_buffer(self) -> None:
        """The message pane afresh: the current buffer's lines, day changes, the read marker."""
        buffer = self.buffers.get(self.buffers.current)
        self.messages.show_rows(pane_rows(buffer, self.marker_at), self.chat.nick)

    def refresh_rooms(self) -> None:
        rooms = self.query_one("#rooms", OptionList)
        rooms.clear_options()
        rooms.add_options(room_options(self.buffers))
        rooms.highlighted = self.buffers.names().index(self.buffers.current)

    def refresh_members(self) -> None:
        members = self.query_one("#members", Static)
        server = Server(str(self.settings.known_as), self.server_name, self.server_fingerprint)
        members.border_title, text = members_pane(self.chat, self.buffers.current, server)
        members.update(text)
        sync_watch(self)

    def refresh_status(self) -> None:
        server = Server(str(self.settings.known_as), self.server_name, self.server_fingerprint)
        line = status_line(self.chat, server, self.state, self.state_detail)
        self.query_one("#status", Static).update(line)

    # ----- input -----

    @on(Input.Changed, "#input")
    def changed(self, event: Input.Changed) -> None:
        draft = self.query_one("#input", ChatInput).draft
        if draft:
            hint = f"Line {len(draft) + 1} of one message · Enter sends it · Shift+Enter new line"
        else:
            hint = command_help(event.value, self.commands) or KEYS_HELP
        self.query_one("#hint", Static).update(Text(hint))

    def paste(self, text: str) -> None:
        """A multi-line paste is one message (up to the size limit, checked as it is sent); a
        long one is confirmed first."""
        lines = text.split("\n")
        if len(lines) <= PASTE_CONFIRM_LINES:
            self.submit(text)
            return

        def done(send: bool | None) -> None:
            if send:
                self.submit(text)
            self.query_one("#input", ChatInput).focus()

        preview = "\n".join(lines[:5]) + ("\n…" if len(lines) > 5 else "")
        self.push_screen(
            ConfirmScreen(
                preview,
                f"Send these {len(lines)} lines as one message?",
                "Send (y)",
                "Cancel (n)",
            ),
            callback=done,
        )

    @on(OptionList.OptionSelected, "#rooms")
    def room_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option.id is not None and event.option.id != self.buffers.current:
            self.switch_to(event.option.id)
        self.query_one("#input", ChatInput).focus()

    def submit(self, text: str) -> None:
        """One line from the user: a UI command, or a line for the session.

        Nothing is echoed here: the chat client shows the user's own message itself, with its
        delivery state (waiting, then delivered or refused by the server).
        """
        now = time.time()
        if not text.strip():
            return
        if text.strip().lower() == "/trust":
            self.show_trust()
            return
        current = self.buffers.current
        is_command = text.startswith("/") and not text.startswith("//")
        if not is_command and current.startswith("@"):
            text = f"/msg {current[1:]} {text[1:] if text.startswith('//') else text}"
        elif not is_command and current == SERVER_BUFFER:
            self.add_line(Line("error", now, "this is the server buffer; Ctrl+N to a room"))
            return
        elif not is_command and not self.chat.talks_in(current):
            self.add_line(Line("error", now, f"you are not in {current}; /join {current}"))
            return
        self.user_input.lines.put_nowait(text)

    def show_trust(self) -> None:
        session = self.user_input.session
        known_hosts = session.known_hosts if session is not None else None
        now = time.time()
        for text in trust_report(self.settings, self.server_fingerprint, known_hosts):
            self.add_line(Line("info", now, text))

    def complete_input(self) -> None:
        field = self.query_one("#input", ChatInput)
        current = self.buffers.current
        nicks = {m.nick for m in self.chat.members.get(current, {}).values()}
        nicks |= {name[1:] for name in self.buffers.names() if name.startswith("@")}
        nicks.discard(self.chat.nick)
        rooms = set(self.chat.rooms) | {n for n in self.buffers.names() if n.startswith("#")}
        result = self.completer.complete(
            field.value, field.cursor_position, sorted(nicks), self.commands, sorted(rooms)
        )
        if result is not None:
            field.value, field.cursor_position = result

    # ----- actions -----

    def action_step_buffer(self, offset: int) -> None:
        self.switch_to(self.buffers.step(offset))

    def action_page(self, direction: int) -> None:
        log = self.messages
        if direction < 0:
            log.page_up()
        else:
            log.scroll_page_down(animate=False)

    def action_top(self) -> None:
        self.messages.to_top()

    def action_toggle_pane(self, pane: str) -> None:
        self.panes_chosen[pane] = not self.query_one(f"#{pane}").display
        self.lay_out_panes()

    def action_toggle_trace(self) -> None:
        box = self.query_one("#trace-box", Collapsible)
        box.collapsed = not box.collapsed

    def action_quit_chat(self) -> None:
        """Leave cleanly: close_notify if connected; give up after the close grace. Leaving
        while the trust dialog is open is a no to it."""
        if self._trust_answer is not None and not self._trust_answer.done():
            self._trust_answer.set_result(False)
            return
        if self.finished or not self.connect:
            self.exit(self.exit_code)
            return
        self.quit_requested.set()
        self.user_input.lines.put_nowait(None)
        self.set_timer(CLOSE_GRACE + 1.0, lambda: self.exit(self.exit_code))


async def run_tui(
    settings: ClientSettings, identity: IdentityKey, chat: ChatClient, created: bool
) -> int:
    app = ChatApp(settings, identity, chat)
    if created:
        app.output.warn(
            f"[KEY] Created your identity key {identity.fingerprint} in {settings.home}"
        )
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError, RuntimeError):
        loop.add_signal_handler(signal.SIGTERM, app.action_quit_chat)
    code = await app.run_async()
    if app.refused_trust:  # said in the app too, but its screen is gone
        print(NOT_TRUSTED, file=sys.stderr)
    return app.exit_code if code is None else code
