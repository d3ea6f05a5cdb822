"""Payloads of the MQTT contract (docs/mqtt-contract.md): exact JSON, compact UTF-8.

Value rendering (the contract's "Values" paragraph), applied recursively:

=====================================  ===============================================
Python value (from the A-XDR decoder)  JSON
=====================================  ===============================================
``None``, dont-care                    ``null``
``bool``                               ``true`` / ``false``
``int`` (all integer types, enums)     number
``float``, ``Decimal``                 number; NaN and infinities become ``null``
``bytes`` printable as UTF-8 text      string (``"1SAG67929081"``)
other ``bytes``                        lower-case hex string (``"5341477df129c270"``)
``datetime`` with a UTC offset         ISO 8601 in UTC with ``Z``
naive ``datetime`` (offset unknown)    ISO 8601 without offset (meter local time)
COSEM date/time/date-time              as the datetime it denotes, else its text form
bit-string                             string of ``0``/``1``
structure / array                      list
=====================================  ===============================================
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal

from edge_agent.dlms.errors import DecodeError, DlmsError, EncodeError
from edge_agent.mqtt.topics import obis_leaf

ONLINE = b"online"
OFFLINE = b"offline"

HEALTH_OK = "ok"
HEALTH_PROBLEM = "problem"
# Health codes the HA integration turns into repair issues (contract, "Health codes").
# bad_data and access_denied were added later; the set only ever grows.
HEALTH_CODES = frozenset({
    "wrong_key", "counter_out_of_step", "association_refused", "unreachable",
    "push_stopped", "signature_rejected", "config_error", "bad_data", "access_denied",
})

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode


def to_json(document: object) -> bytes:
    """Compact UTF-8 JSON, the encoding of every JSON payload of the contract."""
    return _dumps(document).encode()


# --- timestamps ------------------------------------------------------------------------


def format_ts(ts: datetime | float) -> str:
    """ISO 8601 UTC with ``Z`` and whole seconds: ``2026-11-25T01:00:00Z``.

    ``ts`` is an aware datetime or POSIX seconds. A naive datetime is refused: the
    time of a reading must be a definite instant (take ``datetime.now(timezone.utc)``).
    """
    if isinstance(ts, datetime):
        if ts.utcoffset() is None:
            raise EncodeError(f"timestamp {ts.isoformat()} has no time zone; pass an aware "
                              "datetime (datetime.now(timezone.utc)) or POSIX seconds")
        ts = ts.astimezone(UTC)
    elif isinstance(ts, (int, float)) and not isinstance(ts, bool):
        ts = datetime.fromtimestamp(ts, UTC)
    else:
        raise EncodeError(f"timestamp must be a datetime or POSIX seconds, got {ts!r}")
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ")


# --- values ----------------------------------------------------------------------------


def _render_bytes(value: bytes) -> str:
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        return value.hex()
    return text if text.isprintable() else value.hex()


def _render_datetime(value: datetime) -> str:
    if value.utcoffset() is None:
        return value.isoformat()
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def render_value(value: object) -> object:
    """A JSON-ready form of one decoded value (table in the module docstring)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)  # typed A-XDR ints and IntEnums become plain numbers
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, Decimal):
        if not value.is_finite():
            return None
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return _render_bytes(bytes(value))
    if isinstance(value, datetime):
        return _render_datetime(value)
    if isinstance(value, (date, time)):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [render_value(item) for item in value]
    if hasattr(value, "to_datetime"):  # COSEM date-time (edge_agent.dlms.encoding.date_time)
        try:
            return _render_datetime(value.to_datetime())
        except DlmsError:
            return str(value)  # a pattern such as "every day at 00:00", not an instant
    if hasattr(value, "bits"):  # A-XDR bit-string
        return value.bits
    if type(value).__name__ == "DontCare":
        return None
    return str(value)


# --- payload builders ------------------------------------------------------------------


def status_payload(online: bool) -> bytes:
    """``dlms/<agent>/status`` and ``.../<meter>/availability``: ``online``/``offline``."""
    return ONLINE if online else OFFLINE


