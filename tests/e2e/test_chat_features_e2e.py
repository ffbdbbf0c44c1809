"""End to end: the chat features (nicks, rooms, private messages, history, moderation, allowlist,
MOTD and configuration, flood control) with the real server and real ``--plain`` clients.

Every wait is for a line the processes print, bounded by the harness's deadlines. Absence ("carol
never sees it") is checked only after a barrier: a later line that the server sends to the same
client after it has processed the frame in question.
"""

from __future__ import annotations

import json
import re
import shutil
import signal

from .harness import CLOCK, Client, Harness, Process, Server, json_event, stop

FALLBACK_NICK = re.compile(r"^user-[a-z0-9]{6}$")
REFUSED_BY_SERVER = 3


def _where(room: str) -> str:
    return f"{re.escape(room)} " if room else ""


def said(nick: str, text: str, room: str = "") -> re.Pattern[str]:
    """A whole plain line: a verified room message; ``room`` when it is not the current room."""
    return re.compile(rf"^{CLOCK} {_where(room)}✓ <{re.escape(nick)}> {re.escape(text)}$")


def whispered(nick: str, text: str) -> re.Pattern[str]:
    """A whole plain line: a verified private message, end-to-end encrypted as every one is."""
    return re.compile(rf"^{CLOCK} 🔒✓ \*{re.escape(nick)}\* {re.escape(text)}$")


def notice(text: str, room: str = "") -> re.Pattern[str]:
    return re.compile(rf"^{CLOCK} {_where(room)}\*\*\* {re.escape(text)}$")


def error(text: str) -> re.Pattern[str]:
    """An error line that contains ``text``."""
    return re.compile(rf"^{CLOCK} !!! .*{re.escape(text)}")


NOT_DELIVERED = 4


def quit_cleanly(*clients: Client, undelivered: tuple[Client, ...] = ()) -> None:
    """End each client's input; each exits 0, or 4 for the ``undelivered`` ones, whose refused
    lines are named on stderr."""
    for client in clients:
        client.close_stdin()
    for client in clients:
        expected = NOT_DELIVERED if client in undelivered else 0
        assert client.wait_exit() == expected, client.describe()
        if client in undelivered:
            assert "not delivered:" in client.output("stderr"), client.describe()


def barrier(client: Client) -> None:
    """Return once the server has answered a command ``client`` sends now: everything the
    server sent to ``client`` before processing it has been printed by then."""
    start = client.mark()
    client.send("/rooms")
    client.wait_for_line(notice("Rooms:"), start=start)


def refused(client: Client, *texts: str) -> str:
    """``client`` was turned away by the server: exit code 3 and a line with all ``texts``."""
    assert client.wait_exit() == REFUSED_BY_SERVER, client.describe()
    line = client.wait_for_line(error("Disconnected by the server: "))
    for text in texts:
        assert text in line, client.describe()
    return line


# ----- 1. nicks belong to keys -----


