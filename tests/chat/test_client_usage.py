"""Issue 20, point 8: a command typed without the argument it needs shows its usage line (and,
for /nick, the current nick) and sends nothing. One mechanism for every command of the table
the client knows, its own and the server's: the arguments its usage line does not bracket."""

from __future__ import annotations

import pytest

from tlschat.chat.client.commands import CLIENT_COMMANDS, every_command, needs_argument
from tlschat.chat.client.receiving import ChatClient
from tlschat.chat.lines import Line
from tlschat.chat.server.commands import COMMANDS as SERVER_COMMANDS
from tlschat.protocol.identity import IdentityKey

from .helpers import ALICE, BOB, NOW, Net, client_on, make_server

UI = {"trust": ("/trust", "the server's fingerprint")}
TABLE = every_command(UI)
# Read off the usage lines by hand: what the mechanism must find.
NEED_AN_ARGUMENT = {
    # the client's own
    "me", "msg", "reply", "re", "edit", "react", "unignore", "search", "verify",
    # the server's
    "nick", "join", "whois", "private", "public", "invite", "uninvite", "roomop", "deroomop",
    "rkick", "rban", "runban", "rmute", "runmute", "op", "deop", "kick", "ban", "unban", "mute",
    "unmute", "allow", "disallow", "release", "revoke",
}  # fmt: skip


@pytest.fixture
def net(ed_alice: IdentityKey, ed_bob: IdentityKey) -> Net:
    """Alice (an operator: every command is hers to type) and Bob, both welcomed."""
    net = Net(make_server(operators=frozenset({ed_alice.fingerprint})))
    net.add(ALICE, client_on(ed_alice, "alice"))
    net.add(BOB, client_on(ed_bob, "bob"))
    net.clients[ALICE].ui_commands = dict(UI)
    return net


@pytest.fixture
def alice(net: Net) -> ChatClient:
    return net.clients[ALICE]


@pytest.mark.parametrize(
    ("usage", "needed"),
    [
        ("/help", False),
        ("/nick NAME", True),
        ("/names [#room]", False),
        ("/topic [#room] [TEXT]", False),
        ("/edit [ID|last] TEXT", True),
        ("/devices [remove ID]", False),
        ("/invitation [7d] [HOST:PORT]", False),
        ("/rban NICK|FP #room [30m|2h|7d] [REASON]", True),
    ],
)
def test_an_argument_not_in_brackets_is_needed(usage: str, needed: bool) -> None:
    assert needs_argument(usage) is needed


def test_the_table_is_every_command_of_the_client_and_the_server() -> None:
    typed = {name for name, command in SERVER_COMMANDS.items() if command.listed}
    assert set(TABLE) == set(CLIENT_COMMANDS) | typed | {"trust"}
    # The client's syntax wins where it answers a server command itself.
    assert TABLE["part"] == (CLIENT_COMMANDS["part"].usage, CLIENT_COMMANDS["part"].summary)
    assert {name for name, (usage, _) in TABLE.items() if needs_argument(usage)} == (
        NEED_AN_ARGUMENT
    )


@pytest.mark.parametrize("name", sorted(TABLE))
def test_every_command_without_its_argument_shows_its_usage_and_sends_nothing(
    net: Net, alice: ChatClient, name: str
) -> None:
    usage, summary = TABLE[name]
    shown = alice.user_input(f"/{name}", NOW)
    if name not in NEED_AN_ARGUMENT:
        assert Line("error", NOW, f"usage: {usage} — {summary}") not in shown
        return
    assert shown[-1] == Line("error", NOW, f"usage: {usage} — {summary}")
    assert all(line.kind in ("error", "notice") for line in shown)
    assert alice.tick(NOW) == []
    assert alice.take_outbox() == [] and alice.outstanding == 0
    assert not any(net.flush(ALICE).values())  # the server heard nothing


@pytest.mark.parametrize("typed", ["/nick", "/NICK", "/nick   "])
def test_nick_alone_says_the_current_nick_and_the_syntax(alice: ChatClient, typed: str) -> None:
    usage, summary = SERVER_COMMANDS["nick"].usage, SERVER_COMMANDS["nick"].summary
    assert alice.user_input(typed, NOW) == [
        Line("notice", NOW, "Your nick is alice"),
        Line("error", NOW, f"usage: {usage} — {summary}"),
    ]
    assert alice.take_outbox() == []


def test_a_command_with_its_argument_goes_out(net: Net, alice: ChatClient) -> None:
    assert alice.user_input("/nick alicia", NOW) == []
    alice.tick(NOW)
    assert alice.take_outbox() == [{"type": "command", "name": "nick", "args": "alicia"}]


@pytest.mark.parametrize("args", ["alice", "alice   "])
def test_msg_with_a_nick_and_no_text_shows_its_usage(alice: ChatClient, args: str) -> None:
    usage, summary = CLIENT_COMMANDS["msg"].usage, CLIENT_COMMANDS["msg"].summary
    assert alice.user_input(f"/msg {args}", NOW) == [
        Line("error", NOW, f"usage: {usage} — {summary}")
    ]
    assert alice.outbox == [] and alice.outstanding == 0


def test_help_lists_the_keys_the_glue_gives(alice: ChatClient) -> None:
    alice.keys_help = ["Ctrl-C   clear the line", "Ctrl-D   quit"]
    shown = [line.text for line in alice.user_input("/help", NOW)]
    keys = shown.index("Keys:")
    assert shown[keys + 1 :] == ["  Ctrl-C   clear the line", "  Ctrl-D   quit"]
    assert shown.index("Client commands:") < keys
