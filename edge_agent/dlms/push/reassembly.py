"""One reassembler for every link framing of pushed data, sans-IO: bytes in, events out.

Meters and the programs that log them deliver pushes in many shapes; ``Reassembler``
turns any of them into whole APDUs (:class:`Telegram`) and says what it could not use:

* **HDLC** frames (IEC 62056-46, ``7E ... 7E``): UI or I frames, segmented messages
  joined per sender (the S bit, clause 6.4.1), the LLC header (clause 8.2, ``E6 E7 00``)
  stripped when present and never required: Kaifa and Aidon send it, Landis+Gyr E450/E570
  send it on the first frame of a general-block-transfer only;
* **wired M-Bus** long frames (EN 13757-2, ``68 L L 68 ... 16``) with DLMS segments
  (EN 13757-3, CI 00..1F), as the Austrian customer interface sends them;
* **wrapper** frames (IEC 62056-47, ``00 01 ...``) as meters push over TCP;
* an LLC header followed by the APDU without any frame, and a bare APDU (what many
  readers log);
* **general-block-transfer** (Green Book 9.3.10) on top of any of these: blocks joined
  per sender until the last block.

Whatever is not a frame is skipped and reported (:class:`Skipped`, with its stream offset
and length), so garbage before, between and after frames and a logger's trailing bytes
cost nothing else. A frame whose checksum fails is reported (:class:`Damaged`) with what
its clear part shows: addresses, the APDU type, and for a ciphered APDU the system title,
security control byte and the keys it needs. A capture that ends inside a frame, a
segmented message or a block transfer is reported (:class:`Incomplete`) with how many
bytes or which segment or block are missing; the complete telegrams before it are kept.

``feed(data)`` returns the events found so far (a partial frame waits for more bytes);
``finish()`` ends the stream (end of a capture) and reports what is still incomplete.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from edge_agent.dlms.apdu.general_block_transfer import GENERAL_BLOCK_TRANSFER, GeneralBlockTransfer
from edge_agent.dlms.encoding.crc import crc16_x25
from edge_agent.dlms.errors import DecodeError, FrameError, TruncatedError
from edge_agent.dlms.link.hdlc.frame import (
    FLAG,
    LLC_COMMAND,
    LLC_RESPONSE,
    FrameKind,
    HdlcAddress,
    HdlcFrame,
    UnknownControlError,
)
from edge_agent.dlms.link.mbus import MbusLongFrame
from edge_agent.dlms.link.wrapper import HEADER_LENGTH as WRAPPER_HEADER_LENGTH
from edge_agent.dlms.link.wrapper import WrapperFrame
from edge_agent.dlms.push.security_header import SecurityHeaderSeen, peek_security_header

__all__ = [
    "AUTO",
    "FRAMINGS",
    "ControlFrame",
    "MAX_MESSAGE_SIZE",
    "Damaged",
    "Incomplete",
    "LinkFrame",
    "ReassemblyEvent",
    "Reassembler",
    "Skipped",
    "Telegram",
    "apdu_name",
    "reassemble",
]

HDLC: Final = "hdlc"
MBUS: Final = "mbus"
WRAPPER: Final = "wrapper"
LLC: Final = "llc"
APDU: Final = "apdu"
FRAMINGS: Final = (HDLC, MBUS, WRAPPER)
#: A capture of unknown framing: :func:`reassemble` recognises it by its first bytes.
AUTO: Final = (HDLC, MBUS, WRAPPER, LLC, APDU)

# A message (segments or blocks) larger than this is a stuck sender, not a push: the
# largest pushes seen are a few kB, and a GBT push of a profile stays well below this.
MAX_MESSAGE_SIZE: Final = 1 << 16
_MBUS_START: Final = 0x68
_MBUS_STOP: Final = 0x16
_MBUS_CI_FINAL: Final = 0x10
_MBUS_CI_DLMS_MAX: Final = 0x1F
_MBUS_TSAP_LENGTH: Final = 2
_WRAPPER_VERSION: Final = b"\x00\x01"
_LLC_HEADERS: Final = (LLC_COMMAND, LLC_RESPONSE)

LinkFrame = HdlcFrame | MbusLongFrame | WrapperFrame
_NAMES: Final = {HDLC: "HDLC", MBUS: "M-Bus", WRAPPER: "wrapper"}

# Names of the APDUs a push or a log may hold, by tag (Green Book 9.5), for messages about
# frames that cannot be decoded: what a damaged frame was carrying.
_APDU_NAMES: Final = {
    0x0F: "data-notification",
    0xC2: "event-notification-request",
    0xC4: "get-response",
    0xE0: "general-block-transfer",
    0xDB: "general-glo-ciphering",
    0xDC: "general-ded-ciphering",
    0xDD: "general-ciphering",
    0xDF: "general-signing",
}


def apdu_name(apdu: bytes) -> str | None:
    return _APDU_NAMES.get(apdu[0]) if apdu else None


# --- events -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Telegram:
    """A whole APDU. ``offset`` is where its first frame began in the stream; ``wire`` the
    frames' bytes as received; ``notes`` what was accepted although not standard."""

    apdu: bytes
    wire: bytes
    offset: int
    framing: str
    frames: tuple[LinkFrame, ...] = ()
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Skipped:
    """Bytes that belong to no frame (line noise, a logger's text, a cut-off frame start)."""

    offset: int
    length: int

    @property
    def message(self) -> str:
        return f"skipped {self.length} byte(s) at offset {self.offset}: not part of a frame"


