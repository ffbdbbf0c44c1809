"""End to end: administration at run time with the real server and real ``--plain`` clients. The
server reloads its configuration file on SIGHUP and on an operator's /reload (a refused file
changes nothing), and operators /allow, /disallow and /release at run time, kept over a restart.
"""

from __future__ import annotations

import re
import signal
from pathlib import Path

from .harness import CLOCK, Harness, Server
from .test_chat_features_e2e import FALLBACK_NICK, error, notice, quit_cleanly, refused


def configured_server(harness: Harness, config: Path, text: str, name: str = "server") -> Server:
    config.write_text(text, encoding="utf-8")
    return harness.server(
        name=name, data_dir=harness.root / "data", extra=("--config", str(config))
    )


def test_sighup_and_reload_apply_a_new_file_and_refuse_a_broken_one(harness: Harness) -> None:
    alice_home = harness.home("alice")
    alice_fp = harness.key_fingerprint(alice_home)
    config = harness.root / "server.toml"
    server = configured_server(harness, config, 'motd = "Old rules"\n')
    alice = harness.joined_client("alice", server.port, home=alice_home)
    alice.wait_for_line(notice("Old rules"))
    start = alice.mark()
    alice.send("/reload")
    alice.wait_for_line(error("/reload is for operators"), start=start)

    # SIGHUP: an operator added and the MOTD changed, told setting by setting in the log.
    config.write_text(f'motd = "New rules"\noperators = ["{alice_fp}"]\n', encoding="utf-8")
    logged = server.mark()
    server.signal(signal.SIGHUP)
    server.wait_for_line(f"[CONFIG] SIGHUP: reloaded {config}: 2 settings changed", start=logged)
    server.wait_for_line("[CONFIG]   motd: 'Old rules' -> 'New rules'", start=logged)
    server.wait_for_line(f"[CONFIG]   operators: + {alice_fp}", start=logged)
    alice.wait_for_line(notice("you are an operator now (the server's configuration)"))
    bob = harness.joined_client("bob", server.port)
    bob.wait_for_line(notice("New rules"))
    assert bob.find("Old rules") is None, bob.describe()

    # A broken file is refused: the log says why, and the old settings stay in force.
    config.write_text('motd = "unterminated\n', encoding="utf-8")
    logged = server.mark()
    server.signal(signal.SIGHUP)
    line = server.wait_for_line(f"[CONFIG] SIGHUP: {config} refused: ", start=logged)
    assert line.endswith("; the old configuration stays in force"), server.describe()
    start = alice.mark()
    alice.send("/reload")  # alice is still an operator
    alice.wait_for_line(error(f"{config} refused: "), start=start)
    alice.wait_for_line(error("the old configuration stays in force"), start=start)
    carol = harness.joined_client("carol", server.port)
    carol.wait_for_line(notice("New rules"))

    # /reload tells the operator what changed, and what needs a restart.
    config.write_text(
        f'motd = "New rules"\noperators = ["{alice_fp}"]\nburst = 5\npresence_burst = 3\n',
        encoding="utf-8",
    )
    start = alice.mark()
    alice.send("/reload")
    alice.wait_for_line(notice(f"Reloaded {config}:"), start=start)
    alice.wait_for_line(re.compile(rf"^{CLOCK} \*\*\*   burst: 10 -> 5$"), start=start)
    alice.wait_for_line(
        "presence_burst: 10 -> 3: needs a restart (10 stays in force until then)", start=start
    )
    server.wait_for_line(f"[CONFIG] /reload by alice ({alice_fp}): reloaded {config}")
    quit_cleanly(alice, bob, carol)


def test_allow_disallow_and_release_at_run_time_survive_a_restart(harness: Harness) -> None:
    alice_home, bob_home = harness.home("alice"), harness.home("bob")
    alice_fp, bob_fp = harness.key_fingerprint(alice_home), harness.key_fingerprint(bob_home)
    config = harness.root / "server.toml"
    text = f'allowlist_only = true\noperators = ["{alice_fp}"]\n'
    server = configured_server(harness, config, text)
    alice = harness.joined_client("alice", server.port, home=alice_home)
    refused(harness.client("bob", server.port, home=bob_home), "admits listed keys only", bob_fp)

    # /allow: a new key connects under the allowlist.
    alice.send(f"/allow {bob_fp}")
    alice.wait_for_line(notice(f"allowed {bob_fp}"))
    bob = harness.joined_client("bob", server.port, home=bob_home)
    alice.wait_for_line(notice("bob joined #general"))

    # /release: bob's session gets a fallback nick; the nick is free for another key.
    start = alice.mark()
    alice.send("/release bob")
    line = alice.wait_for_line(
        f"*** released bob from {bob_fp}; its sessions are now ", start=start
    )
    fallback = line.rsplit(" ", 1)[-1]
    assert FALLBACK_NICK.match(fallback), alice.describe()
    bob.wait_for_line(notice(f"your nick bob was released by an operator; you are {fallback}"))
    dave_home = harness.home("dave")
    alice.send(f"/allow {harness.key_fingerprint(dave_home)}")
    alice.wait_for_line(notice(f"allowed {harness.key_fingerprint(dave_home)}"), start=start)
    dave = harness.joined_client("bob", server.port, home=dave_home)
    assert dave.nick == "bob", dave.describe()

    # /disallow of an online key: its session gets a bye.
    alice.send(f"/disallow {fallback}")
    alice.wait_for_line(notice(f"disallowed {fallback} ({bob_fp}); its sessions are disconnected"))
    refused(bob, "removed from this server's allowlist by alice")
    quit_cleanly(alice, dave)
    server.signal(signal.SIGTERM)
    assert server.wait_exit() == 0

    # After a restart: bob is still refused, dave (allowed at run time) still admitted and still
    # owns the nick bob.
    server = configured_server(harness, config, text, name="restarted")
    refused(harness.client("bob", server.port, home=bob_home), "admits listed keys only")
    dave = harness.joined_client("bob", server.port, home=dave_home)
    assert dave.nick == "bob", dave.describe()
    quit_cleanly(dave)
