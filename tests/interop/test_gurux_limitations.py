"""What gurux-dlms 1.0.203 cannot do, met while building the matrix (docs/INTEROP.md lists
them). Each test pins one limitation as it stands: when one starts failing, gurux has
changed, and the note in docs/INTEROP.md (and the work-around in the matrix) must change too.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from itertools import pairwise
from pathlib import Path

import pytest
from gurux_peer import (
    CLOCK,
    enums,
    gurux,
    hdlc_fields,
    meter_on,  # noqa: F401 - the fixture
    require,
    simulator_options,
)
from test_gurux_translator_session import our_session, translator

from edge_agent.dlms.apdu import (
    ActionRequestWithList,
    CosemAttributeDescriptor,
    CosemAttributeDescriptorWithSelection,
    CosemMethodDescriptor,
    GetRequestNormal,
    GetRequestWithList,
    SelectiveAccess,
    SetRequestNormal,
)
from edge_agent.dlms.encoding import axdr
from edge_agent.simulator.meter import EXAMPLE_AK, EXAMPLE_EK

Command = require("gurux_dlms.enums").Command

pytestmark = pytest.mark.timeout(60)

PROFILE = CosemAttributeDescriptor(7, bytes((1, 0, 99, 1, 0, 255)), 2)
ENTRY = SelectiveAccess(2, axdr.Structure((axdr.DoubleLongUnsigned(1), axdr.DoubleLongUnsigned(3),
                                           axdr.LongUnsigned(1), axdr.LongUnsigned(0))))


def pdu_to_xml(apdu: bytes) -> str:
    return gurux.GXDLMSTranslator(enums.TranslatorOutputType.SIMPLE_XML).pduToXml(
        gurux.GXByteBuffer(apdu))


def test_one_translator_for_a_whole_hdlc_session_skips_the_frame_after_an_rr(
        meter_on, tmp_path: Path) -> None:  # noqa: F811
    """Kept for a session, the translator takes the I-frame after our RR (which asks for the
    next segment of a long answer) for a further segment and prints ``<NextFrame>``: hence
    one translator per frame in the matrix."""
    meter = meter_on("hdlc-tcp", simulator_options("none"))
    frames = our_session(meter, "none", tmp_path).frames
    after_rr = [after for frame, after in pairwise(frames)  # I-frames right after an RR
                if hdlc_fields(frame)[0] & 0x03 == 0x01 and not hdlc_fields(after)[0] & 0x01]
    shared = translator("none")
    skipped = [frame for frame in frames
               if "<NextFrame Value=" in shared.messageToXml(gurux.GXByteBuffer(frame))]
    assert after_rr and skipped == after_rr


def test_no_general_signing() -> None:
    """No command for general-signing (0xDF, Green Book 9.2.7.2.4.3): not translated."""
    assert not hasattr(Command, "GENERAL_SIGNING")
    assert pdu_to_xml(bytes.fromhex("df0800000000000000000000")).startswith("<Data=")


def test_action_request_with_list_is_not_translated() -> None:
    method = CosemMethodDescriptor(8, bytes((0, 0, 1, 0, 0, 255)), 6)
    apdu = ActionRequestWithList(0xC1, (method, method), (axdr.Long(1), axdr.Long(2)))
    with pytest.raises(ValueError, match="not a valid ObjectType"):
        pdu_to_xml(apdu.encode())


def test_set_with_selective_access_is_misread() -> None:
    """The access selection is read as the value: the value 1 we set does not appear."""
    text = pdu_to_xml(SetRequestNormal(0xC1, PROFILE, axdr.Long(1), ENTRY).encode())
    assert "<AccessSelection" not in text and '<Int16 Value="0001"' not in text


def test_strings_are_not_escaped() -> None:
    clock = CosemAttributeDescriptor(8, bytes((0, 0, 1, 0, 0, 255)), 2)
    text = pdu_to_xml(SetRequestNormal(0xC1, clock, axdr.VisibleString("a<b&c")).encode())
    assert '<String Value="a<b&c" />' in text
    with pytest.raises(ET.ParseError):
        ET.fromstring(text)


def test_with_list_access_selections_are_not_printed() -> None:
    apdu = GetRequestWithList(0xC1, (CosemAttributeDescriptorWithSelection(PROFILE, ENTRY),))
    text = pdu_to_xml(apdu.encode())
    assert "<AttributeDescriptorWithSelection>" in text and "AccessSelect" not in text
    # the same selection in a GET-Request-Normal is printed
    assert '<AccessSelector Value="02" />' in pdu_to_xml(GetRequestNormal(0xC1, PROFILE, ENTRY).encode())


def test_deciphering_is_commented_unchecked_and_silent(meter_on, tmp_path: Path,  # noqa: F811
                                                       capsys) -> None:
    """A glo- APDU is deciphered only with ``comments`` on, into an XML comment that holds
    comments of its own (not well-formed XML); the authentication tag is not checked (a
    wrong AK still deciphers); with a wrong EK nothing says that deciphering failed. Each
    deciphering prints to stdout."""
    meter = meter_on("wrapper", simulator_options("hls5-suite0"))
    frames = our_session(meter, "hls5-suite0", tmp_path).frames
    get = next(frame for frame in frames if frame[8] == 0xC8)  # a glo-get-request
    capsys.readouterr()
    right = translator("hls5-suite0").messageToXml(gurux.GXByteBuffer(get))
    assert capsys.readouterr().out == "Encryption is applied.\nAuthentication is applied.\n"
    assert "<!--Decrypt data:" in right and f"<!--{CLOCK}-->" in right
    with pytest.raises(ET.ParseError):
        ET.fromstring(right)
    quiet = translator("hls5-suite0")
    quiet.comments = False
    assert "Decrypt" not in quiet.messageToXml(gurux.GXByteBuffer(get))
    wrong_ak = translator("hls5-suite0")
    wrong_ak.authenticationKey = bytes(reversed(EXAMPLE_AK))
    assert wrong_ak.messageToXml(gurux.GXByteBuffer(get)) == right
    wrong_ek = translator("hls5-suite0")
    wrong_ek.blockCipherKey = bytes(reversed(EXAMPLE_EK))
    text = wrong_ek.messageToXml(gurux.GXByteBuffer(get))
    assert "Decrypt" not in text and "rror" not in text and "<glo_GetRequest Value=" in text


def test_wrapper_addresses_are_swapped_in_the_translation() -> None:
    """A request from client wPort 16 to server wPort 1 reads as target 0x10, source 1."""
    apdu = GetRequestNormal(0xC1, CosemAttributeDescriptor(3, bytes((1, 0, 1, 8, 0, 255)), 2))
    frame = bytes.fromhex("0001 0010 0001") + len(apdu.encode()).to_bytes(2, "big") + apdu.encode()
    text = gurux.GXDLMSTranslator(enums.TranslatorOutputType.SIMPLE_XML).messageToXml(
        gurux.GXByteBuffer(frame))
    root = ET.fromstring(text)
    assert (root.find("TargetAddress").get("Value"), root.find("SourceAddress").get("Value")) \
        == ("10", "1")


def test_failures_are_printed_then_reported_as_framing(capsys) -> None:
    with pytest.raises(ValueError, match="Invalid DLMS framing"):
        gurux.GXDLMSTranslator(enums.TranslatorOutputType.SIMPLE_XML).messageToXml(
            gurux.GXByteBuffer(bytes.fromhex("7ea00a000200210310ffff7e")))  # a bad check sequence
    assert capsys.readouterr().out.strip()  # the real error went to stdout