def test_nick_belongs_to_its_key_across_reconnects_restarts_and_devices(
    harness: Harness,
) -> None:
    data = harness.root / "data"
    server = harness.server(data)
    port = server.port
    alice_home, mallory_home = harness.home("alice"), harness.home("mallory")
    alice_fp = harness.key_fingerprint(alice_home)

    alice = harness.joined_client("alice", port, home=alice_home)
    assert alice.nick == "alice"
    quit_cleanly(alice)

    def mallory_is_refused() -> Client:
        mallory = harness.client("alice", port, home=mallory_home)
        nick = mallory.wait_joined()
        assert FALLBACK_NICK.match(nick), mallory.describe()
        mallory.wait_for_line(notice(f"'alice' belongs to another key; you are {nick}"))
        return mallory

    # alice is offline, yet her nick is still hers.
    mallory = mallory_is_refused()
    start = mallory.mark()
    mallory.send("/nick ALICE")  # nicks compare case-insensitively
    mallory.wait_for_line(error("'ALICE' belongs to another key"), start=start)
    quit_cleanly(mallory)

    alice = harness.joined_client("alice", port, home=alice_home)
    assert alice.nick == "alice"
    assert alice.find("belongs to another key") is None, alice.describe()
    quit_cleanly(alice)

    # The ownership is in the data directory, so it survives a restart.
    assert stop(server, signal.SIGTERM) == 0, server.describe()
    server = harness.server(data, port=port, name="restarted")
    quit_cleanly(mallory_is_refused())
    alice = harness.joined_client("alice", port, home=alice_home)
    assert alice.nick == "alice"

    # A second device holding the same key is the same user: it gets the nick too, even while
    # the first device is online.
    laptop_home = harness.root / "homes" / "alice-laptop"
    laptop_home.mkdir(parents=True)
    shutil.copy2(alice_home / "identity.pem", laptop_home / "identity.pem")
    assert harness.key_fingerprint(laptop_home) == alice_fp
    laptop = harness.joined_client("alice", port, home=laptop_home)
    assert laptop.nick == "alice"
    assert laptop.find("belongs to another key") is None, laptop.describe()
    # Presence is per key, so the laptop's arrival is not announced; what it says reaches the
    # other device, under the same nick.
    laptop.send("hello from the laptop")
    alice.wait_for_line(said("alice", "hello from the laptop"))
    assert alice.find(notice("alice joined #general")) is None
    quit_cleanly(alice, laptop)


def test_a_squatted_fallback_nick_is_never_shared_by_two_keys(
    harness: Harness, server: Server
) -> None:
    """Issue 12, point 2: key X squats alice's nick, key Y takes alice's predictable fallback
    (``user-`` + 6 characters of her public fingerprint) first; alice still gets a nick of her
    own, and nobody sees her as Y nor is warned that her nick changed keys."""
    homes = {name: harness.home(name) for name in ("x", "y", "carol", "alice")}
    fingerprints = {name: harness.key_fingerprint(home) for name, home in homes.items()}
    letters = "".join(c for c in fingerprints["alice"].removeprefix("SHA256:") if c.isalnum())
    short, longer = f"user-{letters[:6].lower()}", f"user-{letters[:7].lower()}"

    port = server.port
    squatter = harness.joined_client("alice", port, home=homes["x"])
    assert squatter.nick == "alice"
    taker = harness.joined_client("yves", port, home=homes["y"])
    taker.send(f"/nick {short}")
    taker.wait_for_line(notice(f"You are now known as {short}"))
    carol = harness.joined_client("carol", port, home=homes["carol"])

    alice = harness.client("alice", port, home=homes["alice"])
    assert alice.wait_joined() == longer, alice.describe()
    alice.wait_for_line(notice(f"'alice' belongs to another key; you are {longer}"))
    carol.wait_for_line(notice(f"{longer} joined #general"))

    start = carol.mark()
    carol.send("/names")
    carol.wait_for_line(notice("Members of #general:"), start=start)
    members = carol.wait_for_lines(re.compile(rf"^{CLOCK} \*\*\*   \S+ SHA256:"), 4, start=start)
    listed = [line.split("***   ", 1)[1] for line in members]
    assert sorted(listed) == sorted(
        [
            f"alice {fingerprints['x']}",
            f"{short} {fingerprints['y']}",
            f"{longer} {fingerprints['alice']}",
            f"carol {fingerprints['carol']}",
        ]
    ), carol.describe()

    # Verified, under her own nick, without a key-changed warning (said() is the whole line).
    alice.send("it is really me 7a7a")
    carol.wait_for_line(said(longer, "it is really me 7a7a"))
    barrier(carol)
    assert carol.find("WARNING") is None, carol.describe()
    quit_cleanly(squatter, taker, carol, alice)


# ----- 2. rooms -----


