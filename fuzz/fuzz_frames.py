"""Fuzz the chat frame decoder: decode_frame, parse_signed_message, ChatClient.handle and render.

Run: ``python -m fuzz.fuzz_frames [libFuzzer options] [corpus dirs]`` (or ``make fuzz``).
The only allowed rejection is FrameError. What handle() returns must render without any
character that could rewrite the terminal, and both renderings the client prints (text and
``--json``) must encode as UTF-8, or printing them would crash the client.
"""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path

from fuzz.common import CLIENT_IDENTITY, fuzz_main
from tlschat.chat.client.receiving import ChatClient
from tlschat.chat.frames import FrameError, decode_frame, has_unsafe_text, parse_signed_message
from tlschat.chat.lines import Line
from tlschat.chat.seen import SeenLedger

ROOM = "#general"
# The network the corpus's lines are signed for (a fingerprint's shape; no key needed).
NETWORK = "SHA256:fuzzfuzzfuzzfuzzfuzzfuzzfuzzfuzzfuzzfuzzfuz"
# JSON tokens, frame types, field names and awkward escapes (used unless -dict= is given).
DICTIONARY = Path(__file__).with_name("fuzz_frames.dict")
NOW = 1_700_000_000.0


def chat_client() -> ChatClient:
    client = ChatClient(CLIENT_IDENTITY, "fuzzer")
    client.nick = "fuzzer"
    client.rooms = [ROOM]
    client.use_network(NETWORK, SeenLedger())
    return client


def show(line: Line) -> None:
    """What the terminal glue does with a line: render it, or print it as JSON, as UTF-8."""
    for room in (ROOM, ""):
        rendered = line.render(room)
        assert not has_unsafe_text(rendered), rendered
        rendered.encode("utf-8")
    json.dumps(line.to_json(), ensure_ascii=False).encode("utf-8")


def check(data: bytes) -> None:
    try:
        frame = decode_frame(data)
    except FrameError:
        return
    with contextlib.suppress(FrameError):
        parse_signed_message(frame)
    client = chat_client()
    for _ in range(2):  # the second time, a live message is a replay
        try:
            lines = client.handle(frame, NOW)
        except FrameError:
            return
        for line in lines:
            show(line)
    client.take_outbox()


def main() -> None:
    dictionary = (
        [] if any(arg.startswith("-dict=") for arg in sys.argv) else [f"-dict={DICTIONARY}"]
    )
    fuzz_main(__spec__.name, check, *dictionary)


if __name__ == "__main__":
    main()