@dataclass(frozen=True, slots=True)
class Damaged:
    """A frame whose checksum (or closing flag) is wrong; ``seen`` is its clear header."""

    offset: int
    length: int
    framing: str
    reason: str
    addresses: str | None = None
    carried: str | None = None  # the APDU type its information field starts with
    seen: SecurityHeaderSeen | None = None

    @property
    def message(self) -> str:
        where = (f"{_NAMES.get(self.framing, self.framing)} frame of {self.length} bytes at "
                 f"offset {self.offset}")
        parts = [f"{where} is damaged: {self.reason}"]
        if self.addresses:
            parts.append(f"addresses {self.addresses}")
        if self.seen is not None:
            parts.append(f"it carries {self.seen.describe()}")
        elif self.carried:
            parts.append(f"it carries a {self.carried}")
        return "; ".join(parts) + "; the frame is dropped"


@dataclass(frozen=True, slots=True)
class Incomplete:
    """A frame, segmented message or block transfer that the stream ended or broke off in."""

    offset: int
    framing: str
    reason: str
    missing_bytes: int | None = None
    received: int = 0
    seen: SecurityHeaderSeen | None = None

    @property
    def message(self) -> str:
        text = f"incomplete {self.framing} at offset {self.offset}: {self.reason}"
        if self.seen is not None:
            text += f"; it carries {self.seen.describe()}"
        return text


@dataclass(frozen=True, slots=True)
class ControlFrame:
    """An intact HDLC frame that carries no data (SNRM, UA, RR, an empty I-frame)."""

    offset: int
    frame: HdlcFrame


ReassemblyEvent = Telegram | Skipped | Damaged | Incomplete | ControlFrame


# --- what a frame's clear part shows ----------------------------------------------------------


def _strip_llc(info: bytes) -> bytes:
    return info[3:] if info[:3] in _LLC_HEADERS else info


def _seen(apdu: bytes) -> tuple[str | None, SecurityHeaderSeen | None]:
    seen = peek_security_header(apdu)
    if seen is None and apdu[:1] == bytes((GENERAL_BLOCK_TRANSFER,)) and len(apdu) > 6:
        # A GBT block of a ciphered APDU: the first block starts with the cipher header.
        data_at = 7 if apdu[6] < 0x80 else 7 + (apdu[6] & 0x7F)
        seen = peek_security_header(apdu[data_at:])
    return apdu_name(apdu), seen


@dataclass(frozen=True, slots=True)
class _HdlcHeader:
    length: int
    segmented: bool
    addresses: str | None
    info: bytes


def _hdlc_header(buf: bytes, start: int) -> _HdlcHeader | None:
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
        return _HdlcHeader(length, bool(fmt & 0x0800), None, b"")
    info_start = cursor + 3  # control, HCS
    info = buf[info_start : min(end - 2, len(buf))] if end - 2 > info_start else b""
    return _HdlcHeader(length, bool(fmt & 0x0800), f"{source} -> {destination}", info)


