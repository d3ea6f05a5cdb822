"""LLS, HLS-5/HLS-7, key wrap, key agreement and certificates."""

import datetime as dt

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID
from sec_fixtures import AK, CLIENT_ST, EK, SERVER_ST

from edge_agent.dlms.errors import (
    AuthenticationError,
    ConfigError,
    DecodeError,
    EncodeError,
    MissingKeyError,
    SignatureError,
)
from edge_agent.dlms.secret import Secret
from edge_agent.dlms.security import agreement, certificates, hls, keywrap
from edge_agent.dlms.security.agreement import Algorithm, Scheme
from edge_agent.dlms.security.control import CipherKeys

KEYS = CipherKeys(ek=EK, ak=AK)
STOC = bytes(range(16))
CTOS = bytes(range(100, 132))
NOW = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)


def test_lls():
    hls.check_password(Secret(b"12345678"), b"12345678")
    with pytest.raises(AuthenticationError) as info:
        hls.check_password(Secret(b"12345678"), b"87654321")
    assert "1234" not in str(info.value) and "8765" not in str(info.value)


def test_hls5_round_trip_and_failures():
    f = hls.gmac_response(CTOS, keys=KEYS, system_title=SERVER_ST, invocation_counter=77, suite=1)
    assert f[:5] == bytes.fromhex("110000004d") and len(f) == 17
    assert hls.verify_gmac_response(f, CTOS, keys=KEYS, system_title=SERVER_ST, suite=1) == 77
    with pytest.raises(AuthenticationError, match="wrong AK or EK, wrong system title"):
        hls.verify_gmac_response(f, CTOS, keys=KEYS, system_title=CLIENT_ST)
    with pytest.raises(AuthenticationError, match="suite 1, the association uses suite 0"):
        hls.verify_gmac_response(f, CTOS, keys=KEYS, system_title=SERVER_ST, suite=0)
    with pytest.raises(AuthenticationError):
        hls.verify_gmac_response(
            f[:-1] + bytes((f[-1] ^ 1,)), CTOS, keys=KEYS, system_title=SERVER_ST
        )
    with pytest.raises(DecodeError, match="17 expected"):
        hls.verify_gmac_response(f[:-1], CTOS, keys=KEYS, system_title=SERVER_ST)
    with pytest.raises(MissingKeyError, match="AK"):
        hls.gmac_response(
            CTOS, keys=CipherKeys(ek=EK), system_title=SERVER_ST, invocation_counter=1
        )
    with pytest.raises(EncodeError, match="8..64"):
        hls.check_challenge(b"1234567")


def test_hls7_client_and_server():
    client, server = certificates.generate_key_pair(1), certificates.generate_key_pair(1)
    f_stoc = hls.ecdsa_response(
        client,
        own_system_title=CLIENT_ST,
        peer_system_title=SERVER_ST,
        challenge_received=STOC,
        challenge_sent=CTOS,
    )
    # the meter verifies the client's answer to its StoC
    hls.verify_ecdsa_response(
        f_stoc,
        client.public_key(),
        own_system_title=SERVER_ST,
        peer_system_title=CLIENT_ST,
        challenge_sent=STOC,
        challenge_received=CTOS,
    )
    f_ctos = hls.ecdsa_response(
        server,
        own_system_title=SERVER_ST,
        peer_system_title=CLIENT_ST,
        challenge_received=CTOS,
        challenge_sent=STOC,
    )
    hls.verify_ecdsa_response(
        f_ctos,
        server.public_key(),
        own_system_title=CLIENT_ST,
        peer_system_title=SERVER_ST,
        challenge_sent=CTOS,
        challenge_received=STOC,
    )
    with pytest.raises(AuthenticationError, match="system titles"):
        hls.verify_ecdsa_response(
            f_ctos,
            client.public_key(),
            own_system_title=CLIENT_ST,
            peer_system_title=SERVER_ST,
            challenge_sent=CTOS,
            challenge_received=STOC,
        )


def test_key_wrap_errors():
    kek = Secret(bytes(16))
    with pytest.raises(AuthenticationError, match="wrong master key"):
        keywrap.unwrap(Secret(bytes(range(16))), keywrap.wrap(kek, EK))
    with pytest.raises(DecodeError):
        keywrap.unwrap(kek, bytes(20))


