"""Push decoding: M-Bus (T-210D vector), DSMR P1 in GCM, HDLC, wrapper, GBT; replays, keys."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from known_answers import VECTORS

from edge_agent.dlms.apdu import DataNotification, EventNotificationRequest
from edge_agent.dlms.apdu.base import CosemAttributeDescriptor
from edge_agent.dlms.apdu.general_block_transfer import split_into_gbt
from edge_agent.dlms.cosem.obis import Obis
from edge_agent.dlms.cosem.units import ScalerUnit
from edge_agent.dlms.encoding.axdr import (
    DoubleLongUnsigned,
    Enum,
    Integer,
    LongUnsigned,
    OctetString,
    Structure,
    VisibleString,
)
from edge_agent.dlms.errors import AuthenticationError, DecodeError, DlmsError, ReplayError
from edge_agent.dlms.link.hdlc.frame import LLC_RESPONSE, FrameKind, HdlcAddress, HdlcFrame
from edge_agent.dlms.link.mbus import split_telegram
from edge_agent.dlms.link.wrapper import WrapperFrame
from edge_agent.dlms.push.body import PushObject, decode_body, parse_object_list
from edge_agent.dlms.push.decoder import PushDecoder, PushMessage, PushRejected
from edge_agent.dlms.push.dsmr import DsmrTelegram, crc16_arc
from edge_agent.dlms.push.reassembly import Telegram, reassemble
from edge_agent.dlms.secret import Secret
from edge_agent.dlms.security import CipherKeys, ReceiveCounterGuard, SecurityControl, protect
from edge_agent.dlms.security.tags import Form

CASE = json.loads((VECTORS / "mbus-push.json").read_text())["cases"][0]
FRAMES = bytes.fromhex(CASE["inputs"]["frames"])
EK = Secret.from_hex(CASE["inputs"]["ek"], "EK")
AK = Secret(bytes(range(0x40, 0x50)), "AK")
METER_TITLE = b"SAG\x67\x00\x12\x34\x56"
AUTH_ENC = SecurityControl(suite=0, authentication=True, encryption=True)

# The Sagemcom T-210D-r telegram of dsmr_parser's tests (ndokter/dsmr_parser,
# test/example_telegrams.py, TELEGRAM_SAGEMCOM_T210_D_R): a public capture, CRC 7EF9.
T210D_R_TELEGRAM = (
    "/EST5\\253710000_A\r\n"
    "\r\n"
    "1-3:0.2.8(50)\r\n"
    "0-0:1.0.0(221006155014S)\r\n"
    "1-0:1.8.0(006545766*Wh)\r\n"
    "1-0:1.8.1(005017120*Wh)\r\n"
    "1-0:1.8.2(001528646*Wh)\r\n"
    "1-0:1.7.0(000000286*W)\r\n"
    "1-0:2.8.0(000000058*Wh)\r\n"
    "1-0:2.8.1(000000000*Wh)\r\n"
    "1-0:2.8.2(000000058*Wh)\r\n"
    "1-0:2.7.0(000000000*W)\r\n"
    "1-0:3.8.0(000000747*varh)\r\n"
    "1-0:3.8.1(000000000*varh)\r\n"
    "1-0:3.8.2(000000747*varh)\r\n"
    "1-0:3.7.0(000000000*var)\r\n"
    "1-0:4.8.0(003897726*varh)\r\n"
    "1-0:4.8.1(002692848*varh)\r\n"
    "1-0:4.8.2(001204878*varh)\r\n"
    "1-0:4.7.0(000000166*var)\r\n"
    "!7EF9\r\n"
).encode("ascii")


def mbus_apdus(data: bytes) -> list[bytes]:
    """The APDUs of the M-Bus telegrams in ``data``, through the one push reassembler."""
    return [e.apdu for e in reassemble(data, ("mbus",)) if isinstance(e, Telegram)]


def values(message: PushMessage) -> dict[str, object]:
    return {item.obis.dotted: item.value for item in message.items}


def only_message(events: list) -> PushMessage:
    assert len(events) == 1 and isinstance(events[0], PushMessage), events
    return events[0]


def only_rejection(events: list) -> PushRejected:
    assert len(events) == 1 and isinstance(events[0], PushRejected), events
    return events[0]


# --- the T-210D customer interface vector ---------------------------------------------------------


def test_mbus_vector_end_to_end() -> None:
    message = only_message(PushDecoder("mbus", ek=EK).feed(FRAMES))
    assert values(message) == CASE["expected"]["values"]
    assert message.meter_number == CASE["expected"]["meter_number"]
    assert message.meter_id == CASE["expected"]["meter_number"]
    assert message.plaintext.hex() == CASE["expected"]["plaintext"]
    assert message.timestamp == datetime(2026, 11, 24, 13, 45, tzinfo=timezone(timedelta(hours=1)))
    assert message.security == SecurityControl(suite=0, encryption=True)
    assert message.system_title == bytes.fromhex("5341475905a19dcb")
    assert message.layout == "obis-triples"
    assert message.wire == FRAMES
    units = {item.obis.dotted: item.unit for item in message.items}
    assert units["1.0.1.8.0.255"] == "Wh" and units["1.0.32.7.0.255"] == "V"
    assert units["1.0.13.7.0.255"] is None  # power factor: unit 255, no unit


def test_mbus_vector_fed_byte_by_byte() -> None:
    decoder = PushDecoder("mbus", ek=EK)
    events = [event for i in range(len(FRAMES)) for event in decoder.feed(FRAMES[i:i + 1])]
    assert values(only_message(events)) == CASE["expected"]["values"]


def test_mbus_overflowed_first_frame_length() -> None:
    (apdu,) = mbus_apdus(FRAMES)
    frames = split_telegram(apdu, first_segment_size=252)
    wire = frames[0].encode(allow_length_overflow=True) + b"".join(f.encode() for f in frames[1:])
    assert wire[:4] == bytes.fromhex("68010168")
    message = only_message(PushDecoder("mbus", ek=EK).feed(b"\x00\xe5garbage" + wire))
    assert values(message) == CASE["expected"]["values"]
    assert message.wire == wire


def test_configured_meter_id_wins() -> None:
    message = only_message(PushDecoder("mbus", ek=EK, meter_id="wienernetze").feed(FRAMES))
    assert message.meter_id == "wienernetze"
    assert message.meter_number == CASE["expected"]["meter_number"]


def test_replayed_counter_is_rejected_and_unused() -> None:
    decoder = PushDecoder("mbus", ek=EK)
    only_message(decoder.feed(FRAMES))
    rejected = only_rejection(decoder.feed(FRAMES))
    assert rejected.code == "counter_out_of_step"
    assert isinstance(rejected.error, ReplayError)
    assert "replayed" in rejected.message and "not used" in rejected.message


def test_wrong_key_encryption_only_gives_clear_error_and_no_readings() -> None:
    guard = ReceiveCounterGuard()
    decoder = PushDecoder("mbus", ek=Secret(bytes(16)), guard=guard)
    rejected = only_rejection(decoder.feed(FRAMES))
    assert rejected.code == "wrong_key"
    assert isinstance(rejected.error, AuthenticationError)
    assert "wrong encryption key (EK)" in rejected.message
    assert guard.snapshot() == {}  # a frame that did not decode moves no counter
    assert EK.reveal().hex() not in rejected.message


def test_missing_ek_names_the_key() -> None:
    rejected = only_rejection(PushDecoder("mbus").feed(FRAMES))
    assert rejected.code == "wrong_key" and "EK" in rejected.message


def test_a_lost_segment_is_reported_and_the_next_telegram_decodes() -> None:
    (apdu,) = mbus_apdus(FRAMES)
    _first, second = split_telegram(apdu)
    decoder = PushDecoder("mbus", ek=EK)
    rejected = only_rejection(decoder.feed(second.encode()))
    assert rejected.code == "decode_error" and "segment" in rejected.message
    assert values(only_message(decoder.feed(FRAMES))) == CASE["expected"]["values"]


# --- DSMR P1 in general-glo-ciphering (T-210D-r) -----------------------------------------------


def cipher(plain: bytes, counter: int, sc: SecurityControl = AUTH_ENC,
           keys: CipherKeys | None = None) -> bytes:
    return protect(plain, sc=sc, keys=keys or CipherKeys(ek=EK, ak=AK), system_title=METER_TITLE,
                   invocation_counter=counter, form=Form.GENERAL_GLO)


def test_dsmr_crc_of_the_public_telegram() -> None:
    assert crc16_arc(b"123456789") == 0xBB3D
    end = T210D_R_TELEGRAM.index(b"!") + 1
    assert crc16_arc(T210D_R_TELEGRAM[:end]) == 0x7EF9


def test_dsmr_p1_in_gcm() -> None:
    stream = b"\x00\xdbnoise" + cipher(T210D_R_TELEGRAM, 0x10000001)
    decoder = PushDecoder("dsmr", ek=EK, ak=AK)
    events = decoder.feed(stream[:50]) + decoder.feed(stream[50:])
    message = only_message(events)
    got = values(message)
    assert got["1.0.1.8.0.255"] == 6545766 and got["1.0.4.7.0.255"] == 166
    assert got["1.3.0.2.8.255"] == 50
    assert {i.obis.dotted: i.unit for i in message.items}["1.0.4.8.0.255"] == "varh"
    assert message.timestamp == datetime(2022, 10, 6, 15, 50, 14,
                                         tzinfo=timezone(timedelta(hours=2)))
    assert message.layout == "dsmr-p1" and message.invocation_counter == 0x10000001
    assert message.meter_id == METER_TITLE.hex().upper()  # no equipment id in this telegram
    assert len(message.items) == 18


def test_dsmr_with_a_wrong_ak_is_a_wrong_key() -> None:
    stream = cipher(T210D_R_TELEGRAM, 7)
    rejected = only_rejection(PushDecoder("dsmr", ek=EK, ak=Secret(bytes(16))).feed(stream))
    assert rejected.code == "wrong_key" and isinstance(rejected.error, AuthenticationError)


def test_dsmr_crc_mismatch_is_rejected() -> None:
    damaged = T210D_R_TELEGRAM.replace(b"006545766", b"006545767")
    rejected = only_rejection(PushDecoder("dsmr", ek=EK, ak=AK).feed(cipher(damaged, 8)))
    assert rejected.code == "decode_error" and "CRC mismatch" in rejected.message


def test_dsmr_values_and_hex_text() -> None:
    telegram = DsmrTelegram("SAG5\\T210-D-r", (
        "0-0:1.0.0(240115083000W)", "0-0:96.1.1(4530303334)", "1-0:32.7.0(230.1*V)",
        "1-0:31.7.0(001.25*A)", "0-1:24.2.1(240115080000W)(00012.345*m3)",
        "1-0:99.97.0(1)(0-0:96.7.19)(240101000000W)(0000000240*s)", "0-0:96.14.0(0002)"))
    decoded = DsmrTelegram.decode(telegram.encode())
    assert decoded == telegram
    got = {item.obis.dotted: item for item in decoded.items}
    assert got["0.0.96.1.1.255"].value == "E0034"
    assert got["1.0.32.7.0.255"].value == 230.1 and got["1.0.32.7.0.255"].scaler == -1
    assert got["1.0.31.7.0.255"].value == 1.25
    assert got["0.1.24.2.1.255"].value == 12.345 and got["0.1.24.2.1.255"].unit == "m3"
    assert isinstance(got["1.0.99.97.0.255"].value, list)
    assert got["0.0.96.14.0.255"].value == 2
    assert decoded.timestamp == datetime(2024, 1, 15, 8, 30, tzinfo=timezone(timedelta(hours=1)))
    assert decoded.equipment_id == "E0034"


@pytest.mark.parametrize("data, words", [
    (b"", "starts with '/'"),
    (b"/SAG5 no end", "no end line"),
    (b"/SAG5\r\n\r\n1-0:1.8.0(1*Wh)\r\n!ZZZZ\r\n", "not four hex digits"),
    (b"/SAG5\r\n\xff!1234\r\n", "non-ASCII"),
    (b"/SAG5\r\n0-0:1.0.0(241399000000W)\r\n!", "not a valid date"),
])
def test_dsmr_malformed(data: bytes, words: str) -> None:
    with pytest.raises(DecodeError, match=words):
        DsmrTelegram.decode(data).timestamp  # noqa: B018 - the time stamp parses lazily


line_text = st.text(alphabet="0123456789.*()-:ABCWhkVm", max_size=30)


@given(st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ5\\_-", min_size=1, max_size=20),
       st.lists(line_text.filter(lambda s: s.strip() and s.strip()[0] != "(" and "!" not in s),
                max_size=8))
def test_dsmr_round_trip(identification: str, lines: list[str]) -> None:
    telegram = DsmrTelegram(identification.strip() or "X", tuple(line.strip() for line in lines))
    assert DsmrTelegram.decode(telegram.encode()) == telegram


# --- HDLC, wrapper, general-block-transfer ---------------------------------------------------------

PUSH_SETUP = OctetString(bytes([0, 0, 25, 9, 0, 255]))
CLOCK_VALUE = OctetString(bytes.fromhex("07e8010f010c000000ffc400"))  # 2024-01-15 12:00 UTC+1
IDIS_OBJECTS = parse_object_list(["0.0.25.9.0.255", "0.0.1.0.0.255", "1.0.1.8.0.255@0,Wh",
                                  "3/1.0.32.7.0.255", "3/1.0.32.7.0.255:3"])
IDIS_BODY = Structure((PUSH_SETUP, CLOCK_VALUE, DoubleLongUnsigned(123456), LongUnsigned(2301),
                       Structure((Integer(-1), Enum(35)))))


def idis_notification(counter: int = 9, date_time: bytes = b"") -> bytes:
    return DataNotification(counter, date_time, IDIS_BODY).encode()


def ui_frame(info: bytes, segmented: bool = False) -> bytes:
    return HdlcFrame(HdlcAddress.client(102), HdlcAddress.server(1, 16), FrameKind.UI,
                     info=info, segmented=segmented).encode()


def test_hdlc_ui_push_with_object_list() -> None:
    wire = ui_frame(LLC_RESPONSE + cipher(idis_notification(), 21))
    decoder = PushDecoder("hdlc", ek=EK, ak=AK, meter_id="idis", objects=IDIS_OBJECTS)
    message = only_message(decoder.feed(b"\x7e\x7e" + wire))
    assert values(message)["1.0.1.8.0.255"] == 123456
    assert values(message)["1.0.32.7.0.255"] == 230.1  # scaler pushed as attribute 3
    assert message.timestamp == datetime(2024, 1, 15, 12, tzinfo=timezone(timedelta(hours=1)))
    assert message.layout == "push-object-list" and message.meter_id == "idis"
    assert message.wire == wire
    assert "0.0.25.9.0.255" not in values(message)


def test_hdlc_segmented_plain_push_without_llc() -> None:
    apdu = idis_notification()
    wire = ui_frame(apdu[:20], segmented=True) + ui_frame(apdu[20:])
    message = only_message(PushDecoder("hdlc", objects=IDIS_OBJECTS).feed(wire))
    assert message.security is None and values(message)["1.0.1.8.0.255"] == 123456


def test_idis_push_without_object_list_says_what_to_configure() -> None:
    rejected = only_rejection(PushDecoder("hdlc").feed(ui_frame(LLC_RESPONSE + idis_notification())))
    assert rejected.code == "decode_error" and "push object list" in rejected.message


def test_object_list_of_the_wrong_length() -> None:
    rejected = only_rejection(PushDecoder("hdlc", objects=IDIS_OBJECTS[:3]).feed(
        ui_frame(LLC_RESPONSE + idis_notification())))
    assert "5 values" in rejected.message and "3 entries" in rejected.message


def test_wrapper_push_through_general_block_transfer() -> None:
    apdu = cipher(idis_notification(), 30)
    blocks = split_into_gbt(apdu, 64, streaming=True)
    assert len(blocks) > 1
    stream = b"".join(WrapperFrame(1, 102, block.encode()).encode() for block in blocks)
    decoder = PushDecoder("wrapper", ek=EK, ak=AK, objects=IDIS_OBJECTS)
    events = [e for i in range(0, len(stream), 7) for e in decoder.feed(stream[i:i + 7])]
    assert values(only_message(events))["1.0.1.8.0.255"] == 123456


def test_event_notification() -> None:
    apdu = EventNotificationRequest(
        CosemAttributeDescriptor(1, bytes([0, 0, 96, 11, 0, 255]), 2), LongUnsigned(47)).encode()
    wire = WrapperFrame(1, 102, apdu).encode()
    message = only_message(PushDecoder("wrapper").feed(wire))
    assert values(message) == {"0.0.96.11.0.255": 47} and message.layout == "event-notification"


def test_unknown_format() -> None:
    with pytest.raises(DecodeError, match="mbus"):
        PushDecoder("smoke-signals")


# --- body layouts ---------------------------------------------------------------------------------


def test_nested_triples_and_visible_string_meter_number() -> None:
    body = Structure((
        Structure((OctetString(bytes([1, 0, 1, 8, 0, 255])), DoubleLongUnsigned(5),
                   Structure((Integer(3), Enum(30))))),
        Structure((OctetString(bytes([1, 0, 2, 8, 0, 255])), DoubleLongUnsigned(7))),
        VisibleString("KFM1200200000000")))
    content = decode_body(body)
    assert [(i.obis.dotted, i.value, i.unit) for i in content.items] == [
        ("1.0.1.8.0.255", 5000, "Wh"), ("1.0.2.8.0.255", 7, None)]
    assert content.meter_number == "KFM1200200000000"


def test_parse_object_list() -> None:
    objects = parse_object_list(["0.0.25.9.0.255", "1.0.1.8.0.255@0,Wh", "4/1-0:1.6.0*255:2",
                                 "0.0.1.0.0.255", "1.0.32.7.0.255@-1"])
    assert objects == (
        PushObject(40, Obis(0, 0, 25, 9, 0), 1),
        PushObject(3, Obis(1, 0, 1, 8, 0), 2, ScalerUnit(0, 30)),
        PushObject(4, Obis(1, 0, 1, 6, 0), 2),
        PushObject(8, Obis(0, 0, 1, 0, 0), 2),
        PushObject(3, Obis(1, 0, 32, 7, 0), 2, ScalerUnit(-1, 255)),
    )
    for bad in (["1.0.1.8.0.255@x"], ["nonsense"], ["1.0.1.8.0.255@0,furlongs"], ["x/1.8.0"]):
        with pytest.raises(DecodeError, match="object list entry 1"):
            parse_object_list(bad)


# --- robustness -----------------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(["mbus", "hdlc", "wrapper", "dsmr"]), st.binary(max_size=400),
       st.integers(0, 400))
def test_feed_never_raises(format: str, data: bytes, cut: int) -> None:
    decoder = PushDecoder(format, ek=EK, ak=AK, objects=IDIS_OBJECTS)
    for event in decoder.feed(data[:cut]) + decoder.feed(data[cut:]):
        assert isinstance(event, PushMessage | PushRejected)
        if isinstance(event, PushRejected):
            assert isinstance(event.error, DlmsError)


@settings(max_examples=150, deadline=None)
@given(st.integers(0, len(FRAMES) - 1), st.integers(1, 255))
def test_corrupted_vector_never_yields_wrong_values(position: int, flip: int) -> None:
    damaged = bytearray(FRAMES)
    damaged[position] ^= flip
    for event in PushDecoder("mbus", ek=EK).feed(bytes(damaged)):
        if isinstance(event, PushMessage):  # only a flip the checksums cannot see
            assert set(values(event)) <= set(CASE["expected"]["values"])


def test_endless_hdlc_segments_are_dropped() -> None:
    decoder = PushDecoder("hdlc")
    piece = ui_frame(bytes(2000), segmented=True)
    events = [e for _ in range(40) for e in decoder.feed(piece)]
    assert events and all(isinstance(e, PushRejected) and "exceeds" in e.message for e in events)
