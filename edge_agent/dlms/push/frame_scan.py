"""One frame at a stream position, per link framing: found, needs more bytes, damaged
(with what its clear part shows), or no frame at all. The push reassembler
(:mod:`edge_agent.dlms.push.reassembly`) drives these over a stream."""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from edge_agent.dlms.apdu import GENERAL_BLOCK_TRANSFER
from edge_agent.dlms.encoding.crc import crc16_x25
from edge_agent.dlms.errors import ChecksumError, DecodeError, FrameError, TruncatedError
from edge_agent.dlms.link.hdlc.frame import (
    FLAG,
    LLC_COMMAND,
    LLC_RESPONSE,
    HdlcAddress,
    HdlcFrame,
    UnknownControlError,
)
from edge_agent.dlms.link.mbus import MbusLongFrame
from edge_agent.dlms.link.wrapper import HEADER_LENGTH as WRAPPER_HEADER_LENGTH
from edge_agent.dlms.link.wrapper import WrapperFrame
from edge_agent.dlms.push.reassembly_events import (
    HDLC,
    MBUS,
    WRAPPER,
    Damaged,
    apdu_name,
)
from edge_agent.dlms.push.security_header import SecurityHeaderSeen, peek_security_header

if TYPE_CHECKING:
    from edge_agent.dlms.push.reassembly_events import LinkFrame

__all__ = [
    "FRAMING_TABLE",
    "LLC_HEADERS",
    "MBUS_START",
    "WRAPPER_VERSION",
    "Attempt",
    "Found",
    "Framing",
    "NeedMore",
    "NotAFrame",
    "hdlc_header",
    "seen_in",
    "strip_llc",
]

MBUS_START: Final = 0x68
_MBUS_STOP: Final = 0x16
_MBUS_CI_DLMS_MAX: Final = 0x1F
MBUS_TSAP_LENGTH: Final = 2
WRAPPER_VERSION: Final = b"\x00\x01"
LLC_HEADERS: Final = (LLC_COMMAND, LLC_RESPONSE)


# --- what a frame's clear part shows ----------------------------------------------------------


def strip_llc(info: bytes) -> bytes:
    return info[3:] if info[:3] in LLC_HEADERS else info


def seen_in(apdu: bytes) -> tuple[str | None, SecurityHeaderSeen | None]:
    seen = peek_security_header(apdu)
    if seen is None and apdu[:1] == bytes((GENERAL_BLOCK_TRANSFER,)) and len(apdu) > 6:
        # A GBT block of a ciphered APDU: the first block starts with the cipher header.
        data_at = 7 if apdu[6] < 0x80 else 7 + (apdu[6] & 0x7F)
        seen = peek_security_header(apdu[data_at:])
    return apdu_name(apdu), seen


@dataclass(frozen=True, slots=True)
class HdlcHeader:
    length: int
    segmented: bool
    addresses: str | None
    info: bytes


def hdlc_header(buf: bytes, start: int) -> HdlcHeader | None:
    """Format and addresses of a type-3 frame at ``start`` read without any checksum."""
    if len(buf) < start + 3:
        return None
    (fmt,) = struct.unpack_from(">H", buf, start + 1)
    if fmt & 0xF000 != 0xA000:
        return None
    length = fmt & 0x07FF
    end = start + 1 + length
    try:
        destination, cursor = HdlcAddress.decode(buf[: end], start + 3)
        source, cursor = HdlcAddress.decode(buf[: end], cursor)
    except DecodeError:
        return HdlcHeader(length, bool(fmt & 0x0800), None, b"")
    info_start = cursor + 3  # control, HCS
    info = buf[info_start : min(end - 2, len(buf))] if end - 2 > info_start else b""
    return HdlcHeader(length, bool(fmt & 0x0800), f"{source} -> {destination}", info)


def hcs_ok(buf: bytes, start: int) -> bool:
    """The header check sequence of a frame start is there and right (IEC 62056-46 6.4.5):
    what tells a frame cut short from a stray 7E."""
    try:
        _, cursor = HdlcAddress.decode(buf, start + 3)
        _, cursor = HdlcAddress.decode(buf, cursor)
    except DecodeError:
        return False
    header_end = cursor + 1
    if len(buf) < header_end + 2:
        return False
    return crc16_x25(buf[start + 1 : header_end]) == int.from_bytes(
        buf[header_end : header_end + 2], "little")


# --- per framing: decode one frame at a position -----------------------------------------------


@dataclass(frozen=True, slots=True)
class Found:
    frame: LinkFrame
    end: int  # offset after the frame (HDLC: its closing flag, which may open the next)
    wire_end: int


@dataclass(frozen=True, slots=True)
class NeedMore:
    declared: int  # the frame's full size as its header states it
    header_ok: bool  # the header's own check (HCS) passed, so this is a frame start
    broken: bool = False  # the bytes are all there but do not end the frame
    damage: Damaged | None = None  # what to report when no next frame explains the break


