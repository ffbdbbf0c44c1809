"""The broker interface the server's glue depends on."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from ..chat.server.cluster_events import ClusterEvent
from ..chat.server.events import ChatServer
from ..chat.server.model import Outgoing

Deliver = Callable[[list[Outgoing]], None]


class Broker(Protocol):
    def publish(self, event: ClusterEvent) -> list[Outgoing]:
        """Hand over one event of this server's chat. Returns the frames for this server's
        sessions that are known at once; the rest reach ``deliver`` later."""

    async def start(self, chat: ChatServer, deliver: Deliver) -> None:
        """Begin serving ``chat``: from now on its events flow through this broker."""

    async def drain(self) -> None:
        """Return once every event published so far has taken effect or been refused, or once
        the log is unreachable: a server that stops sends its acknowledgements first."""

    async def stop(self) -> None:
        """Commit what is still queued (briefly), then let go of the cluster."""

    def describe(self) -> str:
        """For the server's log: what carries the events."""
