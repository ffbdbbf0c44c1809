"""Start and stop the four servers as subprocesses on 127.0.0.1; read their CPU and RSS from /proc.

- ``tlschat``: ``python -m tlschat.cli server`` with its default settings except the limits a
  load test must lift (flood control, connection and handshake caps, the hello deadline, idle
  ping, the output budget for all clients); ``tlschat-uvloop``
  the same on uvloop (``--event-loop uvloop``);
- ``ssl`` and ``tcp``: :mod:`benchmarks.reference_relay`, the same line relay with and without TLS;
- ``ngircd``: Debian's ngircd with a config written here (TLS on its own port, no DNS or ident
  lookups, ``MaxPenaltyTime = 0`` and an operator so that clients can set user mode ``+F``).
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dh, rsa
from cryptography.x509.oid import NameOID

HOST = "127.0.0.1"
REPO = Path(__file__).resolve().parent.parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# tlschat's server on asyncio's loop, and on uvloop.
TLSCHAT_KINDS = ("tlschat", "tlschat-uvloop")
KINDS = (*TLSCHAT_KINDS, "ssl", "tcp", "ngircd")


def speaks_tlschat(kind: str) -> bool:
    return kind in TLSCHAT_KINDS


IRC_OPERATOR = ("bench", "benchpass")
IRC_CHANNEL = "#bench"
START_TIMEOUT = 30.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process (fields 14 and 15 of /proc/PID/stat)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
        data = handle.read()
    fields = data[data.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_bytes(pid: int) -> int:
    """Resident set size from /proc/PID/status (VmRSS)."""
    with open(f"/proc/{pid}/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def raise_file_limit(wanted: int = 65536) -> int:
    """Raise RLIMIT_NOFILE (the hard limit too, as root); children inherit it. The soft limit."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    for limit in (max(wanted, hard), hard):
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, limit), limit))
            break
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


# RFC 7919 ffdhe2048: p = 2^2048 - 2^1984 + (floor(2^1918 * e) + 560316) * 2^64 - 1, g = 2.
# ngircd built with GnuTLS generates DH parameters at start-up when it has none (slowly); TLS 1.3
# does not use them, so the benchmark hands it the standard group instead.
def _ffdhe2048_prime() -> int:
    precision = 1918 + 128
    total, term, k = 0, 1 << precision, 0
    while term:
        total += term
        k += 1
        term //= k
    floor_e = total >> 128
    return (1 << 2048) - (1 << 1984) + (floor_e + 560316) * (1 << 64) - 1


@dataclass
class TLSFiles:
    cert_pem: Path
    key_pem: Path
    dh_pem: Path


def make_tls_files(directory: Path) -> TLSFiles:
    """RSA-2048 key and self-signed certificate for 127.0.0.1 and localhost (ssl and ngircd)."""
    directory.mkdir(parents=True, exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(HOST))]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    files = TLSFiles(directory / "cert.pem", directory / "key.pem", directory / "dh.pem")
    files.cert_pem.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    files.key_pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    files.key_pem.chmod(0o600)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "FFDH is deprecated": ngircd only needs a DHFile
        parameters = dh.DHParameterNumbers(_ffdhe2048_prime(), 2).parameters()
    files.dh_pem.write_bytes(
        parameters.parameter_bytes(serialization.Encoding.PEM, serialization.ParameterFormat.PKCS3)
    )
    return files


def ngircd_path() -> str | None:
    return shutil.which("ngircd") or next(
        (p for p in ("/usr/sbin/ngircd", "/usr/local/sbin/ngircd") if os.path.exists(p)), None
    )


def install_ngircd() -> bool:
    """apt-get install ngircd when running as root and it is missing (only `make bench` asks)."""
    if ngircd_path():
        return True
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return False
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "ngircd"]):
        if subprocess.run(command, env=env, check=False).returncode != 0:
            return False
    # Debian starts the packaged service; the benchmark runs its own instance only.
    subprocess.run(["service", "ngircd", "stop"], check=False, capture_output=True)
    return ngircd_path() is not None


NGIRCD_CONFIG = """\
[Global]
    Name = bench.localhost
    Info = tlschat benchmark
    Listen = {host}
    Ports = {plain_port}
    MotdPhrase = "bench"
[Limits]
    MaxConnections = 0
    MaxConnectionsIP = 0
    MaxJoins = 0
    MaxNickLength = 16
    MaxPenaltyTime = 0
    PingTimeout = 600
    PongTimeout = 120
[Options]
    DNS = no
    Ident = no
    PAM = no
    RequireAuthPing = no
    ConnectIPv6 = no
[SSL]
    CertFile = {cert}
    KeyFile = {key}
    DHFile = {dh}
    CipherList = SECURE128:-VERS-ALL:+VERS-TLS1.3:-GROUP-ALL:+GROUP-X25519
    Ports = {tls_port}
[Operator]
    Name = {oper_name}
    Password = {oper_password}
"""


