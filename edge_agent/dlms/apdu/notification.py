"""Unsolicited APDUs: DataNotification (0x0F) and EventNotificationRequest (0xC2) (Green Book 9.5).

Push setup objects (class 40) send DataNotification; the T-210D customer interface does so
every few seconds, wrapped in general-glo-ciphering (the security module unwraps it first).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Self

from edge_agent.dlms.apdu.base import (
    LONG_INVOKE_ID_MASK,
    Apdu,
    Buffer,
    CosemAttributeDescriptor,
    Data,
    put_octet_string,
    put_u32,
    read_data,
    read_octet_string,
    read_presence,
    read_u32,
)
from edge_agent.dlms.encoding import axdr
from edge_agent.dlms.encoding.date_time import CosemDateTime
from edge_agent.dlms.errors import DecodeError

DATA_NOTIFICATION = 0x0F
EVENT_NOTIFICATION_REQUEST = 0xC2


def _date_time(raw: bytes, what: str) -> CosemDateTime | None:
    if not raw:
        return None
    if len(raw) != 12:
        raise DecodeError(f"{what}: a COSEM date-time has 12 octets, got {len(raw)}")
    return CosemDateTime.decode(raw)


@dataclass(frozen=True, slots=True)
class DataNotification(Apdu):
    """``date_time`` is the raw octet string (empty when the meter sent none)."""

    TAG: ClassVar[int] = DATA_NOTIFICATION
    NAME: ClassVar[str] = "data-notification"

    long_invoke_id_and_priority: int
    date_time: bytes
    notification_body: Data

    @property
    def invoke_id(self) -> int:
        return self.long_invoke_id_and_priority & LONG_INVOKE_ID_MASK

    @property
    def timestamp(self) -> CosemDateTime | None:
        """The date-time decoded, or None when absent."""
        return _date_time(self.date_time, self.NAME)

    def _encode_body(self, out: bytearray) -> None:
        put_u32(out, self.long_invoke_id_and_priority, "long-invoke-id-and-priority")
        # date-time is a plain OCTET STRING here (length 0 = absent), not OPTIONAL.
        put_octet_string(out, self.date_time)
        axdr.encode_into(out, self.notification_body)

    @classmethod
    def _read_body(cls, buf: Buffer, offset: int) -> tuple[Self, int]:
        invoke, offset = read_u32(buf, offset, "long-invoke-id-and-priority")
        date_time, offset = read_octet_string(buf, offset, "date-time")
        body, offset = read_data(buf, offset, "notification-body")
        return cls(invoke, date_time, body), offset


@dataclass(frozen=True, slots=True)
class EventNotificationRequest(Apdu):
    """``time`` is the raw date-time octet string, or None when the OPTIONAL is absent."""

    TAG: ClassVar[int] = EVENT_NOTIFICATION_REQUEST
    NAME: ClassVar[str] = "event-notification-request"

    descriptor: CosemAttributeDescriptor
    attribute_value: Data
    time: bytes | None = None

    @property
    def invoke_id(self) -> int:  # unconfirmed service: it has no invoke-id
        return 0

    @property
    def timestamp(self) -> CosemDateTime | None:
        return _date_time(self.time or b"", self.NAME)

    def _encode_body(self, out: bytearray) -> None:
        if self.time is None:
            out.append(0)
        else:
            out.append(1)
            put_octet_string(out, self.time)
        self.descriptor.encode_into(out)
        axdr.encode_into(out, self.attribute_value)

    @classmethod
    def _read_body(cls, buf: Buffer, offset: int) -> tuple[Self, int]:
        present, offset = read_presence(buf, offset, "time")
        time = None
        if present:
            time, offset = read_octet_string(buf, offset, "time")
        descriptor, offset = CosemAttributeDescriptor.read(buf, offset)
        value, offset = read_data(buf, offset, "attribute-value")
        return cls(descriptor, value, time), offset