def test_rooms_isolate_messages_and_list_members_and_topics(
    harness: Harness, server: Server
) -> None:
    homes = {nick: harness.home(nick) for nick in ("alice", "bob", "carol")}
    fingerprints = {nick: harness.key_fingerprint(home) for nick, home in homes.items()}
    alice = harness.joined_client("alice", server.port, home=homes["alice"])
    bob = harness.joined_client("bob", server.port, home=homes["bob"])
    carol = harness.joined_client("carol", server.port, home=homes["carol"])
    alice.wait_for_line(notice("carol joined #general"))
    bob.wait_for_line(notice("carol joined #general"))

    alice.send("/join #rust")
    alice.wait_for_line(notice("You are alice in #rust (nobody else is here)"))
    bob.send("/join rust")  # the # is optional
    bob.wait_for_line(notice("You are bob in #rust with alice"))
    alice.wait_for_line(notice("bob joined #rust"))

    # A message to #rust (alice's current room now) reaches bob, shown without a room prefix
    # because #rust is bob's current room too.
    alice.send("borrow checker tips 1a1a")
    bob.wait_for_line(said("alice", "borrow checker tips 1a1a"))

    # #general is no longer alice's and bob's current room: its lines name it.
    carol.send("lunch in #general 2b2b")
    alice.wait_for_line(said("carol", "lunch in #general 2b2b", room="#general"))
    bob.wait_for_line(said("carol", "lunch in #general 2b2b", room="#general"))

    start = alice.mark()
    alice.send("/names #rust")
    alice.wait_for_line(notice("Members of #rust:"), start=start)
    members = alice.wait_for_lines(re.compile(rf"^{CLOCK} \*\*\*   \S+ SHA256:"), 2, start=start)
    assert [line.split("***   ", 1)[1] for line in members] == [
        f"alice {fingerprints['alice']} (owner)",  # the first to join it
        f"bob {fingerprints['bob']}",
    ], alice.describe()

    alice.send("/topic #rust Rust talk")
    for member in (alice, bob):
        member.wait_for_line(notice("alice set the topic of #rust: Rust talk"))

    start = carol.mark()
    carol.send("/rooms")
    carol.wait_for_line(notice("Rooms:"), start=start)
    carol.wait_for_line(notice("  #general (3 members)"), start=start)
    carol.wait_for_line(notice("  #rust (2 members): Rust talk"), start=start)
    # The /rooms answer came after the #rust message and topic were handled: carol got neither.
    for private_to_rust in ("borrow checker", "set the topic", "joined #rust"):
        assert carol.find(private_to_rust) is None, carol.describe()
    quit_cleanly(alice, bob, carol)


# ----- 3. private messages -----


def test_private_messages_reply_errors_away_and_whois(harness: Harness, server: Server) -> None:
    # dave has been here before: his nick is registered, but he is offline.
    dave_home = harness.home("dave")
    quit_cleanly(harness.joined_client("dave", server.port, home=dave_home))
    bob_home = harness.home("bob")
    bob_fp = harness.key_fingerprint(bob_home)
    alice = harness.joined_client("alice", server.port)
    bob = harness.joined_client("bob", server.port, home=bob_home)
    carol = harness.joined_client("carol", server.port)
    alice.wait_for_line(notice("carol joined #general"))

    alice.send("/msg bob just between us 3c3c")
    bob.wait_for_line(whispered("alice", "just between us 3c3c"))
    bob.send("/reply got it 4d4d")
    alice.wait_for_line(whispered("bob", "got it 4d4d"))

    start = alice.mark()
    alice.send("/msg nobody-here are you there")
    alice.wait_for_line(
        error("not sent (no such nick: nobody-here): *alice* are you there"), start=start
    )

    # dave is offline, but his device is known: the message waits for it on the server.
    start = alice.mark()
    alice.send("/msg dave are you there")
    alice.wait_for_line(
        re.compile(rf"^{CLOCK} sent 🔒 → @dave \*alice\* are you there$"), start=start
    )

    bob.send("/away at lunch")
    bob.wait_for_line(notice("You are marked away: at lunch"))
    start = alice.mark()
    alice.send("/msg bob lunch where 5e5e")
    bob.wait_for_line(whispered("alice", "lunch where 5e5e"))
    alice.wait_for_line(notice("bob is away: at lunch"), start=start)

    start = alice.mark()
    alice.send("/whois bob")
    alice.wait_for_line(notice(f"bob is {bob_fp}"), start=start)
    alice.wait_for_line(notice("  rooms: #general"), start=start)
    alice.wait_for_line(notice("  away: at lunch"), start=start)

    # A room message after all of that is the barrier: carol saw none of the private ones.
    alice.send("public again 6f6f")
    carol.wait_for_line(said("alice", "public again 6f6f"))
    for secret in ("between us", "got it", "lunch where", "are you there"):
        assert carol.find(secret) is None, carol.describe()
    assert bob.find("are you there") is None, bob.describe()
    dave = harness.joined_client("dave", server.port, home=dave_home)
    dave.wait_for_line(whispered("alice", "are you there"))
    quit_cleanly(alice, bob, carol, dave, undelivered=(alice,))


