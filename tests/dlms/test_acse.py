"""ACSE PDUs and the conformance block: Green Book encodings, round-trips, malformed input."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.dlms.apdu import InitiateRequest, InitiateResponse, decode_apdu
from edge_agent.dlms.apdu.acse import (
    AARE,
    AARQ,
    RLRE,
    RLRQ,
    AcseServiceProvider,
    AcseServiceUser,
    ApplicationContextName,
    AssociationResult,
    AuthenticationValue,
    AuthenticationValueForm,
    MechanismName,
    ReleaseRequestReason,
    ReleaseResponseReason,
    decode_acse,
)
from edge_agent.dlms.apdu.conformance import Conformance
from edge_agent.dlms.errors import DecodeError, DlmsError, TruncatedError
from edge_agent.dlms.secret import Secret

# Green Book 11.5 (examples of AARQ/AARE): LN, no security, conformance 007E1F, PDU 1200.
AARQ_NO_SECURITY = "601DA109060760857405080101BE10040E01000000065F1F0400007E1F04B0"
AARE_ACCEPTED = (
    "6129A109060760857405080101A203020100A305A103020100BE10040E0800065F1F040000501F01F40007"
)
INITIATE_REQUEST = "01000000065F1F0400007E1F04B0"
LN = "A109060760857405080101"
USER_INFO = "BE10040E" + INITIATE_REQUEST


def test_green_book_aarq() -> None:
    raw = bytes.fromhex(AARQ_NO_SECURITY)
    aarq = AARQ.decode(raw)
    assert aarq == AARQ(
        ApplicationContextName.LOGICAL_NAME, user_information=bytes.fromhex(INITIATE_REQUEST)
    )
    assert aarq.encode() == raw
    initiate = decode_apdu(aarq.user_information)
    assert initiate == InitiateRequest(Conformance(0x007E1F), 1200)
    assert initiate.encode().hex().upper() == INITIATE_REQUEST


def test_green_book_aare() -> None:
    raw = bytes.fromhex(AARE_ACCEPTED)
    aare = decode_acse(raw)
    assert isinstance(aare, AARE) and aare.accepted
    assert aare.encode() == raw
    response = decode_apdu(aare.user_information)
    assert response == InitiateResponse(Conformance(0x00501F), 500)
    assert Conformance.GET in response.negotiated_conformance


def test_lls_aarq() -> None:
    # Mechanism low (LLS), password "12345678" as charstring [0].
    expected = bytes.fromhex(
        "6036" + LN + "8A0207808B0760857405080201AC0A80083132333435363738" + USER_INFO
    )
    aarq = AARQ(
        sender_acse_requirements=True,
        mechanism_name=MechanismName.LOW,
        calling_authentication_value=AuthenticationValue(Secret(b"12345678", "password")),
        user_information=bytes.fromhex(INITIATE_REQUEST),
    )
    assert aarq.encode() == expected
    decoded = AARQ.decode(expected)
    assert decoded == aarq
    assert "12345678" not in repr(decoded) and "3132" not in repr(decoded)


def test_hls_gmac_ciphered_aarq_and_aare() -> None:
    system_title = bytes.fromhex("4D4D4D0000BC614E")
    challenge = b"K56iVagY"
    ciphered_initiate = bytes.fromhex("211F30000000" + "00" * 25)
    aarq = AARQ(
        ApplicationContextName.LOGICAL_NAME_WITH_CIPHERING,
        calling_ap_title=system_title,
        sender_acse_requirements=True,
        mechanism_name=MechanismName.HIGH_GMAC,
        calling_authentication_value=AuthenticationValue(Secret(challenge)),
        user_information=ciphered_initiate,
    )
    raw = aarq.encode()
    assert raw.startswith(
        bytes.fromhex("60")
        + bytes((len(raw) - 2,))
        + bytes.fromhex("A109060760857405080103A60A0408")
        + system_title
    )
    assert bytes.fromhex("8B0760857405080205AC0A8008") + challenge in raw
    assert raw.endswith(bytes.fromhex("BE21041F") + ciphered_initiate)
    assert AARQ.decode(raw) == aarq

    aare_raw = bytes.fromhex(
        "614EA109060760857405080103A203020100A305A10302010E"
        "A40A04085341476770067A23"
        "88020780"
        "890760857405080205"
        "AA0A8008" + "50" * 8 + "BE1004"
        "0E" + "28" + "00" * 13
    )
    aare = AARE.decode(aare_raw)
    assert aare.result_source_diagnostic is AcseServiceUser.AUTHENTICATION_REQUIRED
    assert aare.responding_ap_title == bytes.fromhex("5341476770067A23")
    assert aare.mechanism_name is MechanismName.HIGH_GMAC
    assert aare.responder_acse_requirements
    assert aare.responding_authentication_value.value.reveal() == b"P" * 8
    assert aare.encode() == aare_raw


def test_rejected_aare_describes_the_diagnostic_and_the_fix() -> None:
    aare = AARE(
        result=AssociationResult.REJECTED_PERMANENT,
        result_source_diagnostic=AcseServiceUser.AUTHENTICATION_FAILURE,
    )
    decoded = AARE.decode(aare.encode())
    assert not decoded.accepted
    assert decoded.describe().startswith(
        "rejected-permanent (acse-service-user: authentication-failure); wrong password"
    )
    provider = AARE.decode(
        AARE(
            result=AssociationResult.REJECTED_TRANSIENT,
            result_source_diagnostic=AcseServiceProvider.NO_COMMON_ACSE_VERSION,
        ).encode()
    )
    assert isinstance(provider.result_source_diagnostic, AcseServiceProvider)
    assert (
        provider.describe() == "rejected-transient (acse-service-provider: no-common-acse-version)"
    )
    assert "A203020101A305A10302010D" in aare.encode().hex().upper()


def test_release_pdus() -> None:
    assert RLRQ().encode() == bytes.fromhex("6203800100")
    assert RLRE().encode() == bytes.fromhex("6303800100")
    assert RLRQ.decode(bytes.fromhex("6200")) == RLRQ(reason=None)
    with_info = RLRQ(ReleaseRequestReason.NORMAL, bytes.fromhex(INITIATE_REQUEST))
    assert with_info.encode() == bytes.fromhex("6215800100" + USER_INFO)
    assert decode_acse(with_info.encode()) == with_info
    assert decode_acse(bytes.fromhex("6303800101")).reason is ReleaseResponseReason.NOT_FINISHED


def test_conformance_bits_and_names() -> None:
    assert Conformance.ACTION == 1 and Conformance.RESERVED_ZERO == 0x800000
    assert Conformance.GENERAL_PROTECTION == 0x400000 and Conformance.GET == 0x000010
    both = Conformance.GET | Conformance.GENERAL_BLOCK_TRANSFER
    assert both.encode() == bytes.fromhex("5F1F0400200010")
    assert both.standard_names == ["general-block-transfer", "get"]
    assert Conformance.decode(bytes.fromhex("005F1F0400007E1F"), 1) == (Conformance(0x7E1F), 8)
    with pytest.raises(DecodeError, match="5f1f0400"):
        Conformance.decode(bytes.fromhex("5F1F0500007E1F00"))
    with pytest.raises(TruncatedError):
        Conformance.decode(bytes.fromhex("5F1F0400007E"))


# --- round trips and malformed input -------------------------------------------------------

_secret_values = st.builds(
    AuthenticationValue,
    st.binary(min_size=1, max_size=64).map(Secret),
    st.sampled_from(list(AuthenticationValueForm)),
)
_titles = st.none() | st.binary(max_size=200)
_ids = st.none() | st.integers(-(2**31), 2**31)
_mechanisms = st.none() | st.sampled_from(list(MechanismName))

aarqs = st.builds(
    AARQ,
    st.sampled_from(list(ApplicationContextName)),
    _titles,
    _titles,
    _ids,
    _ids,
    _titles,
    _titles,
    _ids,
    _ids,
    st.booleans(),
    _mechanisms,
    st.none() | _secret_values,
    _titles,
)
aares = st.builds(
    AARE,
    st.sampled_from(list(ApplicationContextName)),
    st.sampled_from(list(AssociationResult)),
    st.sampled_from(list(AcseServiceUser)) | st.sampled_from(list(AcseServiceProvider)),
    _titles,
    _titles,
    _ids,
    _ids,
    st.booleans(),
    _mechanisms,
    st.none() | _secret_values,
    _titles,
)
rlrqs = st.builds(RLRQ, st.none() | st.sampled_from(list(ReleaseRequestReason)), _titles)
rlres = st.builds(RLRE, st.none() | st.sampled_from(list(ReleaseResponseReason)), _titles)
any_acse = aarqs | aares | rlrqs | rlres


@settings(max_examples=150, deadline=None)
@given(any_acse)
def test_acse_round_trip(pdu: object) -> None:
    raw = pdu.encode()
    decoded = decode_acse(raw)
    assert decoded == pdu and type(decoded) is type(pdu)
    assert decoded.encode() == raw


@settings(max_examples=60, deadline=None)
@given(any_acse)
def test_acse_every_truncation_is_a_decode_error(pdu: object) -> None:
    raw = pdu.encode()
    for cut in range(len(raw)):
        with pytest.raises(DecodeError):
            decode_acse(raw[:cut])


@settings(max_examples=300, deadline=None)
@given(any_acse, st.data())
def test_acse_corruption_raises_only_dlms_errors(pdu: object, draw: st.DataObject) -> None:
    raw = bytearray(pdu.encode())
    index = draw.draw(st.integers(0, len(raw) - 1))
    raw[index] ^= draw.draw(st.integers(1, 255))
    try:
        decode_acse(bytes(raw))
    except DlmsError:
        pass


@pytest.mark.parametrize(
    ("hex_text", "message"),
    [
        ("6000", "application-context-name"),
        ("610B" + LN, "result"),
        ("600B" + "A109060760857405080109", "not a DLMS UA application context"),
        ("600D" + LN + "9F00", "multi-octet"),
        ("600F" + LN + "A4020200", "INTEGER needs"),
        ("6016" + LN + LN, "out of order or repeated"),
        ("600D" + LN + "B000", "unknown component tag 0xb0"),
        ("6080", "indefinite"),
        ("6200FF", "after the end"),
        ("6410", "none of AARQ"),
        ("600F80020700" + LN, "version1"),
        ("6011" + LN + "AC04820200 00".replace(" ", ""), "charstring"),
    ],
)
def test_malformed_acse(hex_text: str, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        decode_acse(bytes.fromhex(hex_text))