def value_payload(value: object, unit: str | None, ts: datetime | float, obis: object,
                  name: str | None) -> bytes:
    """``dlms/<agent>/<meter>/<obis>``: ``{"value","unit","ts","obis","name"}``."""
    return to_json({"value": render_value(value), "unit": unit, "ts": format_ts(ts),
                    "obis": obis_leaf(obis), "name": name})


def state_payload(ts: datetime | float,
                  values: Mapping[object, tuple[object, str | None]]) -> bytes:
    """``dlms/<agent>/<meter>/state``: one snapshot of a poll.

    ``values`` maps OBIS to ``(value, unit)``.
    """
    return to_json({"ts": format_ts(ts), "values": {
        obis_leaf(obis): {"value": render_value(value), "unit": unit}
        for obis, (value, unit) in values.items()}})


def profile_row_payload(ts: datetime | float, values: Mapping[object, object],
                        units: Mapping[object, str | None], status: int | None,
                        *, replay: bool = False) -> bytes:
    """``dlms/<agent>/<meter>/profile/<obis>``: one load-profile row; ``replay`` marks a
    row sent again on a subscriber's request (:class:`ReplayRequest`)."""
    row: dict[str, object] = {
        "ts": format_ts(ts),
        "values": {obis_leaf(obis): render_value(value) for obis, value in values.items()},
        "units": {obis_leaf(obis): unit for obis, unit in units.items()},
        "status": None if status is None else int(status),
    }
    if replay:
        row["replay"] = True
    return to_json(row)


@dataclass(frozen=True, slots=True)
class ReplayRequest:
    """``dlms/<agent>/<meter>/replay``: a subscriber asks for a profile's rows again.

    ``{"profile": "<obis>", "from": "<ISO 8601>" | null}``: the rows of ``profile``
    captured after ``from`` (null: as far back as the profile's backfill reaches), up to
    the newest row already published. A subscriber that was away (Home Assistant
    restarting, its broker session lost) asks for what it missed; the rows come again on
    the profile topic with ``"replay": true``.
    """

    profile: str
    start: datetime | None

    @classmethod
    def decode(cls, payload: bytes) -> ReplayRequest:
        """Parse a request; DecodeError naming what is wrong."""
        try:
            doc = json.loads(payload)
        except (ValueError, UnicodeDecodeError):
            raise DecodeError(f"expected a JSON object, got {payload[:40]!r}") from None
        if not isinstance(doc, dict):
            raise DecodeError(f"expected a JSON object, got {type(doc).__name__}")
        profile, start = doc.get("profile"), doc.get("from")
        try:
            obis = obis_leaf(profile)
        except (DlmsError, TypeError, ValueError):
            raise DecodeError(f"expected 'profile' as an OBIS code such as 1.0.99.1.0.255, "
                              f"got {profile!r:.40}") from None
        if start is None:
            return cls(obis, None)
        moment = None
        if isinstance(start, str):
            try:
                moment = datetime.fromisoformat(start)
            except ValueError:
                moment = None
        if moment is None or moment.tzinfo is None:
            raise DecodeError(f"expected 'from' as ISO 8601 with an offset "
                              f"(2026-11-25T01:00:00Z) or null, got {start!r:.40}")
        return cls(obis, moment)


def clock_payload(*, agent_time: datetime, meter_time: datetime | None,
                  meter_local_time: str | None, drift: float | None, deviation: int | None,
                  status: list[str] | None, status_raw: int | None, time_zone: int | None,
                  daylight_saving: Mapping[str, object], clock_base: str | None,
                  sync: Mapping[str, object]) -> bytes:
    """``dlms/<agent>/<meter>/clock``: the meter's clock against the agent's (retained).

    ``drift`` is meter time minus agent time in seconds (positive: the meter is ahead);
    ``deviation`` keeps the Blue Book sign (UTC = local time + deviation, 4.1.6.1).
    """
    return to_json({
        "ts": format_ts(agent_time),
        "meter_time": None if meter_time is None else format_ts(meter_time),
        "meter_local_time": meter_local_time,
        "agent_time": format_ts(agent_time),
        "drift": None if drift is None else round(drift, 2),
        "deviation": deviation,
        "status": status,
        "status_raw": status_raw,
        "time_zone": time_zone,
        "daylight_saving": {key: render_value(value) for key, value in daylight_saving.items()},
        "clock_base": clock_base,
        "sync": {key: render_value(value) for key, value in sync.items()},
    })


