"""`python server.py` as in the seed: `tlschat server`, printing every handshake's six steps as
the seed did (`-vv`) unless a -q or -v flag says otherwise."""

import sys

from tlschat.cli import main

args = sys.argv[1:]
if not any(arg in ("-q", "--quiet", "--verbose") or arg.startswith("-v") for arg in args):
    args.insert(0, "-vv")
sys.exit(main(["server", *args]))
