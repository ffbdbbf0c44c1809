"""Known-answer tests for ``tlschat.protocol.keyschedule`` against RFC 8448, section 3.

RFC 8448, "Example Handshake Traces for TLS 1.3", section 3 ("Simple 1-RTT Handshake") is a
full TLS_AES_128_GCM_SHA256 / x25519 handshake with every intermediate value printed. Run with
the label prefix ``b"tls13 "``, our key schedule must reproduce it byte for byte. The trace uses
AES-128-GCM, so its write keys are 16 bytes and its IVs 12 bytes.

Every hex string below is transcribed from RFC 8448, section 3; the comment on each names the
line of the trace it comes from. Only the resumption-free part of the handshake is covered
(no "res master", no NewSessionTicket).
"""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from tlschat.protocol.keyschedule import (
    EMPTY_HASH,
    LABEL_PREFIX,
    KeySchedule,
    derive_secret,
    finished_key,
    finished_verify_data,
    hkdf_expand_label,
    traffic_keys,
    transcript_hash,
)

TLS13 = b"tls13 "


def h(text: str) -> bytes:
    return bytes.fromhex(text)


# --- Inputs, RFC 8448 section 3 -----------------------------------------------------------------

# {client} construct a ClientHello handshake message: ClientHello (196 octets)
CLIENT_HELLO = h(
    "010000c00303cb34ecb1e78163ba1c38c6dacb196a6dffa21a8d9912ec18a2ef6283024dece700000613011303"
    "1302010000910000000b0009000006736572766572ff01000100000a00140012001d00170018001901000101"
    "01020103010400230000003300260024001d002099381de560e4bd43d23d8e435a7dbafeb3c06e51c13cae4d"
    "5413691e529aaf2c002b0003020304000d0020001e04030503060302030804080508060401050106010201"
    "0402050206020202002d00020101001c00024001"
)
# {server} construct a ServerHello handshake message: ServerHello (90 octets)
SERVER_HELLO = h(
    "020000560303a6af06a4121860dc5e6e60249cd34c95930c8ac5cb1434dac155772ed3e2692800130100002e"
    "00330024001d0020c9828876112095fe66762bdbf7c672e156d6cc253b833df1dd69b1b04e751f0f002b0002"
    "0304"
)
# {client} create an ephemeral x25519 key pair: private key (32 octets)
CLIENT_X25519_PRIVATE = h("49af42ba7f7994852d713ef2784bcbcaa7911de26adc5642cb634540e7ea5005")
# {server} extract secret "handshake": IKM (32 octets) -- the x25519 shared secret
ECDHE_SHARED_SECRET = h("8bd4054fb55b9d63fdfbacf9f04b9f0d35e6d63f537563efd46272900f89492d")

# {server} derive secret "tls13 c hs traffic": hash (32 octets) -- ClientHello..ServerHello
HASH_CH_SH = h("860c06edc07858ee8e78f0e7428c58edd6b43f2ca3e6e95f02ed063cf0e1cad8")
# {server} calculate finished "tls13 finished": hash (32 octets) -- ClientHello..CertificateVerify
HASH_CH_CV = h("edb7725fa7a3473b031ec8ef65a2485493900138a2b91291407d7951a06110ed")
# {server} derive secret "tls13 c ap traffic": hash (32 octets) -- ClientHello..server Finished
HASH_CH_SF = h("9608102a0f1ccc6db6250b7b7e417b1a000eaada3daae4777a7686c9ff83df13")

# --- Expected values, RFC 8448 section 3 --------------------------------------------------------

# {server} extract secret "early": secret (32 octets)
EARLY_SECRET = h("33ad0a1c607ec03b09e6cd9893680ce210adf300aa1f2660e1b22e10f170f92a")
# {server} derive secret for handshake "tls13 derived": derived (32 octets)
DERIVED_FROM_EARLY = h("6f2615a108c702c5678f54fc9dbab69716c076189c48250cebeac3576c3611ba")
# {server} extract secret "handshake": secret (32 octets)
HANDSHAKE_SECRET = h("1dc826e93606aa6fdc0aadc12f741b01046aa6b99f691ed221a9f0ca043fbeac")
# {server} derive secret "tls13 c hs traffic": expanded (32 octets)
CLIENT_HS_TRAFFIC = h("b3eddb126e067f35a780b3abf45e2d8f3b1a950738f52e9600746a0e27a55a21")
# {server} derive secret "tls13 s hs traffic": expanded (32 octets)
SERVER_HS_TRAFFIC = h("b67b7d690cc16c4e75e54213cb2d37b4e9c912bcded9105d42befd59d391ad38")
# {server} derive secret for master "tls13 derived": derived (32 octets)
DERIVED_FROM_HANDSHAKE = h("43de77e0c77713859a944db9db2590b53190a65b3ee2e4f12dd7a0bb7ce254b4")
# {server} extract secret "master": secret (32 octets)
MASTER_SECRET = h("18df06843d13a08bf2a449844c5f8a478001bc4d4c627984d5a41da8d0402919")

