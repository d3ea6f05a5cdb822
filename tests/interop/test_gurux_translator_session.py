"""The interoperability matrix, second direction: gurux-dlms's translator
(``GXDLMSTranslator.messageToXml``) reads every frame our client sends in a session that
uses every service, on every link (HDLC over a pty, HDLC over TCP, the wrapper) and with
every security (none, LLS, HLS-5 GMAC with suite 0 and suite 1).

Each frame goes to a fresh translator: one translator kept for a session takes the I-frame
that follows an RR for the next segment of a long message (``<NextFrame>``) and does not
decode it. Frame by frame, gurux must name what we sent: the HDLC frame type, every APDU,
and inside every glo- APDU the request it deciphered with our keys, which must be the
plaintext an independent AES-GCM (``cryptography``) gets from the frame. The descriptors,
invoke-ids, block numbers and access selectors gurux reads must be the bytes we sent, and the
session must hold exactly the requests it made.
"""

from __future__ import annotations

import datetime as dt
import re
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
from gurux_peer import (
    CLOCK,
    FROZEN,
    LINKS,
    LOAD_PROFILE,
    OUR_TITLE,
    PASSWORD,
    SECURITIES,
    MeterOnLink,
    SecuritySuite,
    decipher,
    enums,
    gurux,
    hdlc_fields,
    meter_on,  # noqa: F401 - the fixture
    our_client,
    our_settings,
    require,
    simulator_options,
)

from edge_agent.dlms.cosem.interface_classes import entry_descriptor, range_descriptor
from edge_agent.dlms.cosem.obis import Obis
from edge_agent.dlms.encoding.axdr import Long, OctetString
from edge_agent.dlms.encoding.date_time import CosemDateTime
from edge_agent.simulator.meter import EXAMPLE_AK, EXAMPLE_EK

TranslatorOutputType = require("gurux_dlms.enums").TranslatorOutputType

pytestmark = pytest.mark.timeout(60)

# gurux's SIMPLE_XML names of the requests' tags (Green Book 9.5) and of their choices.
SERVICES = {0x60: "AssociationRequest", 0x62: "ReleaseRequest", 0xC0: "GetRequest",
            0xC1: "SetRequest", 0xC3: "ActionRequest", 0xC8: "glo_GetRequest",
            0xC9: "glo_SetRequest", 0xCB: "glo_ActionRequest"}
CHOICES = {(0xC0, 1): "GetRequestNormal", (0xC0, 2): "GetRequestForNextDataBlock",
           (0xC0, 3): "GetRequestWithList", (0xC1, 1): "SetRequestNormal",
           (0xC3, 1): "ActionRequestNormal"}
CIPHERED = {0xC8: 0xC0, 0xC9: 0xC1, 0xCB: 0xC3}  # glo- tag -> the tag it protects
SNRM, DISC = 0x93, 0x53


@dataclass(frozen=True, slots=True)
class Session:
    frames: list[bytes]
    next_blocks: int  # GET-Request-Next our client sent for the day of profile
    rows: int


def our_session(meter: MeterOnLink, security: str, tmp_path: Path) -> Session:
    """Every frame our client sends in a session that uses each service: a GET with-list,
    a GET normal, the load profile by range (a day: block transfer) and by entry, and with
    the management client a SET and an ACTION."""
    settings, sap = our_settings(security)
    frames: list[bytes] = []
    profile, clock = Obis.parse(LOAD_PROFILE), Obis.parse(CLOCK)
    day_end = FROZEN.replace(minute=0, second=0)
    with our_client(meter.connection(sap), settings, tmp_path,
                    tap=lambda direction, frame: frames.append(bytes(frame))
                    if direction == "tx" else None) as client:
        # values and scalers of two registers and the clock: one GET-Request-With-List
        client.read([Obis.parse("1.0.1.8.0.255"), Obis.parse("1.0.2.8.0.255"), clock])
        client.get(clock, 8, 2)
        before = client.exchanges
        rows = client.get(profile, 7, 2, range_descriptor(
            CosemDateTime.from_datetime(day_end - dt.timedelta(days=1)),
            CosemDateTime.from_datetime(day_end)))
        next_blocks = client.exchanges - before - 1
        assert len(client.get(profile, 7, 2, entry_descriptor(1, 3))) == 3
        if security != "none":  # the public client may not write or act
            client.set(clock, 8, 2, OctetString(
                CosemDateTime.from_datetime(FROZEN + dt.timedelta(hours=1)).encode()))
            client.action(clock, 8, 6, Long(30))  # shift_time
    return Session(frames, next_blocks, len(rows))


