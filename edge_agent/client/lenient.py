"""Known malformations of meters' answers, accepted with a warning that shows the bytes.

Strict in what we send, liberal in what we accept (DESIGN.md, "Liberal in what it
accepts"): each function takes what came and returns what the standard would have sent,
but only where the meaning is unambiguous; anything else stays an error for the caller.

- bytes after a complete APDU: a gateway's padding or checksum, or a wrapper length that
  covers more than the APDU (Green Book 7.3.3.3 makes the length exactly the APDU's);
- a date-time (Blue Book 4.1.6.1: an octet-string of 12) sent as an octet-string that
  holds the tagged date-time ``09 0C ...`` once more.
"""

from __future__ import annotations

from typing import Any

from edge_agent.dlms import apdu as x
from edge_agent.dlms.encoding.ber import read_tlv
from edge_agent.dlms.encoding.date_time import looks_like_date_time
from edge_agent.dlms.errors import DecodeError
from edge_agent.dlms.security.ciphering import CipheredApdu
from edge_agent.dlms.security.tags import is_ciphered

# ACSE PDUs (AARQ, AARE, RLRQ, RLRE) are BER: their length says where they end.
_ACSE_TAGS = frozenset({0x60, 0x61, 0x62, 0x63})
_TAGGED_DATE_TIME = b"\x09\x0c"  # octet-string, length 12


def apdu_end(apdu: bytes) -> int | None:
    """Where the APDU at the start of ``apdu`` ends; None when that cannot be told (it
    does not decode, or its form carries no length, like general-signing)."""
    if not apdu:
        return None
    tag = apdu[0]
    try:
        if is_ciphered(tag):
            return CipheredApdu.decode(apdu, 0)[1]
        if tag in _ACSE_TAGS:
            return read_tlv(apdu, 0, len(apdu), "ACSE APDU")[2]
        return x.decode_apdu_prefix(apdu)[1]
    except DecodeError:
        return None


def split_trailing(apdu: bytes) -> tuple[bytes, bytes]:
    """``(the complete APDU, the bytes after it)``; the second is empty when nothing follows
    a complete APDU or when no complete APDU can be found at the start."""
    end = apdu_end(apdu)
    if end is None or end >= len(apdu):
        return apdu, b""
    return apdu[:end], apdu[end:]


def unwrap_date_time(value: Any) -> bytes | None:
    """The 12 date-time octets of a value that wraps the tagged date-time in one more
    octet-string (``09 0E 09 0C`` + 12 octets on the wire), else None."""
    if not isinstance(value, (bytes, bytearray)) or len(value) != 14:
        return None
    inner = bytes(value[2:])
    if bytes(value[:2]) != _TAGGED_DATE_TIME or not looks_like_date_time(inner):
        return None
    return inner


__all__ = ["apdu_end", "split_trailing", "unwrap_date_time"]
