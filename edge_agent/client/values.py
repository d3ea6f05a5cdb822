"""From raw COSEM attribute values to physical readings with units.

Which class an OBIS code usually has (when the meter's object list is not known yet),
which attribute holds the value, and how a value becomes something a person or an MQTT
subscriber reads: scaled numbers, text, ISO date-times.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from edge_agent.client.lenient import unwrap_date_time
from edge_agent.dlms.cosem import obis as obis_names
from edge_agent.dlms.cosem.obis import Obis
from edge_agent.dlms.cosem.units import ScalerUnit
from edge_agent.dlms.encoding.axdr import BitString
from edge_agent.dlms.encoding.date_time import (
    CosemDate,
    CosemDateTime,
    CosemTime,
    date_time_from_octets,
    looks_like_date_time,
)
from edge_agent.dlms.errors import DecodeError

log = logging.getLogger(__name__)

# Interface classes whose value attribute is scaled by attribute 3 (scaler_unit);
# demand register (5) keeps it in attribute 4 and its value in 3 (current_average_value).
SCALED_CLASSES: dict[int, tuple[int, int]] = {3: (2, 3), 4: (2, 3), 5: (3, 4)}
VALUE_ATTRIBUTE: dict[int, int] = {1: 2, 3: 2, 4: 2, 5: 3, 8: 2, 70: 2, 7: 2}

# (A, C, D) patterns of OBIS -> usual class when the object list is unknown (Blue Book 7.5
# names the classes the codes are meant for). None matches any value.
_CLASS_BY_PATTERN: tuple[tuple[tuple[int | None, int | None, int | None], int], ...] = (
    ((0, 1, 0), 8),  # clock 0.0.1.0.0.255
    ((None, 99, None), 7),  # profiles and logs
    ((0, 40, 0), 15),  # association LN
    ((0, 43, 0), 64),  # security setup
    ((0, 25, 9), 40),  # push setup
    ((0, 96, 3), 70),  # disconnect control (0.0.96.3.10)
    ((1, None, 6), 4),  # maximum demand: extended register (value + capture time)
    ((1, None, 4), 5),  # current average demand
    ((1, None, 5), 5),  # last average demand
)


def usual_class(code: Obis) -> int:
    """The class an OBIS code most likely has: a guess the meter may correct."""
    for (a, c, d), class_id in _CLASS_BY_PATTERN:
        if (a is None or a == code.a) and (c is None or c == code.c) and (d is None or d == code.d):
            if class_id == 70 and code.e != 10:
                continue
            return class_id
    if code.a == 1 and 1 <= code.c <= 89 and code.c != 0:
        return 3  # electricity quantities: registers
    return 1  # everything else: Data


@dataclass(frozen=True, slots=True)
class Reading:
    """One value read from a meter, ready to print or publish."""

    obis: Obis
    class_id: int
    value: Any  # scaled number, str, ISO date-time str, list, or None
    unit: str | None
    timestamp: dt.datetime
    raw: Any = None
    scaler: int | None = None

    @property
    def name(self) -> str:
        return obis_names.name(self.obis)

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "value": self.value,
            "unit": self.unit,
            "name": self.name,
            "class_id": self.class_id,
            "ts": self.timestamp.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
        }
        if self.scaler is not None:
            out["scaler"] = self.scaler
        return out


def _date_time_text(value: CosemDateTime) -> str:
    try:
        moment = value.to_datetime()
    except DecodeError:
        return str(value)
    return moment.isoformat()


def plain(value: Any) -> Any:
    """A JSON-able rendering of any decoded A-XDR value."""
    if value is None or isinstance(value, bool):
        return value
    for kind in (int, float, str):  # typed A-XDR values subclass these: drop the subclass
        if isinstance(value, kind):
            return kind(value)
    if isinstance(value, CosemDateTime):
        return _date_time_text(value)
    if isinstance(value, (CosemDate, CosemTime)):
        return str(value)
    if isinstance(value, BitString):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
        if looks_like_date_time(data):
            return _date_time_text(date_time_from_octets(data))
        if data and all(0x20 <= b < 0x7F for b in data):
            return data.decode("ascii")
        return data.hex()
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    return str(value)


def to_reading(
    code: Obis, class_id: int, raw: Any, scaler_unit: ScalerUnit | None, timestamp: dt.datetime
) -> Reading:
    inner = unwrap_date_time(raw)
    if inner is not None:
        log.warning("%s: a date-time wrapped in one octet-string too many (a known meter bug),"
                    " accepted: raw bytes 090e%s", code.dotted, bytes(raw).hex())
        raw = inner
    if scaler_unit is not None and isinstance(raw, (int, float)) and not isinstance(raw, bool):
        return Reading(code, class_id, scaler_unit.apply(raw), scaler_unit.symbol, timestamp, raw, scaler_unit.scaler)
    return Reading(code, class_id, plain(raw), None, timestamp, plain(raw))
