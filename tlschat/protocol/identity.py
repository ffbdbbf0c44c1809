"""Long-term identity keys, self-signed certificates, fingerprints and known_hosts.

A fingerprint is ``SHA256:`` followed by the unpadded base64 of SHA-256 over the key's DER
SubjectPublicKeyInfo, the form OpenSSH prints. It names a key, not a certificate, so a renewed
certificate for the same key keeps its fingerprint.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import os
import shlex
import stat
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa
from cryptography.x509.oid import NameOID

from .alerts import AlertDescription, ProtocolError
from .ed25519_check import ed25519_verifies
from .messages import SignatureScheme

MIN_RSA_BITS = 2048
MAX_RSA_BITS = 8192
# The only RSA public exponent accepted: a peer's huge exponent would make every verification
# with its key cost as much as a hundred ordinary ones (and e = 3 invites old attacks).
RSA_PUBLIC_EXPONENT = 65537
DEFAULT_RSA_BITS = 2048
PSS_SALT_LENGTH = 32
KEY_TYPES = ("rsa", "ed25519")

PrivateKey = rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
PublicKey = rsa.RSAPublicKey | ed25519.Ed25519PublicKey


def fingerprint_of_spki(spki_der: bytes) -> str:
    digest = hashlib.sha256(spki_der).digest()
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


def public_key_der(key: PublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def fingerprints_equal(a: str, b: str) -> bool:
    # A peer's string may hold a lone surrogate (JSON "\ud800"): compare it, don't crash on it.
    return hmac.compare_digest(
        a.encode("utf-8", "surrogatepass"), b.encode("utf-8", "surrogatepass")
    )


def _pss() -> padding.PSS:
    return padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=PSS_SALT_LENGTH)


def scheme_for(key: PublicKey) -> SignatureScheme:
    if isinstance(key, rsa.RSAPublicKey):
        return SignatureScheme.rsa_pss_rsae_sha256
    return SignatureScheme.ed25519


def check_public_key(key: object) -> PublicKey:
    """Accept RSA of 2048..8192 bits with exponent 65537, or Ed25519; refuse anything else.

    Every key a peer presents passes here (``load_public_key_der``, ``PeerIdentity``), before
    anything is verified with it.
    """
    if isinstance(key, rsa.RSAPublicKey):
        if not MIN_RSA_BITS <= key.key_size <= MAX_RSA_BITS:
            raise ProtocolError(
                AlertDescription.insufficient_security, f"RSA key of {key.key_size} bits"
            )
        exponent = key.public_numbers().e
        if exponent != RSA_PUBLIC_EXPONENT:
            shown = (
                str(exponent) if exponent.bit_length() <= 32 else f"{exponent.bit_length()} bits"
            )
            raise ProtocolError(
                AlertDescription.insufficient_security,
                f"RSA public exponent {shown}, not {RSA_PUBLIC_EXPONENT}",
            )
        return key
    if isinstance(key, ed25519.Ed25519PublicKey):
        return key
    raise ProtocolError(
        AlertDescription.unsupported_certificate, f"unsupported key type {type(key).__name__}"
    )


def verify_signature(key: PublicKey, scheme: int, data: bytes, signature: bytes) -> None:
    """Raise decrypt_error unless ``signature`` is ``scheme``'s valid signature of ``data``."""
    try:
        if scheme == SignatureScheme.rsa_pss_rsae_sha256 and isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, data, _pss(), hashes.SHA256())
            return
        if scheme == SignatureScheme.ed25519 and isinstance(key, ed25519.Ed25519PublicKey):
            if not ed25519_verifies(key.public_bytes_raw(), data, signature):
                raise InvalidSignature
            return
    except InvalidSignature:
        raise ProtocolError(AlertDescription.decrypt_error, "signature does not verify") from None
    raise ProtocolError(
        AlertDescription.illegal_parameter,
        f"signature scheme {scheme:#06x} does not match the {type(key).__name__}",
    )


def load_public_key_der(spki_der: bytes) -> PublicKey:
    try:
        key = serialization.load_der_public_key(spki_der)
    except (ValueError, UnsupportedAlgorithm):
        raise ProtocolError(AlertDescription.bad_certificate, "unparseable public key") from None
    return check_public_key(key)


