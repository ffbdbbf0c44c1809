"""The seed's `python server.py` and `python client.py` still work, as thin shims over the CLI."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LISTENING = re.compile(r"^\[LISTENING\] Server on 127\.0\.0\.1:(\d+)$")


def test_python_server_py_and_client_py(tmp_path: Path) -> None:
    server = subprocess.Popen(
        [sys.executable, "server.py", "--port", "0", "--data-dir", str(tmp_path / "data")],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert server.stdout is not None
        port = ""
        for line in server.stdout:
            match = LISTENING.match(line.strip())
            if match:
                port = match.group(1)
                break
        assert port, "the server never printed its [LISTENING] line"
        home = tmp_path / "home"
        client = subprocess.run(
            [
                sys.executable,
                "client.py",
                "--host",
                "127.0.0.1",
                "--port",
                port,
                "--plain",
                "--nick",
                "seed",
                "--home",
                str(home),
                "--key-type",
                "ed25519",
            ],
            cwd=ROOT,
            input="hello from the seed's client.py\n",
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert client.returncode == 0, client.stderr
        assert "[TLS] Step 1: ClientHello sent" in client.stderr
        assert "[TLS] ✅ Handshake complete — Secure channel established" in client.stderr
        assert re.search(r"\*\*\* You are seed in #general", client.stdout)
    finally:
        server.send_signal(signal.SIGINT)
        output, _ = server.communicate(timeout=15)
    assert server.returncode == 0
    assert "[TLS] Step 6: Server Finished sent ✅" in output
    assert "Traceback" not in output
