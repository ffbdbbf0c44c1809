"""The invitation string (tlschat/chat/invitation.py): what is made parses back to itself, and a
malformed string is refused with an error that says what is wrong."""

from __future__ import annotations

import base64
import hashlib
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tlschat.chat.invitation import (
    MAX_INVITATION,
    Invitation,
    InvitationError,
    invitation_id,
    new_secret,
    parse_address,
    parse_invitation,
    secret_digest,
    valid_secret,
)

FP = "SHA256:" + "Ab+/" * 10 + "xyz"
SECRET = "s" * 32


def test_a_made_secret_has_192_random_bits_and_is_accepted() -> None:
    secrets = {new_secret() for _ in range(50)}
    assert len(secrets) == 50
    for secret in secrets:
        assert len(base64.urlsafe_b64decode(secret + "=" * (-len(secret) % 4))) == 24
        assert valid_secret(secret)


def test_the_digest_is_sha256_of_the_secret_and_the_id_its_first_8_hex_digits() -> None:
    digest = secret_digest(SECRET)
    assert digest == hashlib.sha256(SECRET.encode()).hexdigest()
    assert invitation_id(digest) == digest[:8]


def test_the_format() -> None:
    invitation = Invitation("chat.example.org", 8443, FP, SECRET)
    assert str(invitation) == f"tlschat-invite:chat.example.org:8443#{FP}#{SECRET}"
    assert str(Invitation("::1", 9000, FP, SECRET)) == f"tlschat-invite:[::1]:9000#{FP}#{SECRET}"
    # A paste brings a newline and spaces along.
    assert parse_invitation(f"  {invitation}\n") == invitation


hosts = st.one_of(
    st.from_regex(r"[a-z0-9]([a-z0-9.-]{0,30}[a-z0-9])?", fullmatch=True),
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(str),
)
fingerprints = st.text(string.ascii_letters + string.digits + "+/", min_size=43, max_size=43).map(
    lambda body: "SHA256:" + body
)
secret_texts = st.text(string.ascii_letters + string.digits + "-_", min_size=22, max_size=64)


@given(hosts, st.integers(1, 65535), fingerprints, secret_texts)
def test_round_trip(host: str, port: int, fingerprint: str, secret: str) -> None:
    invitation = Invitation(host, port, fingerprint, secret)
    assert parse_invitation(str(invitation)) == invitation
    assert parse_address(invitation.address) == (host, port)


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("", "an invitation starts with 'tlschat-invite:'"),
        (f"tlschat-invitation:h:1#{FP}#{SECRET}", "an invitation starts with 'tlschat-invite:'"),
        (f"https://h:1#{FP}#{SECRET}", "an invitation starts with 'tlschat-invite:'"),
        ("tlschat-invite:h:1", "three parts separated by '#'"),
        (f"tlschat-invite:h:1#{FP}", "three parts separated by '#'"),
        (f"tlschat-invite:h:1#{FP}#{SECRET}#more", "three parts separated by '#'"),
        (f"tlschat-invite:h#{FP}#{SECRET}", "'h' is not a server address (HOST:PORT"),
        (f"tlschat-invite::1#{FP}#{SECRET}", "':1' is not a server address"),
        (f"tlschat-invite:h h:1#{FP}#{SECRET}", "'h h:1' is not a server address"),
        (f"tlschat-invite:-h:1#{FP}#{SECRET}", "'-h:1' is not a server address"),
        (f"tlschat-invite:::1:8443#{FP}#{SECRET}", "is not a server address (HOST:PORT, or [IPV6]"),
        (f"tlschat-invite:[::1]#{FP}#{SECRET}", "'[::1]' is not a server address"),
        (f"tlschat-invite:[h]:1#{FP}#{SECRET}", "'[h]:1' is not a server address"),
        (f"tlschat-invite:h:0#{FP}#{SECRET}", "'h:0': the port must be a number from 1 to 65535"),
        (f"tlschat-invite:h:65536#{FP}#{SECRET}", "the port must be a number from 1 to 65535"),
        (f"tlschat-invite:h:x#{FP}#{SECRET}", "the port must be a number from 1 to 65535"),
        (f"tlschat-invite:h:1#SHA256:short#{SECRET}", "'SHA256:short' is not a server key's"),
        (f"tlschat-invite:h:1#{FP[7:]}#{SECRET}", "is not a server key's fingerprint (SHA256:"),
        (f"tlschat-invite:h:1#{FP}#short", "the secret is not one tlschat makes (22 to 64"),
        (f"tlschat-invite:h:1#{FP}#{SECRET[:21]}", "was the invitation cut short?"),
        (f"tlschat-invite:h:1#{FP}#{'s' * 65}", "the secret is not one tlschat makes"),
        (f"tlschat-invite:h:1#{FP}#{SECRET[:-1]}=", "the secret is not one tlschat makes"),
        (f"tlschat-invite:h:1#{FP}#{SECRET[:-1]}é", "the secret is not one tlschat makes"),
        ("tlschat-invite:" + "h" * MAX_INVITATION, "an invitation is at most 400 characters"),
    ],
)
def test_malformed_invitations_are_refused_saying_why(text: str, said: str) -> None:
    with pytest.raises(InvitationError) as refused:
        parse_invitation(text)
    assert said in str(refused.value)


@given(st.text(max_size=500))
def test_any_text_parses_or_is_refused_with_an_invitation_error(text: str) -> None:
    try:
        invitation = parse_invitation(text)
    except InvitationError:
        return
    assert parse_invitation(str(invitation)) == invitation


@pytest.mark.parametrize("value", [None, 42, ["s" * 32], "s" * 21, "s" * 65, "s" * 31 + "!"])
def test_only_secrets_tlschat_could_have_made_are_valid(value: object) -> None:
    assert not valid_secret(value)
