"""The asyncio client: its home checked, then the session loop in interactive or line mode, or
the full-screen client."""

from __future__ import annotations

import asyncio
import contextlib
import signal

from ..chat.client.receiving import ChatClient
from ..local_files import home_identity, readable_known_hosts
from .home_files import open_device
from .sessions import run_sessions
from .settings import ClientSettings
from .terminal import Terminal
from .user_input import PROMPT_KEYS, UserInput, ask_interactively


async def run_client(settings: ClientSettings) -> int:
    # A home, identity or known_hosts that cannot be used stops the client before it connects
    # (UnusableFile, InsecureFileError: one line each).
    identity, created = home_identity(settings.home, settings.key_type)
    readable_known_hosts(settings.home)
    chat = ChatClient(identity, settings.nick, crypto=open_device(settings.home, identity))
    chat.server_address = str(settings.known_as)
    if settings.fullscreen:
        from .tui import run_tui  # Textual only for the full-screen client

        return await run_tui(settings, identity, chat, created)
    terminal = Terminal(settings)
    if created:
        terminal.warn(f"[KEY] Created your identity key {identity.fingerprint} in {settings.home}")
    ask = None if settings.plain else ask_interactively
    if not settings.plain:
        chat.keys_help = list(PROMPT_KEYS)
    quit_requested = asyncio.Event()
    user_input = UserInput(settings.plain, None if settings.plain else quit_requested)

    def interrupted() -> None:
        if not user_input.clear_half_typed():
            quit_requested.set()

    loop = asyncio.get_running_loop()
    for signum, handler in ((signal.SIGINT, interrupted), (signal.SIGTERM, quit_requested.set)):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, handler)
    if settings.plain:
        return await run_sessions(settings, identity, chat, ask, user_input, quit_requested)
    from prompt_toolkit.patch_stdout import patch_stdout

    with patch_stdout(raw=True):
        try:
            return await run_sessions(settings, identity, chat, ask, user_input, quit_requested)
        finally:
            user_input.stop()
