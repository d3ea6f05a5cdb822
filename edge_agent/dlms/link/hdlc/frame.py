"""HDLC frames of IEC 62056-46 (frame format type 3): addresses, control field, codec, splitter.

Frame layout (clause 6.4)::

    7E | format (2) | destination (1/2/4) | source (1/2/4) | control | HCS (2) | info | FCS (2) | 7E

* format: ``1010 S LLL LLLLLLLL`` — type 3, the segmentation bit S, an 11-bit length that
  counts every byte between the flags.
* addresses: 7 bits per byte, the low bit set on the last byte (extension bit, 6.4.2).
  A server address is 1, 2 or 4 bytes: the upper HDLC address (logical device) then the
  lower HDLC address (physical device), each 7 bits (2-byte form) or 14 bits (4-byte form).
* HCS covers format..control; it is absent when there is no information field.
* FCS covers format..info. Both are CRC-16/X.25, low byte first.

DLMS does not byte-stuff HDLC frames: the length field, not the flags, delimits a frame, so
0x7E may occur inside one. Between frames one flag may serve as closing and opening flag.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass
from typing import Final

from edge_agent.dlms.encoding.crc import crc16_x25
from edge_agent.dlms.errors import ChecksumError, EncodeError, FrameError, TruncatedError

__all__ = [
    "FLAG",
    "LLC_COMMAND",
    "LLC_RESPONSE",
    "MAX_FRAME_LENGTH",
    "FrameKind",
    "FrameSplitter",
    "HdlcAddress",
    "HdlcFrame",
    "HdlcParameters",
    "UnknownControlError",
    "strip_llc",
]

FLAG: Final = 0x7E
_FORMAT_TYPE_3: Final = 0xA000
_FORMAT_SEGMENTED: Final = 0x0800
_FORMAT_LENGTH_MASK: Final = 0x07FF
MAX_FRAME_LENGTH: Final = _FORMAT_LENGTH_MASK  # 11-bit length field

# LLC header of every I-frame's first segment (IEC 62056-46 clause 8.2, 62056-47 annex):
# destination LSAP 0xE6, source LSAP 0xE6 (command) or 0xE7 (response), LLC quality 0x00.
LLC_COMMAND: Final = b"\xe6\xe6\x00"
LLC_RESPONSE: Final = b"\xe6\xe7\x00"


class FrameKind(enum.Enum):
    """The frame types of IEC 62056-46 clause 6.4.3 (control field)."""

    I = "I"
    RR = "RR"
    RNR = "RNR"
    SNRM = "SNRM"
    DISC = "DISC"
    UA = "UA"
    DM = "DM"
    FRMR = "FRMR"
    UI = "UI"


# Control byte of each kind with P/F, N(S) and N(R) cleared. Bit 4 (0x10) is P/F;
# I-frames carry N(S) in bits 1-3 and N(R) in bits 5-7, supervisory frames N(R) only.
_CONTROL_BASE: Final = {
    FrameKind.I: 0x00,
    FrameKind.RR: 0x01,
    FrameKind.RNR: 0x05,
    FrameKind.SNRM: 0x83,
    FrameKind.DISC: 0x43,
    FrameKind.UA: 0x63,
    FrameKind.DM: 0x0F,
    FrameKind.FRMR: 0x87,
    FrameKind.UI: 0x03,
}
_POLL_FINAL: Final = 0x10
_NUMBERED_RECEIVE: Final = frozenset({FrameKind.I, FrameKind.RR, FrameKind.RNR})


def _classify(control: int) -> FrameKind | None:
    if control & 0x01 == 0:
        return FrameKind.I
    if control & 0x03 == 0x01:
        base = control & 0x0F
    else:
        base = control & ~_POLL_FINAL & 0xFF
    return next((k for k, v in _CONTROL_BASE.items() if v == base and k is not FrameKind.I), None)


# Every control byte -> its kind (None: not defined by IEC 62056-46, answered with FRMR).
_KIND_OF_CONTROL: Final[tuple[FrameKind | None, ...]] = tuple(_classify(c) for c in range(256))


@dataclass(frozen=True, slots=True)
class HdlcAddress:
    """An HDLC address: ``upper`` (client SAP or server logical device) and ``lower``.

    ``length`` is the number of bytes on the wire: 1 (upper only, 7 bits), 2 (7 + 7 bits)
    or 4 (14 + 14 bits). Client addresses are 1 byte; the T-210D wants 4-byte server ones.
    """

    upper: int
    lower: int | None = None
    length: int = 1

    def __post_init__(self) -> None:
        bits = {1: 7, 2: 7, 4: 14}.get(self.length)
        if bits is None:
            raise EncodeError(f"HDLC address length must be 1, 2 or 4 bytes, got {self.length}")
        if not 0 <= self.upper < 1 << bits:
            raise EncodeError(f"upper HDLC address {self.upper} does not fit in {bits} bits")
        if self.length == 1:
            if self.lower is not None:
                raise EncodeError("a 1-byte HDLC address has no lower (physical) part")
        elif self.lower is None or not 0 <= self.lower < 1 << bits:
            raise EncodeError(f"lower HDLC address {self.lower} does not fit in {bits} bits")

    @classmethod
    def client(cls, sap: int) -> HdlcAddress:
        return cls(sap)

    @classmethod
    def server(cls, logical: int, physical: int, length: int = 4) -> HdlcAddress:
        """Server address; ``length`` 2 or 4 (1 drops the physical part: use ``HdlcAddress(n)``)."""
        return cls(logical, physical, length)

    def encode(self) -> bytes:
        up, low = self.upper, self.lower
        if low is None:  # the 1-byte form (__post_init__: only it has no lower part)
            return bytes(((up << 1) | 1,))
        if self.length == 2:
            return bytes((up << 1, (low << 1) | 1))
        return bytes(((up >> 7) << 1, (up & 0x7F) << 1, (low >> 7) << 1, ((low & 0x7F) << 1) | 1))

    @classmethod
    def decode(cls, data: bytes | memoryview, offset: int = 0) -> tuple[HdlcAddress, int]:
        """Decode the address at ``offset``; returns it and the offset after it."""
        # The extension bit ends the address after 1, 2 or 4 bytes (IEC 62056-46 6.4.2).
        head = bytes(data[offset : offset + 4])
        ends = [byte & 1 for byte in head]  # at most four bytes
        if 1 not in ends:
            if len(head) < 4:
                raise TruncatedError(f"HDLC address at offset {offset} is cut short")
            raise FrameError(
                f"HDLC address at offset {offset} has no end bit within 4 bytes"
                f" ({head.hex()}): frame damaged or not HDLC"
            )
        length = ends.index(1) + 1
        if length == 1:
            return cls(head[0] >> 1), offset + 1
        if length == 2:
            return cls(head[0] >> 1, head[1] >> 1, 2), offset + 2
        if length == 3:
            raise FrameError(
                f"HDLC address ends after 3 bytes ({head[:3].hex()}): only 1, 2 or 4 bytes"
                " are allowed"
            )
        b0, b1, b2, b3 = head
        return cls(((b0 >> 1) << 7) | (b1 >> 1), ((b2 >> 1) << 7) | (b3 >> 1), 4), offset + 4

    def __str__(self) -> str:
        return str(self.upper) if self.lower is None else f"{self.upper}/{self.lower}"


@dataclass(frozen=True, slots=True)
class HdlcFrame:
    """One HDLC frame. ``info`` is the raw information field (LLC header included)."""

    destination: HdlcAddress
    source: HdlcAddress
    kind: FrameKind
    poll_final: bool = False
    send_sequence: int = 0  # N(S), I-frames only
    receive_sequence: int = 0  # N(R), I, RR and RNR
    info: bytes = b""
    segmented: bool = False  # the S bit: more segments of this message follow

    @property
    def control(self) -> int:
        control = _CONTROL_BASE[self.kind] | (_POLL_FINAL if self.poll_final else 0)
        if self.kind in _NUMBERED_RECEIVE:
            control |= (self.receive_sequence & 7) << 5
        if self.kind is FrameKind.I:
            control |= (self.send_sequence & 7) << 1
        return control

    def encode(self) -> bytes:
        header = self.destination.encode() + self.source.encode()
        length = 2 + len(header) + 1 + 2 + (len(self.info) + 2 if self.info else 0)
        if length > MAX_FRAME_LENGTH:
            raise EncodeError(
                f"HDLC frame of {length} bytes exceeds the 11-bit length field"
                f" ({MAX_FRAME_LENGTH}); segment the information field"
            )
        fmt = _FORMAT_TYPE_3 | (_FORMAT_SEGMENTED if self.segmented else 0) | length
        head = struct.pack(">H", fmt) + header + bytes((self.control,))
        if self.info:
            head += crc16_x25(head).to_bytes(2, "little") + self.info
        return b"\x7e" + head + crc16_x25(head).to_bytes(2, "little") + b"\x7e"

    @classmethod
    def decode(cls, data: bytes | bytearray | memoryview, offset: int = 0) -> tuple[HdlcFrame, int]:
        """Decode the frame whose opening flag is at ``offset``.

        Returns the frame and the offset of its closing flag (which may open the next
        frame). Raises :class:`TruncatedError` when ``data`` ends inside the frame and
        :class:`FrameError` when the frame is damaged.
        """
        view = memoryview(data)
        available = len(view) - offset
        if available < 3:
            raise TruncatedError(f"HDLC frame needs at least 3 bytes, got {max(available, 0)}")
        if view[offset] != FLAG:
            raise FrameError(f"HDLC frame must start with flag 7e, got {view[offset]:02x}")
        (fmt,) = struct.unpack_from(">H", view, offset + 1)
        if fmt & 0xF000 != _FORMAT_TYPE_3:
            raise FrameError(
                f"HDLC format field {fmt:04x} is not frame format type 3 (a...):"
                " not an IEC 62056-46 frame, or wrong baud rate"
            )
        length = fmt & _FORMAT_LENGTH_MASK
        if length < 7:  # format 2 + two 1-byte addresses + control + FCS 2
            raise FrameError(f"HDLC frame length {length} is below the minimum of 7")
        start = offset + 1
        # The header is checked (HCS) before the whole frame is awaited, so garbage that
        # only looks like a long frame is rejected without stalling the stream.
        destination, cursor = _decode_address_in(view, start + 2, start + length)
        source, cursor = _decode_address_in(view, cursor, start + length)
        if cursor >= start + length - 2:
            raise FrameError(f"HDLC frame length {length} leaves no room for control and FCS")
        if cursor >= len(view):
            raise TruncatedError("HDLC frame ends before its control field")
        control = view[cursor]
        cursor += 1
        header_end = cursor
        has_info = start + length > header_end + 2
        if has_info:
            if start + length < header_end + 4:
                raise FrameError(f"HDLC frame length {length} leaves no room for HCS and FCS")
            if len(view) < header_end + 2:
                raise TruncatedError("HDLC frame ends inside its header check sequence")
            _check_crc(view, start, header_end, "HCS")
            cursor = header_end + 2
        if len(view) < start + length + 1:
            raise TruncatedError(
                f"HDLC frame of {length} bytes: only {len(view) - start} bytes received so far"
            )
        if view[start + length] != FLAG:
            raise FrameError(
                f"HDLC frame of declared length {length} does not end with flag 7e"
                f" (got {view[start + length]:02x}): length field or frame damaged"
            )
        _check_crc(view, start, start + length - 2, "FCS")
        kind = _KIND_OF_CONTROL[control]
        if kind is None:
            raise UnknownControlError(control, destination, source)
        frame = cls(
            destination=destination,
            source=source,
            kind=kind,
            poll_final=bool(control & _POLL_FINAL),
            send_sequence=(control >> 1) & 7 if kind is FrameKind.I else 0,
            receive_sequence=(control >> 5) & 7 if kind in _NUMBERED_RECEIVE else 0,
            info=bytes(view[cursor : start + length - 2]) if has_info else b"",
            segmented=bool(fmt & _FORMAT_SEGMENTED),
        )
        return frame, start + length


class UnknownControlError(FrameError):
    """A frame with intact checksums but a control byte IEC 62056-46 does not define.

    The connection answers it with FRMR (clause 6.4.4.10) when it is addressed to it;
    ``control`` keeps the byte, ``destination``/``source`` the addresses (None: unknown).
    """

    def __init__(
        self,
        control: int,
        destination: HdlcAddress | None = None,
        source: HdlcAddress | None = None,
    ) -> None:
        super().__init__(f"HDLC control byte {control:02x} is not defined by IEC 62056-46")
        self.control = control
        self.destination = destination
        self.source = source


def _decode_address_in(view: memoryview, offset: int, limit: int) -> tuple[HdlcAddress, int]:
    try:
        return HdlcAddress.decode(view[:limit], offset)
    except TruncatedError:
        if limit <= len(view):
            raise FrameError("HDLC address runs past the frame length: frame damaged") from None
        raise


def _check_crc(view: memoryview, start: int, end: int, name: str) -> None:
    expected = crc16_x25(view[start:end])
    (got,) = struct.unpack_from("<H", view, end)
    if got != expected:
        raise ChecksumError(
            f"HDLC {name} mismatch: computed {expected:04x}, frame carries {got:04x}"
            " (line noise, wrong baud rate or parity)"
        )


def strip_llc(info: bytes) -> bytes:
    """The APDU of a first I/UI segment without its LLC header (either direction)."""
    if info[:3] in (LLC_COMMAND, LLC_RESPONSE):
        return info[3:]
    raise FrameError(
        f"information field starts with {info[:3].hex() or 'nothing'}, expected LLC header"
        " e6e600 or e6e700 (IEC 62056-46 clause 8.2)"
    )


class FrameSplitter:
    """Cut a byte stream into HDLC frames, resynchronising on anything damaged.

    ``feed(data)`` returns the complete frames found so far. Bytes that cannot start a
    frame (garbage, frames with a bad HCS/FCS or an unknown format) are skipped up to the
    next flag and counted in ``discarded``; the last error seen is kept in ``last_error``
    for diagnostics. A trailing incomplete frame is kept until more bytes come.
    Frames with a valid FCS but an undefined control byte are returned as
    :class:`UnknownControlError` instances so the connection can answer them with FRMR.
    """

    __slots__ = ("_buffer", "discarded", "last_error")

    def __init__(self) -> None:
        self._buffer = b""
        self.discarded = 0
        self.last_error: FrameError | None = None

    def clear(self) -> None:
        """Forget a partial frame (after a time-out its rest will not come)."""
        self.discarded += len(self._buffer)
        self._buffer = b""

    def feed(self, data: bytes) -> list[HdlcFrame | UnknownControlError]:
        # An immutable snapshot: decode() may keep memoryviews of it alive in tracebacks.
        buffer = self._buffer + bytes(data)
        frames: list[HdlcFrame | UnknownControlError] = []
        position = 0
        end = len(buffer)
        while True:
            position_flag = buffer.find(FLAG, position)
            if position_flag < 0:
                self.discarded += end - position
                position = end
                break
            self.discarded += position_flag - position
            position = position_flag
            if position + 1 < end and buffer[position + 1] == FLAG:
                position += 1  # idle flags or a closing flag followed by an opening one
                continue
            try:
                frame, closing = HdlcFrame.decode(buffer, position)
            except TruncatedError:
                break
            except UnknownControlError as error:
                frames.append(error)
                position = (
                    position + 1 + (struct.unpack_from(">H", buffer, position + 1)[0] & 0x7FF)
                )
                continue
            except FrameError as error:
                self.last_error = error
                self.discarded += 1
                position += 1
                continue
            frames.append(frame)
            position = closing  # the closing flag may be the next frame's opening flag
        self._buffer = buffer[position:]  # a kept trailing flag may open the next frame
        return frames


# --- SNRM/UA parameter negotiation (IEC 62056-46 clause 6.4.4.4.3.2) ----------------------

_FORMAT_IDENTIFIER: Final = 0x81
_GROUP_IDENTIFIER: Final = 0x80
DEFAULT_MAX_INFO_LENGTH: Final = 128
DEFAULT_WINDOW_SIZE: Final = 1
# Largest information field a frame with two 4-byte addresses can carry: 2047 - 15 bytes.
MAX_INFO_LENGTH: Final = MAX_FRAME_LENGTH - 15
# The largest values a station may propose (Green Book 8.4.5.3.2; the value ranges of the
# IEC HDLC setup class, Blue Book 4.7.2): information fields of 32..2030 bytes, windows of
# 1..7 frames (N(S)/N(R) count modulo 8).
LARGEST_MAX_INFO_LENGTH: Final = 2030
LARGEST_WINDOW_SIZE: Final = 7

# parameter identifier -> (field name, encoded value length). Windows go as 4 bytes and
# lengths as 1 or 2, the form of the Green Book example; decoding accepts 1, 2 and 4.
_PARAMETER_IDS: Final = {
    0x05: "max_info_transmit",
    0x06: "max_info_receive",
    0x07: "window_transmit",
    0x08: "window_receive",
}
_PARAMETER_DEFAULTS: Final = {
    "max_info_transmit": DEFAULT_MAX_INFO_LENGTH,
    "max_info_receive": DEFAULT_MAX_INFO_LENGTH,
    "window_transmit": DEFAULT_WINDOW_SIZE,
    "window_receive": DEFAULT_WINDOW_SIZE,
}
_PARAMETER_LIMITS: Final = {
    "max_info_transmit": (1, MAX_INFO_LENGTH),
    "max_info_receive": (1, MAX_INFO_LENGTH),
    "window_transmit": (1, 7),
    "window_receive": (1, 7),
}


@dataclass(frozen=True, slots=True)
class HdlcParameters:
    """Link parameters as seen by the station that sends them.

    In an SNRM they are the client's (``transmit`` = client to server); in the UA the
    server's. Absent parameters take the defaults of the standard: 128 bytes, window 1.
    """

    max_info_transmit: int = DEFAULT_MAX_INFO_LENGTH
    max_info_receive: int = DEFAULT_MAX_INFO_LENGTH
    window_transmit: int = DEFAULT_WINDOW_SIZE
    window_receive: int = DEFAULT_WINDOW_SIZE

    def __post_init__(self) -> None:
        for name, (low, high) in _PARAMETER_LIMITS.items():
            value = getattr(self, name)
            if not low <= value <= high:
                raise EncodeError(f"HDLC parameter {name} must be {low}..{high}, got {value}")

    @classmethod
    def largest(cls) -> HdlcParameters:
        """The largest parameters the standard lets a station propose (2030 bytes, window 7):
        a client offers them in SNRM and the server grants what it can (its UA)."""
        return cls(
            LARGEST_MAX_INFO_LENGTH,
            LARGEST_MAX_INFO_LENGTH,
            LARGEST_WINDOW_SIZE,
            LARGEST_WINDOW_SIZE,
        )

    def encode(self, *, defaults: bool = True) -> bytes:
        """The SNRM/UA information field. ``defaults=False`` leaves out the parameters at
        their default value, and gives an empty field when all are: a parameter absent from
        SNRM means its default (IEC 62056-46 6.4.4.4.3.2)."""
        body = bytearray()
        for identifier, name in _PARAMETER_IDS.items():
            value = getattr(self, name)
            if not defaults and value == _PARAMETER_DEFAULTS[name]:
                continue
            size = 4 if name.startswith("window") else (1 if value < 0x100 else 2)
            body += bytes((identifier, size)) + value.to_bytes(size, "big")
        if not body and not defaults:
            return b""
        return bytes((_FORMAT_IDENTIFIER, _GROUP_IDENTIFIER, len(body))) + body

    @classmethod
    def decode(cls, data: bytes | memoryview, offset: int = 0) -> HdlcParameters:
        """Decode an SNRM/UA information field; an empty one means all defaults."""
        view = memoryview(data)[offset:]
        if len(view) == 0:
            return cls()
        if len(view) < 3:
            raise FrameError(f"HDLC parameter field of {len(view)} bytes is too short (need 3)")
        if view[0] != _FORMAT_IDENTIFIER or view[1] != _GROUP_IDENTIFIER:
            raise FrameError(
                f"HDLC parameter field starts with {bytes(view[:2]).hex()}, expected 8180"
                " (format identifier, user data group)"
            )
        group_end = 3 + view[2]
        if group_end > len(view):
            raise FrameError(
                f"HDLC parameter group claims {view[2]} bytes, only {len(view) - 3} present"
            )
        values: dict[str, int] = {}
        cursor = 3
        while cursor < group_end:  # at most a handful of parameters
            if cursor + 2 > group_end:
                raise FrameError("HDLC parameter cut after its identifier")
            identifier, size = view[cursor], view[cursor + 1]
            cursor += 2
            if cursor + size > group_end:
                raise FrameError(f"HDLC parameter {identifier:02x} runs past its group")
            name = _PARAMETER_IDS.get(identifier)
            if name is not None:  # unknown parameters are ignored, as the standard allows
                if size not in (1, 2, 4):
                    raise FrameError(
                        f"HDLC parameter {identifier:02x} has a {size}-byte value;"
                        " expected 1, 2 or 4 bytes"
                    )
                values[name] = int.from_bytes(view[cursor : cursor + size], "big")
            cursor += size
        try:
            return cls(**values)
        except EncodeError as error:
            raise FrameError(f"peer proposed an unusable HDLC parameter: {error}") from None

    def negotiate(self, remote: HdlcParameters) -> HdlcParameters:
        """The parameters this station uses, given its own and the peer's (min of both).

        The server answers an SNRM with ``own.negotiate(snrm)`` in its UA; the client then
        takes ``own.negotiate(ua)``. What one side transmits the other must receive.
        """
        return HdlcParameters(
            max_info_transmit=min(self.max_info_transmit, remote.max_info_receive),
            max_info_receive=min(self.max_info_receive, remote.max_info_transmit),
            window_transmit=min(self.window_transmit, remote.window_receive),
            window_receive=min(self.window_receive, remote.window_transmit),
        )
