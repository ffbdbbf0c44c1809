"""The client's settings and its exit codes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..chat.invitation import Invitation
from .addresses import ServerAddress

EXIT_OK = 0


EXIT_CONNECTION_FAILED = 1


EXIT_UNTRUSTED_SERVER = 2


EXIT_REFUSED_BY_SERVER = 3


@dataclass
class ClientSettings:
    home: Path
    host: str = "localhost"
    port: int = 8443
    nick: str = ""
    plain: bool = False
    json: bool = False
    pin: str | None = None
    quiet: bool = False
    key_type: str = "rsa"
    reconnect: bool = True
    fullscreen: bool = False
    bell: bool = True
    # The servers of one cluster, tried in this order; empty means host:port alone.
    servers: tuple[ServerAddress, ...] = ()
    # --invite: the server's address and key come from it, and its secret goes in the hello.
    invitation: Invitation | None = None

    @property
    def addresses(self) -> tuple[ServerAddress, ...]:
        return self.servers or (ServerAddress(self.host, self.port),)

    @property
    def known_as(self) -> ServerAddress:
        """The name the server's key is checked under in known_hosts, whichever server answers:
        the first one given (a cluster's servers all present one key)."""
        return self.addresses[0]
