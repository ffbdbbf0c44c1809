"""The session loop of every mode: connect to one of the servers, chat, and after a lost
connection reconnect with backoff, rejoining the rooms.

The line modes (:mod:`tlschat.client.app`) and the full-screen client (:mod:`tlschat.client.tui`)
both run :func:`run_sessions`, each with its own output and input.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Awaitable, Callable
from typing import Any

from ..chat.client.receiving import ChatClient
from ..protocol import IdentityKey
from .addresses import Endpoint, ServerAddress, sweep_order
from .home_files import HomeFiles
from .outcomes import await_outcomes, report_undelivered, still_owed
from .session import CLOSE_GRACE, ChatClientSession
from .settings import EXIT_CONNECTION_FAILED, EXIT_OK, ClientSettings
from .terminal import Output, Terminal
from .user_input import UserInput

FIRST_BACKOFF = 1.0


MAX_BACKOFF = 30.0


async def _resolve(addresses: tuple[ServerAddress, ...], terminal: Output) -> list[Endpoint]:
    """Every IP address of every server, in the order given, each once (two names of one
    address are one server); a name that does not resolve is reported and skipped."""
    loop = asyncio.get_running_loop()
    endpoints: list[Endpoint] = []
    seen: set[tuple[str, int]] = set()
    for address in addresses:
        try:
            found = await loop.getaddrinfo(address.host, address.port, type=socket.SOCK_STREAM)
        except OSError as error:
            terminal.warn(f"[!] Cannot connect to {address}: {error}")
            continue
        for *_, sockaddr in found:
            ip = str(sockaddr[0])
            if (ip, address.port) not in seen:
                seen.add((ip, address.port))
                endpoints.append(Endpoint(address, ip))
    return endpoints


async def connect_any(
    settings: ClientSettings,
    identity: IdentityKey,
    chat: ChatClient,
    ask: Callable[[str], Awaitable[bool]] | None,
    terminal: Output,
    last: Endpoint | None,
    files: HomeFiles | None = None,
) -> tuple[ChatClientSession | None, int]:
    """Try each server once, from the one after ``last``: the session of the first to answer.

    A server refused for its key ends the sweep: the others present the same key.
    """
    endpoints = await _resolve(settings.addresses, terminal)
    # One --host (even a name of several addresses) keeps the trace it always had.
    announce = len(settings.addresses) > 1
    order = sweep_order(endpoints, last)
    refusals: dict[ServerAddress, list[OSError]] = {}
    session: ChatClientSession | None = None
    code = EXIT_CONNECTION_FAILED
    for index, endpoint in enumerate(order):
        if session is not None:
            session.shutdown_transport()
        session = ChatClientSession(settings, identity, chat, endpoint, terminal, announce, files)
        code = await session.connect(ask)
        if code == EXIT_CONNECTION_FAILED and session.asked_user:
            # The server may have timed the handshake out while the user read the fingerprint;
            # the key is in known_hosts now, so a second attempt needs no question.
            session.shutdown_transport()
            session.terminal.warn("[*] Reconnecting with the server's key now trusted")
            session = ChatClientSession(
                settings, identity, chat, endpoint, terminal, announce, files
            )
            code = await session.connect(ask)
        if session.connect_error is not None:
            errors = refusals.setdefault(endpoint.address, [])
            errors.append(session.connect_error)
            # Like asyncio for one name: one line once every IP address of the server failed.
            if all(later.address != endpoint.address for later in order[index + 1 :]):
                terminal.warn(f"[!] Cannot connect to {endpoint.address}: {_described(errors)}")
        if code == EXIT_OK or not session.lost:
            break
    return session, code


def _described(errors: list[OSError]) -> str:
    """As asyncio words the failure of every address of one name."""
    if len(errors) == 1:
        return str(errors[0])
    return "Multiple exceptions: " + ", ".join(str(error) for error in errors)


async def run_sessions(
    settings: ClientSettings,
    identity: IdentityKey,
    chat: ChatClient,
    ask: Callable[[str], Awaitable[bool]] | None,
    user_input: UserInput,
    quit_requested: asyncio.Event,
    output: Output | None = None,
) -> int:
    """Connect, chat, and after a lost connection reconnect with backoff, rejoining rooms.

    Each attempt tries the servers round robin, from the one after the server that was lost.
    """
    terminal: Output = output if output is not None else Terminal(settings)
    attempt = 0
    chatted = False
    last: Endpoint | None = None
    files = HomeFiles(settings.home)
    code = EXIT_CONNECTION_FAILED
    while True:
        connecting = asyncio.ensure_future(
            connect_any(settings, identity, chat, ask, terminal, last, files)
        )
        if not await _unless_quit(connecting, quit_requested):
            terminal.status("disconnected")
            return code
        session, code = connecting.result()
        if session is not None and code == EXIT_OK:
            if not chatted:
                await user_input.start()
            chatted, attempt, last = True, 0, session.endpoint
            code = await _chat(session, user_input, quit_requested)
        if session is not None:
            session.shutdown_transport()
        # No session: no name resolved. A kick or a ban is final, however the connection ended.
        lost = (session is None or session.lost) and not chat.dismissed
        if not (settings.reconnect and chatted and lost):
            return _finish(chat, terminal, code)
        if quit_requested.is_set() or (
            user_input.ended and not still_owed(chat, user_input.ended_at)
        ):
            return _finish(chat, terminal, code)
        chat.prepare_reconnect()
        delay = min(MAX_BACKOFF, FIRST_BACKOFF * 2**attempt)
        attempt += 1
        terminal.warn(f"[*] Connection lost; reconnecting in {delay:.0f} s (attempt {attempt})")
        terminal.status("reconnecting", f"in {delay:.0f} s (attempt {attempt})")
        # What the user types meanwhile is queued (and shown as waiting) for the next session.
        typing = (
            asyncio.ensure_future(user_input.feed(session))
            if session is not None and not user_input.ended
            else None
        )
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(quit_requested.wait(), delay)
                return _finish(chat, terminal, code)
        finally:
            if typing is not None:
                typing.cancel()


def _finish(chat: ChatClient, terminal: Output, code: int) -> int:
    terminal.status("disconnected")
    return report_undelivered(chat, terminal, code)


async def _chat(
    session: ChatClientSession, user_input: UserInput, quit_requested: asyncio.Event
) -> int:
    receiving = asyncio.ensure_future(session.receive_until_closed())
    feeding = asyncio.ensure_future(user_input.feed(session))
    quitting = asyncio.ensure_future(quit_requested.wait())
    waiting: set[asyncio.Future[Any]] = {receiving, feeding, quitting}
    await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
    feeding.cancel()
    quitting.cancel()
    if not receiving.done() and not quit_requested.is_set():
        await await_outcomes(session.chat, receiving, quit_requested)
    if receiving.done():
        if session.closed_cleanly:
            session.terminal.warn("[*] Server closed the connection")
            session.lost = True  # a clean shutdown or restart: reconnect as after a crash
        return receiving.result()
    await session.close()
    # A while for the server's close_notify (or its end of stream). A signal after a quit from
    # the input cuts it short; after a quit by signal, nothing does.
    interrupt = asyncio.Event() if quit_requested.is_set() else quit_requested
    if await _unless_quit(receiving, interrupt, CLOSE_GRACE):
        return receiving.result()
    if not interrupt.is_set():
        session.terminal.warn("[!] Server did not answer close_notify in time")
    return EXIT_OK


async def _unless_quit(
    work: asyncio.Future[Any], quit_requested: asyncio.Event, timeout: float | None = None
) -> bool:
    """Wait for ``work`` until the user quits (or ``timeout``): True if it is done; if not, it
    is cancelled (and has let go of what it held) when this returns."""
    quitting = asyncio.ensure_future(quit_requested.wait())
    try:
        done, _ = await asyncio.wait(
            {work, quitting}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        quitting.cancel()
        if not work.done():
            work.cancel()
    if work in done:
        return True
    await asyncio.wait({work})
    return False
