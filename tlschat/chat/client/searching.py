"""``/search TEXT [#room]``: the server searches the plain history of the user's rooms, this
client what it decrypted during this run; the answer shows both, newest first. Pure."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ...protocol.identity import IdentityKey
from ..e2e_frames import is_encrypted
from ..frames import MAX_KEY_B64, FrameError, field_b64, field_str, parse_signed_message
from ..lines import Line
from ..search_query import MAX_QUERY_BYTES, MAX_RESULTS, USAGE, split_search
from ..search_results import DecryptedLines, result_problem
from .commands import ACTION_PREFIX, error, server_command
from .crypto import ClientCrypto
from .inbox import ClientInbox

# Searches waiting for the server's answer, at most; the oldest is dropped past it.
MAX_PENDING = 8
LOCAL_ONLY = "🔒 lines: decrypted by this client during this run"
# On each result: the full-screen client files a room's lines under that room, away from the
# heading, so each says what it is.
FOUND = "found by /search"


class ClientSearching(ClientInbox):
    """``/search`` and the server's ``search`` frame."""

    def __init__(
        self, identity: IdentityKey, nick: str = "", crypto: ClientCrypto | None = None
    ) -> None:
        super().__init__(identity, nick, crypto)
        self.decrypted = DecryptedLines()
        # query -> (room, this client's own results), until the server answers.
        self._searches: dict[str, tuple[str, list[Line]]] = {}

    def tick(self, now: float) -> list[Line]:
        lines = super().tick(now)
        self.decrypted.keep(lines)
        return lines

    def search_command(self, args: str, now: float) -> list[Line]:
        query, room = split_search(args)
        if not query:
            return error(USAGE, now)
        if len(query.encode()) > MAX_QUERY_BYTES:
            return error(f"a search is {MAX_QUERY_BYTES} bytes at most", now)
        own = self.decrypted.search(query, room)
        if not self._welcomed:
            return self._results(query, own, now, " (not connected: this client's lines only)")
        self._searches.pop(query, None)
        self._searches[query] = (room, own)
        while len(self._searches) > MAX_PENDING:
            del self._searches[next(iter(self._searches))]
        command = server_command("search", f"{query} {room}".strip())
        return self.send_command(command, f"/search {args}".strip(), now)

    def _on_search(self, frame: dict[str, Any], now: float) -> list[Line]:
        query = field_str(frame, "query", MAX_QUERY_BYTES)
        items = frame.get("messages")
        if not isinstance(items, list):
            raise FrameError("'messages' must be a list")
        room, own = self._searches.pop(query, ("", []))
        found = [self._found_line(item, room, now) for item in items[:MAX_RESULTS]]
        merged = own + [line for line in found if line is not None]
        merged.sort(key=lambda line: line.timestamp, reverse=True)
        return self._results(query, merged[:MAX_RESULTS], now)

    def _found_line(self, item: object, room: str, now: float) -> Line | None:
        """A line the server found, verified here; None for what is not a signed room line
        (the server never sends encrypted ones) or is from an ignored key."""
        if not isinstance(item, dict) or is_encrypted(item):
            return None
        try:
            message = parse_signed_message(item)
            nick = field_str(item, "from", 64)
            key_der = field_b64(item, "key", MAX_KEY_B64)
        except FrameError:
            return None
        if message.sender in self.ignored:
            return None
        rooms = [room] if room else self.rooms
        now_ms = int(now * 1000)
        skew_ms = self.verifier.ledger.skew_ms
        network = self.verifier.network
        problem = result_problem(message, key_der, network, rooms, now_ms, skew_ms)
        body, kind = message.body, "message"
        if body.startswith(ACTION_PREFIX):
            kind, body = "action", body[len(ACTION_PREFIX) :]
        return Line(
            kind,
            message.timestamp_ms / 1000,
            body,
            nick,
            message.sender,
            message.target,
            not problem,
            history=True,
            problem=problem,
        )

    def _results(self, query: str, lines: list[Line], now: float, note: str = "") -> list[Line]:
        noun = "result" if len(lines) == 1 else "results"
        head = f"Search for {query!r}: {len(lines)} {noun}, newest first{note}"
        shown = [replace(line, history=True, note=FOUND) for line in lines]
        tail = [Line("notice", now, LOCAL_ONLY)] if any(line.encrypted for line in lines) else []
        return [Line("notice", now, head), *shown, *tail]