@pytest.mark.parametrize("suite", [1, 2])
@pytest.mark.parametrize("scheme", list(Scheme))
def test_both_parties_derive_the_same_key(scheme, suite):
    u, v = certificates.generate_key_pair(suite), certificates.generate_key_pair(suite)
    algorithm = Algorithm.AES_GCM_128 if suite == 1 else Algorithm.AES_GCM_256
    nonce = bytes(range(8)) if scheme is Scheme.STATIC_UNIFIED_MODEL else b""
    common = {
        "algorithm": algorithm,
        "party_u_system_title": CLIENT_ST,
        "party_v_system_title": SERVER_ST,
        "nonce": nonce,
    }
    key_u = agreement.agree(scheme, u, v.public_key(), **common)
    key_v = agreement.agree(scheme, v, u.public_key(), **common)
    assert key_u == key_v and len(key_u) == algorithm.key_length
    other_titles = dict(common, party_v_system_title=CLIENT_ST)
    assert agreement.agree(scheme, u, v.public_key(), **other_titles) != key_u


def test_kdf_is_the_sp800_56a_concatenation_kdf():
    import hashlib

    z = Secret(bytes(range(32)))
    info = agreement.other_info(Algorithm.AES_GCM_128, CLIENT_ST, SERVER_ST)
    assert info == bytes.fromhex("60857405080300") + CLIENT_ST + SERVER_ST
    expected = hashlib.sha256(b"\x00\x00\x00\x01" + z.reveal() + info).digest()[:16]
    assert agreement.kdf(z, info, suite=1, length=16).reveal() == expected


def test_agreement_errors():
    with pytest.raises(ConfigError, match="nonce"):
        agreement.agree(
            Scheme.STATIC_UNIFIED_MODEL,
            certificates.generate_key_pair(1),
            certificates.generate_key_pair(1).public_key(),
            algorithm=Algorithm.AES_GCM_128,
            party_u_system_title=CLIENT_ST,
            party_v_system_title=SERVER_ST,
        )
    with pytest.raises(ConfigError, match="curve"):
        agreement.shared_secret(
            certificates.generate_key_pair(1), certificates.generate_key_pair(2).public_key()
        )


def test_signed_ephemeral_key_of_security_setup_key_agreement():
    signing, ephemeral = certificates.generate_key_pair(1), certificates.generate_key_pair(1)
    data = agreement.key_agreement_data(0, ephemeral, signing)
    assert len(data) == 128
    got = agreement.verify_key_agreement_data(0, data, signing.public_key())
    assert certificates.public_key_to_point(got) == certificates.public_key_to_point(
        ephemeral.public_key()
    )
    with pytest.raises(SignatureError):
        agreement.verify_key_agreement_data(1, data, signing.public_key())  # key id is signed too


def test_certificates_and_csr_carry_the_system_title():
    key = certificates.generate_key_pair(1)
    cert = certificates.self_signed_certificate(
        key, CLIENT_ST, not_before=NOW, not_after=NOW + dt.timedelta(days=365)
    )
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "434C496A2AE598EF"
    assert cert.extensions.get_extension_for_class(x509.KeyUsage).value.digital_signature
    for blob in (certificates.certificate_pem(cert), certificates.certificate_der(cert)):
        assert (
            certificates.system_title_from_certificate(certificates.load_certificate(blob))
            == CLIENT_ST
        )
    csr = certificates.load_csr(
        certificates.csr_pem(certificates.build_csr(key, CLIENT_ST, usage="key-agreement"))
    )
    assert csr.is_signature_valid
    assert certificates.system_title_from_name(csr.subject) == CLIENT_ST
    pem = certificates.private_key_pem(key, b"pw")
    assert certificates.load_private_key(pem, b"pw").private_numbers() == key.private_numbers()
    with pytest.raises(ConfigError, match="password"):
        certificates.load_private_key(pem, b"wrong")
    with pytest.raises(DecodeError):
        certificates.load_certificate(b"not a certificate")


def test_public_key_points():
    key = certificates.generate_key_pair(1).public_key()
    point = certificates.public_key_to_point(key)
    assert len(point) == 64
    for form in (point, b"\x04" + point):
        assert certificates.public_key_to_point(certificates.public_key_from_point(form)) == point
    with pytest.raises(DecodeError):
        certificates.public_key_from_point(point, suite=2)
    with pytest.raises(DecodeError, match="not a point"):
        certificates.public_key_from_point(bytes(64))
    p384 = certificates.generate_key_pair(2).public_key()
    assert (
        certificates.public_key_from_point(certificates.public_key_to_point(p384)).curve.name
        == "secp384r1"
    )
    with pytest.raises(ConfigError, match="suite 0"):
        certificates.generate_key_pair(0)
