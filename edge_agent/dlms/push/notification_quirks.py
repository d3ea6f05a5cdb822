"""DataNotifications as some meters encode them, made standard before they are decoded.

Green Book 9.5: DataNotification ::= SEQUENCE { long-invoke-id-and-priority Unsigned32,
date-time OCTET STRING, notification-body }; the date-time is an A-XDR OCTET STRING, so
on the wire a length (12, or 0 when absent) then the 12 octets of a COSEM date-time::

    0F | 40 00 00 00 | 0C | 07 E6 01 02 07 0E 25 12 FF 80 00 00 | body
    0F | 40 00 00 00 | 09 0C | 07 E6 ...                         Kaifa MA304/MA309 (HAN, NO/SE)

Kaifa meters send it as a Data value instead: the octet-string tag 09 before the length.
A date-time octet string has 0 or 12 octets, never 9, so reading ``09`` as a length is
never right and the tagged form is unambiguous: :func:`standard_data_notification`
drops the tag and says so, and the APDU then decodes as the standard has it.
"""

from __future__ import annotations

from typing import Final

__all__ = ["TAGGED_DATE_TIME_NOTE", "standard_data_notification"]

_DATA_NOTIFICATION: Final = 0x0F
_DATE_TIME_AT: Final = 5  # tag, long-invoke-id-and-priority (4)
_OCTET_STRING_TAG: Final = 0x09  # Blue Book 4.1.5, Data CHOICE octet-string
_DATE_TIME_LENGTH: Final = 12
TAGGED_DATE_TIME_NOTE: Final = (
    "the date-time is sent as a tagged octet-string (09 0C ...) instead of the bare 12 "
    "octets (Green Book 9.5): read as the meter meant it (Kaifa HAN firmware does this)")


def standard_data_notification(apdu: bytes) -> tuple[bytes, str | None]:
    """``apdu`` with a tagged date-time made bare, and a note; else ``apdu`` and None."""
    at = _DATE_TIME_AT
    if (len(apdu) > at + 2 + _DATE_TIME_LENGTH and apdu[0] == _DATA_NOTIFICATION
            and apdu[at] == _OCTET_STRING_TAG and apdu[at + 1] in (0, _DATE_TIME_LENGTH)):
        return apdu[:at] + apdu[at + 1 :], TAGGED_DATE_TIME_NOTE
    return apdu, None