def translator(security: str):
    """A fresh translator with our keys (gurux deciphers glo- APDUs only into comments)."""
    translator = gurux.GXDLMSTranslator(TranslatorOutputType.SIMPLE_XML)
    translator.comments = True
    if security.startswith("hls5"):
        translator.security = enums.Security.AUTHENTICATION_ENCRYPTION
        translator.securitySuite = SecuritySuite(int(security[-1]))
        translator.systemTitle = OUR_TITLE
        translator.blockCipherKey = EXAMPLE_EK
        translator.authenticationKey = EXAMPLE_AK
    return translator


# --- reading gurux's XML ------------------------------------------------------------------
# gurux puts what it deciphered into an XML comment that holds comments of its own (the
# OBIS code beside each InstanceId), so its output is not well-formed XML: each deciphered
# block is cut out and parsed alone.

_DECIPHERED = re.compile(r"<!--Decrypt(?:ed)? data:(?P<head>[^<]*)(?P<xml><.*?)\r?\n\s*-->",
                         re.DOTALL)
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)


@dataclass(frozen=True, slots=True)
class Deciphered:
    head: str  # the plaintext in hex (glo- APDUs) or "Security: ... Invocation Counter: ..."
    root: ET.Element | None


def parse_gurux(text: str) -> tuple[ET.Element, list[Deciphered]]:
    deciphered: list[Deciphered] = []

    def cut(match: re.Match[str]) -> str:
        inner = _COMMENT.sub("", match["xml"]).strip()  # empty: nothing deciphered
        deciphered.append(Deciphered(match["head"].strip(), ET.fromstring(inner) if inner else None))
        return f'<Deciphered Index="{len(deciphered) - 1}" />'

    outer = _COMMENT.sub("", _DECIPHERED.sub(cut, text))
    return ET.fromstring(outer), deciphered


# --- the check of one frame ----------------------------------------------------------------


def _value(element: ET.Element | None, name: str) -> str:
    assert element is not None and element.find(name) is not None, (name, element)
    return element.find(name).get("Value")


def assert_same_descriptor(element: ET.Element | None, raw: bytes, member: str) -> None:
    """``raw``: class id (2), instance id (6), attribute or method id (1)."""
    assert (_value(element, "ClassId"), _value(element, "InstanceId"), _value(element, member)) \
        == (raw[0:2].hex().upper(), raw[2:8].hex().upper(), raw[8:9].hex().upper())


def check_request(service: ET.Element, plain: bytes) -> tuple[str, int | None]:
    """gurux's reading of one xDLMS request is the bytes of ``plain``: (choice, selector)."""
    assert service.tag == SERVICES[plain[0]], (service.tag, plain.hex())
    (choice,) = list(service)
    assert choice.tag == CHOICES[plain[0], plain[1]], (choice.tag, plain.hex())
    assert _value(choice, "InvokeIdAndPriority") == f"{plain[2]:02X}"
    selector = None
    if choice.tag == "GetRequestForNextDataBlock":
        assert _value(choice, "BlockNumber") == plain[3:7].hex().upper()
    elif choice.tag == "GetRequestWithList":
        listed = choice.find("AttributeDescriptorList")
        assert int(listed.get("Qty"), 16) == len(listed) == plain[3], plain.hex()
        for index, item in enumerate(listed):  # 10 bytes each: descriptor + no selection
            raw = plain[4 + 10 * index:14 + 10 * index]
            assert raw[9] == 0, plain.hex()
            assert_same_descriptor(item.find("AttributeDescriptor"), raw, "AttributeId")
    elif choice.tag == "ActionRequestNormal":
        assert_same_descriptor(choice.find("MethodDescriptor"), plain[3:12], "MethodId")
        assert plain[12] == 1  # our ACTIONs carry parameters: pass 3's f(StoC), shift_time's
        assert_same_data(choice.find("MethodInvocationParameters"), plain[13:])
    else:
        assert_same_descriptor(choice.find("AttributeDescriptor"), plain[3:12], "AttributeId")
        access = choice.find("AccessSelection")
        assert (access is not None) == (plain[12] == 1), plain.hex()
        if access is not None:
            selector = int(_value(access, "AccessSelector"), 16)
            assert selector == plain[13]
        if choice.tag == "SetRequestNormal":
            assert_same_data(choice.find("Value"), plain[13:])
    return choice.tag, selector


# The A-XDR types of the values our session sends: tag -> gurux's element name.
_DATA = {0x09: "OctetString", 0x10: "Int16"}


def assert_same_data(parent: ET.Element | None, data: bytes) -> None:
    """The one value under ``parent`` is the A-XDR ``data`` (an octet-string or a long)."""
    assert parent is not None and len(parent) == 1, data.hex()
    raw = data[2:2 + data[1]] if data[0] == 0x09 else data[1:]
    assert len(data) == (2 + data[1] if data[0] == 0x09 else 3), data.hex()  # nothing after it
    assert (parent[0].tag, parent[0].get("Value")) == (_DATA[data[0]], raw.hex().upper())


