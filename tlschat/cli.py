"""`tlschat server|client|invite|cluster-import|keygen|fingerprint`."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import re
import shlex
import sys
from pathlib import Path

from . import __version__
from .chat.invitation import InvitationError, parse_invitation
from .cli_flags import (
    allow_problem,
    client_flag_problem,
    fingerprint_flag_problem,
    server_flag_problem,
)
from .cluster_import_command import add_cluster_import_parser, run_cluster_import
from .invite_command import add_invite_parser, run_invite
from .local_files import (
    IDENTITY_FILE,
    IDENTITY_FIX,
    SERVER_KEY_FIX,
    UnusableFile,
    existing_key,
    home_identity,
)
from .protocol.identity import KEY_TYPES, InsecureFileError

DEFAULT_PORT = 8443
AUTO_PLAIN = (
    "[*] Input is not a terminal: line mode, as with --plain "
    "(one message per input line; a new server's key is refused, not asked about)"
)


def default_home() -> Path:
    """TLSCHAT_HOME, else $XDG_CONFIG_HOME/tlschat, else ~/.config/tlschat."""
    if os.environ.get("TLSCHAT_HOME"):
        return Path(os.environ["TLSCHAT_HOME"])
    config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config) / "tlschat"


def default_nick() -> str:
    try:
        name = getpass.getuser()
    except (KeyError, OSError):
        return ""
    return re.sub(r"[^A-Za-z0-9_\-]", "", name)[:24]


def _add_server(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    server = commands.add_parser(
        "server",
        help="run the chat server",
        description="Every option may also be set in a TOML file given with --config; "
        "flags win over the file. The log (stdout) shows start and stop, warnings, errors and a "
        "summary of connections once a minute; -v adds each connection's lines, -vv each "
        "handshake's six steps, -vvv every refused connection alone; -q shows errors only.",
    )
    server.add_argument("--config", type=Path, help="TOML file of settings")
    server.add_argument("--host", help="address to listen on (127.0.0.1)")
    server.add_argument("--port", type=int, help=f"port, 0 picks a free one ({DEFAULT_PORT})")
    server.add_argument(
        "--web",
        metavar="HOST:PORT",
        help="also serve the web client (its files and a WebSocket at /ws) there (off)",
    )
    server.add_argument("--data-dir", type=Path, help="key, certificate and chat.db (data)")
    server.add_argument("--server-name", help="name shown to clients (tlschat)")
    server.add_argument("--motd", help="message of the day shown after joining")
    server.add_argument("--motd-file", type=Path, help="read the message of the day from a file")
    server.add_argument("--history", type=int, help="messages replayed on join (50)")
    server.add_argument(
        "--no-history", action="store_const", const=0, dest="no_history", help="replay nothing"
    )
    server.add_argument(
        "--operator", action="append", default=[], metavar="FP", help="an operator's fingerprint"
    )
    server.add_argument(
        "--allowlist-only", action="store_const", const=True, help="admit listed keys only"
    )
    server.add_argument(
        "--allow", action="append", default=[], metavar="FP", help="a key to admit (allowlist)"
    )
    server.add_argument(
        "--history-keep-per-room",
        type=int,
        metavar="N",
        help="messages kept per room, the newest (10000; 0: no bound)",
    )
    server.add_argument(
        "--history-max-age",
        metavar="AGE",
        help="delete messages older than this: 30d, 12h, 90m, 45s or seconds (30d; 0: never)",
    )
    server.add_argument(
        "--history-max-bytes",
        type=int,
        metavar="BYTES",
        help="delete the oldest messages while chat.db is larger (1073741824; 0: no bound)",
    )
    server.add_argument("--rate", type=float, help="messages per second per user (2)")
    server.add_argument("--burst", type=int, help="messages a user may send at once (10)")
    server.add_argument(
        "--max-message-bytes", type=int, help="longest chat message in UTF-8 bytes (4096)"
    )
    server.add_argument("--handshake-timeout", type=float, help="seconds a handshake may take (10)")
    server.add_argument("--max-connections", type=int, help="connections in all (10000)")
    server.add_argument(
        "--max-connections-per-ip", type=int, help="connections from one address (64)"
    )
    server.add_argument(
        "--max-connections-per-block",
        type=int,
        help="connections from one address block (256; blocks: see --block-prefix-v4/v6)",
    )
    server.add_argument(
        "--block-prefix-v4", type=int, help="prefix length of an IPv4 address block (24)"
    )
    server.add_argument(
        "--block-prefix-v6", type=int, help="prefix length of an IPv6 address block (64)"
    )
    server.add_argument("--max-sessions-per-key", type=int, help="sessions of one key at once (8)")
    server.add_argument(
        "--handshakes-per-block",
        type=float,
        help="new handshakes per second from one address block, after the burst (20)",
    )
    server.add_argument(
        "--handshake-burst", type=int, help="handshakes one address block may start at once (40)"
    )
    server.add_argument(
        "--handshake-rate",
        type=float,
        help="handshakes per second for the whole server, after the burst; "
        "the rest wait their turn, unread (400)",
    )
    server.add_argument(
        "--handshake-rate-burst", type=int, help="handshakes the server may start at once (20)"
    )
    server.add_argument(
        "--hello-timeout", type=float, help="seconds after the handshake to send hello (10)"
    )
    server.add_argument(
        "--presence-rate",
        type=float,
        help="join and leave notices per room per second, after the burst (5)",
    )
    server.add_argument(
        "--presence-burst", type=int, help="join and leave notices one room may send at once (10)"
    )
    server.add_argument(
        "--large-room",
        type=int,
        help="rooms of more keys are large: lazy member lists, quiet presence (1000)",
    )
    server.add_argument(
        "--max-unauthenticated",
        type=int,
        help="handshakes in progress; past it the oldest is dropped (256)",
    )
    server.add_argument("--idle-timeout", type=float, help="seconds of silence before a ping (300)")
    server.add_argument(
        "--ping-timeout", type=float, help="seconds to answer a ping before disconnect (60)"
    )
    server.add_argument(
        "--max-write-buffer",
        type=int,
        help="unsent bytes to one client before it is dropped as a slow reader (4 MiB)",
    )
    server.add_argument(
        "--max-total-write-buffer",
        type=int,
        help="unsent bytes to all clients; past it the slowest readers are dropped (32 MiB)",
    )
    server.add_argument(
        "--broker",
        metavar="URL",
        help="join a cluster through Redis, e.g. redis://127.0.0.1:6379/0 (default: alone, SQLite)",
    )
    server.add_argument(
        "--event-loop",
        choices=("auto", "asyncio", "uvloop"),
        help="asyncio (default), uvloop (pip install 'tlschat[uvloop]'), auto: uvloop if installed",
    )
    server.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="-v: each connection (from where, with which key, how it ended); -vv: and each "
        "handshake's six steps; -vvv: and every refused connection alone (debug)",
    )
    server.add_argument("-q", "--quiet", action="store_true", help="log errors only")


def _add_client(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    client = commands.add_parser("client", help="join a chat server")
    client.add_argument(
        "--host",
        action="append",
        metavar="HOST[:PORT][,...]",
        help="the server (localhost); several servers of one cluster: repeat it or separate by "
        "commas, tried in turn; known_hosts names them all by the first",
    )
    client.add_argument(
        "--port", type=int, help=f"port of a HOST given without one ({DEFAULT_PORT})"
    )
    client.add_argument("--nick", default=default_nick(), help="the nick to ask for")
    client.add_argument(
        "--plain",
        action="store_true",
        help="line mode: stdin in, stdout out (the default when stdin is not a terminal)",
    )
    client.add_argument(
        "--line",
        action="store_true",
        help="the interactive line prompt instead of the full-screen UI",
    )
    client.add_argument(
        "--no-bell",
        action="store_false",
        dest="bell",
        help="full-screen UI: no terminal bell on mentions and private messages",
    )
    client.add_argument("--json", action="store_true", help="with --plain: JSON lines out")
    client.add_argument("--pin", metavar="FINGERPRINT", help="trust only this server key")
    client.add_argument(
        "--invite",
        metavar="INVITATION",
        help="join with an invitation (tlschat-invite:…): it names the server and pins its key",
    )
    client.add_argument("--quiet", action="store_true", help="no handshake trace")
    client.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="the technical detail of connection failures, and every reconnect attempt",
    )
    client.add_argument(
        "--no-reconnect",
        action="store_false",
        dest="reconnect",
        help="exit when the connection is lost instead of reconnecting with backoff",
    )
    _add_home(client)
    _add_key_type(client)


def _add_home(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--home",
        type=Path,
        default=None,
        help="identity and known_hosts directory (default $TLSCHAT_HOME or ~/.config/tlschat)",
    )


def _add_key_type(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--key-type", choices=KEY_TYPES, default="rsa", help="type of a newly created identity"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tlschat", description="A small secure chat.")
    parser.add_argument("--version", action="version", version=f"tlschat {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    _add_server(commands)
    _add_client(commands)
    add_invite_parser(commands)
    add_cluster_import_parser(commands)
    keygen = commands.add_parser("keygen", help="create your identity key if you have none")
    _add_home(keygen)
    _add_key_type(keygen)
    fingerprint = commands.add_parser("fingerprint", help="print a key's fingerprint")
    _add_home(fingerprint)
    fingerprint.add_argument(
        "--data-dir", type=Path, help="print the server key's fingerprint from this data dir"
    )
    return parser


def _run_server(args: argparse.Namespace) -> int:
    from .server import logs
    from .server.app import serve
    from .server.config import ConfigError, event_loop_factory, load_settings
    from .server.reload import ConfigSource

    logs.configure(args.verbose, args.quiet)
    overrides = {
        "host": args.host,
        "port": args.port,
        "data_dir": args.data_dir,
        "server_name": args.server_name,
        "motd": args.motd,
        "motd_file": args.motd_file,
        "history": args.no_history if args.no_history is not None else args.history,
        "operators": args.operator,
        "allowlist_only": args.allowlist_only,
        "allowlist": args.allow,
        "rate": args.rate,
        "burst": args.burst,
        "max_message_bytes": args.max_message_bytes,
        "handshake_timeout": args.handshake_timeout,
        "max_connections": args.max_connections,
        "max_connections_per_ip": args.max_connections_per_ip,
        "max_connections_per_block": args.max_connections_per_block,
        "block_prefix_v4": args.block_prefix_v4,
        "block_prefix_v6": args.block_prefix_v6,
        "max_sessions_per_key": args.max_sessions_per_key,
        "handshakes_per_block": args.handshakes_per_block,
        "handshake_burst": args.handshake_burst,
        "handshake_rate": args.handshake_rate,
        "handshake_rate_burst": args.handshake_rate_burst,
        "hello_timeout": args.hello_timeout,
        "presence_rate": args.presence_rate,
        "presence_burst": args.presence_burst,
        "large_room": args.large_room,
        "max_unauthenticated": args.max_unauthenticated,
        "idle_timeout": args.idle_timeout,
        "ping_timeout": args.ping_timeout,
        "max_write_buffer": args.max_write_buffer,
        "max_total_write_buffer": args.max_total_write_buffer,
        "event_loop": args.event_loop,
        "broker": args.broker,
        "history_keep_per_room": args.history_keep_per_room,
        "history_max_age": args.history_max_age,
        "history_max_bytes": args.history_max_bytes,
        "web": args.web,
    }
    problem = server_flag_problem(args)
    if problem is not None:
        print(f"[!] {problem}", file=sys.stderr)
        return 2
    try:
        settings = load_settings(args.config, overrides)
    except ConfigError as error:
        print(f"[!] Bad configuration: {error}", file=sys.stderr)
        return 2
    problem = allow_problem(args, settings.allowlist_only)
    if problem is not None:
        print(f"[!] {problem}", file=sys.stderr)
        return 2
    try:
        loop_factory = event_loop_factory(settings.event_loop)
    except ConfigError as error:
        print(f"[!] Bad configuration: {error}", file=sys.stderr)
        return 2
    try:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            runner.run(serve(settings, ConfigSource(args.config, overrides)))
    except OSError as error:
        print(f"[!] Cannot start on {settings.host}:{settings.port}: {error}", file=sys.stderr)
        return 1
    return 0


def _run_client(args: argparse.Namespace) -> int:
    from .client.addresses import AddressError, ServerAddress, parse_addresses
    from .client.app import run_client
    from .client.settings import ClientSettings

    hosts = args.host or ["localhost"]
    try:
        servers = parse_addresses(hosts, DEFAULT_PORT if args.port is None else args.port)
    except AddressError as error:
        print(f"[!] Bad --host: {error}", file=sys.stderr)
        return 2
    stdin_terminal = sys.stdin.isatty()
    # Piped or redirected input is a script's: line mode, never the prompt (whose trust
    # question would take the first line as its answer).
    auto_plain = not (args.plain or args.line or stdin_terminal)
    problem = client_flag_problem(args, hosts, auto_plain)
    if problem is not None:
        print(f"[!] {problem}", file=sys.stderr)
        return 2
    if auto_plain:
        print(AUTO_PLAIN, file=sys.stderr)
    invitation = None
    if args.invite is not None:
        try:
            invitation = parse_invitation(args.invite)
        except InvitationError as error:
            print(f"[!] Bad --invite: {error}", file=sys.stderr)
            return 2
        servers = [ServerAddress(invitation.host, invitation.port)]
    settings = ClientSettings(
        home=args.home or default_home(),
        host=servers[0].host,
        port=servers[0].port,
        servers=tuple(servers),
        nick=args.nick,
        plain=args.plain or auto_plain,
        json=args.json,
        pin=args.pin,
        quiet=args.quiet,
        key_type=args.key_type,
        reconnect=args.reconnect,
        fullscreen=not (args.plain or args.line) and stdin_terminal and sys.stdout.isatty(),
        bell=args.bell,
        invitation=invitation,
        # Only --plain says to trust a new server on first use without a question.
        refuse_new_keys=not (args.plain or stdin_terminal),
        verbose=args.verbose,
    )
    try:
        return asyncio.run(run_client(settings))
    except KeyboardInterrupt:
        return 130


def _keygen(args: argparse.Namespace) -> int:
    home = args.home or default_home()
    key, created = home_identity(home, args.key_type)
    state = "Created" if created else "Already have"
    print(f"{state} identity {key.fingerprint} in {home / IDENTITY_FILE}")
    return 0


def _fingerprint(args: argparse.Namespace) -> int:
    problem = fingerprint_flag_problem(args)
    if problem is not None:
        print(f"[!] {problem}", file=sys.stderr)
        return 2
    if args.data_dir is not None:
        from .server.keys import KEY_FILE

        missing = (
            f"No server key in {args.data_dir}: the server makes one when it first starts "
            f"(tlschat server --data-dir {shlex.quote(str(args.data_dir))})"
        )
        key = existing_key(args.data_dir / KEY_FILE, missing, SERVER_KEY_FIX)
    else:
        home = args.home or default_home()
        keygen = "tlschat keygen"
        if args.home is not None:
            keygen += f" --home {shlex.quote(str(args.home))}"
        missing = f"No identity key in {home}: run `{keygen}` to make one"
        key = existing_key(home / IDENTITY_FILE, missing, IDENTITY_FIX)
    print(key.fingerprint)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    runners = {
        "server": _run_server,
        "client": _run_client,
        "keygen": _keygen,
        "fingerprint": _fingerprint,
        "invite": run_invite,
        "cluster-import": run_cluster_import,
    }
    try:
        return runners[args.command](args)
    # A key or known_hosts file others can read or change; a home, data directory or key file
    # that cannot be used: one line that says what to do.
    except (InsecureFileError, UnusableFile) as error:
        print(f"[!] {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
