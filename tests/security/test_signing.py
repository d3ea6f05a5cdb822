"""general-signing, nesting with ciphering, and the T-210D pass-3 builder."""

import datetime as dt
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sec_fixtures import AK, CLIENT_ST, EK, SERVER_ST, VECTORS

from edge_agent.dlms.association.pass3 import build_signed_pass3
from edge_agent.dlms.errors import (
    DecodeError,
    DlmsError,
    MissingKeyError,
    SignatureError,
    TruncatedError,
)
from edge_agent.dlms.security import certificates
from edge_agent.dlms.security.ciphering import protect, unprotect
from edge_agent.dlms.security.control import CipherKeys, SecurityControl
from edge_agent.dlms.security.header import TransactionHeader
from edge_agent.dlms.security.layers import peel
from edge_agent.dlms.security.signing import GeneralSigning, der_to_raw, raw_to_der, sign, verify
from edge_agent.dlms.security.tags import Form

KEYS = CipherKeys(ek=EK, ak=AK)
P256 = certificates.generate_key_pair(1)
P384 = certificates.generate_key_pair(2)
OTHER = certificates.generate_key_pair(1)
PASS3 = next(
    c
    for c in json.loads((VECTORS / "security.json").read_text())["cases"]
    if c["id"] == "pass3-general-signing"
)
ACTION = bytes.fromhex(PASS3["expected"]["signed_content"])


@settings(max_examples=60, deadline=None)
@given(
    content=st.binary(min_size=1, max_size=300),
    transaction_id=st.binary(max_size=140),
    date_time=st.binary(max_size=12),
    other=st.binary(max_size=130),
    key=st.sampled_from([P256, P384]),
)
def test_sign_encode_decode_verify(content, transaction_id, date_time, other, key):
    signed = sign(
        content,
        signing_key=key,
        originator_system_title=CLIENT_ST,
        recipient_system_title=SERVER_ST,
        transaction_id=transaction_id,
        date_time=date_time,
        other_information=other,
    )
    assert len(signed.signature) == (64 if key is P256 else 96)
    decoded = GeneralSigning.from_bytes(signed.encode())
    assert decoded == signed
    assert verify(decoded, key.public_key()) == content


def test_signature_covers_fields_with_lengths_and_content_without():
    signed = sign(
        ACTION,
        signing_key=P256,
        originator_system_title=CLIENT_ST,
        recipient_system_title=SERVER_ST,
    )
    assert (
        signed.signed_data()
        == bytes.fromhex("00 08") + CLIENT_ST + b"\x08" + SERVER_ST + b"\x00\x00" + ACTION
    )
    assert signed.encode().startswith(b"\xdf\x00\x08" + CLIENT_ST)


def test_wrong_signature_and_wrong_key():
    signed = sign(
        ACTION,
        signing_key=P256,
        originator_system_title=CLIENT_ST,
        recipient_system_title=SERVER_ST,
    )
    with pytest.raises(SignatureError, match="does not verify"):
        verify(signed, OTHER.public_key())
    tampered = GeneralSigning(signed.header, signed.content[:-1] + b"\x00", signed.signature)
    with pytest.raises(SignatureError):
        verify(tampered, P256.public_key())
    with pytest.raises(SignatureError, match="suite 2 signatures"):
        verify(signed, P384.public_key())
    with pytest.raises(SignatureError, match="empty"):
        verify(GeneralSigning(signed.header, signed.content), P256.public_key())


def test_certificate_must_belong_to_the_originator():
    now = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    cert = certificates.self_signed_certificate(
        P256, SERVER_ST, not_before=now, not_after=now + dt.timedelta(days=1)
    )
    signed = sign(
        ACTION,
        signing_key=P256,
        originator_system_title=CLIENT_ST,
        recipient_system_title=SERVER_ST,
    )
    with pytest.raises(SignatureError, match="belongs to system title 5341477DF129C270"):
        verify(signed, cert)
    own = certificates.self_signed_certificate(
        P256, CLIENT_ST, not_before=now, not_after=now + dt.timedelta(days=1)
    )
    assert verify(signed, own) == ACTION


