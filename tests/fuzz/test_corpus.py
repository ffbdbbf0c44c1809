"""Replay every committed fuzz corpus file through its target's check() (no atheris needed).

A crash the fuzzer once found stays fixed: its minimised input lives in fuzz/corpus/<target>/.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path

import pytest

CORPUS = Path(__file__).resolve().parents[2] / "fuzz" / "corpus"
TARGETS = (
    "fuzz_record",
    "fuzz_handshake",
    "fuzz_server_connection",
    "fuzz_client_connection",
    "fuzz_frames",
)


def target_check(target: str) -> Callable[[bytes], None]:
    module = importlib.import_module(f"fuzz.{target}")
    check: Callable[[bytes], None] = module.check
    return check


CASES = [
    pytest.param(target, path, id=f"{target}/{path.name}")
    for target in TARGETS
    for path in sorted((CORPUS / target).iterdir())
]


def test_every_target_has_seeds() -> None:
    for target in TARGETS:
        assert any((CORPUS / target).iterdir()), target
    total = sum(path.stat().st_size for path in CORPUS.rglob("*") if path.is_file())
    assert total < 200_000, f"the committed corpus is {total} bytes"


# Fuzzed certificates are malformed by design; cryptography warns about some (a serial of zero).
@pytest.mark.filterwarnings("ignore::cryptography.utils.CryptographyDeprecationWarning")
@pytest.mark.parametrize(("target", "path"), CASES)
def test_corpus_file(target: str, path: Path) -> None:
    target_check(target)(path.read_bytes())


@pytest.mark.parametrize("target", TARGETS)
def test_targets_do_not_need_atheris(target: str) -> None:
    module = importlib.import_module(f"fuzz.{target}")
    assert "atheris" not in vars(module)
    module.check(b"")
    module.check(bytes(range(256)))


def test_seeds_reach_the_deep_states() -> None:
    """The recorded flights still complete a handshake: keys and entropy really are fixed."""
    from fuzz.common import CLIENT_HELLO, new_client, new_server, split_records
    from tlschat.protocol import DataReceived, State

    client = new_client()
    client.start_handshake()
    events = []
    for record in split_records(
        (CORPUS / "fuzz_client_connection/seed-whole-session").read_bytes()
    ):
        events += client.receive_data(record)
        if client.state is State.WAIT_TRUST:
            events += client.trust_server()
    assert DataReceived(b"hello from the server") in events
    assert client.state is State.CLOSED and client.error is None

    server = new_server()
    server.receive_data(CLIENT_HELLO)
    events = server.receive_data((CORPUS / "fuzz_server_connection/seed-after-hello").read_bytes())
    assert DataReceived(b"hello from the client") in events
    assert server.state is State.CLOSED and server.error is None
