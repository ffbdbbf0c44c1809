"""What went wrong with a connection, in words a chat user knows, and what the client does next.
Pure.

The technical detail (the errno, the alert) is kept beside the words and shown with ``-v``.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Sequence
from dataclasses import dataclass

from .backoff import describe_delay

_WHY = {
    errno.ECONNREFUSED: "nothing is listening there",
    errno.ETIMEDOUT: "no answer",
    errno.EHOSTUNREACH: "no route to it",
    errno.ENETUNREACH: "no route to it: is the network down?",
    errno.ECONNRESET: "the connection was reset",
    errno.ECONNABORTED: "the connection was aborted",
    errno.EPIPE: "the connection was cut",
    errno.EADDRNOTAVAIL: "that address is not available from here",
}
_NAME_WHY = {
    socket.EAI_NONAME: "no such name",
    socket.EAI_AGAIN: "the name could not be looked up: is the network down?",
}


@dataclass(frozen=True)
class Trouble:
    """Why there is no connection. ``clean``: the server ended it properly (close_notify), as
    when it shuts down or restarts."""

    words: str
    detail: str = ""
    clean: bool = False


def why(error: BaseException) -> str:
    """An OSError as a few plain words."""
    if isinstance(error, socket.gaierror):
        return _NAME_WHY.get(error.errno or 0, "the name does not resolve")
    if isinstance(error, TimeoutError) and error.errno is None:
        return "no answer"
    if isinstance(error, OSError) and error.errno in _WHY:
        return _WHY[error.errno]
    if isinstance(error, OSError) and error.strerror:
        return error.strerror.lower()
    return str(error) or type(error).__name__


def cannot_reach(address: str, errors: Sequence[OSError]) -> Trouble:
    """No TCP connection to any address of ``address``."""
    reasons = list(dict.fromkeys(why(error) for error in errors))
    detail = ", ".join(str(error) for error in errors)
    return Trouble(f"Can't reach {address} ({'; '.join(reasons)})", detail)


def cannot_resolve(address: str, host: str, error: OSError) -> Trouble:
    return Trouble(f"Can't find the server {host} for {address} ({why(error)})", str(error))


def closed_while_connecting(address: str, error: BaseException | str) -> Trouble:
    """The server's end of stream, close_notify or a reset before the secure channel was up."""
    if isinstance(error, OSError) and error.errno is not None:
        words = f"The connection to {address} broke while connecting ({why(error)})"
        return Trouble(words, str(error))
    return Trouble(f"The server at {address} closed the connection while connecting", str(error))


def server_full(address: str, error: BaseException) -> Trouble:
    return Trouble(f"The server at {address} is full (too many connections)", str(error))


def lost_while_chatting(error: BaseException) -> Trouble:
    """The connection ended without the server's close_notify: a crash, a cut network."""
    if isinstance(error, OSError):
        return Trouble(f"The connection to the server broke ({why(error)})", str(error))
    return Trouble("The server closed the connection unexpectedly", str(error))


def closed_by_server() -> Trouble:
    return Trouble("The server closed the connection", "close_notify received", clean=True)


def of_sweep(troubles: Sequence[Trouble]) -> Trouble | None:
    """One trouble for an attempt over every server: the only one, or all of them."""
    if len(troubles) <= 1:
        return troubles[0] if troubles else None
    words = "; ".join(trouble.words for trouble in troubles)
    detail = "; ".join(trouble.detail for trouble in troubles if trouble.detail)
    return Trouble(f"No server answered: {words}", detail)


def retry_line(trouble: Trouble, delay: float, attempt: int, after_loss: bool) -> str:
    """What happened and when the client tries again, ``attempt`` counting from 1."""
    plan = "reconnecting" if after_loss else "retrying"
    counted = f" (attempt {attempt})" if attempt > 1 else ""
    return f"[*] {trouble.words}; {plan} {describe_delay(delay)}{counted}…"


def final_line(trouble: Trouble) -> str:
    """What happened, when the client does not try again."""
    return f"{'[*]' if trouble.clean else '[!]'} {trouble.words}."


def detail_line(trouble: Trouble) -> str:
    """The technical detail, for ``-v``."""
    return f"    (detail: {trouble.detail})"
