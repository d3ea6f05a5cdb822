"""The push reassembler: every framing, garbage, damage and cut-off captures, with offsets."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.dlms.apdu import DataNotification, decode_apdu
from edge_agent.dlms.apdu.general_block_transfer import split_into_gbt
from edge_agent.dlms.encoding.axdr import DoubleLongUnsigned, OctetString, Structure
from edge_agent.dlms.inspect import inspect
from edge_agent.dlms.link.hdlc.frame import LLC_RESPONSE, FrameKind, HdlcAddress, HdlcFrame
from edge_agent.dlms.link.mbus import split_telegram
from edge_agent.dlms.link.wrapper import WrapperFrame
from edge_agent.dlms.push.decoder import PushDecoder, PushMessage, PushRejected
from edge_agent.dlms.push.notification_quirks import (
    TAGGED_DATE_TIME_NOTE,
    standard_data_notification,
)
from edge_agent.dlms.push.reassembly import (
    WRAPPER,
    Damaged,
    Incomplete,
    Reassembler,
    ReassemblyEvent,
    Skipped,
    Telegram,
    reassemble,
)
from edge_agent.dlms.secret import Secret
from edge_agent.dlms.security import CipherKeys, SecurityControl, protect
from edge_agent.dlms.security.tags import Form

STAMP = bytes.fromhex("07ea0b1903101e00ff800000")  # 2026-11-25 16:30:00
BODY = Structure((OctetString(bytes.fromhex("0100010800ff")), DoubleLongUnsigned(123456)))
NOTIFICATION = DataNotification(0x40000001, STAMP, BODY).encode()
METER = HdlcAddress.server(1, 17, 2)
EK = Secret(bytes(range(16)), "EK")
TITLE = b"KFM\x10\x20\x02\xc8\xf5"


def ui(info: bytes, segmented: bool = False, source: HdlcAddress = METER) -> bytes:
    return HdlcFrame(HdlcAddress(16), source, FrameKind.UI, True, info=info,
                     segmented=segmented).encode()


def kinds(events: list[ReassemblyEvent]) -> list[str]:
    return [type(e).__name__ for e in events]


def incomplete(event: ReassemblyEvent) -> Incomplete:
    assert isinstance(event, Incomplete), event
    return event


def test_garbage_before_between_and_after_frames_is_skipped_with_offsets() -> None:
    frame = ui(LLC_RESPONSE + NOTIFICATION)
    data = b"boot log\r\n" + frame + b"\x00\x13\x37" + frame + b"log: frame done\r\n"
    events = reassemble(data)
    assert kinds(events) == ["Skipped", "Telegram", "Skipped", "Telegram", "Skipped"]
    assert [(e.offset, e.length) for e in events if isinstance(e, Skipped)] == [
        (0, 10), (10 + len(frame), 3), (13 + 2 * len(frame), 17)]
    assert all(e.apdu == NOTIFICATION for e in events if isinstance(e, Telegram))


def test_shared_and_idle_flags_are_not_garbage() -> None:
    frame = ui(LLC_RESPONSE + NOTIFICATION)
    shared = frame + frame[1:]  # one flag closes the first frame and opens the second
    assert kinds(reassemble(shared)) == ["Telegram", "Telegram"]
    assert kinds(reassemble(b"\x7e\x7e" + frame + b"\x7e\x7e\x7e")) == ["Telegram"]


def test_general_block_transfer_where_only_the_first_frame_has_the_llc_header() -> None:
    blocks = split_into_gbt(NOTIFICATION, 20, streaming=True)
    assert len(blocks) > 2
    wire = b"".join(ui((LLC_RESPONSE if n == 0 else b"") + b.encode()) for n, b in enumerate(blocks))
    decoder = PushDecoder("hdlc")
    events = [e for i in range(len(wire)) for e in decoder.feed(wire[i : i + 1])]
    assert len(events) == 1 and isinstance(events[0], PushMessage), events
    assert events[0].items[0].value == 123456 and events[0].wire == wire


def test_segmented_messages_concatenated_and_the_last_one_cut() -> None:
    apdu = LLC_RESPONSE + NOTIFICATION
    whole = ui(apdu[:10], True) + ui(apdu[10:20], True) + ui(apdu[20:])
    events = reassemble(whole + whole + ui(apdu[:10], True) + ui(apdu[10:20], True))
    assert kinds(events) == ["Telegram", "Telegram", "Incomplete"]
    assert "2 segment(s) with 17 bytes received" in incomplete(events[2]).message


def test_a_frame_cut_short_by_the_next_one_says_how_many_bytes_are_missing() -> None:
    frame = ui(LLC_RESPONSE + NOTIFICATION)
    events = reassemble(frame[:25] + frame)
    assert kinds(events) == ["Incomplete", "Telegram"]
    cut = events[0]
    assert isinstance(cut, Incomplete) and cut.offset == 0 and cut.received == 25
    assert cut.missing_bytes == len(frame) - 25
    assert f"{len(frame) - 25} byte(s) missing" in cut.message


def test_a_capture_that_ends_inside_a_frame() -> None:
    frame = ui(LLC_RESPONSE + NOTIFICATION)
    events = reassemble(frame + frame[:-5])
    assert kinds(events) == ["Telegram", "Incomplete"]
    assert incomplete(events[1]).offset == len(frame) and incomplete(events[1]).missing_bytes == 5


def ciphered(sc: int = 0x20) -> bytes:
    return protect(NOTIFICATION, sc=SecurityControl.decode(sc), keys=CipherKeys(ek=EK, ak=EK),
                   system_title=TITLE, invocation_counter=77, form=Form.GENERAL_GLO)


def test_a_damaged_ciphered_frame_names_its_sender_and_the_next_frame_decodes() -> None:
    frame = bytearray(ui(LLC_RESPONSE + ciphered()))
    frame[-4] ^= 0xFF  # inside the ciphertext: only the FCS can tell
    events = reassemble(bytes(frame) + ui(LLC_RESPONSE + NOTIFICATION))
    assert kinds(events) == ["Damaged", "Telegram"]
    damaged = events[0]
    assert isinstance(damaged, Damaged) and "FCS mismatch" in damaged.message
    assert "system title 4B464D102002C8F5 (manufacturer KFM)" in damaged.message
    assert "SC 0x20" in damaged.message and "invocation counter 77" in damaged.message
    assert damaged.seen is not None and damaged.seen.keys == ("ek",)


def test_an_intact_ciphered_frame_without_a_key_is_refused_with_the_sender() -> None:
    (rejected,) = PushDecoder("hdlc").feed(ui(LLC_RESPONSE + ciphered(0x30)))
    assert isinstance(rejected, PushRejected) and rejected.code == "wrong_key"
    assert "system title 4B464D102002C8F5 (manufacturer KFM)" in rejected.message
    assert "SC 0x30" in rejected.message and "authentication key (AK)" in rejected.message


def test_llc_header_without_a_frame() -> None:
    (telegram,) = reassemble(LLC_RESPONSE + NOTIFICATION)
    assert isinstance(telegram, Telegram) and telegram.framing == "llc"
    assert telegram.apdu == NOTIFICATION and telegram.notes
    assert inspect(LLC_RESPONSE + NOTIFICATION)["apdu"]["type"] == "data-notification"


def test_mbus_telegram_missing_its_first_segment_then_a_whole_one() -> None:
    first, second = split_telegram(ciphered(), first_segment_size=40)
    events = reassemble(second.encode() + first.encode() + second.encode())
    assert kinds(events) == ["Incomplete", "Telegram"]
    assert "segment 1 arrived without segment(s) 0..0" in incomplete(events[0]).message


def test_general_block_transfer_with_a_lost_block() -> None:
    blocks = split_into_gbt(NOTIFICATION, 20, streaming=True)
    frames = [ui((LLC_RESPONSE if n == 0 else b"") + b.encode()) for n, b in enumerate(blocks)]
    events = reassemble(b"".join(frames[:1] + frames[2:]))
    assert "block 2 missing (block 3 came next)" in incomplete(events[0]).message


def test_tagged_date_time_of_kaifa_is_read_as_the_standard_form() -> None:
    tagged = NOTIFICATION[:5] + b"\x09" + NOTIFICATION[5:]
    standard, note = standard_data_notification(tagged)
    assert standard == NOTIFICATION and note == TAGGED_DATE_TIME_NOTE
    assert standard_data_notification(NOTIFICATION) == (NOTIFICATION, None)
    (message,) = PushDecoder("hdlc").feed(ui(LLC_RESPONSE + tagged))
    assert isinstance(message, PushMessage)
    assert message.timestamp == datetime(2026, 11, 25, 16, 30)
    node = inspect(ui(LLC_RESPONSE + tagged))["apdu"]
    assert node["notes"] == [TAGGED_DATE_TIME_NOTE] and node["date_time"]["value"] == STAMP.hex()
    assert isinstance(decode_apdu(standard), DataNotification)


def test_the_absent_tagged_date_time_too() -> None:
    no_time = DataNotification(1, b"", BODY).encode()
    tagged = no_time[:5] + b"\x09" + no_time[5:]
    assert standard_data_notification(tagged)[0] == no_time


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 40), min_size=1, max_size=80), st.binary(max_size=30))
def test_any_chunking_gives_the_same_events_as_the_whole(cuts: list[int], noise: bytes) -> None:
    blocks = split_into_gbt(NOTIFICATION, 20, streaming=True)
    gbt = b"".join(ui((LLC_RESPONSE if n == 0 else b"") + b.encode()) for n, b in enumerate(blocks))
    noise = noise.replace(b"\x7e", b"")  # noise that holds no flag: every frame must survive
    data = noise + gbt + noise + ui(LLC_RESPONSE + NOTIFICATION) + noise
    whole = Reassembler(("hdlc",))
    expected = [e for e in whole.feed(data) + whole.finish() if isinstance(e, Telegram)]
    pieces = Reassembler(("hdlc",))
    got: list[ReassemblyEvent] = []
    position, index = 0, 0
    while position < len(data):
        size = cuts[index % len(cuts)]
        got += pieces.feed(data[position : position + size])
        position, index = position + size, index + 1
    got += pieces.finish()
    assert [e.apdu for e in got if isinstance(e, Telegram)] == [e.apdu for e in expected]
    assert [e.apdu for e in expected] == [NOTIFICATION, NOTIFICATION]


def test_timestamp_of_the_standard_form_is_unchanged() -> None:
    (message,) = PushDecoder("hdlc").feed(ui(LLC_RESPONSE + NOTIFICATION))
    assert isinstance(message, PushMessage)
    assert message.timestamp is not None and message.timestamp.tzinfo in (None, timezone(timedelta(0)))


def test_a_stream_of_nothing_but_frame_headers_stays_linear() -> None:
    """Headers that each promise a frame (M-Bus 68 L L 68, HDLC with a good HCS) and never
    deliver: every one is tried a bounded number of times, so a capture of them ends."""
    import time

    hdlc_header = ui(LLC_RESPONSE + NOTIFICATION)[:12]
    for data in (bytes([0x68, 0xFF, 0xFF, 0x68]) * 5000, hdlc_header * 2000):
        started = time.monotonic()
        events = reassemble(data)
        assert time.monotonic() - started < 20  # about 0.2 s; room for a loaded machine
        assert events and not any(isinstance(e, Telegram) for e in events)


def test_rejected_frames_keep_their_bytes_for_the_capture_file() -> None:
    """A listener's --capture gets damaged and cut-off frames too, so a bug report has them."""
    good = ui(LLC_RESPONSE + NOTIFICATION)
    damaged = bytearray(good)
    damaged[-4] ^= 0xFF
    cut = good[:20]
    events = PushDecoder("hdlc").feed(b"noise" + bytes(damaged) + cut + good)
    rejected = [e for e in events if isinstance(e, PushRejected)]
    assert [e.wire for e in rejected] == [bytes(damaged), cut]
    assert isinstance(events[-1], PushMessage) and events[-1].wire == good


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=0, max_size=40), st.binary(max_size=4), st.integers(0, 3))
def test_one_whole_wrapper_frame_gives_what_the_scan_gives(apdu: bytes, tail: bytes,
                                                             shape: int) -> None:
    """reassemble() takes a single wrapper frame without scanning: the events must be the
    scanning reassembler's, for whole frames, cut or padded ones, and GBT blocks."""
    body = (b"\xe0\xc0\x00\x01\x00\x00" + apdu[:1] if shape == 1 else apdu)  # a GBT block
    wire = WrapperFrame(1, 16, body).encode()
    data = wire + tail if shape == 2 else wire[:-1] if shape == 3 and body else wire
    scanner = Reassembler((WRAPPER,))
    assert reassemble(data) == scanner.feed(data) + scanner.finish()