def _hcs_ok(buf: bytes, start: int) -> bool:
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
class _Found:
    frame: LinkFrame
    end: int  # offset after the frame (HDLC: its closing flag, which may open the next)
    wire_end: int


@dataclass(frozen=True, slots=True)
class _NeedMore:
    declared: int  # the frame's full size as its header states it
    header_ok: bool  # the header's own check (HCS) passed, so this is a frame start
    broken: bool = False  # the bytes are all there but do not end the frame
    damage: Damaged | None = None  # what to report when no next frame explains the break


@dataclass(frozen=True, slots=True)
class _NotAFrame:
    reason: str | None = None  # why a frame start was not a frame, when it looked like one


_Attempt = _Found | _NeedMore | Damaged | _NotAFrame


def _try_hdlc(buf: bytes, start: int) -> _Attempt:
    try:
        frame, closing = HdlcFrame.decode(buf, start)
    except TruncatedError:
        header = _hdlc_header(buf, start)
        if header is None:
            return _NeedMore(0, False)
        return _NeedMore(header.length + 2, _hcs_ok(buf, start))
    except UnknownControlError as error:
        header = _hdlc_header(buf, start)
        length = header.length + 2 if header else 1
        return Damaged(start, length, HDLC, str(error), header.addresses if header else None)
    except FrameError as error:
        return _hdlc_damage(buf, start, error)
    return _Found(frame, closing, closing + 1)


def _hdlc_damage(buf: bytes, start: int, error: FrameError) -> _Attempt:
    """A frame that fails its checks is damaged if its closing flag is where its length
    says (the bytes are a frame, some of them wrong); anything else is not a frame."""
    header = _hdlc_header(buf, start)
    if header is None or header.length < 7:
        return _NotAFrame(str(error))
    close = start + 1 + header.length
    closed = close < len(buf) and buf[close] == FLAG
    if closed and "mismatch" not in str(error):
        return _NotAFrame(str(error))
    carried, seen = _seen(_strip_llc(header.info)) if header.info else (None, None)
    if not closed:
        if not _hcs_ok(buf, start) or close >= len(buf):
            return _NotAFrame(str(error))
        # The header checks out but the closing flag is not where the length says: the
        # frame was cut short by the next one (the scanner looks), or bytes were lost or
        # added inside it (a logger's buffer, a wrong parity).
        reason = (f"the frame declares {header.length + 2} bytes but has no closing flag "
                  f"there (got {buf[close]:02x}): bytes lost or added inside it")
        damage = Damaged(start, header.length + 2, HDLC, reason, header.addresses, carried, seen)
        return _NeedMore(header.length + 2, True, broken=True, damage=damage)
    return Damaged(start, header.length + 2, HDLC, str(error), header.addresses, carried, seen)


def _try_mbus(buf: bytes, start: int) -> _Attempt:
    if len(buf) >= start + 4 and not (buf[start + 1] == buf[start + 2]
                                      and buf[start + 3] == _MBUS_START):
        return _NotAFrame()
    try:
        frame, end = MbusLongFrame.decode(buf, start)
    except TruncatedError:
        length = buf[start + 1] if len(buf) > start + 1 else 0
        # L < 3 cannot hold C, A, CI: the overflowed L of old T-210D firmware (L + 256).
        declared = length + 6 + (256 if length < 3 else 0)
        return _NeedMore(declared, len(buf) >= start + 4)
    except FrameError as error:
        length = buf[start + 1]
        stop = start + 4 + length + 1
        if length >= 3 and stop < len(buf) and buf[stop] == _MBUS_STOP:
            body = buf[start + 4 : stop - 1]
            data = body[3 + _MBUS_TSAP_LENGTH :] if body[2] <= _MBUS_CI_DLMS_MAX else b""
            carried, seen = _seen(data) if data and body[2] & 0x0F == 0 else (None, None)
            return Damaged(start, length + 6, MBUS, str(error).split(" (")[0], None, carried, seen)
        if len(buf) >= start + 4:
            # 68 L L 68 but no stop byte where L says: cut short if another frame starts
            # inside it (the scanner checks), else not a frame.
            return _NeedMore(length + 6 + (256 if length < 3 else 0), True, broken=True)
        return _NotAFrame()
    return _Found(frame, end, end)


