"""Wired M-Bus long frames and the T-210D customer-interface telegram (vectors/mbus-push.json)."""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given
from hypothesis import strategies as st
from known_answers import VECTORS

from edge_agent.dlms.errors import DlmsError, EncodeError, TruncatedError
from edge_agent.dlms.link.mbus import MbusLongFrame, split_telegram
from edge_agent.dlms.push.reassembly import (
    Damaged,
    Incomplete,
    Reassembler,
    ReassemblyEvent,
    Skipped,
    Telegram,
    reassemble,
)

VECTOR = json.loads(
    (VECTORS / "mbus-push.json").read_text()
)["cases"][0]
FRAMES = bytes.fromhex(VECTOR["inputs"]["frames"])


def mbus_apdus(data: bytes) -> list[bytes]:
    """The APDUs of the M-Bus telegrams in ``data``, through the one push reassembler."""
    return [e.apdu for e in reassemble(data, ("mbus",)) if isinstance(e, Telegram)]


def vector_frames() -> list[MbusLongFrame]:
    first, end = MbusLongFrame.decode(FRAMES)
    second, _ = MbusLongFrame.decode(FRAMES, end)
    return [first, second]


def decrypt_encryption_only(apdu: bytes, ek: bytes) -> bytes:
    """general-glo-ciphering, SC 0x20: AES-GCM's CTR part (counter block starts at 2), no tag."""
    assert apdu[0] == 0xDB and apdu[1] == 8
    system_title = apdu[2:10]
    assert apdu[10] == 0x81  # BER long form, one length byte
    length = apdu[11]
    content = apdu[12 : 12 + length]
    assert len(content) == length and content[0] == 0x20
    iv = system_title + content[1:5]
    decryptor = Cipher(algorithms.AES(ek), modes.CTR(iv + b"\x00\x00\x00\x02")).decryptor()
    return decryptor.update(content[5:]) + decryptor.finalize()


def test_vector_frames_and_segment_headers() -> None:
    frames = vector_frames()
    assert [(f.control, f.address, f.control_information) for f in frames] == [
        (0x53, 0xFF, 0x00),
        (0x53, 0xFF, 0x11),
    ]
    assert [f.data[:2] for f in frames] == [b"\x01\x67", b"\x01\x67"]
    assert [(f.segment_number, f.final_segment) for f in frames] == [(0, False), (1, True)]


def test_vector_reassembles_into_the_ciphered_data_notification() -> None:
    (apdu,) = mbus_apdus(FRAMES)
    # db 08 <system title "SAGY..."> 81 f8 <248 bytes: SC, IC, ciphertext>
    assert apdu[:2] == b"\xdb\x08" and apdu[2:5] == b"SAG" and apdu[10:12] == b"\x81\xf8"
    assert len(apdu) == 12 + 0xF8
    plaintext = decrypt_encryption_only(apdu, bytes.fromhex(VECTOR["inputs"]["ek"]))
    assert plaintext.hex() == VECTOR["expected"]["plaintext"]


def test_split_reproduces_the_meter_frames() -> None:
    (apdu,) = mbus_apdus(FRAMES)
    assert b"".join(frame.encode() for frame in split_telegram(apdu)) == FRAMES


def test_old_firmware_length_overflow_is_accepted() -> None:
    (apdu,) = mbus_apdus(FRAMES)
    first, second = split_telegram(apdu, first_segment_size=252)
    wire = first.encode(allow_length_overflow=True) + second.encode()
    assert wire[:4] == bytes.fromhex("68010168")
    with pytest.raises(EncodeError, match="L = 255"):
        first.encode()
    assert mbus_apdus(wire) == [apdu]
    # and in a stream, byte by byte
    reassembler, got = Reassembler(("mbus",)), []
    for byte in wire:
        got += [e.apdu for e in reassembler.feed(bytes((byte,))) if isinstance(e, Telegram)]
    assert got == [apdu]


def test_stream_resynchronises_on_garbage_and_damaged_frames() -> None:
    damaged = bytearray(FRAMES)
    damaged[100] ^= 0x01  # checksum of the first frame no longer matches
    stream = b"\xe5\x68\x10\x00garbage" + bytes(damaged) + b"\x00\x68\x68" + FRAMES + b"\x10\x5b"
    reassembler = Reassembler(("mbus",))
    events: list[ReassemblyEvent] = []
    for start in range(0, len(stream), 37):
        events += reassembler.feed(stream[start : start + 37])
    events += reassembler.finish()
    assert [e.apdu for e in events if isinstance(e, Telegram)] == mbus_apdus(FRAMES)
    (damaged_frame,) = [e for e in events if isinstance(e, Damaged)]
    assert damaged_frame.offset == 11 and "checksum" in damaged_frame.reason
    # the damaged telegram's second frame alone: its first segment is missing
    assert any(isinstance(e, Incomplete) and "segment 1 arrived without" in e.message
               for e in events)
    assert next((e.offset, e.length) for e in events if isinstance(e, Skipped)) == (0, 11)


def test_missing_first_segment_is_reported_and_next_telegram_works() -> None:
    first, second = vector_frames()
    events = reassemble(second.encode() + first.encode() + second.encode(), ("mbus",))
    assert isinstance(events[0], Incomplete) and "segment 1 arrived without" in events[0].message
    assert [e.apdu for e in events[1:] if isinstance(e, Telegram)] == mbus_apdus(FRAMES)


def test_non_dlms_ci_is_rejected() -> None:
    (event,) = reassemble(MbusLongFrame(0x08, 0x01, 0x72, bytes(12)).encode(), ("mbus",))
    assert isinstance(event, Damaged) and "not a DLMS segment" in event.message


def test_every_truncation_is_truncated_error() -> None:
    frame = MbusLongFrame(0x53, 0xFF, 0x10, b"\x01\x67" + bytes(range(30))).encode()
    for cut in range(len(frame)):
        with pytest.raises(TruncatedError):
            MbusLongFrame.decode(frame[:cut])


def test_capture_without_a_whole_telegram_says_what_is_missing() -> None:
    (event,) = reassemble(FRAMES[:100], ("mbus",))
    assert isinstance(event, Incomplete) and event.missing_bytes == 256 - 100


@given(st.integers(0, 255), st.integers(0, 255), st.integers(0, 255), st.binary(max_size=252))
def test_frame_round_trip(control: int, address: int, ci: int, data: bytes) -> None:
    frame = MbusLongFrame(control, address, ci, data)
    wire = frame.encode()
    assert MbusLongFrame.decode(b"\x00" + wire, 1) == (frame, len(wire) + 1)


@given(st.binary(min_size=1, max_size=900).filter(lambda apdu: apdu[0] != 0xE0))
def test_split_and_reassemble_round_trip(apdu: bytes) -> None:
    # (0xE0, general-block-transfer, is a block the reassembler joins with the next ones)
    wire = b"".join(frame.encode() for frame in split_telegram(apdu))
    assert mbus_apdus(wire) == [apdu]


@given(st.binary(max_size=300))
def test_random_bytes_never_crash(data: bytes) -> None:
    try:
        mbus_apdus(b"\x68" + data)  # nothing to raise: events say what was wrong
    except DlmsError:
        raise AssertionError("the reassembler reports, it does not raise") from None
