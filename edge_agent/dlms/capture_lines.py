"""Capture lines: one frame per line with its time and direction, as ``--capture`` of read,
listen and run writes them and ``dlms-edge decode -`` reads them back (and bare hex)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from edge_agent.dlms.errors import DecodeError

__all__ = ["CAPTURE_FORMAT", "DIRECTIONS", "CaptureLine", "format_capture_line", "parse_hex",
           "parse_line"]

#: One frame per line: ISO 8601 UTC time with milliseconds and "Z", direction seen from
#: dlms-edge ("tx" sent by us, "rx" received), the frame as lower-case hex. Blank lines and
#: lines starting with "#" are comments. Example:
#: ``2026-11-25T01:02:03.456Z tx 7ea0070321930f017e``
CAPTURE_FORMAT = "<iso-8601-utc> <tx|rx> <hex>"
DIRECTIONS = ("tx", "rx")
_HEX_NOISE = re.compile(r"[\s:]+")


@dataclass(frozen=True, slots=True)
class CaptureLine:
    """One line of input: a frame, and when it came from a capture file its time and direction."""

    frame: bytes
    timestamp: datetime | None = None
    direction: str | None = None

    def encode(self) -> str:
        if self.timestamp is None or self.direction is None:
            return self.frame.hex()
        return format_capture_line(self.timestamp, self.direction, self.frame)


def format_capture_line(timestamp: datetime, direction: str, frame: bytes) -> str:
    """The capture line of ``frame`` (``timestamp`` aware; it is written in UTC)."""
    if direction not in DIRECTIONS:
        raise ValueError(f"capture direction must be 'tx' or 'rx', got {direction!r}")
    if timestamp.tzinfo is None:
        raise ValueError("capture timestamps must be timezone-aware (UTC)")
    utc = timestamp.astimezone(UTC)
    return f"{utc.strftime('%Y-%m-%dT%H:%M:%S')}.{utc.microsecond // 1000:03d}Z {direction} {bytes(frame).hex()}"


def parse_hex(text: str) -> bytes:
    """Hex with optional 0x, spaces or colons between bytes; DecodeError says what is wrong."""
    cleaned = _HEX_NOISE.sub("", text)
    cleaned = cleaned[2:] if cleaned[:2] in ("0x", "0X") else cleaned
    if not cleaned:
        raise DecodeError("no hex digits given: expected a frame or APDU as hex (e.g. 7ea0...7e)")
    bad = re.search(r"[^0-9A-Fa-f]", cleaned)
    if bad is not None:
        raise DecodeError(
            f"not hexadecimal: character {bad.group()!r} at position {bad.start()} "
            f"(expected a hex string, or a capture line '{CAPTURE_FORMAT}')"
        )
    if len(cleaned) % 2:
        raise DecodeError(f"odd number of hex digits ({len(cleaned)}): a byte is cut in half")
    return bytes.fromhex(cleaned)


def parse_line(line: str) -> CaptureLine | None:
    """A capture line or a bare hex line; None for blank lines and ``#`` comments."""
    text = line.strip()
    if not text or text.startswith("#"):
        return None
    parts = text.split(None, 2)
    if len(parts) == 3 and parts[1] in DIRECTIONS:
        try:
            timestamp = datetime.fromisoformat(parts[0])
        except ValueError:
            raise DecodeError(
                f"capture line time {parts[0]!r} is not ISO 8601 (expected '{CAPTURE_FORMAT}', "
                "e.g. 2026-11-25T01:02:03.456Z tx 7ea0...)"
            ) from None
        if timestamp.tzinfo is None:
            timestamp = timestamp.replace(tzinfo=UTC)
        return CaptureLine(parse_hex(parts[2]), timestamp, parts[1])
    return CaptureLine(parse_hex(text))
