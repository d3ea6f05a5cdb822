"""The slice of BER (ITU-T X.690) that the ACSE PDUs use (Green Book 9.3, 11.2).

AARQ/AARE/RLRQ/RLRE are BER-encoded with one-octet identifiers (context-specific and
application tags below 31) and definite lengths; nothing else of BER appears in DLMS.
Readers take ``bytes``/``memoryview`` plus offsets and never copy the input.
"""

from __future__ import annotations

from edge_agent.dlms.errors import DecodeError, EncodeError, TruncatedError

# X.690 8.1.2: identifier octet bits.
CONTEXT = 0x80
APPLICATION = 0x40
CONSTRUCTED = 0x20

# Universal tags used inside the ACSE PDUs.
INTEGER = 0x02
BIT_STRING = 0x03
OCTET_STRING = 0x04
OBJECT_IDENTIFIER = 0x06
GRAPHIC_STRING = 0x19


def encode_length(n: int) -> bytes:
    """X.690 8.1.3: short form below 128, else 0x8k and k big-endian octets."""
    if n < 0:
        raise EncodeError(f"BER length must be >= 0, got {n}")
    if n < 0x80:
        return bytes((n,))
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(body),)) + body


def tlv(tag: int, value: bytes) -> bytes:
    """One-octet identifier, definite length, contents."""
    return bytes((tag,)) + encode_length(len(value)) + value


def read_tlv(buf: bytes | memoryview, offset: int, end: int, what: str) -> tuple[int, int, int]:
    """Read the TLV at ``offset`` that must end by ``end``.

    Returns ``(tag, contents_start, contents_end)``. Raises ``TruncatedError`` when the
    length runs past ``end`` and ``DecodeError`` for forms DLMS never uses (multi-octet
    identifiers, indefinite length).
    """
    if offset + 2 > end:
        raise TruncatedError(
            f"{what}: expected a tag and a length at offset {offset}, input ends at {end}"
        )
    tag = buf[offset]
    if tag & 0x1F == 0x1F:
        raise DecodeError(
            f"{what}: multi-octet BER tag 0x{tag:02x} at offset {offset} is not used by ACSE"
        )
    first = buf[offset + 1]
    pos = offset + 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0:
            raise DecodeError(
                f"{what}: indefinite BER length at offset {offset + 1} (DLMS uses definite lengths)"
            )
        if count > 4:
            raise DecodeError(
                f"{what}: BER length of {count} octets at offset {offset + 1} is absurd"
            )
        if pos + count > end:
            raise TruncatedError(
                f"{what}: length octets run past the end of the input at offset {pos}"
            )
        length = int.from_bytes(buf[pos : pos + count], "big")
        pos += count
    if pos + length > end:
        raise TruncatedError(
            f"{what}: tag 0x{tag:02x} at offset {offset} announces {length} bytes, "
            f"only {end - pos} left"
        )
    return tag, pos, pos + length


def expect_tlv(
    buf: bytes | memoryview, offset: int, end: int, tag: int, what: str
) -> tuple[int, int]:
    """``read_tlv`` that insists on ``tag``; returns ``(contents_start, contents_end)``."""
    got, start, stop = read_tlv(buf, offset, end, what)
    if got != tag:
        raise DecodeError(
            f"{what}: expected BER tag 0x{tag:02x} at offset {offset}, got 0x{got:02x}"
        )
    return start, stop


def encode_integer(value: int) -> bytes:
    """X.690 8.3: minimal two's-complement contents octets."""
    return value.to_bytes(value.bit_length() // 8 + 1, "big", signed=True)


def decode_integer(buf: bytes | memoryview, start: int, stop: int, what: str) -> int:
    if start == stop:
        raise DecodeError(f"{what}: an INTEGER needs at least one contents octet")
    if stop - start > 8:
        raise DecodeError(f"{what}: INTEGER of {stop - start} octets is out of range for DLMS")
    return int.from_bytes(buf[start:stop], "big", signed=True)


def encode_oid(arcs: tuple[int, ...]) -> bytes:
    """X.690 8.19: first two arcs as 40*a+b, every arc base-128 with continuation bits."""
    if len(arcs) < 2:
        raise EncodeError(f"an OBJECT IDENTIFIER needs at least two arcs, got {arcs}")
    out = bytearray()
    for arc in (40 * arcs[0] + arcs[1], *arcs[2:]):
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        out += bytes(reversed(chunk))
    return bytes(out)


def encode_bit_string(bits: bytes, unused_bits: int = 0) -> bytes:
    """X.690 8.6: contents = number of unused bits in the last octet, then the octets."""
    if not 0 <= unused_bits <= 7:
        raise EncodeError(f"BIT STRING unused bits must be 0..7, got {unused_bits}")
    return bytes((unused_bits,)) + bits


def decode_bit_string(
    buf: bytes | memoryview, start: int, stop: int, what: str
) -> tuple[bytes, int]:
    """Return ``(octets, unused_bits)``."""
    if start == stop:
        raise DecodeError(f"{what}: a BIT STRING needs its unused-bits octet")
    unused = buf[start]
    if unused > 7 or (unused and stop - start == 1):
        raise DecodeError(f"{what}: BIT STRING with {unused} unused bits is malformed")
    return bytes(buf[start + 1 : stop]), unused