def test_unknown_signer_in_peel():
    signed = sign(
        ACTION,
        signing_key=P256,
        originator_system_title=CLIENT_ST,
        recipient_system_title=SERVER_ST,
    )
    with pytest.raises(MissingKeyError, match="434C496A2AE598EF"):
        peel(signed.encode(), keys=KEYS, signers={})


def test_raw_der_conversion():
    from edge_agent.dlms.security.control import SUITES

    raw = bytes(range(1, 65))
    assert der_to_raw(raw_to_der(raw, SUITES[1]), SUITES[1]) == raw


@pytest.mark.parametrize("cut", [0, 1, 2, 11, 21, 23, 40, 60])
def test_truncated_general_signing(cut):
    encoded = sign(ACTION, signing_key=P256, originator_system_title=CLIENT_ST).encode()
    with pytest.raises((TruncatedError, DecodeError)):
        GeneralSigning.from_bytes(encoded[:cut])


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=60))
def test_general_signing_garbage(data):
    try:
        GeneralSigning.from_bytes(b"\xdf" + data)
    except DlmsError:
        pass


def test_cipher_then_sign_and_sign_then_cipher():
    ciphered = protect(
        ACTION,
        sc=SecurityControl(1, True, True),
        keys=KEYS,
        system_title=CLIENT_ST,
        invocation_counter=4,
        form=Form.GENERAL_GLO,
    )
    outer_signed = sign(ciphered, signing_key=P256, originator_system_title=CLIENT_ST).encode()
    peeled = peel(outer_signed, keys=KEYS, signers={CLIENT_ST: P256.public_key()})
    assert peeled.plaintext == ACTION
    assert [type(layer).__name__ for layer in peeled.layers] == ["GeneralSigning", "Unprotected"]
    inner_signed = sign(ACTION, signing_key=P256, originator_system_title=CLIENT_ST).encode()
    outer_ciphered = protect(
        inner_signed,
        sc=SecurityControl(1, True, True),
        keys=KEYS,
        system_title=CLIENT_ST,
        invocation_counter=5,
        form=Form.GENERAL_GLO,
    )
    peeled = peel(
        outer_ciphered,
        keys=KEYS,
        signers=lambda title: P256.public_key() if title == CLIENT_ST else None,
    )
    assert peeled.plaintext == ACTION
    assert [type(layer).__name__ for layer in peeled.layers] == ["Unprotected", "GeneralSigning"]


def test_signed_pass3_has_the_structure_of_the_vector():
    """Same keys, titles and IC as the vector: same bytes up to the (randomized) signature."""
    vector_plain = unprotect(bytes.fromhex(PASS3["inputs"]["apdu"]), KEYS).plaintext
    vector_signed = GeneralSigning.from_bytes(vector_plain)
    key = certificates.generate_key_pair(1)
    ic = 563807943  # f(StoC) of the HLS vector used 563807942: pass 3 takes the next one
    apdu = build_signed_pass3(
        ACTION,
        client_system_title=CLIENT_ST,
        server_system_title=SERVER_ST,
        signing_key=key,
        keys=KEYS,
        invocation_counter=ic,
    )
    vector_apdu = bytes.fromhex(PASS3["inputs"]["apdu"])
    assert apdu[:13] == vector_apdu[:13]  # DB 08 <ST> 81 89 31: same tag, title, length, SC
    opened = unprotect(apdu, KEYS)
    assert (opened.sc.byte, opened.invocation_counter, opened.tag_name) == (
        0x31,
        ic,
        "general-glo-ciphering",
    )
    signed = GeneralSigning.from_bytes(opened.plaintext)
    assert (
        signed.header
        == vector_signed.header
        == TransactionHeader(b"", CLIENT_ST, SERVER_ST, b"", b"")
    )
    assert signed.content == vector_signed.content == ACTION
    assert len(opened.plaintext) == len(vector_plain)
    assert opened.plaintext[:-64] == vector_plain[:-64]
    assert verify(signed, key.public_key()) == ACTION
    with pytest.raises(SignatureError):
        verify(
            signed,
            certificates.public_key_from_point(bytes.fromhex(PASS3["inputs"]["client_public_key"])),
        )
