"""The full-screen client's own widgets: the input line, the yes/no dialog, and the input queue
the app fills."""

from __future__ import annotations

from typing import Any, ClassVar, Protocol

from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static

from .session import ChatClientSession
from .user_input import InputHandler, UserInput
from .view_input import History


class TuiInput(UserInput):
    """The session's input queue, filled by the input line instead of stdin or a prompt.

    A line goes to the chat client at once, for the buffer it was typed in: nothing is held
    for a /join's answer (the buffer the user sees says where a line goes)."""

    holds = False

    def __init__(self) -> None:
        super().__init__(plain=False)
        self.reads_early = True  # lines typed before the first connection wait for it
        self.session: ChatClientSession | None = None

    async def start(self) -> None:
        """Nothing to start: the app puts lines in the queue."""

    async def feed(self, session: InputHandler) -> None:
        if isinstance(session, ChatClientSession):
            self.session = session
        await super().feed(session)


class InputOwner(Protocol):
    """What the input line asks of the app, at once and in the order the keys came."""

    def complete_input(self) -> None:
        """Complete the word before the cursor (Tab)."""

    def submit(self, text: str) -> None:
        """One message or command the user sent."""

    def paste(self, text: str) -> None:
        """A paste of several lines: one message."""

    def action_quit_chat(self) -> None:
        """Leave."""


class ChatInput(Input):
    """The input line: history on Up/Down, completion on Tab, Shift+Enter for another line of
    the same message, a multi-line paste as one message, Ctrl+C to clear it (or to quit when
    it is empty).

    Every key is acted on here, in the order typed. Textual runs a priority binding (the app's)
    as the key arrives, ahead of the keys still queued for this widget, and a binding of this
    widget only once the key has bubbled up to the app, after the keys behind it: a Tab that a
    slow link delivers with the keys before and after it ("b", Tab, "ping", Enter in one read)
    would complete too early, or Enter send too late, and "bping" go out instead of "bob: ping".
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "history_previous", "previous line", show=False),
        Binding("down", "history_next", "next line", show=False),
        Binding("tab", "complete", "complete", show=False),
        Binding("shift+enter", "new_line", "new line", show=False),
        # Every terminal sends Ctrl+J as its own key (a line feed, where Enter is a carriage
        # return); only some report Shift+Enter.
        Binding("ctrl+j", "new_line", "new line", show=False),
        Binding("ctrl+c", "interrupt", "clear or quit", show=False),
        Binding("ctrl+q", "leave", "quit", show=False),
    ]

    def __init__(self, owner: InputOwner, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.history = History()
        self.owner = owner
        # The lines of a multi-line message typed so far (Shift+Enter), before the field's.
        self.draft: list[str] = []

    async def _on_key(self, event: events.Key) -> None:
        if event.is_printable:
            return  # Input inserts it, next in this same dispatch
        for binding in self._bindings.key_to_bindings.get(event.key, []):
            if await self.app.run_action(binding.action, self):
                event.stop()
                event.prevent_default()
                return

    def take_message(self, last: str) -> str:
        """The message the user sends now: the draft's lines, then ``last``."""
        text = "\n".join([*self.draft, last])
        self.draft = []
        return text

    async def action_submit(self) -> None:
        """Enter: the message goes out, and the field is empty for what comes next."""
        value = self.value
        text = self.take_message(value)
        self.value = ""
        self.history.add(value)
        self.owner.submit(text)

    def action_new_line(self) -> None:
        self.draft.append(self.value)
        self.value = ""

    def action_history_previous(self) -> None:
        self.value = self.history.previous(self.value)
        self.cursor_position = len(self.value)

    def action_history_next(self) -> None:
        self.value = self.history.next()
        self.cursor_position = len(self.value)

    def action_complete(self) -> None:
        self.owner.complete_input()

    def action_interrupt(self) -> None:
        """Ctrl+C: copy a selection, else clear what is typed, else quit."""
        if self.selected_text:
            self.app.copy_to_clipboard(self.selected_text)
        elif self.value or self.draft:
            self.draft, self.value = [], ""
            self.app.notify("Cleared. Ctrl+C again (or Ctrl+Q) quits.", timeout=3)
        else:
            self.owner.action_quit_chat()

    def action_leave(self) -> None:
        self.owner.action_quit_chat()

    def _on_paste(self, event: events.Paste) -> None:
        text = event.text.replace("\r\n", "\n").replace("\r", "\n").strip("\n")
        if "\n" in text:
            event.stop()
            self.owner.paste(text)
            return
        super()._on_paste(event)


class ConfirmScreen(ModalScreen[bool]):
    """A yes/no question: trusting a new server, or sending a long paste."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "yes"),
        Binding("n,escape,ctrl+c", "answer(False)", "no"),
        # The app's Ctrl+Q does not reach past a modal screen.
        Binding("ctrl+q", "app.quit_chat", "quit"),
    ]

    def __init__(self, message: str, question: str, yes: str, no: str) -> None:
        super().__init__()
        self.message, self.question, self.yes, self.no = message, question, yes, no

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(Text(self.message), id="message")
            yield Static(Text(self.question), id="question")
            with Horizontal(id="buttons"):
                yield Button(self.yes, variant="warning", id="yes")
                yield Button(self.no, variant="primary", id="no")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)

    @on(Button.Pressed)
    def pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")