@dataclass(frozen=True)
class PeerIdentity:
    """What a handshake proved about the peer: its key and the fingerprint naming it."""

    public_key: PublicKey = field(repr=False)
    spki_der: bytes = field(repr=False)
    fingerprint: str
    certificate_der: bytes | None = field(default=None, repr=False)

    @classmethod
    def from_spki(cls, spki_der: bytes) -> PeerIdentity:
        key = load_public_key_der(spki_der)
        canonical = public_key_der(key)
        return cls(key, canonical, fingerprint_of_spki(canonical))

    @classmethod
    def from_certificate(cls, certificate_der: bytes) -> PeerIdentity:
        try:
            certificate = x509.load_der_x509_certificate(certificate_der)
            key = certificate.public_key()
        except (ValueError, UnsupportedAlgorithm, x509.InvalidVersion):  # not a ValueError
            raise ProtocolError(
                AlertDescription.bad_certificate, "unparseable X.509 certificate"
            ) from None
        checked = check_public_key(key)
        try:
            certificate.verify_directly_issued_by(certificate)
        except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
            raise ProtocolError(
                AlertDescription.bad_certificate, "certificate is not validly self-signed"
            ) from None
        spki = public_key_der(checked)
        return cls(checked, spki, fingerprint_of_spki(spki), certificate_der)


class IdentityKey:
    """A long-term private key (RSA-PSS-SHA256 or Ed25519) that signs for its owner."""

    def __init__(self, private_key: PrivateKey) -> None:
        if isinstance(private_key, rsa.RSAPrivateKey):
            check_public_key(private_key.public_key())
        self.private_key = private_key
        self.public_key: PublicKey = private_key.public_key()
        self.spki_der = public_key_der(self.public_key)
        self.fingerprint = fingerprint_of_spki(self.spki_der)
        self.scheme = scheme_for(self.public_key)

    @classmethod
    def generate(cls, key_type: str = "rsa", bits: int = DEFAULT_RSA_BITS) -> IdentityKey:
        if key_type == "rsa":
            return cls(rsa.generate_private_key(public_exponent=65537, key_size=bits))
        if key_type == "ed25519":
            return cls(ed25519.Ed25519PrivateKey.generate())
        raise ValueError(f"unknown key type {key_type!r}; choose one of {KEY_TYPES}")

    def sign(self, data: bytes) -> bytes:
        if isinstance(self.private_key, rsa.RSAPrivateKey):
            return self.private_key.sign(data, _pss(), hashes.SHA256())
        return self.private_key.sign(data)

    def to_pem(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    @classmethod
    def from_pem(cls, pem: bytes) -> IdentityKey:
        key = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(key, rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey):
            raise ValueError(f"unsupported private key type {type(key).__name__}")
        return cls(key)

    def save(self, path: Path) -> None:
        write_private_file(path, self.to_pem())

    @classmethod
    def load(cls, path: Path) -> IdentityKey:
        """The key in the file ``path``; InsecureFileError if others could read or change it,
        KeyFileError if it holds no private key this program can use."""
        check_private_file(path)
        pem = path.read_bytes()
        try:
            return cls.from_pem(pem)
        # TypeError: a key sealed with a passphrase; ProtocolError: a key too weak to use.
        except (ValueError, TypeError, UnsupportedAlgorithm, ProtocolError) as error:
            # cryptography ends its reason with a link to its FAQ: the first sentence is enough.
            raise KeyFileError(str(error).partition(". See ")[0]) from None

    @classmethod
    def load_or_create(
        cls, path: Path, key_type: str = "rsa", bits: int = DEFAULT_RSA_BITS
    ) -> tuple[IdentityKey, bool]:
        """The key stored at ``path``, creating it (mode 0600) first if absent; True if created.

        An existing file must be the user's own and private (``check_private_file``)."""
        if path.exists():
            return cls.load(path), False
        key = cls.generate(key_type, bits)
        try:
            write_private_file(path, key.to_pem(), replace=False)
        except FileExistsError:
            # Another process (a cluster's second server on a shared data dir) made it first.
            return cls.load(path), False
        return key, True

    def self_signed_certificate(
        self, common_name: str, now: datetime.datetime, days: int = 3650
    ) -> bytes:
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        builder = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        )
        if isinstance(self.private_key, rsa.RSAPrivateKey):
            certificate = builder.sign(self.private_key, hashes.SHA256(), rsa_padding=_pss())
        else:
            certificate = builder.sign(self.private_key, None)
        return certificate.public_bytes(serialization.Encoding.DER)