def _try_wrapper(buf: bytes, start: int) -> _Attempt:
    try:
        frame, end = WrapperFrame.decode(buf, start)
    except TruncatedError:
        declared = (WRAPPER_HEADER_LENGTH + struct.unpack_from(">H", buf, start + 6)[0]
                    if len(buf) >= start + WRAPPER_HEADER_LENGTH else 0)
        return _NeedMore(declared, len(buf) >= start + WRAPPER_HEADER_LENGTH)
    except FrameError:
        return _NotAFrame()
    return _Found(frame, end, end)


@dataclass(frozen=True, slots=True)
class _Framing:
    name: str
    starts: Callable[[bytes, int], bool]
    attempt: Callable[[bytes, int], _Attempt]
    marker: int


_FRAMINGS: Final = {
    HDLC: _Framing(HDLC, lambda b, i: b[i] == FLAG, _try_hdlc, FLAG),
    MBUS: _Framing(MBUS, lambda b, i: b[i] == _MBUS_START, _try_mbus, _MBUS_START),
    WRAPPER: _Framing(WRAPPER, lambda b, i: b[i : i + 2] == _WRAPPER_VERSION[: len(b) - i],
                      _try_wrapper, 0x00),
}


# --- messages: HDLC segments, M-Bus segments, general-block-transfer ----------------------------


@dataclass(slots=True)
class _Pending:
    """A message being joined: its parts, frames and where it began."""

    offset: int
    parts: list[bytes] = field(default_factory=list)
    frames: list[LinkFrame] = field(default_factory=list)
    wire: list[bytes] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    next_number: int = 0
    size: int = 0

    def add(self, part: bytes, frame: LinkFrame | None, wire: bytes) -> None:
        self.parts.append(part)
        if frame is not None:
            self.frames.append(frame)
        self.wire.append(wire)
        self.size += len(part)

    def telegram(self, framing: str, apdu: bytes | None = None) -> Telegram:
        return Telegram(b"".join(self.parts) if apdu is None else apdu, b"".join(self.wire),
                        self.offset, framing, tuple(self.frames), tuple(self.notes))


