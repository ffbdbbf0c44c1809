"""The client's settings and its exit codes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..chat.invitation import Invitation
from .addresses import ServerAddress

# How the client ended (README, "Client"). A quit the user asked for (/quit, the end of input,
# Ctrl-C, Ctrl+Q, SIGINT, SIGTERM) is EXIT_OK, whatever the connection was doing, unless a line
# was not delivered (outcomes.EXIT_NOT_DELIVERED) or the trust question was open: then the key
# was not trusted.
EXIT_OK = 0
# The connection failed or was lost, and the client does not try again (--no-reconnect, an
# attack on the protocol, the end of --plain input while disconnected, or before any connection).
EXIT_CONNECTION_FAILED = 1
# The server's key was not trusted: changed, not the pinned one, refused at the question, or new
# with no terminal to ask on.
EXIT_UNTRUSTED_SERVER = 2
# Kicked, banned, or not admitted (not on the allowlist, an invitation already used).
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
    # stdin is not a terminal (and no --plain): a new server's key cannot be asked about, and
    # is refused rather than trusted on the say-so of the first line piped in.
    refuse_new_keys: bool = False
    # -v: the technical detail of what went wrong, and every reconnect attempt.
    verbose: bool = False

    @property
    def addresses(self) -> tuple[ServerAddress, ...]:
        return self.servers or (ServerAddress(self.host, self.port),)

    @property
    def known_as(self) -> ServerAddress:
        """The name the server's key is checked under in known_hosts, whichever server answers:
        the first one given (a cluster's servers all present one key)."""
        return self.addresses[0]
