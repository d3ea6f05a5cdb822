"""Wired M-Bus long frames and the T-210D customer-interface telegram (vectors/mbus-push.json)."""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given
from hypothesis import strategies as st
from known_answers import VECTORS

from edge_agent.dlms.errors import DlmsError, EncodeError, FrameError, TruncatedError
from edge_agent.dlms.link.mbus import (
    MbusLongFrame,
    MbusStreamDecoder,
    TelegramAssembler,
    reassemble_telegrams,
    split_telegram,
)

VECTOR = json.loads(
    (VECTORS / "mbus-push.json").read_text()
)["cases"][0]
FRAMES = bytes.fromhex(VECTOR["inputs"]["frames"])


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
    frames = MbusStreamDecoder().feed(FRAMES)
    assert [(f.control, f.address, f.control_information) for f in frames] == [
        (0x53, 0xFF, 0x00),
        (0x53, 0xFF, 0x11),
    ]
    assert [f.data[:2] for f in frames] == [b"\x01\x67", b"\x01\x67"]
    assert [(f.segment_number, f.final_segment) for f in frames] == [(0, False), (1, True)]


def test_vector_reassembles_into_the_ciphered_data_notification() -> None:
    (apdu,) = reassemble_telegrams(FRAMES)
    # db 08 <system title "SAGY..."> 81 f8 <248 bytes: SC, IC, ciphertext>
    assert apdu[:2] == b"\xdb\x08" and apdu[2:5] == b"SAG" and apdu[10:12] == b"\x81\xf8"
    assert len(apdu) == 12 + 0xF8
    plaintext = decrypt_encryption_only(apdu, bytes.fromhex(VECTOR["inputs"]["ek"]))
    assert plaintext.hex() == VECTOR["expected"]["plaintext"]


def test_split_reproduces_the_meter_frames() -> None:
    (apdu,) = reassemble_telegrams(FRAMES)
    assert b"".join(frame.encode() for frame in split_telegram(apdu)) == FRAMES


def test_old_firmware_length_overflow_is_accepted() -> None:
    (apdu,) = reassemble_telegrams(FRAMES)
    first, second = split_telegram(apdu, first_segment_size=252)
    wire = first.encode(allow_length_overflow=True) + second.encode()
    assert wire[:4] == bytes.fromhex("68010168")
    with pytest.raises(EncodeError, match="L = 255"):
        first.encode()
    assert reassemble_telegrams(wire) == [apdu]
    # and in a stream, byte by byte
    decoder, assembler, got = MbusStreamDecoder(), TelegramAssembler(), []
    for byte in wire:
        for frame in decoder.feed(bytes((byte,))):
            if (done := assembler.add(frame)) is not None:
                got.append(done)
    assert got == [apdu]


def test_stream_resynchronises_on_garbage_and_damaged_frames() -> None:
    damaged = bytearray(FRAMES)
    damaged[100] ^= 0x01  # checksum of the first frame no longer matches
    stream = b"\xe5\x68\x10\x00garbage" + bytes(damaged) + b"\x00\x68\x68" + FRAMES + b"\x10\x5b"
    decoder = MbusStreamDecoder()
    frames = []
    for start in range(0, len(stream), 37):
        frames += decoder.feed(stream[start : start + 37])
    assembler = TelegramAssembler()
    apdus = []
    for frame in frames:
        try:
            if (apdu := assembler.add(frame)) is not None:
                apdus.append(apdu)
        except FrameError:
            pass  # the lone second frame of the damaged telegram
    assert apdus == reassemble_telegrams(FRAMES)
    assert decoder.discarded > len(FRAMES) // 2  # the damaged first frame was skipped


def test_missing_first_segment_is_reported_and_next_telegram_works() -> None:
    first, second = MbusStreamDecoder().feed(FRAMES)
    assembler = TelegramAssembler()
    with pytest.raises(FrameError, match="segment 1 arrived while segment 0"):
        assembler.add(second)
    assert assembler.add(first) is None
    assert assembler.add(second) == reassemble_telegrams(FRAMES)[0]


def test_non_dlms_ci_is_rejected() -> None:
    with pytest.raises(FrameError, match="not a DLMS segment"):
        TelegramAssembler().add(MbusLongFrame(0x08, 0x01, 0x72, bytes(12)))


def test_every_truncation_is_truncated_error() -> None:
    frame = MbusLongFrame(0x53, 0xFF, 0x10, b"\x01\x67" + bytes(range(30))).encode()
    for cut in range(len(frame)):
        with pytest.raises(TruncatedError):
            MbusLongFrame.decode(frame[:cut])


def test_capture_without_telegram_is_a_clear_error() -> None:
    with pytest.raises(FrameError, match="no complete M-Bus DLMS telegram"):
        reassemble_telegrams(FRAMES[:100])


@given(st.integers(0, 255), st.integers(0, 255), st.integers(0, 255), st.binary(max_size=252))
def test_frame_round_trip(control: int, address: int, ci: int, data: bytes) -> None:
    frame = MbusLongFrame(control, address, ci, data)
    wire = frame.encode()
    assert MbusLongFrame.decode(b"\x00" + wire, 1) == (frame, len(wire) + 1)


@given(st.binary(min_size=1, max_size=900))
def test_split_and_reassemble_round_trip(apdu: bytes) -> None:
    wire = b"".join(frame.encode() for frame in split_telegram(apdu))
    assert reassemble_telegrams(wire) == [apdu]


@given(st.binary(max_size=300))
def test_random_bytes_never_crash(data: bytes) -> None:
    try:
        reassemble_telegrams(b"\x68" + data)
    except DlmsError:
        pass
