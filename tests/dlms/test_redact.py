"""LLS passwords never reach a log or capture: redact_frame masks them in AARQs carried
bare, in HDLC I-frames (HCS/FCS recomputed) and in wrapper frames; all else is unchanged."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from edge_agent.dlms.apdu.acse import AARQ, AuthenticationValue, MechanismName
from edge_agent.dlms.inspect import inspect
from edge_agent.dlms.link.hdlc.frame import LLC_COMMAND, FrameKind, HdlcAddress, HdlcFrame
from edge_agent.dlms.link.wrapper import WrapperFrame
from edge_agent.dlms.redact import redact_apdu, redact_frame
from edge_agent.dlms.secret import Secret

PASSWORD = b"S3cretPw"


def lls_aarq(password: bytes = PASSWORD) -> bytes:
    return AARQ(
        sender_acse_requirements=True,
        mechanism_name=MechanismName.LOW,
        calling_authentication_value=AuthenticationValue(Secret(password, "LLS password")),
        user_information=bytes.fromhex("01000000065f1f0400007e1fffff"),
    ).encode()


def hdlc(apdu: bytes) -> bytes:
    return HdlcFrame(HdlcAddress.server(1, 16), HdlcAddress.client(1), FrameKind.I, True, 0, 0,
                     LLC_COMMAND + apdu).encode()


def test_bare_aarq_password_is_masked_and_still_an_aarq() -> None:
    redacted = redact_apdu(lls_aarq())
    assert PASSWORD not in redacted
    aarq = AARQ.decode(redacted)
    assert aarq.mechanism_name is MechanismName.LOW
    assert aarq.calling_authentication_value.value.reveal() == b"*" * len(PASSWORD)


def test_hdlc_frame_is_masked_and_decodes_with_valid_checksums() -> None:
    frame = hdlc(lls_aarq())
    assert PASSWORD in frame
    redacted = redact_frame(frame)
    assert PASSWORD not in redacted
    decoded, _ = HdlcFrame.decode(redacted)  # raises on a bad HCS/FCS
    assert decoded.info.startswith(LLC_COMMAND + b"\x60")
    assert "error" not in inspect(redacted)


def test_wrapper_frame_is_masked() -> None:
    frame = WrapperFrame(1, 1, lls_aarq()).encode()
    redacted = redact_frame(frame)
    assert PASSWORD not in redacted
    assert WrapperFrame.decode(redacted)[0].destination_wport == 1


def test_hls_challenge_and_other_frames_pass_unchanged() -> None:
    hls = AARQ(
        sender_acse_requirements=True,
        mechanism_name=MechanismName.HIGH_GMAC,
        calling_ap_title=bytes(8),
        calling_authentication_value=AuthenticationValue(Secret(b"0123456789abcdef", "CtoS")),
        user_information=bytes.fromhex("01000000065f1f0400007e1fffff"),
    ).encode()
    get = bytes.fromhex("c001c100030100010800ff0200")
    for frame in (hls, hdlc(hls), get, hdlc(get), WrapperFrame(16, 1, get).encode()):
        assert redact_frame(frame) == frame


@given(st.binary(max_size=300))
def test_any_bytes_come_back_without_an_exception(data: bytes) -> None:
    assert isinstance(redact_frame(data), bytes)
