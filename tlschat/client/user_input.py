"""What the user types, from stdin (line modes) or the prompt, and the line-mode trust question."""

from __future__ import annotations

import asyncio
import io
import sys
import threading
import time
from typing import TYPE_CHECKING, Protocol

from ..chat.operations import unescape_newlines

if TYPE_CHECKING:
    from prompt_toolkit import PromptSession
    from prompt_toolkit.buffer import Buffer
    from prompt_toolkit.key_binding import KeyBindings

# The keys of the `You:` prompt, for /help.
PROMPT_KEYS = [
    "Ctrl-C   clear the line you are typing; on an empty line, quit",
    "Ctrl-D   quit",
]
CLEARED = "[*] Line cleared (not sent). Ctrl-C on an empty line quits."


# How often a held line looks again whether the session takes it now; how long it waits at most
# while nothing comes from the server (a server that never welcomes, say).
HOLD_POLL = 0.02
HOLD_PATIENCE = 10.0


class InputHandler(Protocol):
    # Frames received so far: the server still answers while it grows.
    frames_received: int

    def handle_input(self, text: str) -> bool:
        """Act on one line the user typed; False once the user asked to quit."""

    def holds_input(self) -> bool:
        """Whether the next line should wait before it is handed over (line modes only)."""


async def read_stdin_lines(queue: asyncio.Queue[str | None]) -> None:
    """Feed stdin lines into ``queue`` from a daemon thread (stdin may be a file, pipe or tty)."""
    loop = asyncio.get_running_loop()
    if isinstance(sys.stdin, io.TextIOWrapper):
        # Bytes that are not valid in the locale's encoding must not kill the reader thread
        # (which would leave the client hanging at end of input); handle_input refuses the line.
        sys.stdin.reconfigure(errors="surrogateescape")

    def pump() -> None:
        try:
            for line in sys.stdin:
                # One message a line: a typed \n is a newline in it (README, "Multi-line").
                loop.call_soon_threadsafe(queue.put_nowait, unescape_newlines(line))
        finally:
            loop.call_soon_threadsafe(queue.put_nowait, None)

    threading.Thread(target=pump, name="stdin", daemon=True).start()


class UserInput:
    """The lines the user types, from stdin (line mode) or the prompt, kept across reconnects.

    ``None`` in the queue means the input ended (end of stdin, Ctrl-D, Ctrl-C at the prompt).
    At the prompt that is the user leaving, so it also sets ``quit_requested``: even while
    reconnecting, when no session reads the queue.

    The line modes hand a line to a session only once it takes it as typed then (welcomed, rooms
    rejoined, an earlier /join answered): a script acts as the same lines typed one by one.
    """

    # Hold each line until the session takes it as typed (see holds_input).
    holds = True

    def __init__(self, plain: bool, quit_requested: asyncio.Event | None = None) -> None:
        self.plain = plain
        # stdin is read from the start, before any connection: its end and a /quit count while
        # the client has none. The prompt starts once connected (the trust question comes first).
        self.reads_early = plain
        self.quit_requested = quit_requested
        self.lines: asyncio.Queue[str | None] = asyncio.Queue()
        # The line taken from the queue and held, kept for the next session if this one ends.
        self._held: list[str] = []
        self.ended = False
        self.ended_at = 0.0
        self._prompting: asyncio.Future[None] | None = None
        self._prompt_session: PromptSession[str] | None = None

    async def start(self) -> None:
        if self.plain:
            await read_stdin_lines(self.lines)
        else:
            self._prompting = asyncio.ensure_future(self._prompt())

    async def _prompt(self) -> None:
        from prompt_toolkit import PromptSession

        prompt: PromptSession[str] = PromptSession(key_bindings=_prompt_keys())
        self._prompt_session = prompt
        while True:
            try:
                # SIGINT stays with run_client's handler (Ctrl-C typed here is a key: it clears
                # a half-typed line, and quits on an empty one).
                line = await prompt.prompt_async("You: ", handle_sigint=False)
            except (EOFError, KeyboardInterrupt):
                self.lines.put_nowait(None)
                if self.quit_requested is not None:
                    self.quit_requested.set()
                return
            self.lines.put_nowait(unescape_newlines(line))

    def clear_half_typed(self) -> bool:
        """Ctrl-C that came as a SIGINT (the terminal was out of raw mode for a moment, while
        a line was printed above the prompt): as the key does, a half-typed line is cleared,
        and True; False when there is none (the user means to quit)."""
        prompt = self._prompt_session
        if prompt is None or not prompt.app.is_running or not prompt.default_buffer.text:
            return False
        _clear(prompt.default_buffer)
        prompt.app.invalidate()
        return True

    async def feed(self, session: InputHandler) -> None:
        """Hand lines to ``session`` until the input ends or the user quits (at once if it has
        already)."""
        while not self.ended:
            line = self._held.pop() if self._held else await self.lines.get()
            if line is None:  # the end of the input is never held
                self.ended, self.ended_at = True, time.monotonic()
                return
            if self.holds:
                self._held.append(line)
                await _hold(session)
                self._held.clear()
            if not session.handle_input(line):
                self.ended, self.ended_at = True, time.monotonic()
                return

    def unhanded(self) -> list[str]:
        """The lines read and not handed to any session yet (held), up to the input's end if it
        came: the client is ending, and says they were not sent."""
        lines, self._held = self._held, []
        while not self.ended and not self.lines.empty():
            line = self.lines.get_nowait()
            if line is None:
                self.ended, self.ended_at = True, time.monotonic()
            else:
                lines.append(line)
        return lines

    def stop(self) -> None:
        if self._prompting is not None:
            self._prompting.cancel()


async def _hold(session: InputHandler) -> None:
    """Until ``session`` takes the next line, or HOLD_PATIENCE passed without a frame from the
    server: then the line goes on anyway (queued for when the session is ready)."""
    received, deadline = session.frames_received, time.monotonic() + HOLD_PATIENCE
    while session.holds_input() and time.monotonic() < deadline:
        await asyncio.sleep(HOLD_POLL)
        if session.frames_received != received:
            received, deadline = session.frames_received, time.monotonic() + HOLD_PATIENCE


def _prompt_keys() -> KeyBindings:
    """Ctrl-C at the prompt: a half-typed line is cleared, with a word that it was (never sent,
    never dropped unsaid); on an empty line it quits, as Ctrl-D does."""
    from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent

    keys = KeyBindings()

    @keys.add("c-c")
    def interrupt(event: KeyPressEvent) -> None:
        if event.app.current_buffer.text:
            _clear(event.app.current_buffer)
        else:
            event.app.exit(exception=KeyboardInterrupt())

    return keys


def _clear(buffer: Buffer) -> None:
    from prompt_toolkit import print_formatted_text
    from prompt_toolkit.application import run_in_terminal

    buffer.reset()
    run_in_terminal(lambda: print_formatted_text(CLEARED))


async def ask_interactively(question: str) -> bool:
    from prompt_toolkit import PromptSession

    prompt: PromptSession[str] = PromptSession()
    try:
        answer = await prompt.prompt_async(question, handle_sigint=False)
    except (EOFError, KeyboardInterrupt):
        return False
    return answer.strip().lower() in ("y", "yes")
