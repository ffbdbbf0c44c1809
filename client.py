"""`python client.py` as in the seed: same as `tlschat client`."""

import sys

from tlschat.cli import main

sys.exit(main(["client", *sys.argv[1:]]))
