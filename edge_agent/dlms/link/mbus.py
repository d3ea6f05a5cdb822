"""Wired M-Bus long frames (EN 13757-2) carrying DLMS APDUs, as the Austrian T-210D pushes.

Long frame (EN 13757-2 clause 5)::

    68 | L | L | 68 | C | A | CI | data ... | CS | 16

L counts C, A, CI and data; CS is their sum modulo 256. For DLMS (EN 13757-3 table 2,
"DLMS/COSEM transport", CI 0x00..0x1F) the CI byte is a segment header: bits 0-3 the
segment number, bit 4 (0x10) set on the last segment. Each segment's data starts with
the source and destination TSAP (the T-210D sends 01 67), then a piece of the APDU.

The T-210D customer interface (2400 8E1) splits one general-glo-ciphering
DataNotification over two frames: CI 0x00 then 0x11. Older firmware put 254 APDU bytes in
the first frame, so L = 257 overflowed to ``68 01 01 68``; the frame end is then found
from the stop byte and checksum one 256-byte step further.

This module is the frame codec and the sender's split. The receiving side (a stream cut
into frames, segments joined, garbage and lost segments reported) is the one push
reassembler, :mod:`edge_agent.dlms.push.reassembly`, that serves every framing alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from edge_agent.dlms.errors import EncodeError, FrameError, TruncatedError

__all__ = [
    "MbusLongFrame",
    "split_telegram",
]

_START: Final = 0x68
_STOP: Final = 0x16
_OVERHEAD: Final = 6  # 68 L L 68 ... CS 16
_MIN_LENGTH: Final = 3  # C, A, CI
# L is one byte; a length that overflowed is tried one step of 256 further, no more:
# the T-210D's longest first frame is 257 bytes.
_LENGTH_CANDIDATES: Final = 2
_CI_FINAL: Final = 0x10
_CI_SEQUENCE_MASK: Final = 0x0F
_TSAP_LENGTH: Final = 2
# T-210D customer interface: C = SND_UD (0x53), A = broadcast 0xFF, STSAP 01, DTSAP 67.
T210D_CONTROL: Final = 0x53
T210D_ADDRESS: Final = 0xFF
T210D_TSAPS: Final = b"\x01\x67"


@dataclass(frozen=True, slots=True)
class MbusLongFrame:
    control: int  # C field
    address: int  # A field
    control_information: int  # CI field
    data: bytes  # everything between CI and CS

    @property
    def segment_number(self) -> int:
        return self.control_information & _CI_SEQUENCE_MASK

    @property
    def final_segment(self) -> bool:
        return bool(self.control_information & _CI_FINAL)

    def encode(self, allow_length_overflow: bool = False) -> bytes:
        """The frame; ``allow_length_overflow`` writes L & 0xFF as old T-210D firmware did."""
        body = bytes((self.control, self.address, self.control_information)) + self.data
        if len(body) > 0xFF and not allow_length_overflow:
            raise EncodeError(
                f"M-Bus long frame body of {len(body)} bytes exceeds L = 255; split the telegram"
            )
        length = len(body) & 0xFF
        return bytes((_START, length, length, _START)) + body + bytes((sum(body) & 0xFF, _STOP))

    @classmethod
    def decode(
        cls, data: bytes | bytearray | memoryview, offset: int = 0
    ) -> tuple[MbusLongFrame, int]:
        """Decode the frame at ``offset``; returns it and the offset after its stop byte."""
        view = memoryview(data)
        if len(view) - offset < 4:
            raise TruncatedError(
                f"M-Bus long frame header needs 4 bytes, got {max(len(view) - offset, 0)}"
            )
        start, length, length_again, start_again = view[offset : offset + 4]
        if start != _START or start_again != _START or length != length_again:
            raise FrameError(
                f"M-Bus long frame must start 68 L L 68, got {bytes(view[offset : offset + 4]).hex()}"
            )
        body_start = offset + 4
        for body_length in range(length, length + 256 * _LENGTH_CANDIDATES, 256):
            if body_length < _MIN_LENGTH:
                continue
            end = body_start + body_length + 2
            if end > len(view):
                raise TruncatedError(
                    f"M-Bus long frame of L={body_length}: {len(view) - body_start} bytes so far"
                )
            body = view[body_start : end - 2]
            if view[end - 1] == _STOP and sum(body) & 0xFF == view[end - 2]:
                control, address, ci = body[:3]
                return cls(control, address, ci, bytes(body[3:])), end
        raise FrameError(
            f"M-Bus long frame with L={length:#04x}: no stop byte 16 with a matching checksum at"
            f" L or L+256 (line noise, or wrong baud/parity: the T-210D sends 2400 8E1)"
        )


def split_telegram(
    apdu: bytes,
    first_segment_size: int = 245,
    segment_size: int = 245,
    control: int = T210D_CONTROL,
    address: int = T210D_ADDRESS,
    tsaps: bytes = T210D_TSAPS,
) -> list[MbusLongFrame]:
    """Cut an APDU into DLMS segments; the defaults give the T-210D's 250-byte first frame.

    ``first_segment_size=252`` reproduces old firmware (L = 257); encode that frame with
    ``allow_length_overflow=True``.
    """
    if len(tsaps) != _TSAP_LENGTH:
        raise EncodeError(f"tsaps must be 2 bytes (source, destination), got {len(tsaps)}")
    pieces = [apdu[:first_segment_size]]
    pieces += [
        apdu[i : i + segment_size] for i in range(first_segment_size, len(apdu), segment_size)
    ]
    if len(pieces) > _CI_SEQUENCE_MASK + 1:
        raise EncodeError(f"APDU of {len(apdu)} bytes needs {len(pieces)} M-Bus segments; max 16")
    last = len(pieces) - 1
    return [
        MbusLongFrame(
            control, address, number | (_CI_FINAL if number == last else 0), tsaps + piece
        )
        for number, piece in enumerate(pieces)
    ]