# ----- 4. history -----


def history_lines(client: Client, room: str, texts: list[str], start: int = 0) -> None:
    """``client`` printed "Last N messages of ROOM:" and then exactly ``texts``, in order."""
    header = client.wait_for_line(notice(f"Last {len(texts)} messages of {room}:"), start=start)
    lines = client.snapshot()
    first = lines.index(header, start) + 1
    replayed = client.wait_for_lines(re.compile(rf"^{CLOCK} ✓ <"), len(texts), start=first)
    lines = client.snapshot()
    assert replayed == lines[first : first + len(texts)], client.describe()
    assert [line.split("> ", 1)[1] for line in replayed] == texts, client.describe()


def test_history_is_replayed_and_survives_restart_and_kill(harness: Harness) -> None:
    data = harness.root / "data"
    server = harness.server(data)
    port = server.port
    alice_home, bob_home = harness.home("alice"), harness.home("bob")
    # Without reconnecting, they end with the server's clean shutdown below.
    once = ("--no-reconnect",)
    alice = harness.joined_client("alice", port, home=alice_home, extra=once)
    bob = harness.joined_client("bob", port, home=bob_home, extra=once)
    alice.wait_for_line(notice("bob joined #general"))
    texts = ["history one 1111", "history two 2222", "history three 3333"]
    for text in texts:
        alice.send(text)
    for text in texts:  # relayed, so stored
        bob.wait_for_line(said("alice", text))

    carol = harness.joined_client("carol", port)
    history_lines(carol, "#general", texts)
    dave = harness.client("dave", port, json=True)
    dave.wait_for_line(json_event(kind="notice", text="Last 3 messages of #general:"))
    for text in texts:
        event = json.loads(dave.wait_for_line(json_event(kind="message", text=text)))
        assert event["verified"] is True and event["history"] is True, event
        assert event["nick"] == "alice" and event["room"] == "#general", event
    quit_cleanly(carol, dave)

    # A clean restart keeps it.
    assert stop(server, signal.SIGTERM) == 0, server.describe()
    for client in (alice, bob):
        assert client.wait_exit() == 0, client.describe()
    server = harness.server(data, port=port, name="restarted")
    erin = harness.joined_client("erin", port)
    history_lines(erin, "#general", texts)
    quit_cleanly(erin)

    # So does a crash right after a message was relayed.
    alice = harness.joined_client("alice", port, home=alice_home)
    bob = harness.joined_client("bob", port, home=bob_home)
    alice.wait_for_line(notice("bob joined #general"))
    last = "just before the crash 4444"
    alice.send(last)
    bob.wait_for_line(said("alice", last))
    assert stop(server, signal.SIGKILL) == -signal.SIGKILL
    server = harness.server(data, port=port, name="after-kill")
    frank = harness.joined_client("frank", port)
    history_lines(frank, "#general", [*texts, last])
    quit_cleanly(frank)


