"""Octet-string helpers of the security APDUs, on the A-XDR length codec (Green Book 9.5)."""

from __future__ import annotations

from edge_agent.dlms.encoding.axdr import decode_length, encode_length
from edge_agent.dlms.errors import TruncatedError

__all__ = ["decode_length", "encode_length", "octet_string", "take", "take_octet_string"]


def take(buf: bytes | memoryview, offset: int, size: int, what: str) -> tuple[bytes, int]:
    """Slice ``size`` bytes at ``offset`` or raise TruncatedError naming ``what``."""
    end = offset + size
    if end > len(buf):
        raise TruncatedError(
            f"{what}: {size} bytes expected at offset {offset}, only {len(buf) - offset} left"
        )
    return bytes(buf[offset:end]), end


def take_octet_string(buf: bytes | memoryview, offset: int, what: str) -> tuple[bytes, int]:
    """A length-prefixed octet string (A-XDR, no type tag)."""
    size, offset = decode_length(buf, offset)
    return take(buf, offset, size, what)


def octet_string(value: bytes) -> bytes:
    return encode_length(len(value)) + bytes(value)
