"""Flags that do nothing in the mode chosen are refused, each with one line that says why: a flag
the user counts on and the program ignores is worse than an error."""

from __future__ import annotations

import argparse

from .client.addresses import takes_default_port


def client_flag_problem(
    args: argparse.Namespace, hosts: list[str], auto_plain: bool = False
) -> str | None:
    """Why ``tlschat client``'s flags do not go together, or None. ``hosts``: the --host values
    (already parsed without error); ``auto_plain``: line mode, as --plain, because stdin is not
    a terminal."""
    if args.plain and args.line:
        return "--plain and --line are two line modes: give one"
    if args.json and not (args.plain or auto_plain):
        return "--json does nothing without --plain (it makes --plain print JSON lines)"
    if not args.bell and (args.plain or args.line):
        return "--no-bell does nothing with --plain or --line (it is for the full-screen UI)"
    if not args.bell and auto_plain:
        return (
            "--no-bell does nothing when stdin is not a terminal (line mode, as --plain; "
            "it is for the full-screen UI)"
        )
    if args.invite is not None and (args.host or args.port is not None or args.pin):
        return "--invite names the server and pins its key: give no --host, --port or --pin with it"
    if args.port is not None and not takes_default_port(hosts):
        return "--port does nothing: every --host names its own port"
    return None


def server_flag_problem(args: argparse.Namespace) -> str | None:
    """Why ``tlschat server``'s flags do not go together, or None."""
    if args.history is not None and args.no_history is not None:
        return "--history and --no-history: give one"
    if args.motd is not None and args.motd_file is not None:
        return "--motd-file replaces --motd: give one"
    if args.quiet and args.verbose:
        return "-q (errors only) and -v (more detail): give one"
    return None


def allow_problem(args: argparse.Namespace, allowlist_only: bool) -> str | None:
    """Why ``--allow`` does nothing, or None. ``allowlist_only``: whether the settings (the
    flags over the --config file) admit listed keys only."""
    if args.allow and not allowlist_only:
        return (
            "--allow does nothing without --allowlist-only "
            "(or allowlist_only = true in the --config file)"
        )
    return None


def fingerprint_flag_problem(args: argparse.Namespace) -> str | None:
    """Why ``tlschat fingerprint``'s flags do not go together, or None."""
    if args.data_dir is not None and args.home is not None:
        return "--home does nothing with --data-dir (the server key's fingerprint): give one"
    return None
