"""The asyncio side of the handshake pacer (pacing.py): connections wait their turn with their
socket's reading paused, so their ClientHello stays in the kernel and costs nothing, and one
timer starts them as the pacer's tokens refill."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import select
from typing import Protocol

from .link import ClientLink
from .pacing import HandshakePacer, PacingStep

log = logging.getLogger("tlschat.server")

# How often the waiting sockets are looked at for a peer that hung up: with reading paused,
# asyncio would not see it until the connection's turn came.
HANGUP_SWEEP = 1.0
# A peer's end of the stream (FIN, with data still unread before it: Linux only), a reset, an
# error. Elsewhere a hang-up is seen when its turn comes, as a failed handshake.
HANGUP = getattr(select, "POLLRDHUP", 0) | select.POLLHUP | select.POLLERR
WAITED_TOO_LONG = "waited too long for a handshake"


class QueueOwner(Protocol):
    """What the queue asks of the service whose connections it paces."""

    loop: asyncio.AbstractEventLoop

    def start_handshake(self, link: ClientLink, now: float) -> None: ...
    def refuse(self, link: ClientLink, reason: str) -> None: ...


class HandshakeQueue:
    def __init__(self, owner: QueueOwner, rate: float, burst: int) -> None:
        self.owner = owner
        self.pacer: HandshakePacer[ClientLink] = HandshakePacer(rate, burst)
        self._timer: asyncio.Handle | None = None
        self._sweep: asyncio.TimerHandle | None = None

    def __len__(self) -> int:
        return len(self.pacer)

    def must_wait(self) -> bool:
        return self.pacer.must_wait(self.owner.loop.time())

    def admit(self, link: ClientLink) -> bool:
        """True if ``link``'s handshake may start now; otherwise it waits, reading paused."""
        loop = self.owner.loop
        if self.pacer.arrive(link, loop.time()):
            return True
        link.wait_for_turn()
        log.debug("[!] %s: waiting for its handshake's turn (%d waiting)", link.peer, len(self))
        if self._timer is None:
            self._timer = loop.call_soon(self._run)
        if self._sweep is None:
            self._sweep = loop.call_later(HANGUP_SWEEP, self._on_sweep)
        return False

    def leave(self, link: ClientLink) -> None:
        """``link`` ended (whatever ended it): it waits no more."""
        self.pacer.leave(link)

    def resize(self, rate: float, burst: int) -> None:
        self.pacer.resize(rate, burst)
        if self._timer is not None:  # a higher rate makes the next turn sooner
            self._timer.cancel()
            self._timer = self.owner.loop.call_soon(self._run)

    def close(self) -> list[ClientLink]:
        """The server stops: no more turns; the connections that were waiting."""
        for timer in (self._timer, self._sweep):
            if timer is not None:
                timer.cancel()
        self._timer = self._sweep = None
        waiting = list(self.pacer.waiting)
        self.pacer.waiting.clear()
        return waiting

    def _run(self) -> None:
        self._timer = None
        now = self.owner.loop.time()
        step: PacingStep[ClientLink] = self.pacer.step(now)
        for line in step.lines:
            log.info("%s", line)
        for link in step.expired:
            self.owner.refuse(link, WAITED_TOO_LONG)
        for link in step.started:
            if link.transport is not None and not link.transport.is_closing():
                self.owner.start_handshake(link, now)
        if step.next_at is not None:
            self._timer = self.owner.loop.call_at(step.next_at, self._run)

    def _on_sweep(self) -> None:
        """End the waiting connections whose peer hung up: they would hold a place in the queue
        (and under max_unauthenticated) for nothing."""
        self._sweep = None
        if not self.pacer.waiting:
            return
        poller = select.poll()
        links: dict[int, ClientLink] = {}
        for link in self.pacer.waiting:
            sock = link.transport.get_extra_info("socket") if link.transport else None
            with contextlib.suppress(OSError, ValueError):
                if sock is not None and sock.fileno() >= 0:
                    links[sock.fileno()] = link
                    poller.register(sock.fileno(), HANGUP)
        for fd, events in poller.poll(0):
            link = links[fd]
            if events & HANGUP and link.transport is not None:
                self.pacer.leave(link)
                link.transport.abort()  # connection_lost counts it as one that left waiting
        self._sweep = self.owner.loop.call_later(HANGUP_SWEEP, self._on_sweep)
