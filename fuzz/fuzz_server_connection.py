"""Fuzz ServerConnection: fresh and fed arbitrary bytes, and after a real ClientHello.

Run: ``python -m fuzz.fuzz_server_connection [libFuzzer options] [corpus dirs]`` (or
``make fuzz``). The second server has answered a valid ClientHello, so the fuzzer starts inside
the encrypted handshake; the corpus holds the real client flight that completes it. A third
server gets every record re-sealed under its current read key once it has one (see
``common.seal_for``), so mutated handshake messages get past the AEAD to the state machine.
"""

from __future__ import annotations

from fuzz.common import CLIENT_HELLO, deliver, fuzz_main, new_server, run_connection
from tlschat.protocol import State


def check(data: bytes) -> None:
    run_connection(new_server(), data)
    run_connection(new_server(), data, sealed=True)
    server = new_server()
    assert deliver(server, CLIENT_HELLO)
    assert server.state is State.WAIT_CLIENT_CERTIFICATE
    server.data_to_send()
    run_connection(server, data)


def main() -> None:
    fuzz_main(__spec__.name, check)


if __name__ == "__main__":
    main()
