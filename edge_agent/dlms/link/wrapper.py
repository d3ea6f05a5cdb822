"""TCP/UDP wrapper of IEC 62056-47 (Green Book 7.3.3.3): an 8-byte header per APDU.

    version (0x0001) | source wPort | destination wPort | length      (each 2 bytes, big-endian)

The wPort numbers play the role of the HDLC addresses: the client SAP (e.g. 16 public,
1 management) and the server logical device (1 management logical device).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

from edge_agent.dlms.errors import EncodeError, FrameError, TruncatedError

__all__ = ["HEADER_LENGTH", "WRAPPER_VERSION", "WrapperDecoder", "WrapperFrame", "hdlc_instead"]

WRAPPER_VERSION: Final = 0x0001
HEADER_LENGTH: Final = 8
_HEADER: Final = struct.Struct(">HHHH")


@dataclass(frozen=True, slots=True)
class WrapperFrame:
    source_wport: int
    destination_wport: int
    apdu: bytes

    def encode(self) -> bytes:
        if len(self.apdu) > 0xFFFF:
            raise EncodeError(
                f"wrapper APDU of {len(self.apdu)} bytes exceeds the 16-bit length field"
            )
        for name in ("source_wport", "destination_wport"):
            if not 0 <= getattr(self, name) <= 0xFFFF:
                raise EncodeError(f"{name} must be 0..65535, got {getattr(self, name)}")
        header = _HEADER.pack(
            WRAPPER_VERSION, self.source_wport, self.destination_wport, len(self.apdu)
        )
        return header + self.apdu

    @classmethod
    def decode(
        cls, data: bytes | bytearray | memoryview, offset: int = 0
    ) -> tuple[WrapperFrame, int]:
        """Decode the frame at ``offset``; returns it and the offset after it."""
        available = len(data) - offset
        if available < HEADER_LENGTH:
            raise TruncatedError(
                f"wrapper header needs {HEADER_LENGTH} bytes, got {max(available, 0)}"
            )
        version, source, destination, length = _HEADER.unpack_from(data, offset)
        if version != WRAPPER_VERSION:
            error = FrameError(
                f"wrapper version {version:#06x}, expected 0x0001: the peer does not speak the"
                " IEC 62056-47 wrapper (HDLC over TCP? then link: hdlc)"
            )
            error.fix = ("link", "hdlc")
            raise error
        end = offset + HEADER_LENGTH + length
        if len(data) < end:
            raise TruncatedError(
                f"wrapper frame announces {length} APDU bytes, {available - HEADER_LENGTH} present"
            )
        return cls(source, destination, bytes(data[offset + HEADER_LENGTH : end])), end


def hdlc_instead(data: bytes) -> FrameError | None:
    """The error to raise when ``data``, where a wrapper stream begins (version 0x0001),
    starts with an HDLC frame instead: the flag 0x7E and a frame format type 3 octet
    (0xA0..0xAF, IEC 62056-46 8.4.1.3) -- the meter speaks HDLC over TCP."""
    if len(data) < 2 or data[0] != 0x7E or data[1] & 0xF0 != 0xA0:
        return None
    error = FrameError(
        f"the meter answers with an HDLC frame ({data[:12].hex()}...), not an IEC 62056-47"
        " wrapper frame: it speaks HDLC over TCP (a serial-to-Ethernet converter?); set"
        " link: hdlc"
    )
    error.fix = ("link", "hdlc")
    return error


class WrapperDecoder:
    """Cut a TCP byte stream into wrapper frames (partial and back-to-back frames).

    TCP gives no resynchronisation point of its own, so a bad header is fatal for the
    stream: it raises :class:`FrameError` and the caller closes the connection -- unless the
    caller names the ports of the frames it ``expects`` (source, destination): then bytes
    before such a header (line noise from a serial-to-Ethernet gateway) are skipped, kept
    in ``skipped`` for the caller to report, and the frame after them is decoded.
    """

    __slots__ = ("_buffer", "_marker", "skipped")

    def __init__(self, expects: tuple[int, int] | None = None) -> None:
        self._buffer = b""
        self._marker = None if expects is None else _HEADER.pack(WRAPPER_VERSION, *expects, 0)[:6]
        self.skipped = b""  # the bytes skipped by the last ``feed``

    @property
    def pending(self) -> int:
        """Bytes of an incomplete frame kept for the next ``feed``."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[WrapperFrame]:
        buffer = self._buffer + bytes(data)
        frames: list[WrapperFrame] = []
        offset = 0
        self.skipped = b""
        while True:
            try:
                frame, offset = WrapperFrame.decode(buffer, offset)
            except TruncatedError:
                break
            except FrameError:
                if self._marker is None:
                    self._buffer = b""
                    raise
                start = buffer.find(self._marker, offset + 1)
                if start < 0:  # keep what could still begin the header wanted
                    start = max(offset + 1, len(buffer) - len(self._marker) + 1)
                self.skipped += buffer[offset:start]
                offset = start
                continue
            frames.append(frame)
        self._buffer = buffer[offset:]
        return frames

    def partial(self) -> tuple[WrapperFrame, int] | None:
        """The frame held back as incomplete, with the APDU bytes that came so far, and the
        APDU length its header announced; None without a whole header. For a caller that
        waited in vain for the rest: it may judge a header whose length covers more than
        the APDU the peer sent (a known peer bug), then :meth:`clear` the buffer."""
        if len(self._buffer) < HEADER_LENGTH:
            return None
        _version, source, destination, length = _HEADER.unpack_from(self._buffer, 0)
        return WrapperFrame(source, destination, self._buffer[HEADER_LENGTH:]), length

    def clear(self) -> None:
        """Forget the bytes held back."""
        self._buffer = b""
