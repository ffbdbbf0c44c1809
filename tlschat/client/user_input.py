"""What the user types, from stdin (line modes) or the prompt, and the line-mode trust question."""

from __future__ import annotations

import asyncio
import io
import sys
import threading
import time
from typing import Protocol

from ..chat.operations import unescape_newlines


class InputHandler(Protocol):
    def handle_input(self, text: str) -> bool:
        """Act on one line the user typed; False once the user asked to quit."""


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
    """

    def __init__(self, plain: bool, quit_requested: asyncio.Event | None = None) -> None:
        self.plain = plain
        self.quit_requested = quit_requested
        self.lines: asyncio.Queue[str | None] = asyncio.Queue()
        self.ended = False
        self.ended_at = 0.0
        self._prompting: asyncio.Future[None] | None = None

    async def start(self) -> None:
        if self.plain:
            await read_stdin_lines(self.lines)
        else:
            self._prompting = asyncio.ensure_future(self._prompt())

    async def _prompt(self) -> None:
        from prompt_toolkit import PromptSession

        prompt: PromptSession[str] = PromptSession()
        while True:
            try:
                # SIGINT stays with run_client's handler (Ctrl-C typed here is still an interrupt).
                line = await prompt.prompt_async("You: ", handle_sigint=False)
            except (EOFError, KeyboardInterrupt):
                self.lines.put_nowait(None)
                if self.quit_requested is not None:
                    self.quit_requested.set()
                return
            self.lines.put_nowait(unescape_newlines(line))

    async def feed(self, session: InputHandler) -> None:
        """Hand lines to ``session`` until the input ends or the user quits."""
        while True:
            line = await self.lines.get()
            if line is None:
                self.ended, self.ended_at = True, time.monotonic()
                return
            if not session.handle_input(line):
                self.ended, self.ended_at = True, time.monotonic()
                return

    def stop(self) -> None:
        if self._prompting is not None:
            self._prompting.cancel()


async def ask_interactively(question: str) -> bool:
    from prompt_toolkit import PromptSession

    prompt: PromptSession[str] = PromptSession()
    try:
        answer = await prompt.prompt_async(question, handle_sigint=False)
    except (EOFError, KeyboardInterrupt):
        return False
    return answer.strip().lower() in ("y", "yes")