def write_private_file(path: Path, data: bytes, replace: bool = True) -> None:
    """Write ``data`` to ``path`` atomically, readable by the owner only (0600) from creation.
    Without ``replace``, raises FileExistsError if ``path`` exists (checked atomically)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if replace:
            os.replace(temporary, path)
        else:
            os.link(temporary, path)
            temporary.unlink()
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


class KeyFileError(ValueError):
    """A key file that holds no private key this program can use: damaged, sealed with a
    passphrase, or of another kind. The message says what is wrong with it."""


class InsecureFileError(Exception):
    """A private key or known_hosts file that others could read or change: refused, as ssh
    does. The message says what is wrong and how to fix it."""


def _owner_problem(path: Path, status: os.stat_result, what: str) -> str | None:
    uid = os.getuid()
    if status.st_uid == uid:
        return None
    return (
        f"'{path}' is owned by uid {status.st_uid}, not by you (uid {uid}). It is required that "
        f"your {what} are NOT accessible by others. Run (as root): chown {uid} "
        f"{shlex.quote(str(path))}"
    )


def _check_file(path: Path, status: os.stat_result, what: str, refused: int, fix: str) -> None:
    """Refuse ``path`` if the current user does not own it or its mode has a ``refused`` bit."""
    problem = _owner_problem(path, status, what)
    if problem is not None:
        raise InsecureFileError(problem)
    mode = stat.S_IMODE(status.st_mode)
    if mode & refused:
        raise InsecureFileError(
            f"Permissions {mode:04o} for '{path}' are too open. It is required that your "
            f"{what} are NOT {'accessible' if refused & 0o044 else 'writable'} by others. "
            f"Run: {fix} {shlex.quote(str(path))}"
        )


def check_private_file(path: Path) -> None:
    """Refuse a private key file not owned by the current user, or that group or others may
    read or write (any of mode 0077): InsecureFileError naming the fix, as ssh does."""
    _check_file(path, path.stat(), "private key files", 0o077, "chmod 600")


def check_known_hosts_file(path: Path) -> None:
    """Refuse a known_hosts file (if there is one) not owned by the current user, or that group
    or others may write (mode 0022): whoever can change it decides which servers are trusted."""
    try:
        status = path.stat()
    except FileNotFoundError:
        return
    _check_file(path, status, "known_hosts files", 0o022, "chmod go-w")


@dataclass(frozen=True)
class HostKeyChanged:
    """known_hosts holds another fingerprint for this host."""

    host: str
    expected: str
    presented: str
    path: Path
    line_number: int


class KnownHosts:
    """``host:port fingerprint`` lines; the first key seen for a host is trusted (TOFU)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @staticmethod
    def host_key(host: str, port: int) -> str:
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    def check_file(self) -> None:
        """InsecureFileError if the file is not the user's own, or others may write to it."""
        check_known_hosts_file(self.path)

    def entries(self) -> list[tuple[int, str, str]]:
        """(line number, host, fingerprint) of each entry; none if there is no file yet."""
        if not self.path.exists():
            return []
        self.check_file()
        entries = []
        for number, line in enumerate(self.path.read_text().splitlines(), start=1):
            fields = line.split()
            if len(fields) >= 2 and not line.startswith("#"):
                entries.append((number, fields[0], fields[1]))
        return entries

    def lookup(self, host: str, port: int) -> tuple[int, str] | None:
        wanted = self.host_key(host, port)
        for number, entry_host, fingerprint in self.entries():
            if entry_host == wanted:
                return number, fingerprint
        return None

    def names_of(self, fingerprint: str) -> list[str]:
        """Every name known_hosts holds ``fingerprint`` under, in the file's order."""
        return [
            entry_host
            for _, entry_host, stored in self.entries()
            if fingerprints_equal(stored, fingerprint)
        ]

    def check(self, host: str, port: int, fingerprint: str) -> HostKeyChanged | bool:
        """True if known and matching, False if the host is new, HostKeyChanged otherwise."""
        found = self.lookup(host, port)
        if found is None:
            return False
        number, stored = found
        if fingerprints_equal(stored, fingerprint):
            return True
        return HostKeyChanged(self.host_key(host, port), stored, fingerprint, self.path, number)

    def add(self, host: str, port: int, fingerprint: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.check_file()
        # Created writable by its owner only (0600), whatever the umask.
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with os.fdopen(fd, "a") as handle:
            handle.write(f"{self.host_key(host, port)} {fingerprint}\n")
