"""The full-screen client's own widgets: the input line, the yes/no dialog, and the input queue
the app fills."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static

from .session import ChatClientSession
from .user_input import InputHandler, UserInput
from .view import History


class TuiInput(UserInput):
    """The session's input queue, filled by the input line instead of stdin or a prompt."""

    def __init__(self) -> None:
        super().__init__(plain=False)
        self.session: ChatClientSession | None = None

    async def start(self) -> None:
        """Nothing to start: the app puts lines in the queue."""

    async def feed(self, session: InputHandler) -> None:
        if isinstance(session, ChatClientSession):
            self.session = session
        await super().feed(session)


class ChatInput(Input):
    """The input line: history on Up/Down, completion on Tab, Shift+Enter for another line of
    the same message, a multi-line paste as one message."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "history_previous", "previous line", show=False),
        Binding("down", "history_next", "next line", show=False),
        Binding("tab", "complete", "complete", show=False, priority=True),
        Binding("shift+enter", "new_line", "new line", show=False, priority=True),
    ]

    class Pasted(Message):
        """A paste of several lines: one message."""

        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    def __init__(self, complete: Callable[[], None], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.history = History()
        self.complete = complete  # the app's completion of what is typed
        # The lines of a multi-line message typed so far (Shift+Enter), before the field's.
        self.draft: list[str] = []

    def take_message(self, last: str) -> str:
        """The message the user sends now: the draft's lines, then ``last``."""
        text = "\n".join([*self.draft, last])
        self.draft = []
        return text

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
        self.complete()

    def _on_paste(self, event: events.Paste) -> None:
        text = event.text.replace("\r\n", "\n").replace("\r", "\n").strip("\n")
        if "\n" in text:
            event.stop()
            self.post_message(self.Pasted(text))
            return
        super()._on_paste(event)


class ConfirmScreen(ModalScreen[bool]):
    """A yes/no question: trusting a new server, or sending a long paste."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "yes"),
        Binding("n,escape", "answer(False)", "no"),
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
