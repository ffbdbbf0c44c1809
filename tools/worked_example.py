"""The worked example of docs/PROTOCOL.md: one full connection from fixed inputs, every byte shown.

A client and a server from :mod:`tlschat.protocol` run a handshake, exchange one application
message each way (the chat ``hello`` and ``welcome`` frames) and close with close_notify. Every
input is fixed: the entropy each side draws, the test-only keys and the certificate stored in
``tests/data/``. Only the server's RSA-PSS signature is randomized, so it is an input too: the
script reuses the one recorded in docs/PROTOCOL.md, and then reproduces every other byte exactly.

The wire is then decoded a second time, independently of the connections: the key schedule is
recomputed from the two X25519 private keys, every protected record is opened with the keys derived
here, and each signature and Finished value is checked against the transcript rebuilt from the
wire. The result is a markdown section printed, or written between the markers in PROTOCOL.md.

    python -m tools.worked_example             # print the section
    python -m tools.worked_example --write     # rewrite the section in docs/PROTOCOL.md
    python -m tools.worked_example --resign    # sign afresh instead of reusing the recorded one
    python -m tools.worked_example --make-fixtures   # create the tests/data keys (once)
    python -m tools.worked_example --make-e2e-fixtures   # the end-to-end inputs (once)
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tlschat.chat.envelope import SignedMessage, signed_bytes
from tlschat.chat.frames import encode_frame, say_frame
from tlschat.chat.server.events import ChatServer
from tlschat.chat.server.model import ChatSettings
from tlschat.protocol import (
    ClientConnection,
    ConnectionClosed,
    ConnectionConfig,
    DataReceived,
    HandshakeComplete,
    IdentityKey,
    PeerIdentity,
    ServerAuthenticated,
    ServerConnection,
)
from tlschat.protocol.alerts import alert_name
from tlschat.protocol.connection import (
    CLIENT_SIGNATURE_CONTEXT,
    SERVER_SIGNATURE_CONTEXT,
    signed_content,
)
from tlschat.protocol.keyschedule import (
    EMPTY_HASH,
    derive_secret,
    finished_key,
    finished_verify_data,
    hkdf_extract,
    next_traffic_secret,
    traffic_keys,
)
from tlschat.protocol.messages import HandshakeType
from tlschat.store import SQLiteStore
from tools.worked_example_e2e import e2e_block
from tools.worked_example_e2e import make_fixtures as make_e2e_fixtures

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = ROOT / "tests" / "data"
DOC_PATH = ROOT / "docs" / "PROTOCOL.md"
SERVER_KEY_FILE = DATA_DIR / "test_only_server_rsa2048_key.pem"
CLIENT_KEY_FILE = DATA_DIR / "test_only_client_ed25519_key.pem"
SERVER_CERT_FILE = DATA_DIR / "test_only_server_cert.der"

BEGIN_MARKER = "<!-- worked-example:begin -->"
END_MARKER = "<!-- worked-example:end -->"
SIGNATURE_NAME = "server_signature"
WRAP = 64  # hex characters per line
INDENT = "  "

# Each side's entropy is a counting byte stream: the client's starts at 0x00, the server's at
# 0x80. A connection draws 32 bytes for its X25519 private key, then 32 for its random.
CLIENT_ENTROPY_START = 0x00
SERVER_ENTROPY_START = 0x80
NOW = 0.0
CLIENT_NICK = "alice"
CLIENT_ADDRESS = "127.0.0.1:50000"
# The signed chat message shown at the end (not sent on the wire in this example).
ENVELOPE_COUNTER = 1_767_225_600_000_000  # microseconds, as ChatClient.compose picks them
ENVELOPE_TIMESTAMP_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
ENVELOPE_TARGET = "#general"
ENVELOPE_BODY = "hello, world"

RECORD_TYPES = {21: "alert", 22: "handshake", 23: "application_data"}


class FixedEntropy:
    """A deterministic stand-in for os.urandom: the bytes start, start+1, ... (mod 256)."""

    def __init__(self, start: int) -> None:
        self._next = start

    def __call__(self, n: int) -> bytes:
        out = bytes((self._next + i) % 256 for i in range(n))
        self._next = (self._next + n) % 256
        return out


class RecordedSignatureKey(IdentityKey):
    """An IdentityKey whose sign() returns a recorded signature when one is given.

    RSA-PSS signatures are randomized; replaying the recorded one makes the example reproducible.
    Every message signed is kept in ``signed`` so the caller can check what was signed.
    """

    def __init__(self, private_key: rsa.RSAPrivateKey, signature: bytes | None = None) -> None:
        super().__init__(private_key)
        self.recorded = signature
        self.signed: list[bytes] = []
        self.signatures: list[bytes] = []

    def sign(self, data: bytes) -> bytes:
        signature = self.recorded if self.recorded is not None else super().sign(data)
        self.signed.append(data)
        self.signatures.append(signature)
        return signature


# ----- fixtures --------------------------------------------------------------------------------


def make_fixtures() -> list[Path]:
    """Create the test-only keys and certificate in tests/data; refuse to overwrite any."""
    existing = [p for p in (SERVER_KEY_FILE, CLIENT_KEY_FILE, SERVER_CERT_FILE) if p.exists()]
    if existing:
        raise SystemExit(f"refusing to overwrite {', '.join(map(str, existing))}")
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    server = IdentityKey.generate("rsa", 2048)
    client = IdentityKey.generate("ed25519")
    issued = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    SERVER_KEY_FILE.write_bytes(server.to_pem())
    CLIENT_KEY_FILE.write_bytes(client.to_pem())
    SERVER_CERT_FILE.write_bytes(server.self_signed_certificate("tlschat", issued))
    return [SERVER_KEY_FILE, CLIENT_KEY_FILE, SERVER_CERT_FILE]


def load_server_private_key() -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(SERVER_KEY_FILE.read_bytes(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise TypeError(f"{SERVER_KEY_FILE} is not an RSA key")
    return key


def load_client_private_key() -> ed25519.Ed25519PrivateKey:
    key = serialization.load_pem_private_key(CLIENT_KEY_FILE.read_bytes(), password=None)
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise TypeError(f"{CLIENT_KEY_FILE} is not an Ed25519 key")
    return key


# ----- running the connection ------------------------------------------------------------------


@dataclass
class Flight:
    """Bytes one side wrote in one go."""

    sender: str  # "client" or "server"
    data: bytes


@dataclass
class Run:
    flights: list[Flight]
    client_private: bytes
    client_random: bytes
    server_private: bytes
    server_random: bytes
    server_key: RecordedSignatureKey
    client_key: IdentityKey
    certificate: bytes
    hello: bytes
    welcome: bytes


def run_connection(server_signature: bytes | None) -> Run:
    """Drive a real ClientConnection and ServerConnection through the whole example."""
    server_key = RecordedSignatureKey(load_server_private_key(), server_signature)
    client_key = IdentityKey(load_client_private_key())
    certificate = SERVER_CERT_FILE.read_bytes()
    client_entropy = FixedEntropy(CLIENT_ENTROPY_START)
    server_entropy = FixedEntropy(SERVER_ENTROPY_START)
    # What each connection will draw: the X25519 private key first, then the random.
    preview_c, preview_s = FixedEntropy(CLIENT_ENTROPY_START), FixedEntropy(SERVER_ENTROPY_START)
    client_private, client_random = preview_c(32), preview_c(32)
    server_private, server_random = preview_s(32), preview_s(32)

    server = ServerConnection(
        ConnectionConfig(identity=server_key, certificate_der=certificate, entropy=server_entropy),
        now=NOW,
    )
    client = ClientConnection(
        ConnectionConfig(identity=client_key, entropy=client_entropy), now=NOW
    )
    flights: list[Flight] = []

    def from_client() -> bytes:
        data = client.data_to_send()
        flights.append(Flight("client", data))
        return data

    def from_server() -> bytes:
        data = server.data_to_send()
        flights.append(Flight("server", data))
        return data

    client.start_handshake()
    server.receive_data(from_client())
    events = client.receive_data(from_server())
    if not any(isinstance(e, ServerAuthenticated) for e in events):
        raise AssertionError("the client did not authenticate the server")
    client.trust_server()
    events = server.receive_data(from_client())
    complete = [e for e in events if isinstance(e, HandshakeComplete)]
    if not complete:
        raise AssertionError("the server did not complete the handshake")
    events = client.receive_data(from_server())
    if not any(isinstance(e, HandshakeComplete) for e in events):
        raise AssertionError("the client did not complete the handshake")

    network = IdentityKey(load_server_private_key()).fingerprint
    chat = ChatServer(ChatSettings(), SQLiteStore(":memory:"), network=network)
    chat.connect(1, complete[0].peer, CLIENT_ADDRESS, NOW)
    hello = encode_frame({"type": "hello", "nick": CLIENT_NICK})
    client.send_data(hello)
    received = server.receive_data(from_client())
    if received != [DataReceived(hello)]:
        raise AssertionError(f"server received {received}")
    outgoing = chat.receive(1, {"type": "hello", "nick": CLIENT_NICK}, NOW)
    welcome = encode_frame(outgoing[0][1])
    server.send_data(welcome)
    received = client.receive_data(from_server())
    if received != [DataReceived(welcome)]:
        raise AssertionError(f"client received {received}")

    client.close()
    if server.receive_data(from_client()) != [ConnectionClosed()]:
        raise AssertionError("the server did not see close_notify")
    if client.receive_data(from_server()) != [ConnectionClosed()]:
        raise AssertionError("the client did not see the server's close_notify")
    return Run(
        flights,
        client_private,
        client_random,
        server_private,
        server_random,
        server_key,
        client_key,
        certificate,
        hello,
        welcome,
    )


# ----- decoding the wire independently ---------------------------------------------------------


@dataclass
class Record:
    sender: str
    raw: bytes
    label: str
    content: bytes  # the plaintext content (for a protected record: inner plaintext minus type)
    content_type: int
    keys: str = ""  # which traffic secret protected it; "" for a plaintext record
    sequence: int = 0
    nonce: bytes = b""


@dataclass
class Direction:
    """The read side of one direction, as an independent receiver would keep it."""

    name: str = ""
    key: bytes = b""
    iv: bytes = b""
    sequence: int = 0

    def install(self, name: str, secret: bytes) -> None:
        keys = traffic_keys(secret, 32, 12)
        self.name, self.key, self.iv, self.sequence = name, keys.key, keys.iv, 0

    def nonce(self) -> bytes:
        return bytes(a ^ b for a, b in zip(self.iv, self.sequence.to_bytes(12, "big"), strict=True))


@dataclass
class Values:
    """Every intermediate value, in the order the document lists them."""

    items: list[tuple[str, str, bytes]] = field(default_factory=list)
    by_name: dict[str, bytes] = field(default_factory=dict)

    def add(self, name: str, note: str, value: bytes) -> bytes:
        if name in self.by_name:
            raise AssertionError(f"value {name} listed twice")
        self.items.append((name, note, value))
        self.by_name[name] = value
        return value


def split_records(data: bytes) -> Iterator[tuple[bytes, bytes]]:
    while data:
        length = int.from_bytes(data[3:5], "big")
        yield data[:5], data[5 : 5 + length]
        data = data[5 + length :]


def check(condition: bool, what: str) -> None:
    if not condition:
        raise AssertionError(what)


def decode(run: Run) -> tuple[list[Record], Values]:
    """Open every record with keys derived here and rebuild the transcript from the wire."""
    values = Values()
    transcript = b""
    hashes_at: dict[str, bytes] = {}
    records: list[Record] = []
    read = {"client": Direction(), "server": Direction()}
    secrets: dict[str, bytes] = {}

    client_x = X25519PrivateKey.from_private_bytes(run.client_private)
    server_x = X25519PrivateKey.from_private_bytes(run.server_private)
    shared = client_x.exchange(server_x.public_key())
    check(shared == server_x.exchange(client_x.public_key()), "X25519 disagrees")

    for flight in run.flights:
        for header, fragment in split_records(flight.data):
            keys = read[flight.sender]
            if not keys.name:
                content_type, content = header[0], fragment
                record = Record(flight.sender, header + fragment, "", content, content_type)
            else:
                check(header[0] == 23, "protected record with an outer type other than 23")
                nonce = keys.nonce()
                inner = AESGCM(keys.key).decrypt(nonce, fragment, header)
                content_type, content = inner[-1], inner[:-1]
                record = Record(
                    flight.sender,
                    header + fragment,
                    "",
                    content,
                    content_type,
                    keys.name,
                    keys.sequence,
                    nonce,
                )
                keys.sequence += 1
            records.append(record)
            if content_type == 21:
                level = {1: "warning", 2: "fatal"}[content[0]]
                record.label = f"Alert {alert_name(content[1])} ({level})"
                continue
            if content_type == 23:
                frame = "hello" if flight.sender == "client" else "welcome"
                record.label = f"Application message (`{frame}` frame)"
                continue
            check(content_type == 22, f"unexpected content type {content_type}")
            msg_type = content[0]
            check(len(content) == 4 + int.from_bytes(content[1:4], "big"), "one message a record")
            name = HandshakeType(msg_type).name
            record.label = {
                "client_hello": "ClientHello",
                "server_hello": "ServerHello",
                "certificate": f"{flight.sender.capitalize()} Certificate",
                "certificate_verify": f"{flight.sender.capitalize()} CertificateVerify",
                "finished": f"{flight.sender.capitalize()} Finished",
            }[name]
            before = hashlib.sha256(transcript).digest()
            transcript += content
            after = hashlib.sha256(transcript).digest()
            if name == "server_hello":
                hashes_at["ch_sh"] = after
                early = hkdf_extract(b"", bytes(32))
                derived_early = derive_secret(early, b"derived", EMPTY_HASH)
                handshake = hkdf_extract(derived_early, shared)
                derived_hs = derive_secret(handshake, b"derived", EMPTY_HASH)
                master = hkdf_extract(derived_hs, bytes(32))
                secrets.update(early=early, handshake=handshake, master=master)
                secrets["derived_early"], secrets["derived_hs"] = derived_early, derived_hs
                secrets["c_hs"] = derive_secret(handshake, b"c hs traffic", after)
                secrets["s_hs"] = derive_secret(handshake, b"s hs traffic", after)
                read["client"].install("client_handshake_traffic_secret", secrets["c_hs"])
                read["server"].install("server_handshake_traffic_secret", secrets["s_hs"])
            elif name == "certificate" and flight.sender == "server":
                hashes_at["ch_scert"] = after
            elif name == "certificate_verify":
                algorithm = int.from_bytes(content[4:6], "big")
                signature = content[8:]
                check(int.from_bytes(content[6:8], "big") == len(signature), "signature length")
                if flight.sender == "server":
                    check(algorithm == 0x0804, "server scheme")
                    data = signed_content(SERVER_SIGNATURE_CONTEXT, before)
                    public = load_server_private_key().public_key()
                    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
                    public.verify(signature, data, pss, hashes.SHA256())
                    secrets["server_signed"], secrets["server_signature"] = data, signature
                else:
                    check(algorithm == 0x0807, "client scheme")
                    hashes_at["ch_ccert"] = before
                    data = signed_content(CLIENT_SIGNATURE_CONTEXT, before)
                    load_client_private_key().public_key().verify(signature, data)
                    secrets["client_signed"], secrets["client_signature"] = data, signature
                    hashes_at["ch_ccv"] = after
            elif name == "finished":
                secret = secrets["c_hs" if flight.sender == "client" else "s_hs"]
                expected = finished_verify_data(secret, before)
                check(content[4:] == expected, f"{flight.sender} Finished")
                if flight.sender == "client":
                    hashes_at["ch_cfin"] = after
                    c_ap = derive_secret(secrets["master"], b"c ap traffic", after)
                    s_ap = derive_secret(secrets["master"], b"s ap traffic", after)
                    secrets["c_ap"], secrets["s_ap"] = c_ap, s_ap
                    # The client writes under its application key right after its Finished.
                    read["client"].install("client_application_traffic_secret", c_ap)
                else:
                    # The server's Finished went under its handshake key; what follows does not.
                    read["server"].install("server_application_traffic_secret", s_ap)

    check(secrets["server_signed"] in run.server_key.signed, "the server signed something else")
    c_hs_keys, s_hs_keys = traffic_keys(secrets["c_hs"]), traffic_keys(secrets["s_hs"])
    c_ap_keys, s_ap_keys = traffic_keys(secrets["c_ap"]), traffic_keys(secrets["s_ap"])

    add = values.add
    add("client_x25519_private", "client entropy bytes 0..31", run.client_private)
    add("client_x25519_public", "", client_x.public_key().public_bytes_raw())
    add("client_random", "client entropy bytes 32..63", run.client_random)
    add("server_x25519_private", "server entropy bytes 0..31", run.server_private)
    add("server_x25519_public", "", server_x.public_key().public_bytes_raw())
    add("server_random", "server entropy bytes 32..63", run.server_random)
    add("shared_secret", "X25519(client private, server public)", shared)
    add("early_secret", "HKDF-Extract(salt=00*32, IKM=00*32)", secrets["early"])
    add("derived_early", 'Derive-Secret(early_secret, "derived", "")', secrets["derived_early"])
    add("handshake_secret", "HKDF-Extract(derived_early, shared_secret)", secrets["handshake"])
    add(
        "derived_handshake", 'Derive-Secret(handshake_secret, "derived", "")', secrets["derived_hs"]
    )
    add("master_secret", "HKDF-Extract(derived_handshake, 00*32)", secrets["master"])
    add("hash_ch_sh", "H(ClientHello || ServerHello)", hashes_at["ch_sh"])
    add("client_handshake_traffic_secret", '"c hs traffic", hash_ch_sh', secrets["c_hs"])
    add("server_handshake_traffic_secret", '"s hs traffic", hash_ch_sh', secrets["s_hs"])
    add("client_handshake_key", '"key", 32 bytes', c_hs_keys.key)
    add("client_handshake_iv", '"iv", 12 bytes', c_hs_keys.iv)
    add("server_handshake_key", "", s_hs_keys.key)
    add("server_handshake_iv", "", s_hs_keys.iv)
    add("hash_ch_scert", "H(ClientHello .. server Certificate)", hashes_at["ch_scert"])
    add(
        "server_signed_content",
        "64*0x20 || context || 00 || hash_ch_scert",
        secrets["server_signed"],
    )
    add(
        SIGNATURE_NAME,
        "RSA-PSS-SHA256, salt 32; an input, since PSS is randomized",
        secrets["server_signature"],
    )
    add("hash_ch_ccert", "H(ClientHello .. client Certificate)", hashes_at["ch_ccert"])
    add(
        "client_signed_content",
        "64*0x20 || context || 00 || hash_ch_ccert",
        secrets["client_signed"],
    )
    add("client_signature", "Ed25519 (deterministic)", secrets["client_signature"])
    add("hash_ch_ccv", "H(ClientHello .. client CertificateVerify)", hashes_at["ch_ccv"])
    add("client_finished_key", '"finished" from client hs secret', finished_key(secrets["c_hs"]))
    add(
        "client_verify_data",
        "HMAC(client_finished_key, hash_ch_ccv)",
        finished_verify_data(secrets["c_hs"], hashes_at["ch_ccv"]),
    )
    add("hash_ch_cfin", "H(ClientHello .. client Finished)", hashes_at["ch_cfin"])
    add("server_finished_key", '"finished" from server hs secret', finished_key(secrets["s_hs"]))
    add(
        "server_verify_data",
        "HMAC(server_finished_key, hash_ch_cfin)",
        finished_verify_data(secrets["s_hs"], hashes_at["ch_cfin"]),
    )
    add("client_application_traffic_secret", '"c ap traffic", hash_ch_cfin', secrets["c_ap"])
    add("server_application_traffic_secret", '"s ap traffic", hash_ch_cfin', secrets["s_ap"])
    add("client_application_key", "", c_ap_keys.key)
    add("client_application_iv", "", c_ap_keys.iv)
    add("server_application_key", "", s_ap_keys.key)
    add("server_application_iv", "", s_ap_keys.iv)
    add(
        "client_application_traffic_secret_1",
        '"traffic upd": after one KeyUpdate (not used here)',
        next_traffic_secret(secrets["c_ap"]),
    )
    return records, values


# ----- rendering -------------------------------------------------------------------------------


def wrap_hex(data: bytes, indent: str = INDENT) -> list[str]:
    text = data.hex()
    if not text:
        return [f"{indent}(empty)"]
    return [indent + text[i : i + WRAP] for i in range(0, len(text), WRAP)]


def value_block(items: list[tuple[str, str, bytes]]) -> list[str]:
    lines = ["```text"]
    for name, note, value in items:
        lines.append(f"{name}  ({len(value)} bytes{'; ' + note if note else ''})")
        lines += wrap_hex(value)
    lines.append("```")
    return lines


def hello_fields(content: bytes) -> list[tuple[str, bytes]]:
    """The fields of a ClientHello or ServerHello message, in wire order."""
    body = content[4:]
    fields: list[tuple[str, bytes]] = [("msg_type, length", content[:4])]
    if content[0] == HandshakeType.client_hello:
        fields.append(("random", body[:32]))
        pos = 32
        for name in ("versions", "cipher_suites", "signature_algorithms", "key_share"):
            end = pos + 1 + body[pos]
            fields.append((f"{name} (u8 length, value)", body[pos:end]))
            pos = end
    else:
        fields += [("version", body[:2]), ("random", body[2:34]), ("cipher_suite", body[34:36])]
        fields.append(("key_share (u8 length, value)", body[36:]))
    return fields


def record_block(index: int, record: Record) -> list[str]:
    arrow = "client → server" if record.sender == "client" else "server → client"
    keys = record.keys.replace("_traffic_secret", "")
    how = f"protected, {keys} keys, seq {record.sequence}" if keys else "plaintext record"
    lines = [f"#### {index}. {record.label} ({arrow}, {how})", "", "```text"]
    if not record.keys:
        lines.append("record header")
        lines += wrap_hex(record.raw[:5])
        for name, value in hello_fields(record.content):
            lines.append(name)
            lines += wrap_hex(value)
    else:
        lines.append("nonce (iv XOR seq)")
        lines += wrap_hex(record.nonce)
        type_name = RECORD_TYPES[record.content_type]
        lines.append(
            f"inner plaintext: content ({len(record.content)} bytes) || {type_name} (1 byte)"
        )
        lines += wrap_hex(record.content + bytes([record.content_type]))
        if record.content_type == 23:
            length = int.from_bytes(record.content[:3], "big")
            lines.append(f"  (content = u24 message length {length} || the {length}-byte frame)")
    lines.append(f"record on the wire ({len(record.raw)} bytes)")
    lines += wrap_hex(record.raw)
    lines.append("```")
    return lines


def envelope_block(client_key: IdentityKey, network: str) -> list[str]:
    message = SignedMessage.create(
        client_key,
        network,
        ENVELOPE_TARGET,
        ENVELOPE_COUNTER,
        ENVELOPE_TIMESTAMP_MS,
        ENVELOPE_BODY,
    )
    payload = signed_bytes(
        network,
        ENVELOPE_TARGET,
        client_key.fingerprint,
        ENVELOPE_COUNTER,
        ENVELOPE_TIMESTAMP_MS,
        ENVELOPE_BODY,
    )
    check(message.verify(PeerIdentity.from_spki(client_key.spki_der)), "envelope")
    lines = ["```text"]
    lines.append(f"signed_bytes ({len(payload)} bytes)")
    lines += wrap_hex(payload)
    lines.append(f"signature (Ed25519, {len(message.signature)} bytes)")
    lines += wrap_hex(message.signature)
    lines.append("```")
    lines += ["", "The `say` frame that carries it (one application message):", "", "```json"]
    lines.append(encode_frame(say_frame(message)).decode("utf-8"))
    lines.append("```")
    return lines


def render(run: Run, records: list[Record], values: Values) -> str:
    v = values.items
    names = [name for name, _, _ in v]

    def upto(last: str, first: str) -> list[tuple[str, str, bytes]]:
        return v[names.index(first) : names.index(last) + 1]

    fingerprint_server = IdentityKey(load_server_private_key()).fingerprint
    lines = [
        "",
        "Generated by `tools/worked_example.py`; `tests/test_worked_example.py` checks that this",
        "section is byte for byte what the script prints. Inputs: the test-only keys and",
        "certificate in `tests/data/` (never use them for anything else), each side's entropy a",
        "counting byte stream (client `00 01 02 …`, server `80 81 82 …`; a connection draws 32",
        "bytes for its X25519 private key, then 32 for its random), and the server's RSA-PSS",
        f"signature, which is randomized and so recorded as `{SIGNATURE_NAME}` below. The client",
        "offers the default suites and schemes; the suite chosen is 0x0001 (AES-256-GCM). All",
        "values are hex, 64 digits a line.",
        "",
        f"- server key fingerprint: `{fingerprint_server}`",
        f"- client key fingerprint: `{run.client_key.fingerprint}`",
        f"- client → server message: `{run.hello.decode()}`",
        f"- server → client message: `{run.welcome.decode()}`",
        "",
        "### Ephemeral keys and randoms",
        "",
        *value_block(upto("server_random", "client_x25519_private")),
        "",
        "### Key schedule, transcript hashes, signatures, Finished",
        "",
        *value_block(upto("client_application_traffic_secret_1", "shared_secret")),
        "",
        "### Records",
        "",
        "Each flight is one write; records are listed in the order sent.",
        "",
    ]
    for index, record in enumerate(records, start=1):
        lines += record_block(index, record)
        lines.append("")
    lines += [
        "### A signed chat message",
        "",
        f"The client's envelope for body `{ENVELOPE_BODY}` to `{ENVELOPE_TARGET}` on the network",
        "of the server key above (its fingerprint is the `network` field), counter",
        f"{ENVELOPE_COUNTER}, timestamp {ENVELOPE_TIMESTAMP_MS} ms (2026-01-01T00:00:00Z):",
        "",
        *envelope_block(run.client_key, fingerprint_server),
        "",
        *e2e_block(run.client_key, fingerprint_server),
        "",
    ]
    return "\n".join(lines)


def generate(server_signature: bytes | None) -> str:
    """The worked-example section (the text between the markers)."""
    run = run_connection(server_signature)
    records, values = decode(run)
    return render(run, records, values)


# ----- the document ----------------------------------------------------------------------------


def extract_section(document: str) -> str:
    start = document.index(BEGIN_MARKER) + len(BEGIN_MARKER)
    return document[start : document.index(END_MARKER, start)]


def replace_section(document: str, section: str) -> str:
    start = document.index(BEGIN_MARKER) + len(BEGIN_MARKER)
    end = document.index(END_MARKER, start)
    return document[:start] + section + document[end:]


def parse_values(section: str) -> dict[str, bytes]:
    """Named hex values of a section: a ``name  (N bytes...)`` line, then indented hex lines."""
    out: dict[str, bytes] = {}
    pattern = re.compile(r"^([a-z0-9_]+)  \((\d+) bytes[^\n]*\n((?:  [0-9a-f]+\n)+)", re.M)
    for match in pattern.finditer(section):
        value = bytes.fromhex("".join(match.group(3).split()))
        if len(value) != int(match.group(2)):
            raise ValueError(f"{match.group(1)}: {len(value)} bytes, header says {match.group(2)}")
        out[match.group(1)] = value
    return out


def recorded_signature(document: str) -> bytes | None:
    if BEGIN_MARKER not in document:
        return None
    return parse_values(extract_section(document)).get(SIGNATURE_NAME)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--write", action="store_true", help="rewrite the section in PROTOCOL.md")
    parser.add_argument("--resign", action="store_true", help="ignore the recorded signature")
    parser.add_argument("--signature", help="the server signature to use, in hex")
    parser.add_argument("--make-fixtures", action="store_true", help="create tests/data keys")
    parser.add_argument(
        "--make-e2e-fixtures", action="store_true", help="create the end-to-end part's inputs"
    )
    args = parser.parse_args(argv)
    if args.make_fixtures or args.make_e2e_fixtures:
        for path in make_e2e_fixtures() if args.make_e2e_fixtures else make_fixtures():
            print(f"created {path}")
        return 0
    document = DOC_PATH.read_text(encoding="utf-8") if DOC_PATH.exists() else ""
    signature: bytes | None
    if args.signature:
        signature = bytes.fromhex(args.signature)
    elif args.resign:
        signature = None
    else:
        signature = recorded_signature(document)
    section = generate(signature)
    if args.write:
        DOC_PATH.write_text(replace_section(document, section), encoding="utf-8")
        print(f"rewrote the worked example in {DOC_PATH}", file=sys.stderr)
    else:
        sys.stdout.write(section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