class Reassembler:
    """See the module docstring. ``framings``: the link framings the stream may hold (one
    for a listener on one line; :func:`reassemble` picks them for a capture)."""

    __slots__ = ("_base", "_blocks", "_buffer", "_closing", "_framings", "_hdlc", "_mbus",
                 "_skip", "frames_seen", "last_rejection", "max_message_size")

    def __init__(self, framings: tuple[str, ...] = (HDLC,),
                 max_message_size: int = MAX_MESSAGE_SIZE) -> None:
        unknown = [name for name in framings if name not in _FRAMINGS]
        if unknown or not framings:
            raise DecodeError(f"framing {unknown[0] if unknown else 'none'!r}: expected one or "
                              f"more of {', '.join(FRAMINGS)}")
        self._framings = tuple(_FRAMINGS[name] for name in framings)
        self._base = 0  # stream offset of _buffer[0]
        self._buffer = b""
        self._closing = -1  # stream offset of the last HDLC frame's closing flag
        self._skip: list[int] | None = None  # [offset, length, garbage] being skipped
        self._hdlc: dict[tuple[str, str], _Pending] = {}
        self._mbus: _Pending | None = None
        self._blocks: dict[str, _Pending] = {}
        self.frames_seen = 0  # frames found, damaged or cut short: the stream is framed
        self.last_rejection: str | None = None  # why the first frame-like start was none
        self.max_message_size = max_message_size

    # --- public ---------------------------------------------------------------------------

    def feed(self, data: bytes) -> list[ReassemblyEvent]:
        events: list[ReassemblyEvent] = []
        buf = self._buffer + bytes(data)
        position = self._scan(buf, events, final=False)
        self._base += position
        self._buffer = buf[position:]
        return events

    def finish(self) -> list[ReassemblyEvent]:
        """The stream ended: what is left is reported, and the reassembler starts afresh."""
        events: list[ReassemblyEvent] = []
        buf = self._buffer
        position = self._scan(buf, events, final=True)
        if position < len(buf):
            self._skipped(self._base + position, len(buf) - position, buf[position:], events)
        self._flush_skip(events)
        self._base += len(buf)
        self._buffer = b""
        for pending in self._hdlc.values():
            events.append(Incomplete(pending.offset, "HDLC message",
                                     f"{len(pending.frames)} segment(s) with {pending.size} bytes "
                                     "received, the last segment (S bit clear) never came",
                                     None, pending.size, _seen(b"".join(pending.parts))[1]))
        if self._mbus is not None:
            pending = self._mbus
            events.append(Incomplete(pending.offset, "M-Bus telegram",
                                     f"segment(s) 0..{pending.next_number - 1} received "
                                     f"({pending.size} bytes), segment {pending.next_number} and "
                                     "the final segment never came", None, pending.size,
                                     _seen(b"".join(pending.parts))[1]))
        for pending in self._blocks.values():
            events.append(Incomplete(pending.offset, "general-block-transfer",
                                     f"blocks 1..{pending.next_number - 1} received "
                                     f"({pending.size} bytes), block {pending.next_number} and "
                                     "the last block never came", None, pending.size,
                                     _seen(b"".join(pending.parts))[1]))
        self._hdlc.clear()
        self._mbus = None
        self._blocks.clear()
        return events

    # --- scanning -------------------------------------------------------------------------

    def _scan(self, buf: bytes, events: list[ReassemblyEvent], final: bool) -> int:
        position, end = 0, len(buf)
        while position < end:
            framing = next((f for f in self._framings if f.starts(buf, position)), None)
            if framing is None:
                found = [i for f in self._framings if (i := buf.find(f.marker, position + 1)) >= 0]
                upto = min(found) if found else end
                self._skipped(self._base + position, upto - position, buf[position:upto], events)
                position = upto
                continue
            attempt: _Attempt | Incomplete = framing.attempt(buf, position)
            if isinstance(attempt, _NeedMore):
                cut = self._cut_frame(buf, position, framing, attempt)
                if cut is not None:
                    attempt = cut
                elif attempt.broken:
                    attempt = attempt.damage or _NotAFrame()
                elif not final:
                    break  # wait for the rest of the frame
                elif attempt.header_ok:
                    attempt = self._truncated(buf, position, framing.name, attempt)
            if isinstance(attempt, _NotAFrame) and attempt.reason and self.last_rejection is None:
                self.last_rejection = f"offset {self._base + position}: {attempt.reason}"
            if isinstance(attempt, _NeedMore | _NotAFrame):
                self._skipped(self._base + position, 1, buf[position : position + 1], events)
                position += 1
                continue
            self.frames_seen += 1
            self._flush_skip(events)
            if isinstance(attempt, _Found):
                self._frame(attempt.frame, buf[position : attempt.wire_end],
                            self._base + position, events)
                next_position = attempt.end
            elif isinstance(attempt, Incomplete):
                events.append(attempt)
                next_position = attempt.offset - self._base + attempt.received
            else:
                events.append(_rebase(attempt, self._base))
                next_position = position + attempt.length
                if framing.name == HDLC and buf[next_position - 1] == FLAG:
                    next_position -= 1  # the closing flag may open the next frame
            if framing.name == HDLC and next_position > position and next_position < end \
                    and buf[next_position] == FLAG:
                self._closing = self._base + next_position
            position = next_position
        return position

    def _cut_frame(self, buf: bytes, start: int, framing: _Framing,
                   attempt: _NeedMore) -> Incomplete | None:
        """A frame cut short by the next one: a frame start inside its declared span that
        decodes whole means the sender (or the logger) broke this one off."""
        if not attempt.header_ok or framing.name == WRAPPER:
            return None
        limit = min(start + attempt.declared, len(buf))
        probe = start + 1
        while (probe := buf.find(framing.marker, probe, limit)) >= 0:
            follower = framing.attempt(buf, probe)
            if isinstance(follower, _Found) or (
                    isinstance(follower, _NeedMore) and follower.header_ok
                    and not follower.broken and probe + follower.declared > len(buf)):
                return self._truncated(buf[:probe], start, framing.name, attempt)
            probe += 1
        return None

    def _truncated(self, buf: bytes, start: int, framing: str, attempt: _NeedMore) -> Incomplete:
        present = len(buf) - start
        missing = max(attempt.declared - present, 0)
        info = b""
        if framing == HDLC:
            header = _hdlc_header(buf, start)
            info = _strip_llc(header.info) if header is not None else b""
        elif framing == MBUS and len(buf) > start + 9:
            info = buf[start + 9 :]  # 68 L L 68 C A CI and the two TSAPs
        return Incomplete(self._base + start, f"{_NAMES[framing]} frame",
                          f"the frame declares {attempt.declared} bytes, {present} were received: "
                          f"{missing} byte(s) missing", missing, present,
                          _seen(info)[1] if info else None)

    def _skipped(self, offset: int, length: int, raw: bytes,
                 events: list[ReassemblyEvent]) -> None:
        if offset == self._closing and length == 1:
            return  # the last frame's closing flag, not followed by another frame
        garbage = int(bool(raw.strip(bytes((FLAG,)))))  # idle flags are fill, not garbage
        if self._skip is not None and self._skip[0] + self._skip[1] == offset:
            self._skip[1] += length
            self._skip[2] |= garbage
        else:
            self._flush_skip(events)
            self._skip = [offset, length, garbage]

    def _flush_skip(self, events: list[ReassemblyEvent]) -> None:
        if self._skip is not None and self._skip[2]:
            events.append(Skipped(self._skip[0], self._skip[1]))
        self._skip = None

    # --- frames into messages ------------------------------------------------------------

    def _frame(self, frame: LinkFrame, wire: bytes, offset: int,
               events: list[ReassemblyEvent]) -> None:
        if isinstance(frame, HdlcFrame):
            self._hdlc_frame(frame, wire, offset, events)
        elif isinstance(frame, MbusLongFrame):
            self._mbus_frame(frame, wire, offset, events)
        else:
            self._message(WRAPPER, Telegram(frame.apdu, wire, offset, WRAPPER, (frame,)), events)

    def _hdlc_frame(self, frame: HdlcFrame, wire: bytes, offset: int,
                    events: list[ReassemblyEvent]) -> None:
        if frame.kind not in (FrameKind.I, FrameKind.UI) or not frame.info:
            events.append(ControlFrame(offset, frame))  # RR, SNRM, an empty poll
            return
        key = (str(frame.source), str(frame.destination))
        pending = self._hdlc.get(key)
        if pending is None:
            pending = self._hdlc[key] = _Pending(offset)
            info = _strip_llc(frame.info)
        else:
            info = frame.info
        pending.add(info, frame, wire)
        if pending.size > self.max_message_size:
            del self._hdlc[key]
            events.append(Incomplete(pending.offset, "HDLC message",
                                     f"the message from {frame.source} exceeds "
                                     f"{self.max_message_size} bytes without a last segment: "
                                     "dropped", None, pending.size))
            return
        if frame.segmented:
            return
        del self._hdlc[key]
        self._message(HDLC, pending.telegram(HDLC), events, sender=key[0])

    def _mbus_frame(self, frame: MbusLongFrame, wire: bytes, offset: int,
                    events: list[ReassemblyEvent]) -> None:
        ci = frame.control_information
        if ci > _MBUS_CI_DLMS_MAX or len(frame.data) < _MBUS_TSAP_LENGTH:
            events.append(Damaged(offset, len(wire), MBUS,
                                  f"CI {ci:#04x} is not a DLMS segment (00..1F)" if ci > 0x1F
                                  else "DLMS segment shorter than its two TSAP bytes"))
            return
        number, final = ci & 0x0F, bool(ci & _MBUS_CI_FINAL)
        pending = self._mbus
        if number == 0:
            if pending is not None:
                events.append(self._mbus_gap(pending, 0))
            pending = self._mbus = _Pending(offset)
        elif pending is None or number != pending.next_number:
            if pending is not None:
                events.append(self._mbus_gap(pending, number))
            else:
                events.append(Incomplete(offset, "M-Bus telegram",
                                         f"segment {number} arrived without segment(s) "
                                         f"0..{number - 1} (the capture starts mid-telegram): "
                                         "dropped", None, len(frame.data) - 2,
                                         None))
            self._mbus = None
            return
        pending.add(frame.data[_MBUS_TSAP_LENGTH:], frame, wire)
        pending.next_number = number + 1
        if final:
            self._mbus = None
            self._message(MBUS, pending.telegram(MBUS), events, sender=f"{frame.address:#04x}")

    def _mbus_gap(self, pending: _Pending, got: int) -> Incomplete:
        return Incomplete(pending.offset, "M-Bus telegram",
                          f"segment {pending.next_number} missing (segment {got} came next): "
                          f"{pending.size} bytes of segment(s) 0..{pending.next_number - 1} "
                          "dropped", None, pending.size, _seen(b"".join(pending.parts))[1])

    def _message(self, framing: str, telegram: Telegram, events: list[ReassemblyEvent],
                 sender: str = "") -> None:
        """A link-level message: a general-block-transfer block, or a whole telegram."""
        apdu = telegram.apdu
        if not apdu or apdu[0] != GENERAL_BLOCK_TRANSFER:
            events.append(telegram)
            return
        try:
            block = GeneralBlockTransfer.decode(apdu)
        except DecodeError as error:
            events.append(Damaged(telegram.offset, len(telegram.wire), framing,
                                  f"general-block-transfer block does not decode: {error}"))
            return
        pending = self._blocks.get(sender)
        if pending is not None and block.block_number != pending.next_number:
            events.append(Incomplete(pending.offset, "general-block-transfer",
                                     f"block {pending.next_number} missing (block "
                                     f"{block.block_number} came next): {pending.size} bytes of "
                                     "the earlier blocks dropped", None, pending.size,
                                     _seen(b"".join(pending.parts))[1]))
            del self._blocks[sender]
            pending = None
        if pending is None:
            if block.block_number != 1:
                events.append(Incomplete(telegram.offset, "general-block-transfer",
                                         f"block {block.block_number} arrived without blocks "
                                         f"1..{block.block_number - 1} (the capture starts "
                                         "mid-transfer): dropped", None, len(block.block_data)))
                return
            pending = self._blocks[sender] = _Pending(telegram.offset)
            pending.notes.extend(telegram.notes)
        pending.add(block.block_data, None, telegram.wire)
        pending.frames.extend(telegram.frames)
        pending.next_number = block.block_number + 1
        if pending.size > self.max_message_size:
            del self._blocks[sender]
            events.append(Incomplete(pending.offset, "general-block-transfer",
                                     f"more than {self.max_message_size} bytes without a last "
                                     "block: dropped", None, pending.size))
            return
        if block.last_block:
            del self._blocks[sender]
            events.append(pending.telegram(framing))


