"""The server's long-term key and self-signed certificate in its data directory."""

from __future__ import annotations

import datetime
from pathlib import Path

from ..local_files import SERVER_KEY_FIX, load_or_create_key, usable_directory
from ..protocol.alerts import ProtocolError
from ..protocol.identity import IdentityKey, PeerIdentity, write_private_file
from ..store.files import private_directory

KEY_FILE = "server_key.pem"
CERTIFICATE_FILE = "server_cert.der"


def load_or_create_server_identity(
    data_dir: Path, common_name: str = "tlschat", key_type: str = "rsa"
) -> tuple[IdentityKey, bytes, bool]:
    """(key, certificate DER, created): made on first start, reused after.

    A certificate that does not match the key (someone replaced one file) is reissued for the key,
    since clients trust the key, not the certificate. The data directory is made (or tightened
    to) 0700 first; a key file others could read, or that is not the user's, is refused
    (InsecureFileError), and a directory or key that cannot be used is one line (UnusableFile).
    """
    usable_directory(data_dir, "data directory", "--data-dir", make=private_directory)
    key, created = load_or_create_key(data_dir / KEY_FILE, key_type, SERVER_KEY_FIX)
    certificate_path = data_dir / CERTIFICATE_FILE
    stale = certificate_path.exists()
    if stale:
        certificate = certificate_path.read_bytes()
        try:
            if PeerIdentity.from_certificate(certificate).spki_der == key.spki_der:
                return key, certificate, created
        except ProtocolError:
            pass
    certificate = key.self_signed_certificate(common_name, datetime.datetime.now(datetime.UTC))
    try:
        write_private_file(certificate_path, certificate, replace=stale)
    except FileExistsError:
        # Servers of a cluster starting together on one data dir: all use the first certificate.
        return load_or_create_server_identity(data_dir, common_name, key_type)
    return key, certificate, created