def event_payload(*, ts: datetime, log: object, code: int | None, name: str, text: str,
                  status: list[str] | None, raw: Mapping[str, object]) -> bytes:
    """``dlms/<agent>/<meter>/event``: one event of an event log (QoS 1, not retained)."""
    return to_json({"ts": format_ts(ts), "log": obis_leaf(log), "code": code, "name": name,
                    "text": text, "status": status,
                    "raw": {key: render_value(value) for key, value in raw.items()}})


def health_payload(code: str | None, message: str, since: datetime | float) -> bytes:
    """``dlms/<agent>/<meter>/health``: ``state`` is ``ok`` exactly when ``code`` is None."""
    if code is not None and code not in HEALTH_CODES:
        raise EncodeError(f"health code {code!r} is not in the contract; "
                          f"use one of {sorted(HEALTH_CODES)} (or add it to the contract)")
    return to_json({"state": HEALTH_OK if code is None else HEALTH_PROBLEM, "code": code,
                    "message": message, "since": format_ts(since)})


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """One published object in the ``info`` payload."""

    obis: str
    name: str | None
    class_id: int
    unit: str | None
    device_class: str | None = None
    state_class: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "obis", obis_leaf(self.obis))

    def to_dict(self) -> dict[str, object]:
        return {"obis": self.obis, "name": self.name, "class_id": self.class_id,
                "unit": self.unit, "device_class": self.device_class,
                "state_class": self.state_class}


@dataclass(frozen=True, slots=True)
class MeterInfo:
    """The retained ``dlms/<agent>/<meter>/info`` document."""

    agent: str
    meter: str
    serial: str | None
    manufacturer: str | None
    model: str | None
    firmware: str | None
    system_title: bytes | None
    agent_version: str
    objects: tuple[ObjectInfo, ...]
    # The load profiles the agent publishes rows of (OBIS leaf form), for replay requests.
    profiles: tuple[str, ...] = ()

    def encode(self) -> bytes:
        return to_json({
            "agent": self.agent, "meter": self.meter, "serial": self.serial,
            "manufacturer": self.manufacturer, "model": self.model,
            "firmware": self.firmware,
            "system_title": None if self.system_title is None else self.system_title.hex(),
            "agent_version": self.agent_version,
            "objects": [obj.to_dict() for obj in self.objects],
            "profiles": list(self.profiles),
        })

    @classmethod
    def decode(cls, payload: bytes | str) -> MeterInfo:
        """Parse an ``info`` payload (for discovery and tests); DecodeError if malformed."""
        try:
            doc = json.loads(payload)
            title = doc["system_title"]
            return cls(
                agent=doc["agent"], meter=doc["meter"], serial=doc["serial"],
                manufacturer=doc["manufacturer"], model=doc["model"],
                firmware=doc["firmware"],
                system_title=None if title is None else bytes.fromhex(title),
                agent_version=doc["agent_version"],
                objects=tuple(ObjectInfo(**obj) for obj in doc["objects"]),
                profiles=tuple(obis_leaf(obis) for obis in doc.get("profiles", ())))
        except (ValueError, KeyError, TypeError, DlmsError) as exc:
            raise DecodeError(f"not an info payload of the MQTT contract: {exc}") from None


def objects_info(objects: Iterable[ObjectInfo]) -> tuple[ObjectInfo, ...]:
    """Objects in OBIS order without duplicates (stable ``info`` across polls)."""
    unique = {obj.obis: obj for obj in objects}
    return tuple(unique[key] for key in sorted(unique, key=lambda o: tuple(map(int, o.split(".")))))
