"""Split a serial stream of back-to-back general-glo-ciphering APDUs (T-210D-r P1 port).

The T-210D-r sends its DSMR P1 telegram encrypted as a bare general-glo-ciphering APDU
(Green Book 9.5, tag 0xDB) on 115200 8N1, with no link layer: the boundaries come from
the APDU itself::

    DB | 08 | system title (8) | BER length | security control | invocation counter (4) | ...

The splitter checks the fixed parts (tag, system-title length 8, a known security control
byte) before trusting a length, so garbage cannot make it wait for a 64 KiB "frame".
"""

from __future__ import annotations

from typing import Final

from edge_agent.dlms import system_title

__all__ = ["GeneralGloCipheringSplitter"]

_TAG: Final = 0xDB
_SYSTEM_TITLE_LENGTH: Final = system_title.LENGTH
# Security control: bits 4-5 authentication/encryption, bits 0-3 the suite (0..2).
_SECURITY_CONTROLS: Final = frozenset(
    flags | suite for flags in (0x10, 0x20, 0x30) for suite in range(3)
)
DEFAULT_MAX_LENGTH: Final = 4096


class GeneralGloCipheringSplitter:
    """``feed(bytes) -> list[bytes]``: complete 0xDB APDUs; garbage is skipped and counted."""

    __slots__ = ("_buffer", "discarded", "max_length")

    def __init__(self, max_length: int = DEFAULT_MAX_LENGTH) -> None:
        self._buffer = b""
        self.max_length = max_length
        self.discarded = 0

    def feed(self, data: bytes) -> list[bytes]:
        buffer = self._buffer + bytes(data)
        apdus: list[bytes] = []
        position = 0
        while (found := buffer.find(_TAG, position)) >= 0:
            self.discarded += found - position
            position = found
            end = self._frame_end(buffer, position)
            if end is None:  # incomplete: wait for more bytes
                break
            if end < 0:  # not a plausible APDU start: resynchronise after this byte
                self.discarded += 1
                position += 1
                continue
            apdus.append(buffer[position:end])
            position = end
        else:
            self.discarded += len(buffer) - position
            position = len(buffer)
        self._buffer = buffer[position:]
        return apdus

    def _frame_end(self, buffer: bytes, start: int) -> int | None:
        """End offset of the APDU at ``start``; None if more bytes are needed, -1 if invalid."""
        length_at = start + 2 + _SYSTEM_TITLE_LENGTH
        if len(buffer) < length_at + 1:
            return (
                None if len(buffer) < start + 2 or buffer[start + 1] == _SYSTEM_TITLE_LENGTH else -1
            )
        if buffer[start + 1] != _SYSTEM_TITLE_LENGTH:
            return -1
        first = buffer[length_at]
        if first < 0x80:
            size, content_at = first, length_at + 1
        elif first in (0x81, 0x82):
            count = first & 0x7F
            if len(buffer) < length_at + 1 + count:
                return None
            size = int.from_bytes(buffer[length_at + 1 : length_at + 1 + count], "big")
            content_at = length_at + 1 + count
        else:
            return -1
        if not 5 <= size <= self.max_length:
            return -1
        if len(buffer) <= content_at:
            return None
        if buffer[content_at] not in _SECURITY_CONTROLS:
            return -1
        end = content_at + size
        return end if len(buffer) >= end else None