def _rebase(damaged: Damaged, base: int) -> Damaged:
    return Damaged(damaged.offset + base, damaged.length, damaged.framing, damaged.reason,
                   damaged.addresses, damaged.carried, damaged.seen)


def reassemble(data: bytes, framings: tuple[str, ...] = AUTO) -> list[ReassemblyEvent]:
    """Every event of a whole capture (``feed`` then ``finish``).

    With :data:`AUTO` the capture's first bytes decide: ``00 01`` wrapper frames; else
    HDLC and M-Bus frames anywhere in it; and when it holds no frame at all, one APDU,
    after an LLC header if it starts with one (what readers log without the frame).
    """
    buf = bytes(data)
    if framings != AUTO:
        reassembler = Reassembler(framings)
        return reassembler.feed(buf) + reassembler.finish()
    if buf[:2] == _WRAPPER_VERSION and len(buf) >= WRAPPER_HEADER_LENGTH:
        reassembler = Reassembler((WRAPPER,))
        return reassembler.feed(buf) + reassembler.finish()
    reassembler = Reassembler((HDLC, MBUS))
    events = reassembler.feed(buf) + reassembler.finish()
    if reassembler.frames_seen or not buf:
        return events
    if buf[0] in (FLAG, _MBUS_START):
        if reassembler.last_rejection is not None:
            events.append(Damaged(0, len(buf), HDLC if buf[0] == FLAG else MBUS,
                                  f"no intact frame start; at {reassembler.last_rejection}"))
        return events
    framing = LLC if buf[:3] in _LLC_HEADERS else APDU
    notes = ("an LLC header without an HDLC frame around it (as readers log it)",) \
        if framing == LLC else ()
    apdu = _strip_llc(buf)
    if not apdu:
        return [Incomplete(0, "LLC", "the LLC header is followed by no APDU", None, len(buf))]
    single = Reassembler((HDLC,))
    out: list[ReassemblyEvent] = []
    single._message(framing, Telegram(apdu, buf, 0, framing, (), notes), out)
    return out + single.finish()
