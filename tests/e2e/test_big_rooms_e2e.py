"""Big rooms between real processes: a member list that outgrows one frame comes as a run, and a
``--plain`` client shows it whole (docs/PROTOCOL.md, "Runs"); ``/more`` prints the page of
history before what was shown."""

from __future__ import annotations

import re

from tests.adversarial.evil import EvilClient

from .harness import Harness
from .test_chat_features_e2e import notice, said

MEMBERS = 260  # with away texts of 200 bytes, about 77 KB of members: two frames
AWAY = "a" * 200


def test_a_member_list_longer_than_a_frame_arrives_whole(harness: Harness) -> None:
    server = harness.server(
        extra=(
            "--max-connections-per-ip",
            "400",
            "--max-connections-per-block",
            "400",
            "--handshake-burst",
            "100000",
        )
    )
    crowd: list[EvilClient] = []
    try:
        for index in range(MEMBERS):
            member = EvilClient(server.port)
            crowd.append(member)
            member.handshake()
            nick = member.join_chat(f"member{index:03d}")["nick"]
            assert nick == f"member{index:03d}"
            start = len(member.frames)
            member.send_frame({"type": "command", "name": "away", "args": AWAY})
            member.wait_frame(lambda f: f.get("type") == "notice", "away", start)
        # The list is a run: 'joined' and a 'members' frame after it.
        frames = crowd[0].frames
        start = len(frames)
        crowd[0].send_frame({"type": "command", "name": "join", "args": "#general"})
        crowd[0].wait_frame(lambda f: f.get("more") is False, "the run's end", start)
        run = [f for f in frames[start:] if f["type"] in ("joined", "members")]
        assert [(f["type"], f["part"], f["more"]) for f in run] == [
            ("joined", 0, True),
            ("members", 1, False),
        ]
        client = harness.client("last", server.port)
        client.wait_joined()
        [joined] = [line for line in client.snapshot() if "You are last in #general" in line]
        _, _, company = joined.partition(" with ")
        assert sorted(company.split(", ")) == [f"member{n:03d}" for n in range(MEMBERS)]
        assert client.find("!!!") is None, client.describe()

        start = client.mark()
        client.send("/names")
        client.wait_for_line("Members of #general:", start=start)
        rows = client.wait_for_lines(" member", MEMBERS, start=start)
        assert [row.split()[2] for row in rows] == [f"member{n:03d}" for n in range(MEMBERS)]
        assert all(row.endswith(f"(away: {AWAY})") for row in rows)
        assert client.find("!!!") is None, client.describe()
        client.close_stdin()
        assert client.wait_exit() == 0
    finally:
        for member in crowd:
            member.close()


def test_more_prints_the_page_before_the_history_on_join(harness: Harness) -> None:
    server = harness.server(extra=("--rate", "1000", "--burst", "1000"))
    talker = harness.joined_client("talker", server.port)
    for counter in range(1, 61):
        talker.send(f"line {counter}")
    talker.wait_for_line("sent <talker> line 60")
    reader = harness.client("reader", server.port)
    reader.wait_for_line(said("talker", "line 60"))
    assert reader.find(said("talker", "line 10")) is None
    start = reader.mark()
    reader.send("/more")
    reader.wait_for_line(notice("10 earlier lines of #general:"), start=start)
    page = reader.wait_for_lines(re.compile(r"✓ <talker> line \d+$"), 10, start=start)
    assert [row.rsplit(" ", 1)[1] for row in page] == [str(n) for n in range(1, 11)]
    reader.wait_for_line(notice("— start of the history of #general —"), start=start)
    reader.send("/more")
    reader.wait_for_line("No earlier lines of #general", start=start)
    for client in (talker, reader):
        client.close_stdin()
        assert client.wait_exit() == 0