@dataclass
class Server:
    kind: str
    process: subprocess.Popen[bytes]
    port: int
    directory: Path
    log_path: Path
    fingerprint: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def ports(self) -> tuple[int, ...]:
        """Where clients connect: this one port (a cluster has several, see benchmarks.cluster)."""
        return (self.port,)

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pid)

    def cpu_by_process(self) -> dict[str, float]:
        """CPU seconds per process measured (one here; a cluster's servers and its Redis)."""
        return {self.kind: self.cpu_seconds()}

    def rss_bytes(self) -> int:
        return rss_bytes(self.pid)

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        stop_process(self.process)


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if it has not exited within 10 s."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_for_log(server: Server, pattern: str) -> re.Match[str]:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        text = server.log_path.read_text(errors="replace") if server.log_path.exists() else ""
        match = re.search(pattern, text)
        if match:
            return match
        if not server.alive():
            break
        time.sleep(0.05)
    server.stop()
    raise RuntimeError(f"{server.kind} did not start:\n{server.log_tail()}")


def _wait_for_port(server: Server, port: int) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if not server.alive():
            break
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=1):
            return
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"{server.kind} did not start:\n{server.log_tail()}")


def _spawn(command: list[str], directory: Path, log_path: Path) -> subprocess.Popen[bytes]:
    log = log_path.open("wb")
    try:
        return subprocess.Popen(
            command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    finally:
        log.close()


def start_server(
    kind: str,
    directory: Path,
    tls: TLSFiles,
    data_dir: Path | None = None,
    extra: tuple[str, ...] = (),
) -> Server:
    """Start one server in ``directory``; returns once it accepts connections.

    tlschat only: ``data_dir`` (default ``directory / "data"``) may be shared by several servers,
    and ``extra`` are more `tlschat server` flags (a cluster's ``--broker URL``).
    """
    directory.mkdir(parents=True, exist_ok=True)
    log_path = directory / f"{kind}.log"
    if speaks_tlschat(kind):
        command = [
            sys.executable,
            "-m",
            "tlschat.cli",
            "server",
            "--host",
            HOST,
            "--port",
            "0",
            "--data-dir",
            str(data_dir if data_dir is not None else directory / "data"),
            # Lifted for a load test: flood control, the per-address, per-block, per-key and total
            # connection caps and the handshake rate (every client comes from 127.0.0.1), the
            # hello deadline, the idle ping and the output budget for all clients (a saturated
            # fan-out queues a lot at once). Everything else is default.
            "--rate",
            "1000000",
            "--burst",
            "1000000",
            "--max-connections",
            "200000",
            "--max-connections-per-ip",
            "200000",
            "--max-connections-per-block",
            "200000",
            "--handshakes-per-block",
            "1000000",
            "--handshake-burst",
            "1000000",
            "--handshake-rate",
            "1000000",
            "--handshake-rate-burst",
            "1000000",
            "--max-sessions-per-key",
            "200000",
            "--hello-timeout",
            "60",
            "--max-unauthenticated",
            "100000",
            "--max-total-write-buffer",
            str(8 * 1024 * 1024 * 1024),
            "--handshake-timeout",
            "60",
            "--idle-timeout",
            "3600",
            "--event-loop",
            "uvloop" if kind == "tlschat-uvloop" else "asyncio",
            *extra,
        ]
        server = Server(kind, _spawn(command, directory, log_path), 0, directory, log_path)
        match = wait_for_log(server, r"\[LISTENING\] Server on [^\s:]+:(\d+)")
        server.port = int(match.group(1))
        found = re.search(r"Server fingerprint (\S+)", server.log_path.read_text())
        server.fingerprint = found.group(1) if found else ""
        return server
    if kind in ("ssl", "tcp"):
        command = [sys.executable, "-m", "benchmarks.reference_relay", "--port", "0"]
        if kind == "ssl":
            command += ["--cert", str(tls.cert_pem), "--key", str(tls.key_pem)]
        server = Server(kind, _spawn(command, directory, log_path), 0, directory, log_path)
        match = wait_for_log(server, r"LISTENING (\d+)")
        server.port = int(match.group(1))
        return server
    if kind == "ngircd":
        binary = ngircd_path()
        if binary is None:
            raise RuntimeError("ngircd is not installed")
        plain_port, tls_port = free_port(), free_port()
        config = directory / "ngircd.conf"
        config.write_text(
            NGIRCD_CONFIG.format(
                host=HOST,
                plain_port=plain_port,
                tls_port=tls_port,
                cert=tls.cert_pem,
                key=tls.key_pem,
                dh=tls.dh_pem,
                oper_name=IRC_OPERATOR[0],
                oper_password=IRC_OPERATOR[1],
            )
        )
        command = [binary, "-n", "-f", str(config)]
        server = Server(kind, _spawn(command, directory, log_path), tls_port, directory, log_path)
        server.extra["plain_port"] = str(plain_port)
        _wait_for_port(server, tls_port)
        return server
    raise ValueError(f"unknown server kind {kind!r}")