# {server} derive write traffic keys for handshake data: key (16 octets), iv (12 octets)
SERVER_HS_KEY = h("3fce516009c21727d0f2e4e86ee403bc")
SERVER_HS_IV = h("5d313eb2671276ee13000b30")
# {client} derive write traffic keys for handshake data (= server read keys)
CLIENT_HS_KEY = h("dbfaa693d1762c5b666af5d950258d01")
CLIENT_HS_IV = h("5bd3c71b836e0b76bb73265f")

# {server} calculate finished "tls13 finished": PRK = s hs traffic; expanded (32 octets)
SERVER_FINISHED_KEY = h("008d3b66f816ea559f96b537e885c31fc068bf492c652f01f288a1d8cdc19fc8")
# {server} construct a Finished handshake message: Finished (36 octets) minus 14 00 00 20 header
SERVER_VERIFY_DATA = h("9b9b141d906337fbd2cbdce71df4deda4ab42c309572cb7fffee5454b78f0718")
# {client} calculate finished "tls13 finished": PRK = c hs traffic; expanded (32 octets)
CLIENT_FINISHED_KEY = h("b80ad01015fb2f0bd65ff7d4da5d6bf83f84821d1f87fdc7d3c75b5a7b42d9c4")
# {client} construct a Finished handshake message: Finished (36 octets) minus header; it is
# computed over ClientHello..server Finished (HASH_CH_SF).
CLIENT_VERIFY_DATA = h("a8ec436d677634ae525ac1fcebe11a039ec17694fac6e98527b642f2edd5ce61")

# {server} derive secret "tls13 c ap traffic": expanded (32 octets)
CLIENT_AP_TRAFFIC = h("9e40646ce79a7f9dc05af8889bce6552875afa0b06df0087f792ebb7c17504a5")
# {server} derive secret "tls13 s ap traffic": expanded (32 octets)
SERVER_AP_TRAFFIC = h("a11af9f05531f856ad47116b45a950328204b4f44bfb6b3a4b4f1f3fcb631643")
# {server} derive secret "tls13 exp master": expanded (32 octets)
EXPORTER_MASTER = h("fe22f881176eda18eb8f44529e6792c50c9a3f89452f68d8ae311b4309d3cf50")

# {server} derive write traffic keys for application data: key (16 octets), iv (12 octets)
SERVER_AP_KEY = h("9f02283b6c9c07efc26bb9f2ac92e356")
SERVER_AP_IV = h("cf782b88dd83549aadf1e984")
# {client} derive write traffic keys for application data: key (16 octets), iv (12 octets)
CLIENT_AP_KEY = h("17422dda596ed5d9acd890e3c63f5051")
CLIENT_AP_IV = h("5b78923dee08579033e523d9")


@pytest.fixture
def schedule() -> KeySchedule:
    ks = KeySchedule(prefix=TLS13)
    ks.set_shared_secret(ECDHE_SHARED_SECRET)
    return ks


# --- Inputs are what the RFC says they are ------------------------------------------------------


def test_hello_messages_hash_to_the_rfc_transcript_hash() -> None:
    assert len(CLIENT_HELLO) == 196
    assert len(SERVER_HELLO) == 90
    assert transcript_hash(CLIENT_HELLO + SERVER_HELLO).hex() == HASH_CH_SH.hex()


def test_x25519_of_the_rfc_keys_gives_the_rfc_shared_secret() -> None:
    # The server's key_share is the 32 bytes before the trailing supported_versions extension.
    server_public = SERVER_HELLO[-38:-6]
    assert server_public.hex() == (
        "c9828876112095fe66762bdbf7c672e156d6cc253b833df1dd69b1b04e751f0f"
    )
    private = X25519PrivateKey.from_private_bytes(CLIENT_X25519_PRIVATE)
    shared = private.exchange(X25519PublicKey.from_public_bytes(server_public))
    assert shared.hex() == ECDHE_SHARED_SECRET.hex()