def check_frame(frame: bytes, link: str, security: str) -> tuple[str, int | None]:
    """One frame through a fresh translator: what gurux read must be what we sent.
    Returns (what the frame is, the access selector of a GET)."""
    text = translator(security).messageToXml(gurux.GXByteBuffer(frame))
    root, deciphered = parse_gurux(text)
    if link == "wrapper":
        assert root.tag == "WRAPPER" and int(root.get("len"), 16) == len(frame)
        apdu = frame[8:]
        assert int.from_bytes(frame[6:8], "big") == len(apdu)
    else:
        control, information, segmented = hdlc_fields(frame)
        assert root.tag == "HDLC"
        assert _value(root, "FrameType") == f"{control:02X}"
        assert int(_value(root, "SourceAddress"), 16) == our_settings(security)[1]  # client SAP
        if control & 0x03 == 0x01:  # S-frame: our RR, asking for a long answer's next segment
            assert _value(root, "Command") == "NextFrame" and root.find("PDU") is None
            return "RR", None
        if control & 0x01:  # U-frame
            name = {SNRM: "Snrm", DISC: "DisconnectRequest"}[control | 0x10]  # P/F bit set
            assert root.find(f"PDU/{name}") is not None or root.find(name) is not None, text
            return name, None
        # I-frame: LLC (E6 E6 00), then the APDU whole (our requests fit one frame)
        assert not segmented and information[:3] == b"\xe6\xe6\x00", frame.hex()
        apdu = information[3:]
    pdu = root.find("PDU")
    assert pdu is not None and len(pdu) >= 1, f"gurux did not decode {frame.hex()}:\n{text}"
    element = pdu[len(pdu) - 1]  # after the placeholder of what it deciphered
    assert element.tag == SERVICES[apdu[0]], (element.tag, frame.hex(), text)
    hls = security.startswith("hls5")
    if apdu[0] in (0x60, 0x62):  # AARQ, RLRQ
        if apdu[0] == 0x60:
            mechanism = {"none": None, "lls": "Low"}.get(security, "HighGmac")
            found = element.find("MechanismName")
            assert (found.get("Value") if found is not None else None) == mechanism
            if security == "lls":
                assert _value(element, "CallingAuthentication") == PASSWORD.encode().hex().upper()
        else:
            assert _value(element, "Reason") == "Normal"
        if hls:  # user-information: a glo-initiate-request gurux must decipher
            assert [getattr(d.root, "tag", None) for d in deciphered] == ["InitiateRequest"], text
            assert element.find("glo_InitiateRequest") is not None
        else:  # a plain RLRQ carries no user-information (Green Book 9.3.3)
            assert not deciphered
            assert (element.find("InitiateRequest") is not None) == (apdu[0] == 0x60), text
        return element.tag, None
    if apdu[0] in CIPHERED:
        assert hls, f"a ciphered APDU without ciphering: {frame.hex()}"
        plain = decipher(apdu, OUR_TITLE)
        assert len(deciphered) == 1 and deciphered[0].root is not None, \
            f"gurux did not decipher {frame.hex()}:\n{text}"
        inner = deciphered[0]
        assert plain[0] == CIPHERED[apdu[0]]
        assert inner.head == plain.hex(" ").upper(), (inner.head, plain.hex())
        return check_request(inner.root, plain)
    assert not hls, f"a plain request in a ciphered association: {frame.hex()}"
    assert not deciphered
    return check_request(element, apdu)


@pytest.mark.parametrize("security", SECURITIES)
@pytest.mark.parametrize("link", LINKS)
def test_gurux_translator_reads_every_frame_our_client_sends(meter_on, tmp_path: Path,  # noqa: F811
                                                             link: str, security: str) -> None:
    meter = meter_on(link, simulator_options(security))
    session = our_session(meter, security, tmp_path)
    assert session.next_blocks >= 1, "the day of profile came without block transfer"
    assert 90 <= session.rows <= 97
    read = [check_frame(frame, link, security) for frame in session.frames]
    management = security != "none"
    expected = Counter({
        "AssociationRequest": 1,
        # HLS pass 3 is an ACTION (reply_to_HLS_authentication), then shift_time
        "ActionRequestNormal": int(management) + int(security.startswith("hls5")),
        "GetRequestWithList": 1,
        "GetRequestNormal": 3,  # the clock, the profile by range, the profile by entry
        "GetRequestForNextDataBlock": session.next_blocks,
        "SetRequestNormal": int(management),
        "ReleaseRequest": 1,
    })
    if link != "wrapper":
        expected.update({"Snrm": 1, "DisconnectRequest": 1})
        rr = sum(1 for what, _ in read if what == "RR")
        assert rr >= 1, "no segmented answer: the frames after an RR were not tried"
        expected["RR"] = rr
    assert Counter(what for what, _ in read) == +expected
    assert [selector for _, selector in read if selector is not None] == [1, 2]  # range, entry
