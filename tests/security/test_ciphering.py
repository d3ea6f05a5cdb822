"""protect/unprotect for every form and SC, key selection, and the failure modes."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sec_fixtures import AK, CLIENT_ST, EK, SERVER_ST

from edge_agent.dlms.errors import (
    AuthenticationError,
    ConfigError,
    DecodeError,
    DlmsError,
    EncodeError,
    MissingKeyError,
    ReplayError,
    SecurityError,
    TruncatedError,
)
from edge_agent.dlms.secret import Secret
from edge_agent.dlms.security import keywrap
from edge_agent.dlms.security.ciphering import (
    CipheredApdu,
    decipher,
    decipher_plaintext,
    protect,
    unprotect,
)
from edge_agent.dlms.security.control import CipherKeys, SecurityControl
from edge_agent.dlms.security.header import (
    AgreedKey,
    GeneralCipheringHeader,
    IdentifiedKey,
    TransactionHeader,
    WrappedKey,
)
from edge_agent.dlms.security.replay import ReceiveCounterGuard
from edge_agent.dlms.security.tags import SERVICES, Form

GET_REQUEST = bytes.fromhex("c0010000080000010000ff0200")
DED = Secret(bytes(range(0x40, 0x50)), "dedicated")
BROADCAST = Secret(bytes(range(0x60, 0x70)), "broadcast")
KEK = Secret(bytes(range(0x20, 0x30)), "KEK")
ALL_KEYS = CipherKeys(ek=EK, ak=AK, broadcast_ek=BROADCAST, dedicated_ek=DED, kek=KEK)
POLICIES = [(True, True), (True, False), (False, True)]


def _general_header(key_info=None) -> GeneralCipheringHeader:
    return GeneralCipheringHeader(
        TransactionHeader(b"\x00" * 7 + b"\x01", CLIENT_ST, SERVER_ST, b"", b""), key_info
    )


@settings(max_examples=150, deadline=None)
@given(
    service=st.sampled_from(SERVICES),
    body=st.binary(max_size=300),
    form=st.sampled_from([Form.GLO, Form.DED, Form.GENERAL_GLO, Form.GENERAL_DED, Form.GENERAL]),
    policy=st.sampled_from(POLICIES),
    suite=st.sampled_from([0, 1]),
    broadcast=st.booleans(),
    ic=st.integers(0, 0xFFFFFFFF),
)
def test_round_trip_every_form_and_sc(service, body, form, policy, suite, broadcast, ic):
    plain = bytes((service.plain,)) + body
    sc = SecurityControl(suite, *policy, broadcast=broadcast)
    header = _general_header(IdentifiedKey(1 if broadcast else 0)) if form is Form.GENERAL else None
    apdu = protect(
        plain,
        sc=sc,
        keys=ALL_KEYS,
        system_title=CLIENT_ST,
        invocation_counter=ic,
        form=form,
        header=header,
    )
    carries_title = form in (Form.GENERAL_GLO, Form.GENERAL_DED, Form.GENERAL)
    result = unprotect(apdu, ALL_KEYS, None if carries_title else CLIENT_ST)
    assert (result.plaintext, result.sc, result.invocation_counter, result.form) == (
        plain,
        sc,
        ic,
        form,
    )
    assert result.system_title == CLIENT_ST
    if not policy[1]:  # authentication only: the plaintext travels in clear
        assert plain in apdu
    assert CipheredApdu.decode(apdu)[0].encode() == apdu


def test_suite_2_uses_32_byte_keys():
    keys = CipherKeys(ek=Secret(bytes(32)), ak=Secret(bytes(range(32))))
    sc = SecurityControl(2, True, True)
    apdu = protect(
        GET_REQUEST,
        sc=sc,
        keys=keys,
        system_title=CLIENT_ST,
        invocation_counter=5,
        form=Form.GENERAL_GLO,
    )
    assert unprotect(apdu, keys).plaintext == GET_REQUEST


def test_wrong_key_length_for_suite():
    with pytest.raises(ConfigError, match="suite 2 needs 32-byte"):
        protect(
            GET_REQUEST,
            sc=SecurityControl(2, True, True),
            keys=CipherKeys(ek=EK, ak=AK),
            system_title=CLIENT_ST,
            invocation_counter=1,
        )


@pytest.mark.parametrize(
    "key_info", [WrappedKey(keywrap.wrap(KEK, Secret(bytes(range(16))))), IdentifiedKey(0)]
)
def test_general_ciphering_key_info(key_info):
    header = _general_header(key_info)
    sc = SecurityControl(1, True, True)
    apdu = protect(
        GET_REQUEST,
        sc=sc,
        keys=ALL_KEYS,
        system_title=CLIENT_ST,
        invocation_counter=9,
        form=Form.GENERAL,
        header=header,
    )
    result = unprotect(apdu, ALL_KEYS)
    assert result.plaintext == GET_REQUEST and result.header == header
    assert result.key_id == ("wrapped" if isinstance(key_info, WrappedKey) else "ek")


def test_general_ciphering_authenticates_its_header():
    header = _general_header(IdentifiedKey(0))
    apdu = bytearray(
        protect(
            GET_REQUEST,
            sc=SecurityControl(1, True, True),
            keys=ALL_KEYS,
            system_title=CLIENT_ST,
            invocation_counter=9,
            form=Form.GENERAL,
            header=header,
        )
    )
    apdu[1 + 1 + 7] ^= 0x01  # last byte of the transaction-id
    with pytest.raises(AuthenticationError):
        unprotect(bytes(apdu), ALL_KEYS)


def test_agreed_key_needs_content_key():
    content_key = Secret(bytes(range(100, 116)))
    header = _general_header(AgreedKey(b"\x02"))
    apdu = protect(
        GET_REQUEST,
        sc=SecurityControl(1, True, True),
        keys=ALL_KEYS,
        system_title=CLIENT_ST,
        invocation_counter=3,
        form=Form.GENERAL,
        header=header,
        content_key=content_key,
    )
    with pytest.raises(MissingKeyError, match="agreed key"):
        unprotect(apdu, ALL_KEYS)
    assert unprotect(apdu, ALL_KEYS, content_key=content_key).plaintext == GET_REQUEST


def test_wrapped_key_with_wrong_kek_is_an_authentication_error():
    header = _general_header(WrappedKey(keywrap.wrap(KEK, Secret(bytes(16)))))
    apdu = protect(
        GET_REQUEST,
        sc=SecurityControl(1, True, True),
        keys=ALL_KEYS,
        system_title=CLIENT_ST,
        invocation_counter=3,
        form=Form.GENERAL,
        header=header,
    )
    with pytest.raises(AuthenticationError, match="master key"):
        unprotect(apdu, CipherKeys(ek=EK, ak=AK, kek=Secret(bytes(16))))


def _glo(sc_byte=0x30, ic=7, keys=None):
    return protect(
        GET_REQUEST,
        sc=SecurityControl.decode(sc_byte),
        keys=keys or CipherKeys(ek=EK, ak=AK),
        system_title=SERVER_ST,
        invocation_counter=ic,
    )


@pytest.mark.parametrize("position", [-1, -13, 7])
def test_any_altered_byte_is_rejected_without_plaintext(position):
    apdu = bytearray(_glo())
    apdu[position] ^= 0x80
    with pytest.raises(AuthenticationError) as info:
        unprotect(bytes(apdu), CipherKeys(ek=EK, ak=AK), SERVER_ST)
    message = str(info.value)
    assert "wrong AK or EK, wrong system title, or invocation counter" in message


@pytest.mark.parametrize("sc_byte", [0x30, 0x20, 0x10])
def test_decipher_plaintext_is_decipher_without_the_value(sc_byte):
    keys = CipherKeys(ek=EK, ak=AK)
    ciphered = CipheredApdu.decode(_glo(sc_byte))[0]
    opened = decipher(ciphered, keys, SERVER_ST)
    assert decipher_plaintext(ciphered, keys, SERVER_ST) == (opened.plaintext, opened.key_id)
    if sc_byte & 0x10:  # authenticated: another sender's title fails the tag
        with pytest.raises(AuthenticationError, match="authentication tag does not match"):
            decipher_plaintext(ciphered, keys, CLIENT_ST)
    else:  # encryption only: no tag, other bytes
        assert decipher_plaintext(ciphered, keys, CLIENT_ST)[0] != GET_REQUEST
    with pytest.raises(MissingKeyError, match="system title"):
        decipher_plaintext(ciphered, keys)


def test_wrong_system_title_or_key_is_rejected():
    apdu = _glo()
    with pytest.raises(AuthenticationError):
        unprotect(apdu, CipherKeys(ek=EK, ak=AK), CLIENT_ST)
    with pytest.raises(AuthenticationError):
        unprotect(apdu, CipherKeys(ek=EK, ak=Secret(bytes(16))), SERVER_ST)


def test_wrong_suite_in_sc_is_rejected():
    apdu = bytearray(_glo(0x30))
    apdu[2] = 0x31  # SC claims suite 1: the SC is in the AAD
    with pytest.raises(AuthenticationError):
        unprotect(bytes(apdu), CipherKeys(ek=EK, ak=AK), SERVER_ST)
    apdu[2] = 0x33  # no such suite
    with pytest.raises(DecodeError, match="suite 3"):
        unprotect(bytes(apdu), CipherKeys(ek=EK, ak=AK), SERVER_ST)


def test_missing_ak_for_authenticated_frames_names_the_key():
    with pytest.raises(MissingKeyError, match=r"authentication key \(AK\) missing"):
        unprotect(_glo(0x30), CipherKeys(ek=EK), SERVER_ST)
    with pytest.raises(MissingKeyError, match="AK"):
        unprotect(_glo(0x10), CipherKeys(ek=EK), SERVER_ST)


def test_encryption_only_needs_no_ak_and_says_so():
    apdu = _glo(0x20, keys=CipherKeys(ek=EK))
    assert unprotect(apdu, CipherKeys(ek=EK), SERVER_ST).plaintext == GET_REQUEST
    with pytest.raises(MissingKeyError, match="no AK is needed"):
        unprotect(apdu, CipherKeys(), SERVER_ST)
    assert "no AK is needed" in CipheredApdu.decode(apdu)[0].keys_needed()


def test_missing_system_title_and_dedicated_key():
    with pytest.raises(MissingKeyError, match="system title"):
        unprotect(_glo(), CipherKeys(ek=EK, ak=AK))
    ded = protect(
        GET_REQUEST,
        sc=SecurityControl(0, True, True),
        keys=ALL_KEYS,
        system_title=SERVER_ST,
        invocation_counter=1,
        form=Form.DED,
    )
    assert ded[0] == 0xD0
    with pytest.raises(MissingKeyError, match="dedicated key"):
        unprotect(ded, CipherKeys(ek=EK, ak=AK), SERVER_ST)


@pytest.mark.parametrize("cut", range(31))
def test_every_truncation_is_a_clear_error(cut):
    apdu = _glo()[:cut]
    with pytest.raises((TruncatedError, DecodeError)):
        unprotect(apdu, CipherKeys(ek=EK, ak=AK), SERVER_ST)


def test_trailing_bytes_and_unknown_tags():
    with pytest.raises(DecodeError, match="after the end"):
        unprotect(_glo() + b"\x00", CipherKeys(ek=EK, ak=AK), SERVER_ST)
    with pytest.raises(DecodeError, match="not a ciphered APDU"):
        unprotect(GET_REQUEST, CipherKeys(ek=EK, ak=AK), SERVER_ST)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=80))
def test_garbage_gives_dlms_errors_only(data):
    try:
        unprotect(data, ALL_KEYS, SERVER_ST)
    except DlmsError:
        pass


def test_compression_and_no_protection_refused():
    with pytest.raises(SecurityError, match="compressed"):
        _glo(0xB0)
    apdu = bytearray(_glo(0x30))
    apdu[2] = 0x00
    with pytest.raises(SecurityError, match="authenticated and/or encrypted"):
        unprotect(bytes(apdu), CipherKeys(ek=EK, ak=AK), SERVER_ST)


def test_services_without_glo_form_must_use_general():
    with pytest.raises(EncodeError, match="general-glo"):
        protect(
            bytes.fromhex("0f00000001"),
            sc=SecurityControl(0, True, True),
            keys=ALL_KEYS,
            system_title=CLIENT_ST,
            invocation_counter=1,
        )


def test_replay_guard_rejects_equal_and_lower_counters_and_forgeries():
    guard = ReceiveCounterGuard()
    keys = CipherKeys(ek=EK, ak=AK)
    assert unprotect(_glo(ic=10), keys, SERVER_ST, guard=guard).invocation_counter == 10
    for ic in (10, 9):
        with pytest.raises(ReplayError, match="not above the last accepted 10"):
            unprotect(_glo(ic=ic), keys, SERVER_ST, guard=guard)
    forged = bytearray(_glo(ic=50))
    forged[-1] ^= 1
    with pytest.raises(AuthenticationError):
        unprotect(bytes(forged), keys, SERVER_ST, guard=guard)
    assert guard.last(SERVER_ST, "ek") == 10  # a forged APDU does not move the guard
    assert unprotect(_glo(ic=11), keys, SERVER_ST, guard=guard).invocation_counter == 11
    # counters are per key: a dedicated-key APDU starts its own sequence
    ded = protect(
        GET_REQUEST,
        sc=SecurityControl(0, True, True),
        keys=ALL_KEYS,
        system_title=SERVER_ST,
        invocation_counter=1,
        form=Form.DED,
    )
    unprotect(ded, ALL_KEYS, SERVER_ST, guard=guard)


def test_sc_byte_round_trip_and_text():
    for value in range(256):
        if value & 0x0F > 2:
            with pytest.raises(DecodeError):
                SecurityControl.decode(value)
            continue
        assert SecurityControl.decode(value).byte == value
    assert SecurityControl.of(1, "authenc").byte == 0x31
    assert "encrypted only" in SecurityControl.decode(0x20).describe()


def test_key_material_never_in_repr_or_messages():
    secrets = [EK, AK, DED, BROADCAST, KEK]
    hexes = [s.reveal().hex() for s in secrets] + [s.reveal().hex().upper() for s in secrets]
    texts = [repr(ALL_KEYS), str(ALL_KEYS), repr(CipherKeys(ek=EK))]
    apdu = bytearray(_glo())
    apdu[-1] ^= 1
    for call in (
        lambda: unprotect(bytes(apdu), ALL_KEYS, SERVER_ST),
        lambda: unprotect(_glo(), CipherKeys(ek=EK), SERVER_ST),
        lambda: protect(
            GET_REQUEST,
            sc=SecurityControl(2, True, True),
            keys=ALL_KEYS,
            system_title=CLIENT_ST,
            invocation_counter=1,
        ),
        lambda: keywrap.unwrap(Secret(bytes(16)), keywrap.wrap(KEK, EK)),
    ):
        with pytest.raises(DlmsError) as info:
            call()
        texts += [str(info.value), repr(info.value)]
    result = unprotect(_glo(), ALL_KEYS, SERVER_ST)
    texts.append(repr(result))
    for text in texts:
        for h in hexes:
            assert h not in text