# --- KeySchedule --------------------------------------------------------------------------------


def test_early_secret() -> None:
    assert KeySchedule(prefix=TLS13).early_secret.hex() == EARLY_SECRET.hex()


def test_handshake_and_master_secrets(schedule: KeySchedule) -> None:
    assert schedule.early_secret.hex() == EARLY_SECRET.hex()
    assert schedule.handshake_secret.hex() == HANDSHAKE_SECRET.hex()
    assert schedule.master_secret.hex() == MASTER_SECRET.hex()


def test_handshake_traffic_secrets(schedule: KeySchedule) -> None:
    client, server = schedule.handshake_traffic_secrets(
        transcript_hash(CLIENT_HELLO + SERVER_HELLO)
    )
    assert client.hex() == CLIENT_HS_TRAFFIC.hex()
    assert server.hex() == SERVER_HS_TRAFFIC.hex()


def test_application_traffic_secrets(schedule: KeySchedule) -> None:
    client, server = schedule.application_traffic_secrets(HASH_CH_SF)
    assert client.hex() == CLIENT_AP_TRAFFIC.hex()
    assert server.hex() == SERVER_AP_TRAFFIC.hex()


# --- derive_secret / hkdf_expand_label directly -------------------------------------------------


def test_derived_secrets_between_stages() -> None:
    assert derive_secret(EARLY_SECRET, b"derived", EMPTY_HASH, TLS13).hex() == (
        DERIVED_FROM_EARLY.hex()
    )
    assert derive_secret(HANDSHAKE_SECRET, b"derived", EMPTY_HASH, TLS13).hex() == (
        DERIVED_FROM_HANDSHAKE.hex()
    )
    # Derive-Secret is HKDF-Expand-Label with the hash length.
    assert hkdf_expand_label(EARLY_SECRET, b"derived", EMPTY_HASH, 32, TLS13).hex() == (
        DERIVED_FROM_EARLY.hex()
    )


def test_hkdf_expand_label_traffic_secrets() -> None:
    assert hkdf_expand_label(HANDSHAKE_SECRET, b"c hs traffic", HASH_CH_SH, 32, TLS13).hex() == (
        CLIENT_HS_TRAFFIC.hex()
    )
    assert hkdf_expand_label(HANDSHAKE_SECRET, b"s hs traffic", HASH_CH_SH, 32, TLS13).hex() == (
        SERVER_HS_TRAFFIC.hex()
    )
    assert hkdf_expand_label(MASTER_SECRET, b"c ap traffic", HASH_CH_SF, 32, TLS13).hex() == (
        CLIENT_AP_TRAFFIC.hex()
    )
    assert hkdf_expand_label(MASTER_SECRET, b"s ap traffic", HASH_CH_SF, 32, TLS13).hex() == (
        SERVER_AP_TRAFFIC.hex()
    )
    assert derive_secret(MASTER_SECRET, b"exp master", HASH_CH_SF, TLS13).hex() == (
        EXPORTER_MASTER.hex()
    )


def test_hkdf_expand_label_key_and_iv() -> None:
    assert hkdf_expand_label(SERVER_HS_TRAFFIC, b"key", b"", 16, TLS13).hex() == (
        SERVER_HS_KEY.hex()
    )
    assert hkdf_expand_label(SERVER_HS_TRAFFIC, b"iv", b"", 12, TLS13).hex() == SERVER_HS_IV.hex()


# --- traffic keys -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "secret", "key", "iv"),
    [
        ("client handshake", CLIENT_HS_TRAFFIC, CLIENT_HS_KEY, CLIENT_HS_IV),
        ("server handshake", SERVER_HS_TRAFFIC, SERVER_HS_KEY, SERVER_HS_IV),
        ("client application", CLIENT_AP_TRAFFIC, CLIENT_AP_KEY, CLIENT_AP_IV),
        ("server application", SERVER_AP_TRAFFIC, SERVER_AP_KEY, SERVER_AP_IV),
    ],
    ids=["client-hs", "server-hs", "client-ap", "server-ap"],
)
def test_traffic_keys(name: str, secret: bytes, key: bytes, iv: bytes) -> None:
    keys = traffic_keys(secret, key_length=16, iv_length=12, prefix=TLS13)
    assert keys.key.hex() == key.hex(), name
    assert keys.iv.hex() == iv.hex(), name