def test_history_limit_and_no_history(harness: Harness) -> None:
    texts = [f"numbered message {n} {n}{n}{n}" for n in range(1, 5)]
    for flags, expected in ((("--history", "2"), texts[-2:]), (("--no-history",), [])):
        name = flags[0].strip("-")
        server = harness.server(name=name, extra=flags)
        alice = harness.joined_client("alice", server.port)
        bob = harness.joined_client("bob", server.port)
        alice.wait_for_line(notice("bob joined #general"))
        for text in texts:
            alice.send(text)
        for text in texts:
            bob.wait_for_line(said("alice", text))

        carol = harness.joined_client("carol", server.port)
        barrier(carol)  # the history, if any, came right after the welcome
        if expected:
            history_lines(carol, "#general", expected)
        else:
            assert carol.find("messages of #general") is None, carol.describe()
        for text in texts:
            if text not in expected:
                assert carol.find(text) is None, (flags, carol.describe())
        quit_cleanly(alice, bob, carol)
        assert stop(server) == 0


# ----- 5. moderation -----


def test_operator_kicks_bans_unbans_mutes_and_unmutes(harness: Harness) -> None:
    alice_home, bob_home = harness.home("alice"), harness.home("bob")
    alice_fp, bob_fp = harness.key_fingerprint(alice_home), harness.key_fingerprint(bob_home)
    server = harness.server(extra=("--operator", alice_fp))
    port = server.port
    alice = harness.joined_client("alice", port, home=alice_home)
    assert alice.find(notice("Welcome to tlschat, alice (operator)")), alice.describe()
    bob = harness.joined_client("bob", port, home=bob_home)
    carol = harness.joined_client("carol", port)
    alice.wait_for_line(notice("carol joined #general"))

    # Operators only.
    start = carol.mark()
    carol.send("/kick bob")
    carol.wait_for_line(error("/kick is for operators"), start=start)
    assert bob.running

    # /kick
    alice.send("/kick bob too loud")
    refused(bob, "kicked by alice: too loud")
    alice.wait_for_line(notice("kicked bob: too loud"))
    carol.wait_for_line(notice("bob left #general (kicked by alice: too loud)"))

    # /ban: out now, and refused on return.
    bob = harness.joined_client("bob", port, home=bob_home)
    alice.wait_for_line(notice("bob joined #general"))
    alice.send("/ban bob 1h spam")
    refused(bob, "banned for 1h by alice: spam")
    alice.wait_for_line(notice(f"banned bob ({bob_fp}) for 1h"))
    start = alice.mark()
    again = harness.client("bob", port, home=bob_home)
    refused(again, "you are banned for ", ": spam")
    assert again.find("You are bob in") is None, again.describe()
    barrier(alice)
    assert alice.find("bob joined", start=start) is None, alice.describe()

    # /unban
    alice.send("/unban bob")
    alice.wait_for_line(notice(f"unbanned bob ({bob_fp})"))
    bob = harness.joined_client("bob", port, home=bob_home)
    alice.wait_for_line(notice("bob joined #general"))

    mute_then_unmute(alice, carol, bob)
    quit_cleanly(alice, bob, carol, undelivered=(carol,))


def mute_then_unmute(alice: Client, carol: Client, bob: Client) -> None:
    """Operator alice mutes carol, whose room message is refused, then unmutes her: alice and bob
    see her next message and never the refused one."""
    alice.send("/mute carol")
    alice.wait_for_line(notice("muted carol"))
    carol.wait_for_line(notice("you were muted by alice"))
    start = carol.mark()
    carol.send("muted words 7a7a")
    carol.wait_for_line(error("message rejected: you are muted"), start=start)
    alice.send("/unmute carol")
    carol.wait_for_line(notice("you were unmuted by alice"))
    carol.send("free to talk 8b8b")
    for listener in (alice, bob):
        listener.wait_for_line(said("carol", "free to talk 8b8b"))
        assert listener.find("muted words") is None, listener.describe()


