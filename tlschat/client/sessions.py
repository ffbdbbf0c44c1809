"""The session loop of every mode: connect to one of the servers, chat, and after a lost
connection (or a failed first attempt) try again with jittered backoff, rejoining the rooms.

The line modes (:mod:`tlschat.client.app`) and the full-screen client (:mod:`tlschat.client.tui`)
both run :func:`run_sessions`, each with its own output and input.
"""

from __future__ import annotations

import asyncio
import random
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from ..chat.client.receiving import ChatClient
from ..protocol import IdentityKey
from .addresses import Endpoint, ServerAddress, sweep_order
from .backoff import backoff_delay, describe_delay
from .home_files import HomeFiles
from .outcomes import NEVER_CONNECTED, STOPPED, await_outcomes, report_undelivered, still_owed
from .session import CLOSE_GRACE, ChatClientSession
from .settings import EXIT_CONNECTION_FAILED, EXIT_OK, EXIT_UNTRUSTED_SERVER, ClientSettings
from .terminal import Output, Terminal
from .trouble import (
    Trouble,
    cannot_reach,
    cannot_resolve,
    closed_by_server,
    detail_line,
    final_line,
    of_sweep,
    retry_line,
)
from .trust import NOT_TRUSTED
from .user_input import UserInput

# The server neither answered the client's close_notify nor closed within CLOSE_GRACE.
CLOSE_UNANSWERED = "[!] The server did not confirm the end of the connection in time; left anyway"


@dataclass
class Attempt:
    """One sweep over the servers: the last session tried, its exit code, and, if none could
    be used, why."""

    session: ChatClientSession | None
    code: int
    trouble: Trouble | None = None


async def _resolve(addresses: tuple[ServerAddress, ...], troubles: list[Trouble]) -> list[Endpoint]:
    """Every IP address of every server, in the order given, each once (two names of one
    address are one server); a name that does not resolve is added to ``troubles``."""
    loop = asyncio.get_running_loop()
    endpoints: list[Endpoint] = []
    seen: set[tuple[str, int]] = set()
    for address in addresses:
        try:
            found = await loop.getaddrinfo(address.host, address.port, type=socket.SOCK_STREAM)
        except OSError as error:
            troubles.append(cannot_resolve(str(address), address.host, error))
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
) -> Attempt:
    """Try each server once, from the one after ``last``: the session of the first to answer.

    A server refused for its key ends the sweep: the others present the same key.
    """
    troubles: list[Trouble] = []
    endpoints = await _resolve(settings.addresses, troubles)
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
            # One trouble once every IP address of the server failed, as asyncio words it.
            if all(later.address != endpoint.address for later in order[index + 1 :]):
                troubles.append(cannot_reach(str(endpoint.address), errors))
        elif session.lost and session.trouble is not None:
            troubles.append(session.trouble)
        if code == EXIT_OK or not session.lost:
            break
    unusable = session is None or (code != EXIT_OK and session.lost)
    return Attempt(session, code, of_sweep(troubles) if unusable else None)


class TrustQuestion:
    """The trust question, knowing whether it is open: a quit while it is leaves the key
    untrusted (EXIT_UNTRUSTED_SERVER), like a no."""

    def __init__(self, ask: Callable[[str], Awaitable[bool]]) -> None:
        self._ask = ask
        self.open = False

    async def ask(self, question: str) -> bool:
        # Left open when the question is cancelled: the quit that cancelled it looks.
        self.open = True
        answer = await self._ask(question)
        self.open = False
        return answer


class OutageNotice:
    """Says what is wrong while the client has no connection, once per outage: the line modes
    print a line when what happened changes (every attempt with -v); the full-screen client
    keeps one line per outage, updated in place."""

    def __init__(self, terminal: Output, verbose: bool) -> None:
        self.terminal = terminal
        self.verbose = verbose
        self._said = ""

    def retrying(self, trouble: Trouble, delay: float, attempt: int, after_loss: bool) -> None:
        first = not self._said
        changed = self.verbose or trouble.words != self._said
        self._said = trouble.words
        self.terminal.outage(retry_line(trouble, delay, attempt, after_loss), first, changed)
        if self.verbose and trouble.detail:
            self.terminal.warn(detail_line(trouble))

    def final(self, trouble: Trouble | None) -> None:
        if trouble is not None:
            self.terminal.warn(final_line(trouble))
            if self.verbose and trouble.detail:
                self.terminal.warn(detail_line(trouble))

    def over(self) -> None:
        self._said = ""


class Offline:
    """Where typed lines go while there is no connection: the chat client queues them (up to its
    limit) for the next session, and what it says of them shows at once."""

    frames_received = 0

    def __init__(self, chat: ChatClient, terminal: Output, files: HomeFiles) -> None:
        self.chat, self.terminal, self.files = chat, terminal, files

    def handle_input(self, text: str) -> bool:
        for line in self.chat.user_input(text, time.time()):
            self.terminal.show(line, self.chat.room)
        self.files.save(self.chat)
        return not self.chat.quit_requested

    def holds_input(self) -> bool:
        return False