def test_traffic_keys_from_the_schedule_end_to_end(schedule: KeySchedule) -> None:
    c_hs, s_hs = schedule.handshake_traffic_secrets(HASH_CH_SH)
    c_ap, s_ap = schedule.application_traffic_secrets(HASH_CH_SF)
    got = [
        traffic_keys(s, key_length=16, iv_length=12, prefix=TLS13) for s in (c_hs, s_hs, c_ap, s_ap)
    ]
    assert [(k.key.hex(), k.iv.hex()) for k in got] == [
        (CLIENT_HS_KEY.hex(), CLIENT_HS_IV.hex()),
        (SERVER_HS_KEY.hex(), SERVER_HS_IV.hex()),
        (CLIENT_AP_KEY.hex(), CLIENT_AP_IV.hex()),
        (SERVER_AP_KEY.hex(), SERVER_AP_IV.hex()),
    ]


# --- Finished -----------------------------------------------------------------------------------


def test_finished_keys() -> None:
    assert finished_key(SERVER_HS_TRAFFIC, TLS13).hex() == SERVER_FINISHED_KEY.hex()
    assert finished_key(CLIENT_HS_TRAFFIC, TLS13).hex() == CLIENT_FINISHED_KEY.hex()


def test_server_finished_verify_data() -> None:
    got = finished_verify_data(SERVER_HS_TRAFFIC, HASH_CH_CV, TLS13)
    assert got.hex() == SERVER_VERIFY_DATA.hex()


def test_client_finished_verify_data() -> None:
    got = finished_verify_data(CLIENT_HS_TRAFFIC, HASH_CH_SF, TLS13)
    assert got.hex() == CLIENT_VERIFY_DATA.hex()


# --- Our own prefix and argument checks ---------------------------------------------------------


def test_label_prefix_is_not_tls13() -> None:
    assert LABEL_PREFIX == b"tlschat1 "
    ours = hkdf_expand_label(HANDSHAKE_SECRET, b"c hs traffic", HASH_CH_SH, 32)
    theirs = hkdf_expand_label(HANDSHAKE_SECRET, b"c hs traffic", HASH_CH_SH, 32, TLS13)
    assert theirs == CLIENT_HS_TRAFFIC
    assert ours == hkdf_expand_label(
        HANDSHAKE_SECRET, b"c hs traffic", HASH_CH_SH, 32, LABEL_PREFIX
    )
    assert ours != theirs


def test_label_prefix_changes_the_whole_schedule() -> None:
    ours = KeySchedule()
    assert ours.prefix == LABEL_PREFIX
    ours.set_shared_secret(ECDHE_SHARED_SECRET)
    theirs = KeySchedule(prefix=TLS13)
    theirs.set_shared_secret(ECDHE_SHARED_SECRET)

    # HKDF-Extract(0, 0) has no label, so the early secret is shared ...
    assert ours.early_secret == theirs.early_secret == EARLY_SECRET
    # ... and everything after the first "derived" step is not.
    assert ours.handshake_secret != theirs.handshake_secret
    assert ours.master_secret != theirs.master_secret
    for a, b in zip(
        ours.handshake_traffic_secrets(HASH_CH_SH) + ours.application_traffic_secrets(HASH_CH_SF),
        theirs.handshake_traffic_secrets(HASH_CH_SH)
        + theirs.application_traffic_secrets(HASH_CH_SF),
        strict=True,
    ):
        assert a != b
    assert traffic_keys(SERVER_HS_TRAFFIC) != traffic_keys(SERVER_HS_TRAFFIC, prefix=TLS13)


@pytest.mark.parametrize("prefix", [TLS13, LABEL_PREFIX])
def test_hkdf_expand_label_rejects_zero_length(prefix: bytes) -> None:
    with pytest.raises(ValueError):
        hkdf_expand_label(HANDSHAKE_SECRET, b"key", b"", 0, prefix)


@pytest.mark.parametrize("prefix", [TLS13, LABEL_PREFIX])
def test_hkdf_expand_label_rejects_label_over_255_bytes(prefix: bytes) -> None:
    with pytest.raises(ValueError):
        hkdf_expand_label(HANDSHAKE_SECRET, b"x" * 256, b"", 32, prefix)
    # The limit applies to prefix + label: one byte past 255 in total is refused ...
    with pytest.raises(ValueError):
        hkdf_expand_label(HANDSHAKE_SECRET, b"x" * (256 - len(prefix)), b"", 32, prefix)
    # ... and exactly 255 is allowed.
    assert (
        len(hkdf_expand_label(HANDSHAKE_SECRET, b"x" * (255 - len(prefix)), b"", 32, prefix)) == 32
    )