@dataclass(frozen=True, slots=True)
class NotAFrame:
    reason: str | None = None  # why a frame start was not a frame, when it looked like one


Attempt = Found | NeedMore | Damaged | NotAFrame


def _try_hdlc(buf: bytes, start: int) -> Attempt:
    try:
        frame, closing = HdlcFrame.decode(buf, start)
    except TruncatedError:
        header = hdlc_header(buf, start)
        if header is None:
            return NeedMore(0, False)
        return NeedMore(header.length + 2, hcs_ok(buf, start))
    except UnknownControlError as error:
        header = hdlc_header(buf, start)
        length = header.length + 2 if header else 1
        return Damaged(start, length, HDLC, str(error), header.addresses if header else None)
    except FrameError as error:
        return _hdlc_damage(buf, start, error)
    return Found(frame, closing, closing + 1)


def _hdlc_damage(buf: bytes, start: int, error: FrameError) -> Attempt:
    """A frame that fails its checks is damaged if its closing flag is where its length
    says (the bytes are a frame, some of them wrong); anything else is not a frame."""
    header = hdlc_header(buf, start)
    if header is None or header.length < 7:
        return NotAFrame(str(error))
    close = start + 1 + header.length
    closed = close < len(buf) and buf[close] == FLAG
    if closed and not isinstance(error, ChecksumError):
        return NotAFrame(str(error))
    carried, seen = seen_in(strip_llc(header.info)) if header.info else (None, None)
    if not closed:
        if not hcs_ok(buf, start) or close >= len(buf):
            return NotAFrame(str(error))
        # The header checks out but the closing flag is not where the length says: the
        # frame was cut short by the next one (the scanner looks), or bytes were lost or
        # added inside it (a logger's buffer, a wrong parity).
        reason = (f"the frame declares {header.length + 2} bytes but has no closing flag "
                  f"there (got {buf[close]:02x}): bytes lost or added inside it")
        damage = Damaged(start, header.length + 2, HDLC, reason, header.addresses, carried, seen)
        return NeedMore(header.length + 2, True, broken=True, damage=damage)
    return Damaged(start, header.length + 2, HDLC, str(error), header.addresses, carried, seen)


def _try_mbus(buf: bytes, start: int) -> Attempt:
    if len(buf) >= start + 4 and not (buf[start + 1] == buf[start + 2]
                                      and buf[start + 3] == MBUS_START):
        return NotAFrame()
    try:
        frame, end = MbusLongFrame.decode(buf, start)
    except TruncatedError:
        length = buf[start + 1] if len(buf) > start + 1 else 0
        # L < 3 cannot hold C, A, CI: the overflowed L of old T-210D firmware (L + 256).
        declared = length + 6 + (256 if length < 3 else 0)
        return NeedMore(declared, len(buf) >= start + 4)
    except FrameError as error:
        length = buf[start + 1]
        stop = start + 4 + length + 1
        if length >= 3 and stop < len(buf) and buf[stop] == _MBUS_STOP:
            body = buf[start + 4 : stop - 1]
            data = body[3 + MBUS_TSAP_LENGTH :] if body[2] <= _MBUS_CI_DLMS_MAX else b""
            carried, seen = seen_in(data) if data and body[2] & 0x0F == 0 else (None, None)
            return Damaged(start, length + 6, MBUS, str(error).split(" (")[0], None, carried, seen)
        if len(buf) >= start + 4:
            # 68 L L 68 but no stop byte where L says: cut short if another frame starts
            # inside it (the scanner checks), else not a frame.
            return NeedMore(length + 6 + (256 if length < 3 else 0), True, broken=True)
        return NotAFrame()
    return Found(frame, end, end)


def _try_wrapper(buf: bytes, start: int) -> Attempt:
    try:
        frame, end = WrapperFrame.decode(buf, start)
    except TruncatedError:
        declared = (WRAPPER_HEADER_LENGTH + struct.unpack_from(">H", buf, start + 6)[0]
                    if len(buf) >= start + WRAPPER_HEADER_LENGTH else 0)
        return NeedMore(declared, len(buf) >= start + WRAPPER_HEADER_LENGTH)
    except FrameError:
        return NotAFrame()
    return Found(frame, end, end)


@dataclass(frozen=True, slots=True)
class Framing:
    name: str
    starts: Callable[[bytes, int], bool]
    attempt: Callable[[bytes, int], Attempt]
    marker: int


FRAMING_TABLE: Final = {
    HDLC: Framing(HDLC, lambda b, i: b[i] == FLAG, _try_hdlc, FLAG),
    MBUS: Framing(MBUS, lambda b, i: b[i] == MBUS_START, _try_mbus, MBUS_START),
    WRAPPER: Framing(WRAPPER, lambda b, i: b[i : i + 2] == WRAPPER_VERSION[: len(b) - i],
                      _try_wrapper, 0x00),
}
