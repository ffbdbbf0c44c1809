"""The servers a client may connect to: `--host` values, and the round robin over them.

A cluster is several servers presenting one key; the client knows it by the first address given
(its name in known_hosts) and connects to whichever answers, moving on to the next when one goes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

MAX_PORT = 65535
_PORT = re.compile(r"[0-9]{1,5}")


class AddressError(ValueError):
    """A `--host` value that names no server; the text says which item and why."""


@dataclass(frozen=True)
class ServerAddress:
    """A server as the user named it: a host name or IP address, and a port."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class Endpoint:
    """One IP address a :class:`ServerAddress` resolved to: what a connection is opened to."""

    address: ServerAddress
    ip: str

    def __str__(self) -> str:
        if self.ip == self.address.host:
            return str(self.address)
        return f"{self.address} ({self.ip})"


def parse_addresses(values: Iterable[str], default_port: int) -> list[ServerAddress]:
    """Each value a comma-separated list of HOST, HOST:PORT, [IPV6] or [IPV6]:PORT.

    A bare IPv6 address (more than one colon, no brackets) takes the default port. Repeats of a
    server already listed are dropped, so that the round robin visits each once.
    """
    addresses: list[ServerAddress] = []
    for value in values:
        for item in value.split(","):
            address = _parse_item(item.strip(), default_port)
            if address not in addresses:
                addresses.append(address)
    if not addresses:
        raise AddressError("no server address given")
    return addresses


def takes_default_port(values: Iterable[str]) -> bool:
    """Whether any server in ``values`` (valid --host values) is given without its port."""
    # No port given may be 0 (they are 1 to 65535): a server on port 0 took the default.
    return any(address.port == 0 for address in parse_addresses(values, 0))


def _parse_item(item: str, default_port: int) -> ServerAddress:
    if not item:
        raise AddressError("empty server address (two commas, or one at an end?)")
    if item.startswith("["):
        host, bracket, rest = item[1:].partition("]")
        if not bracket or ":" not in host:
            raise AddressError(f"{item!r}: brackets hold an IPv6 address, as in [::1]:8443")
        if rest and not rest.startswith(":"):
            raise AddressError(f"{item!r}: only ':PORT' may follow the brackets")
        port_text = rest[1:] if rest else None
    elif item.count(":") > 1:
        host, port_text = item, None
    else:
        host, colon, port_text_or_empty = item.partition(":")
        port_text = port_text_or_empty if colon else None
    if not host:
        raise AddressError(f"{item!r}: no host")
    if any(character.isspace() for character in host):
        raise AddressError(f"{item!r}: a host has no spaces")
    return ServerAddress(host, _parse_port(item, port_text, default_port))


def _parse_port(item: str, port_text: str | None, default_port: int) -> int:
    if port_text is None:
        return default_port
    if not _PORT.fullmatch(port_text) or not 1 <= int(port_text) <= MAX_PORT:
        raise AddressError(f"{item!r}: the port must be a number from 1 to {MAX_PORT}")
    return int(port_text)


def sweep_order(endpoints: list[Endpoint], last: Endpoint | None) -> list[Endpoint]:
    """Every endpoint once, starting after ``last`` (the one connected to before), round robin.

    Without a last one, or if it no longer resolves, from the first: the order given.
    """
    if last not in endpoints:
        return list(endpoints)
    start = endpoints.index(last) + 1
    return endpoints[start:] + endpoints[:start]
