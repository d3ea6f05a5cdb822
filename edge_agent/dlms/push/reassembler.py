"""The push reassembler's scanner: a byte stream cut into HDLC, M-Bus and wrapper frames,
segments and general-block-transfer blocks joined into telegrams, and what could not be
used reported. What it does and reports is told in :mod:`edge_agent.dlms.push.reassembly`,
the package's face; this module holds the frame scanning and the HDLC and M-Bus frame
classes it needs, loaded only when a capture is not one whole wrapper frame (a log of TCP
meters' answers never needs them)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from edge_agent.dlms.apdu import GENERAL_BLOCK_TRANSFER
from edge_agent.dlms.errors import DecodeError
from edge_agent.dlms.link.hdlc.frame import FLAG, FrameKind, HdlcFrame
from edge_agent.dlms.link.mbus import MbusLongFrame
from edge_agent.dlms.link.wrapper import HEADER_LENGTH as WRAPPER_HEADER_LENGTH
from edge_agent.dlms.push.frame_scan import (
    FRAMING_TABLE,
    LLC_HEADERS,
    MBUS_START,
    MBUS_TSAP_LENGTH,
    WRAPPER_VERSION,
    Attempt,
    Found,
    Framing,
    NeedMore,
    NotAFrame,
    hdlc_header,
    seen_in,
    strip_llc,
)
from edge_agent.dlms.push.reassembly_events import (
    APDU,
    FRAMINGS,
    HDLC,
    LLC,
    MBUS,
    NAMES,
    WRAPPER,
    ControlFrame,
    Damaged,
    Incomplete,
    ReassemblyEvent,
    Skipped,
    Telegram,
)

if TYPE_CHECKING:
    from edge_agent.dlms.push.reassembly_events import LinkFrame

# A message (segments or blocks) larger than this is a stuck sender, not a push: the
# largest pushes seen are a few kB, and a GBT push of a profile stays well below this.
MAX_MESSAGE_SIZE: Final = 1 << 16
# Frame starts tried inside a frame that does not end where it says, looking for the one
# that cut it short: real frames hold few flag or 68 L L 68 look-alikes, and the bound keeps
# a stream of nothing but frame headers linear.
_MAX_PROBES: Final = 8
_MBUS_CI_FINAL: Final = 0x10
_MBUS_CI_DLMS_MAX: Final = 0x1F

__all__ = ["MAX_MESSAGE_SIZE", "Reassembler", "scan_capture"]

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
        unknown = [name for name in framings if name not in FRAMING_TABLE]
        if unknown or not framings:
            raise DecodeError(f"framing {unknown[0] if unknown else 'none'!r}: expected one or "
                              f"more of {', '.join(FRAMINGS)}")
        self._framings = tuple(FRAMING_TABLE[name] for name in framings)
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
                                     None, pending.size, seen_in(b"".join(pending.parts))[1],
                                     b"".join(pending.wire)))
        if self._mbus is not None:
            pending = self._mbus
            events.append(Incomplete(pending.offset, "M-Bus telegram",
                                     f"segment(s) 0..{pending.next_number - 1} received "
                                     f"({pending.size} bytes), segment {pending.next_number} and "
                                     "the final segment never came", None, pending.size,
                                     seen_in(b"".join(pending.parts))[1], b"".join(pending.wire)))
        for pending in self._blocks.values():
            events.append(Incomplete(pending.offset, "general-block-transfer",
                                     f"blocks 1..{pending.next_number - 1} received "
                                     f"({pending.size} bytes), block {pending.next_number} and "
                                     "the last block never came", None, pending.size,
                                     seen_in(b"".join(pending.parts))[1], b"".join(pending.wire)))
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
            attempt: Attempt | Incomplete = framing.attempt(buf, position)
            if isinstance(attempt, NeedMore):
                cut = self._cut_frame(buf, position, framing, attempt)
                if cut is not None:
                    attempt = cut
                elif attempt.broken:
                    attempt = attempt.damage or NotAFrame()
                elif not final:
                    break  # wait for the rest of the frame
                elif attempt.header_ok:
                    attempt = self._truncated(buf, position, framing.name, attempt)
            if isinstance(attempt, NotAFrame) and attempt.reason and self.last_rejection is None:
                self.last_rejection = f"offset {self._base + position}: {attempt.reason}"
            if isinstance(attempt, NeedMore | NotAFrame):
                self._skipped(self._base + position, 1, buf[position : position + 1], events)
                position += 1
                continue
            self.frames_seen += 1
            self._flush_skip(events)
            if isinstance(attempt, Found):
                self._frame(attempt.frame, buf[position : attempt.wire_end],
                            self._base + position, events)
                next_position = attempt.end
            elif isinstance(attempt, Incomplete):
                events.append(attempt)
                next_position = attempt.offset - self._base + attempt.received
            else:
                events.append(_rebase(attempt, self._base,
                                      buf[position : position + attempt.length]))
                next_position = position + attempt.length
                if framing.name == HDLC and buf[next_position - 1] == FLAG:
                    next_position -= 1  # the closing flag may open the next frame
            if framing.name == HDLC and next_position > position and next_position < end \
                    and buf[next_position] == FLAG:
                self._closing = self._base + next_position
            position = next_position
        return position

    def _cut_frame(self, buf: bytes, start: int, framing: Framing,
                   attempt: NeedMore) -> Incomplete | None:
        """A frame cut short by the next one: a frame start inside its declared span that
        decodes whole means the sender (or the logger) broke this one off."""
        if not attempt.header_ok or framing.name == WRAPPER:
            return None
        limit = min(start + attempt.declared, len(buf))
        probe = start + 1
        for _ in range(_MAX_PROBES):
            probe = buf.find(framing.marker, probe, limit)
            if probe < 0:
                break
            follower = framing.attempt(buf, probe)
            if isinstance(follower, Found) or (
                    isinstance(follower, NeedMore) and follower.header_ok
                    and not follower.broken and probe + follower.declared > len(buf)):
                return self._truncated(buf[:probe], start, framing.name, attempt)
            probe += 1
        return None

    def _truncated(self, buf: bytes, start: int, framing: str, attempt: NeedMore) -> Incomplete:
        present = len(buf) - start
        missing = max(attempt.declared - present, 0)
        info = b""
        if framing == HDLC:
            header = hdlc_header(buf, start)
            info = strip_llc(header.info) if header is not None else b""
        elif framing == MBUS and len(buf) > start + 9:
            info = buf[start + 9 :]  # 68 L L 68 C A CI and the two TSAPs
        return Incomplete(self._base + start, f"{NAMES[framing]} frame",
                          f"the frame declares {attempt.declared} bytes, {present} were received: "
                          f"{missing} byte(s) missing", missing, present,
                          seen_in(info)[1] if info else None, buf[start:])

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
            info = strip_llc(frame.info)
        else:
            info = frame.info
        pending.add(info, frame, wire)
        if pending.size > self.max_message_size:
            del self._hdlc[key]
            events.append(Incomplete(pending.offset, "HDLC message",
                                     f"the message from {frame.source} exceeds "
                                     f"{self.max_message_size} bytes without a last segment: "
                                     "dropped", None, pending.size, raw=wire))
            return
        if frame.segmented:
            return
        del self._hdlc[key]
        self._message(HDLC, pending.telegram(HDLC), events, sender=key[0])

    def _mbus_frame(self, frame: MbusLongFrame, wire: bytes, offset: int,
                    events: list[ReassemblyEvent]) -> None:
        ci = frame.control_information
        if ci > _MBUS_CI_DLMS_MAX or len(frame.data) < MBUS_TSAP_LENGTH:
            events.append(Damaged(offset, len(wire), MBUS,
                                  f"CI {ci:#04x} is not a DLMS segment (00..1F)" if ci > 0x1F
                                  else "DLMS segment shorter than its two TSAP bytes", raw=wire))
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
                                         "dropped", None, len(frame.data) - 2, None, wire))
            self._mbus = None
            return
        pending.add(frame.data[MBUS_TSAP_LENGTH:], frame, wire)
        pending.next_number = number + 1
        if final:
            self._mbus = None
            self._message(MBUS, pending.telegram(MBUS), events, sender=f"{frame.address:#04x}")

    def _mbus_gap(self, pending: _Pending, got: int) -> Incomplete:
        return Incomplete(pending.offset, "M-Bus telegram",
                          f"segment {pending.next_number} missing (segment {got} came next): "
                          f"{pending.size} bytes of segment(s) 0..{pending.next_number - 1} "
                          "dropped", None, pending.size, seen_in(b"".join(pending.parts))[1],
                          b"".join(pending.wire))

    def _message(self, framing: str, telegram: Telegram, events: list[ReassemblyEvent],
                 sender: str = "") -> None:
        """A link-level message: a general-block-transfer block, or a whole telegram."""
        apdu = telegram.apdu
        if not apdu or apdu[0] != GENERAL_BLOCK_TRANSFER:
            events.append(telegram)
            return
        from edge_agent.dlms.apdu.general_block_transfer import GeneralBlockTransfer

        try:
            block = GeneralBlockTransfer.decode(apdu)
        except DecodeError as error:
            events.append(Damaged(telegram.offset, len(telegram.wire), framing,
                                  f"general-block-transfer block does not decode: {error}",
                                  raw=telegram.wire))
            return
        pending = self._blocks.get(sender)
        if pending is not None and block.block_number != pending.next_number:
            events.append(Incomplete(pending.offset, "general-block-transfer",
                                     f"block {pending.next_number} missing (block "
                                     f"{block.block_number} came next): {pending.size} bytes of "
                                     "the earlier blocks dropped", None, pending.size,
                                     seen_in(b"".join(pending.parts))[1], b"".join(pending.wire)))
            del self._blocks[sender]
            pending = None
        if pending is None:
            if block.block_number != 1:
                events.append(Incomplete(telegram.offset, "general-block-transfer",
                                         f"block {block.block_number} arrived without blocks "
                                         f"1..{block.block_number - 1} (the capture starts "
                                         "mid-transfer): dropped", None, len(block.block_data),
                                         raw=telegram.wire))
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
                                     "block: dropped", None, pending.size, raw=telegram.wire))
            return
        if block.last_block:
            del self._blocks[sender]
            events.append(pending.telegram(framing))


def _rebase(damaged: Damaged, base: int, raw: bytes) -> Damaged:
    """The damaged frame at its stream offset, with its bytes."""
    return dataclasses.replace(damaged, offset=damaged.offset + base, raw=raw)


def scan_capture(buf: bytes, framings: tuple[str, ...], auto: bool) -> list[ReassemblyEvent]:
    """What :func:`~edge_agent.dlms.push.reassembly.reassemble` finds in a capture that is
    not one whole wrapper frame (``auto``: its framing is recognised by its first bytes)."""
    if not auto:
        reassembler = Reassembler(framings)
        return reassembler.feed(buf) + reassembler.finish()
    if buf[:2] == WRAPPER_VERSION and len(buf) >= WRAPPER_HEADER_LENGTH:
        reassembler = Reassembler((WRAPPER,))
        return reassembler.feed(buf) + reassembler.finish()
    reassembler = Reassembler((HDLC, MBUS))
    events = reassembler.feed(buf) + reassembler.finish()
    if reassembler.frames_seen or not buf:
        return events
    if buf[0] in (FLAG, MBUS_START):
        if reassembler.last_rejection is not None:
            events.append(Damaged(0, len(buf), HDLC if buf[0] == FLAG else MBUS,
                                  f"no intact frame start; at {reassembler.last_rejection}"))
        return events
    framing = LLC if buf[:3] in LLC_HEADERS else APDU
    notes = ("an LLC header without an HDLC frame around it (as readers log it)",) \
        if framing == LLC else ()
    apdu = strip_llc(buf)
    if not apdu:
        return [Incomplete(0, "LLC", "the LLC header is followed by no APDU", None, len(buf))]
    single = Reassembler((HDLC,))
    out: list[ReassemblyEvent] = []
    single._message(framing, Telegram(apdu, buf, 0, framing, (), notes), out)
    return out + single.finish()
