"""The crypto floor of one tlschat server handshake, timed with ``cryptography`` in this process.

What the server must compute for one full handshake, whatever the code around it:

- RSA-2048 PSS-SHA256 signature (its CertificateVerify);
- X25519: its ephemeral key pair and the exchange;
- the key schedule: 5 HMAC-SHA256 (3 HKDF-Extract, 2 Finished MACs) and 16 HKDF-Expand (the
  derived secrets, 4 traffic secrets, 2 Finished keys, key+IV for 4 directions);
- AES-256-GCM: 4 AEAD key set-ups, 3 records sealed and 3 opened;
- the client's CertificateVerify: an Ed25519 or an RSA-2048 PSS verification. Ed25519 is timed
  through the server's own check (vodozemac, ``protocol/ed25519_check.py``), the fastest this
  project has: a faster check raises the floor, it does not lower the bar.

Handshakes per CPU-second at the floor = 1 / (sum of those). The stdlib ``ssl`` server does the
same work minus the client signature (no client certificate), so the floor without it is given too.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa, x25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

from tlschat.protocol.ed25519_check import ed25519_verifies

SIGNED = b" " * 64 + b"tlschat v1, server CertificateVerify" + b"\x00" + os.urandom(32)
PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)


def _per_call(function: Callable[[], object], seconds: float) -> float:
    """CPU seconds per call: the best of three rounds of about ``seconds / 3`` each."""
    function()
    best = float("inf")
    rounds = 3
    for _ in range(rounds):
        calls = 0
        start = time.process_time()
        deadline = start + seconds / rounds
        while True:
            for _ in range(10):
                function()
            calls += 10
            now = time.process_time()
            if now >= deadline:
                break
        best = min(best, (now - start) / calls)
    return best


def measure(seconds: float = 2.0) -> dict[str, float]:
    """Microseconds per primitive (CPU time) and the floor in handshakes per CPU-second."""
    share = seconds / 8
    server_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    client_rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    client_ed = ed25519.Ed25519PrivateKey.generate()
    rsa_signature = client_rsa.sign(SIGNED, PSS, hashes.SHA256())
    ed_signature = client_ed.sign(SIGNED)
    client_rsa_public = client_rsa.public_key()
    client_ed_raw = client_ed.public_key().public_bytes_raw()
    peer_share = x25519.X25519PrivateKey.generate().public_key().public_bytes_raw()
    secret, digest = os.urandom(32), os.urandom(32)
    aes_key, nonce, record = os.urandom(32), os.urandom(12), os.urandom(200)
    sealed = AESGCM(aes_key).encrypt(nonce, record, b"hdr")

    def x25519_once() -> None:
        private = x25519.X25519PrivateKey.from_private_bytes(os.urandom(32))
        private.public_key().public_bytes_raw()
        private.exchange(x25519.X25519PublicKey.from_public_bytes(peer_share))

    def hmac_once() -> None:
        mac = hmac.HMAC(secret, hashes.SHA256())
        mac.update(digest)
        mac.finalize()

    def expand_once() -> None:
        HKDFExpand(algorithm=hashes.SHA256(), length=32, info=b"\x00\x20\x0etlschat1 label").derive(
            secret
        )

    def aead_setup_once() -> None:
        AESGCM(aes_key)

    aead = AESGCM(aes_key)
    us = {
        "rsa2048_pss_sign": _per_call(lambda: server_key.sign(SIGNED, PSS, hashes.SHA256()), share),
        "x25519_keygen_exchange": _per_call(x25519_once, share),
        "hmac_sha256": _per_call(hmac_once, share),
        "hkdf_expand": _per_call(expand_once, share),
        "aesgcm_key_setup": _per_call(aead_setup_once, share),
        "aesgcm_seal_200B": _per_call(lambda: aead.encrypt(nonce, record, b"hdr"), share),
        "aesgcm_open_200B": _per_call(lambda: aead.decrypt(nonce, sealed, b"hdr"), share),
        "ed25519_verify": _per_call(
            lambda: ed25519_verifies(client_ed_raw, SIGNED, ed_signature), share
        ),
        "rsa2048_pss_verify": _per_call(
            lambda: client_rsa_public.verify(rsa_signature, SIGNED, PSS, hashes.SHA256()), share
        ),
    }
    us = {name: value * 1e6 for name, value in us.items()}
    common = (
        us["rsa2048_pss_sign"]
        + us["x25519_keygen_exchange"]
        + 5 * us["hmac_sha256"]
        + 16 * us["hkdf_expand"]
        + 4 * us["aesgcm_key_setup"]
        + 3 * us["aesgcm_seal_200B"]
        + 3 * us["aesgcm_open_200B"]
    )
    result = dict(us)
    result["handshake_us_no_client_auth"] = common
    result["handshake_us_ed25519_client"] = common + us["ed25519_verify"]
    result["handshake_us_rsa_client"] = common + us["rsa2048_pss_verify"]
    result["floor_per_cpu_s_no_client_auth"] = 1e6 / common
    result["floor_per_cpu_s_ed25519_client"] = 1e6 / result["handshake_us_ed25519_client"]
    result["floor_per_cpu_s_rsa_client"] = 1e6 / result["handshake_us_rsa_client"]
    return result
