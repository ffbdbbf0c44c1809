"""The reference relays: what a Python developer would write instead of tlschat.

One room; every line a client sends goes to every other connected client. asyncio streams, and
with ``--cert``/``--key`` the stdlib ``ssl`` module: ``SSLContext(PROTOCOL_TLS_SERVER)`` limited
to TLS 1.3 (OpenSSL's default groups put X25519 first, so that is the key exchange), RSA-2048
self-signed certificate. Without them, the same relay on plain TCP.

    python -m benchmarks.reference_relay --port 0 [--cert CERT.pem --key KEY.pem]
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import ssl

clients: set[asyncio.StreamWriter] = set()


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    clients.add(writer)
    try:
        while True:
            line = await reader.readline()
            if not line:
                break
            for other in clients:
                if other is not writer:
                    other.write(line)
            await writer.drain()
    except (ConnectionError, OSError, ssl.SSLError):
        pass
    finally:
        clients.discard(writer)
        writer.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--cert")
    parser.add_argument("--key")
    args = parser.parse_args()
    context = None
    if args.cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_3
        context.maximum_version = ssl.TLSVersion.TLSv1_3
        context.load_cert_chain(args.cert, args.key)
    server = await asyncio.start_server(handle, args.host, args.port, ssl=context, backlog=4096)
    print(f"LISTENING {server.sockets[0].getsockname()[1]}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with server:
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main())
