"""`python server.py` as in the seed: same as `tlschat server`."""

import sys

from tlschat.cli import main

sys.exit(main(["server", *sys.argv[1:]]))
