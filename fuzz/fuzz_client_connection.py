"""Fuzz ClientConnection after start_handshake(): arbitrary bytes as the server's.

Run: ``python -m fuzz.fuzz_client_connection [libFuzzer options] [corpus dirs]`` (or
``make fuzz``). Input is delivered record by record; when the client pauses for the trust
decision it trusts the server, so the recorded server flight in the corpus reaches CONNECTED.
A second client gets every record re-sealed under its current read key (``common.seal_for``),
so mutated certificates, signatures, Finished and KeyUpdates get past the AEAD.
"""

from __future__ import annotations

from fuzz.common import fuzz_main, new_client, run_connection


def check(data: bytes) -> None:
    for sealed in (False, True):
        client = new_client()
        client.start_handshake()
        client.data_to_send()
        run_connection(client, data, on_wait_trust=client.trust_server, sealed=sealed)


def main() -> None:
    fuzz_main(__spec__.name, check)


if __name__ == "__main__":
    main()
