"""The in-process broker: one server alone, every event applied at once."""

from __future__ import annotations

from ..chat.server.cluster_events import ClusterEvent
from ..chat.server.events import ChatServer
from ..chat.server.model import Outgoing
from .base import Deliver


class LocalBroker:
    def __init__(self) -> None:
        self._chat: ChatServer | None = None

    def publish(self, event: ClusterEvent) -> list[Outgoing]:
        assert self._chat is not None, "publish before start"
        return self._chat.apply(event)

    async def start(self, chat: ChatServer, deliver: Deliver) -> None:
        self._chat = chat

    async def drain(self) -> None:
        """Nothing waits: every event took effect when it was published."""

    async def stop(self) -> None:
        self._chat = None

    def describe(self) -> str:
        return "in-process (this server alone)"
