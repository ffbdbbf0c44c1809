"""The line modes hold each typed line until the session takes it as typed (welcomed, rooms
rejoined, a /join answered), never the end of the input; a held line is kept when its session
ends, and goes on anyway once the server has said nothing for a while."""

from __future__ import annotations

import asyncio

import pytest

from tlschat.client import user_input
from tlschat.client.user_input import UserInput

# Bounds of these tests' own waits, never of the client.
SETTLE = 0.2
BOUND = 5.0


class Handler:
    """A session that holds lines while ``holding``."""

    def __init__(self, holding: bool) -> None:
        self.holding = holding
        self.frames_received = 0
        self.handed: list[str] = []

    def handle_input(self, text: str) -> bool:
        self.handed.append(text)
        return text != "/quit"

    def holds_input(self) -> bool:
        return self.holding


def typed(*lines: str | None) -> UserInput:
    source = UserInput(plain=True)
    for line in lines:
        source.lines.put_nowait(line)
    return source


def test_a_line_waits_until_the_session_takes_it() -> None:
    async def scenario() -> None:
        source, session = typed("after the welcome", None), Handler(holding=True)
        feeding = asyncio.ensure_future(source.feed(session))
        await asyncio.sleep(SETTLE)
        assert session.handed == [] and not feeding.done()
        session.frames_received += 1  # the welcome came
        session.holding = False
        await asyncio.wait_for(feeding, BOUND)
        assert session.handed == ["after the welcome"] and source.ended

    asyncio.run(scenario())


def test_the_end_of_the_input_is_never_held() -> None:
    async def scenario() -> None:
        source, session = typed(None), Handler(holding=True)
        await asyncio.wait_for(source.feed(session), BOUND)
        assert source.ended and session.handed == []

    asyncio.run(scenario())


def test_a_line_held_when_its_session_ends_is_kept() -> None:
    async def scenario() -> None:
        source, lost = typed("first", "second", None), Handler(holding=True)
        feeding = asyncio.ensure_future(source.feed(lost))
        await asyncio.sleep(SETTLE)
        feeding.cancel()
        await asyncio.wait({feeding})
        assert lost.handed == []
        # The next session takes it first, in order.
        ready = Handler(holding=False)
        await asyncio.wait_for(source.feed(ready), BOUND)
        assert ready.handed == ["first", "second"] and source.ended

    asyncio.run(scenario())


def test_the_lines_never_handed_are_listed_at_the_end() -> None:
    async def scenario() -> None:
        source, session = typed("hi", "/join #rust", None, "after the end"), Handler(True)
        feeding = asyncio.ensure_future(source.feed(session))
        await asyncio.sleep(SETTLE)
        feeding.cancel()
        await asyncio.wait({feeding})
        assert source.unhanded() == ["hi", "/join #rust"] and source.ended
        assert source.unhanded() == []

    asyncio.run(scenario())


def test_a_held_line_goes_on_once_the_server_said_nothing_for_a_while(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(user_input, "HOLD_PATIENCE", SETTLE)

    async def scenario() -> None:
        source, silent = typed("hello?", None), Handler(holding=True)
        await asyncio.wait_for(source.feed(silent), BOUND)
        assert silent.handed == ["hello?"] and source.ended

    asyncio.run(scenario())