def test_a_muted_user_is_silent_in_nicks_and_away_texts_too(harness: Harness) -> None:
    """Issue 13: a muted key reaches nobody through /away TEXT or /nick (both refused, checked
    by a bystander after a barrier); /back still works. A runtime operator cannot /mute or /kick
    the configured one."""
    alice_home = harness.home("alice")
    server = harness.server(extra=("--operator", harness.key_fingerprint(alice_home)))
    port = server.port
    alice = harness.joined_client("alice", port, home=alice_home)
    bob = harness.joined_client("bob", port)
    carol = harness.joined_client("carol", port)
    bob.wait_for_line(notice("carol joined #general"))

    alice.send("/mute carol")
    alice.wait_for_line(notice("muted carol"))
    carol.wait_for_line(notice("you were muted by alice"))
    start = carol.mark()
    carol.send("/away visit spam 5c5c example")
    carol.wait_for_line(error("you are muted"), start=start)
    start = carol.mark()
    carol.send("/nick spam5c5c")
    carol.wait_for_line(error("you are muted"), start=start)
    start = carol.mark()
    carol.send("/back")
    carol.wait_for_line(notice("You are back"), start=start)

    # bob's /names is answered after anything the server sent him about carol's commands; it
    # lists her under her nick, with no away text.
    start = bob.mark()
    bob.send("/names")
    bob.wait_for_line(notice("Members of #general:"), start=start)
    bob.wait_for_line(re.compile(rf"^{CLOCK} \*\*\*   carol SHA256:\S+$"), start=start)
    for text in ("5c5c", "spam", "is now known as"):
        assert bob.find(text) is None, bob.describe()

    # A runtime operator cannot silence or disconnect a configured one.
    alice.send("/op bob")
    bob.wait_for_line(notice("alice made you an operator"))
    for name in ("mute", "kick"):
        start = bob.mark()
        bob.send(f"/{name} alice")
        bob.wait_for_line(error("alice is an operator in the server's configuration"), start=start)
    barrier(alice)
    assert alice.find("you were muted") is None and alice.running, alice.describe()
    quit_cleanly(alice, bob, carol)
    assert stop(server) == 0


# ----- 6. allowlist -----


def test_allowlist_admits_listed_keys_only(harness: Harness) -> None:
    alice_home, bob_home = harness.home("alice"), harness.home("bob")
    alice_fp, bob_fp = harness.key_fingerprint(alice_home), harness.key_fingerprint(bob_home)
    server = harness.server(extra=("--allowlist-only", "--allow", alice_fp))
    alice = harness.joined_client("alice", server.port, home=alice_home)

    start = alice.mark()
    bob = harness.client("bob", server.port, home=bob_home)
    refused(bob, "this server admits listed keys only", bob_fp)
    assert bob.find("You are bob in") is None, bob.describe()
    # An unlisted key leaves no trace: nobody saw it join, and it claimed no nick.
    alice.send("/whois bob")
    alice.wait_for_line(error("no such nick: bob"), start=start)
    assert alice.find("bob joined", start=start) is None, alice.describe()
    quit_cleanly(alice)


# ----- 7. MOTD and configuration -----


