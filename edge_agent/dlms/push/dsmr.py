"""DSMR P1 telegrams: the text a T-210D-r ciphers in general-glo-ciphering on its P1 port.

Telegram (DSMR 5.0.2 P1 companion standard, clause 6.2, after IEC 62056-21 mode D)::

    /FFF5Identification CR LF  CR LF     FFF: the manufacturer's three-letter FLAG id
    1-0:1.8.0(006545766*Wh) CR LF        one COSEM object per line: OBIS, then (value*unit)
    0-1:24.2.1(221006150000S)(00012.345*m3)    several groups: the last holds the value
    ...
    !CRC CR LF

CRC is CRC-16/ARC (polynomial x^16 + x^15 + x^2 + 1, bit-reflected, initial value 0)
over everything from ``/`` to ``!`` inclusive, written as four hex digits (clause 6.2).
DSMR 2.2 telegrams end with a bare ``!`` (no CRC): accepted without a check.

Time stamps ``YYMMDDhhmmssX`` carry X = S (summer time) or W (winter time); every
country using P1 telegrams (NL, BE, LU, AT) is on Central European Time, so S is
UTC+2 and W UTC+1.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Final

from edge_agent.dlms.cosem.obis import Obis
from edge_agent.dlms.cosem.units import apply_scaler
from edge_agent.dlms.errors import DecodeError
from edge_agent.dlms.push.body import PushItem

__all__ = ["DsmrTelegram", "crc16_arc", "looks_like_telegram"]

START: Final = ord("/")
_END: Final = b"!"
_REFLECTED_POLYNOMIAL: Final = 0xA001  # 0x8005 bit-reversed


def _table_entry(byte: int) -> int:
    crc = byte
    for _ in range(8):
        crc = (crc >> 1) ^ _REFLECTED_POLYNOMIAL if crc & 1 else crc >> 1
    return crc


_TABLE: Final = tuple(_table_entry(i) for i in range(256))


def crc16_arc(data: bytes) -> int:
    """CRC-16/ARC ("123456789" gives 0xBB3D).

    The standard library has no C routine for this polynomial (``binascii.crc_hqx`` is
    0x1021), so this is the table walk: one step per byte, ~0.2 ms for a 1 KiB telegram
    that arrives once a second.
    """
    crc, table = 0, _TABLE
    for byte in data:
        crc = (crc >> 8) ^ table[(crc ^ byte) & 0xFF]
    return crc


_LINE: Final = re.compile(r"(\d{1,3})-(\d{1,3}):(\d{1,3})\.(\d{1,3})\.(\d{1,3})((?:\([^()]*\))+)")
_GROUP: Final = re.compile(r"\(([^()]*)\)")
_NUMBER: Final = re.compile(r"[-+]?\d+(?:\.\d+)?")
_TIMESTAMP: Final = re.compile(r"(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})([SW])")
_HEX_TEXT: Final = re.compile(r"(?:[0-9A-Fa-f]{2})+")
_CET: Final = {"W": timezone(timedelta(hours=1)), "S": timezone(timedelta(hours=2))}
# Objects whose value is text written as hex digits (DSMR 5.0.2 table 6: equipment
# identifiers 96.1.x, text message 96.13.0).
_HEX_TEXT_CD: Final = frozenset({(96, 1), (96, 13)})
_TIMESTAMP_OBIS: Final = Obis(0, 0, 1, 0, 0)


def _timestamp(text: str) -> datetime | None:
    match = _TIMESTAMP.fullmatch(text)
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    try:
        return datetime(2000 + year, month, day, hour, minute, second, tzinfo=_CET[match[7]])
    except ValueError:
        raise DecodeError(f"P1 time stamp {text!r} is not a valid date and time") from None


def _hex_text(text: str) -> str:
    if _HEX_TEXT.fullmatch(text):
        raw = bytes.fromhex(text)
        if raw.isascii() and all(0x20 <= b < 0x7F for b in raw):
            return raw.decode("ascii")
    return text


def _item(code: Obis, groups: list[str]) -> PushItem:
    """The value is the last group; a leading time stamp (M-Bus readings) is dropped."""
    text = groups[-1]
    if len(groups) > 2 or (len(groups) == 2 and _timestamp(groups[0]) is None):
        return PushItem(code, groups, None, groups)  # a log (99.97.0): keep its groups
    number, star, unit = text.partition("*")
    if (code.c, code.d) in _HEX_TEXT_CD:
        return PushItem(code, _hex_text(text), None, text)
    if (moment := _timestamp(text)) is not None:
        return PushItem(code, moment.isoformat(), None, text)
    if _NUMBER.fullmatch(number):
        whole, _, fraction = number.partition(".")
        value = apply_scaler(int(whole + fraction), -len(fraction))
        return PushItem(code, value, unit or None, text, -len(fraction) if star or fraction
                        else None)
    return PushItem(code, text, None, text)


@dataclass(frozen=True, slots=True)
class DsmrTelegram:
    """A P1 telegram: ``identification`` (without the ``/``) and its data lines."""

    identification: str
    lines: tuple[str, ...]

    def encode(self) -> bytes:
        """The telegram with its CRC, CR LF line ends, as a meter sends it."""
        body = "".join(f"{line}\r\n" for line in self.lines)
        text = f"/{self.identification}\r\n\r\n{body}!".encode("ascii")
        return text + f"{crc16_arc(text):04X}\r\n".encode("ascii")

    @classmethod
    def decode(cls, data: bytes | bytearray | memoryview) -> DsmrTelegram:
        """Check the frame and CRC; DecodeError says which part is wrong."""
        raw = bytes(data)
        if not raw or raw[0] != START:
            raise DecodeError(
                f"a P1 telegram starts with '/', got {raw[:8]!r}: not a DSMR telegram "
                "(for an encrypted T-210D-r the EK may be wrong)")
        end = raw.find(_END)
        if end < 0:
            raise DecodeError("P1 telegram has no end line '!CRC': truncated")
        if not raw.isascii():
            raise DecodeError("P1 telegram contains non-ASCII bytes: damaged or wrongly decrypted")
        checksum = raw[end + 1:end + 5].decode("ascii")
        if checksum.strip():
            try:
                carried = int(checksum, 16)
            except ValueError:
                raise DecodeError(f"P1 telegram CRC {checksum!r} is not four hex digits") \
                    from None
            computed = crc16_arc(raw[:end + 1])
            if carried != computed:
                raise DecodeError(
                    f"P1 telegram CRC mismatch: computed {computed:04X}, telegram carries "
                    f"{carried:04X} (damaged telegram: check the cable and 115200 8N1)")
        text = raw[1:end].decode("ascii")
        identification, _, body = text.partition("\n")
        # A value may continue on the next line (DSMR 3 gas readings): join on "(".
        lines = re.sub(r"\r?\n(?=\()", "", body).splitlines()
        return cls(identification.strip(), tuple(line.strip() for line in lines
                                                 if line.strip()))

    @property
    def items(self) -> tuple[PushItem, ...]:
        items = []
        for line in self.lines:
            match = _LINE.fullmatch(line)
            if match is not None:
                code = Obis(*(int(g) for g in match.groups()[:5]))
                items.append(_item(code, _GROUP.findall(match[6])))
        return tuple(items)

    @property
    def timestamp(self) -> datetime | None:
        """The telegram's time stamp (0-0:1.0.0), aware (CET/CEST)."""
        for item in self.items:
            if item.obis == _TIMESTAMP_OBIS and isinstance(item.raw, str):
                return _timestamp(item.raw)
        return None

    @property
    def equipment_id(self) -> str | None:
        """Equipment identifier 0-0:96.1.1 (electricity) or 0-0:96.1.0, decoded from hex."""
        for item in self.items:
            if (item.obis.a, item.obis.c, item.obis.d) == (0, 96, 1) and item.value:
                return str(item.value)
        return None


def looks_like_telegram(data: bytes) -> bool:
    return bool(data) and data[0] == START