async def run_sessions(
    settings: ClientSettings,
    identity: IdentityKey,
    chat: ChatClient,
    ask: Callable[[str], Awaitable[bool]] | None,
    user_input: UserInput,
    quit_requested: asyncio.Event,
    output: Output | None = None,
    jitter: Callable[[], float] = random.random,
) -> int:
    """Connect, chat, and after a lost connection (or a failed first attempt) try again with
    backoff, rejoining rooms.

    Each attempt tries the servers round robin, from the one after the server that was lost.
    While the client waits to try again, a /quit ends it at once, and so does the end of the
    input, unless lines sent before a lost connection still wait for their outcome.
    """
    terminal: Output = output if output is not None else Terminal(settings)
    question = TrustQuestion(ask) if ask is not None else None
    notice = OutageNotice(terminal, settings.verbose)
    attempt = 0
    chatted = after_loss = False
    last: Endpoint | None = None
    files = HomeFiles(settings.home)
    offline = Offline(chat, terminal, files)
    started = user_input.reads_early
    if started:
        await user_input.start()

    def finish(code: int) -> int:
        terminal.status("disconnected")
        # Lines read and held for a session that never took them (turned away at the door, say)
        # are not sent either. Without any session, the trust refusal said nothing was sent.
        for line in user_input.unhanded() if chatted else []:
            if not offline.handle_input(line):
                break
        if chat.quit_requested and code == EXIT_CONNECTION_FAILED:
            code = EXIT_OK  # the user quit, whatever the connection was doing
        return report_undelivered(chat, terminal, code, STOPPED if chatted else NEVER_CONNECTED)

    def input_over() -> bool:
        """The input ended, and no line sent before a lost connection waits for its outcome
        (lines typed while never connected have none to wait for)."""
        owed = chatted and still_owed(chat, user_input.ended_at)
        return user_input.ended and not owed

    while True:
        connecting = asyncio.ensure_future(
            connect_any(
                settings, identity, chat, question.ask if question else None, terminal, last, files
            )
        )
        if not await _unless_quit(connecting, quit_requested):
            if question is not None and question.open:
                terminal.warn(NOT_TRUSTED)
                terminal.status("disconnected")
                return EXIT_UNTRUSTED_SERVER
            return finish(EXIT_OK)
        if question is not None:
            question.open = False
        tried = connecting.result()
        session, code, trouble = tried.session, tried.code, tried.trouble
        if session is not None and code == EXIT_OK:
            if not started:
                await user_input.start()
                started = True
            chatted, attempt, last = True, 0, session.endpoint
            notice.over()
            code = await _chat(session, user_input, quit_requested)
            trouble, after_loss = session.trouble, True
        if session is not None:
            session.shutdown_transport()
        if quit_requested.is_set():  # the user left: whatever the connection did meanwhile
            return finish(code if chat.dismissed else EXIT_OK)
        # No session: no name resolved. A kick or a ban is final, however the connection ended.
        lost = (session is None or session.lost) and not chat.dismissed
        if not (settings.reconnect and lost) or input_over():
            notice.final(trouble)
            return finish(code)
        chat.prepare_reconnect()
        delay = backoff_delay(attempt, jitter)
        attempt += 1
        if trouble is not None:
            notice.retrying(trouble, delay, attempt, after_loss)
        after_loss = False
        state = "reconnecting" if chatted else "retrying"
        terminal.status(state, f"{describe_delay(delay)} (attempt {attempt})")
        # What the user types meanwhile is queued (and shown as waiting) for the next session.
        typing = (
            asyncio.ensure_future(user_input.feed(offline))
            if started and not user_input.ended
            else None
        )
        try:
            if await _wait_before_retrying(
                delay, quit_requested, typing, lambda: chat.quit_requested or input_over()
            ):
                if quit_requested.is_set() or chat.quit_requested:
                    return finish(EXIT_OK)
                notice.final(trouble)  # the input ended while disconnected
                return finish(EXIT_CONNECTION_FAILED)
        finally:
            if typing is not None:
                typing.cancel()


async def _wait_before_retrying(
    delay: float,
    quit_requested: asyncio.Event,
    typing: asyncio.Future[None] | None,
    stop: Callable[[], bool],
) -> bool:
    """Wait ``delay`` before the next attempt; True as soon as the client is to stop instead:
    a quit signalled, or the input (``typing``) ended and ``stop`` says so (a /quit, or no line
    left to deliver)."""
    deadline = time.monotonic() + delay
    quitting = asyncio.ensure_future(quit_requested.wait())
    waiting: set[asyncio.Future[Any]] = {quitting}
    if typing is not None:
        waiting.add(typing)
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            done, _ = await asyncio.wait(
                waiting, timeout=remaining, return_when=asyncio.FIRST_COMPLETED
            )
            if quitting in done:
                return True
            if typing is not None and typing in done:
                if stop():
                    return True
                waiting.discard(typing)  # lines still owed: the rest of the wait, then again
    finally:
        quitting.cancel()


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
        if session.closed_cleanly:  # a clean shutdown or restart: reconnect as after a crash
            session.lose(closed_by_server())
        return receiving.result()
    await session.close()
    # A while for the server's close_notify (or its end of stream). A signal after a quit from
    # the input cuts it short; after a quit by signal, nothing does.
    interrupt = asyncio.Event() if quit_requested.is_set() else quit_requested
    if await _unless_quit(receiving, interrupt, CLOSE_GRACE):
        return receiving.result()
    if not interrupt.is_set():
        session.terminal.warn(CLOSE_UNANSWERED)
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