def test_motd_file_and_config_file(harness: Harness) -> None:
    motd_file = harness.root / "motd.txt"
    motd_file.write_text("Welcome to the test server\nBe nice to each other\n", encoding="utf-8")
    server = harness.server(name="motd", extra=("--motd-file", str(motd_file)))
    alice = harness.joined_client("alice", server.port)
    lines = alice.snapshot()
    welcome = lines.index(alice.wait_for_line(notice("Welcome to tlschat, alice")))
    first = lines.index(alice.wait_for_line(notice("Welcome to the test server")))
    second = lines.index(alice.wait_for_line(notice("Be nice to each other")))
    assert welcome < first < second, alice.describe()
    quit_cleanly(alice)
    assert stop(server) == 0

    config = harness.root / "server.toml"
    config.write_text('motd = "Configured by TOML"\nhistory = 1\n', encoding="utf-8")
    server = harness.server(name="configured", extra=("--config", str(config)))
    alice = harness.joined_client("alice", server.port)
    alice.wait_for_line(notice("Configured by TOML"))
    bob = harness.joined_client("bob", server.port)
    alice.wait_for_line(notice("bob joined #general"))
    alice.send("older 1c1c")
    alice.send("newest 2d2d")
    bob.wait_for_line(said("alice", "newest 2d2d"))
    carol = harness.joined_client("carol", server.port)
    carol.wait_for_line(notice("Configured by TOML"))
    history_lines(carol, "#general", ["newest 2d2d"])
    assert carol.find("older 1c1c") is None, carol.describe()
    quit_cleanly(alice, bob, carol)
    assert stop(server) == 0

    bad_configs = {
        "unknown.toml": ('motd = "hi"\nbogus = 1\n', "unknown settings bogus"),
        "wrong-type.toml": ('history = "lots"\n', "history has the wrong type"),
    }
    for file_name, (text, reason) in bad_configs.items():
        path = harness.root / file_name
        path.write_text(text, encoding="utf-8")
        bad: Process = harness.start(
            file_name,
            *("server", "--config", str(path), "--port", "0"),
            *("--data-dir", str(harness.root / "never-used")),
        )
        assert bad.wait_exit() == 2, bad.describe()
        line = bad.wait_for_line("[!] Bad configuration: ", stream="stderr")
        assert reason in line, bad.describe()
        assert bad.find("[LISTENING]") is None, bad.describe()


# ----- 8. flood control and the length limit -----


def test_a_paste_past_the_burst_is_paced_and_arrives_whole(harness: Harness) -> None:
    server = harness.server(extra=("--rate", "1", "--burst", "3"))
    alice = harness.joined_client("alice", server.port)
    bob = harness.joined_client("bob", server.port)
    alice.wait_for_line(notice("bob joined #general"))

    texts = [f"pasted line {n} {n}{n}{n}{n}" for n in range(1, 7)]
    start = alice.mark()
    alice.send("\n".join(texts))  # one write: a paste, twice the burst
    # The client keeps to the server's pace (announced in its welcome): nothing is refused.
    for text in texts:
        bob.wait_for_line(said("alice", text))
    # A command typed after the paste keeps its place behind it.
    alice.send("/topic #general after the paste")
    bob.wait_for_line(notice("alice set the topic of #general: after the paste"))
    delivered = [text for text in texts if bob.find(text)]
    assert delivered == texts, bob.describe()
    assert alice.find(" !!! ", start=start) is None, alice.describe()
    quit_cleanly(alice, bob)


def test_max_message_bytes_refuses_longer_messages(harness: Harness) -> None:
    server = harness.server(extra=("--max-message-bytes", "100"))
    alice = harness.joined_client("alice", server.port)
    bob = harness.joined_client("bob", server.port)
    alice.wait_for_line(notice("bob joined #general"))

    for refused_text in ("x" * 101, "é" * 50 + "x"):  # 101 bytes of UTF-8 each
        start = alice.mark()
        alice.send(refused_text)
        alice.wait_for_line(error("message rejected: longer than 100 bytes"), start=start)
    for allowed in ("y" * 100, "é" * 50):  # exactly 100 bytes each
        alice.send(allowed)
        bob.wait_for_line(said("alice", allowed))
    assert bob.find("x" * 101) is None and bob.find("é" * 50 + "x") is None, bob.describe()
    quit_cleanly(alice, bob, undelivered=(alice,))
