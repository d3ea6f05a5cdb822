"""Payloads of the MQTT contract (docs/mqtt-contract.md), parsed and validated.

Pure functions and frozen dataclasses: no Home Assistant state here, so the flow, the
subscription manager and the tests share one definition of a valid payload.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import voluptuous as vol
from voluptuous.humanize import humanize_error

from .const import EVENT_TYPES, UNKNOWN_EVENT, UNTRUSTED_CLOCK_STATUS

# OBIS leaf form A.B.C.D.E.F, each group 0..255 (IEC 62056-61 clause 4).
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|\d{1,2})"
OBIS_PATTERN = re.compile(rf"^{_OCTET}(?:\.{_OCTET}){{5}}$")
# Agent and meter ids are single topic levels: no separator, no wildcard.
_TOPIC_LEVEL = re.compile(r"^[^/#+]+$")
_SYSTEM_TITLE = re.compile(r"^[0-9a-fA-F]{16}$")

HEALTH_OK = "ok"
HEALTH_PROBLEM = "problem"


class InvalidPayload(ValueError):
    """A message does not follow the MQTT contract; the text says what is wrong."""


def _optional_str(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise vol.Invalid(f"expected a string or null, got {type(value).__name__}")


def _topic_level(value: Any) -> str:
    if isinstance(value, str) and _TOPIC_LEVEL.match(value):
        return value
    raise vol.Invalid(f"expected one MQTT topic level (no '/', '+', '#'), got {value!r}")


def _obis(value: Any) -> str:
    if isinstance(value, str) and OBIS_PATTERN.match(value):
        return value
    raise vol.Invalid(f"expected an OBIS code like 1.0.1.8.0.255, got {value!r}")


def _system_title(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str) and _SYSTEM_TITLE.match(value):
        return value.lower()
    raise vol.Invalid(f"expected 16 hex digits (8-byte system title) or null, got {value!r}")


def _class_id(value: Any) -> int | None:
    if value is None or (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
        return value
    raise vol.Invalid(f"expected a COSEM interface class id (integer) or null, got {value!r}")


_OBJECT_SCHEMA = vol.Schema(
    {
        vol.Required("obis"): _obis,
        vol.Optional("name", default=None): _optional_str,
        vol.Optional("class_id", default=None): _class_id,
        vol.Optional("unit", default=None): _optional_str,
        vol.Optional("device_class", default=None): _optional_str,
        vol.Optional("state_class", default=None): _optional_str,
    },
    extra=vol.REMOVE_EXTRA,
)

_INFO_SCHEMA = vol.Schema(
    {
        vol.Required("agent"): _topic_level,
        vol.Required("meter"): _topic_level,
        vol.Optional("serial", default=None): _optional_str,
        vol.Optional("manufacturer", default=None): _optional_str,
        vol.Optional("model", default=None): _optional_str,
        vol.Optional("firmware", default=None): _optional_str,
        vol.Optional("system_title", default=None): _system_title,
        vol.Optional("agent_version", default=None): _optional_str,
        vol.Optional("objects", default=list): [_OBJECT_SCHEMA],
        # Load profiles whose rows the agent publishes (older agents omit it).
        vol.Optional("profiles", default=list): [_obis],
    },
    # Newer agents may add keys; ignoring them keeps old integrations working.
    extra=vol.REMOVE_EXTRA,
)

_HEALTH_SCHEMA = vol.Schema(
    {
        vol.Required("state"): vol.In([HEALTH_OK, HEALTH_PROBLEM]),
        vol.Optional("code", default=None): _optional_str,
        vol.Optional("message", default=""): vol.Any(str, None),
        vol.Optional("since", default=None): _optional_str,
    },
    extra=vol.REMOVE_EXTRA,
)


def _load_json_object(payload: str | bytes | bytearray) -> dict[str, Any]:
    try:
        data = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as err:
        raise InvalidPayload(f"not JSON ({err})") from None
    if not isinstance(data, dict):
        raise InvalidPayload(f"expected a JSON object, got {type(data).__name__}")
    return data


def _validate(schema: vol.Schema, data: dict[str, Any]) -> dict[str, Any]:
    try:
        valid: dict[str, Any] = schema(data)
    except vol.Invalid as err:
        raise InvalidPayload(humanize_error(data, err)) from None
    return valid


@dataclass(frozen=True, slots=True)
class MeterObject:
    """One published COSEM object, as announced in `info.objects`."""

    obis: str
    name: str | None
    class_id: int | None
    unit: str | None
    device_class: str | None
    state_class: str | None


@dataclass(frozen=True, slots=True)
class MeterInfo:
    """The retained `<prefix>/<agent>/<meter>/info` message."""

    agent: str
    meter: str
    serial: str | None
    manufacturer: str | None
    model: str | None
    firmware: str | None
    system_title: str | None
    agent_version: str | None
    objects: tuple[MeterObject, ...]
    profiles: tuple[str, ...] = ()

    @property
    def unique_id(self) -> str:
        """Meter identity: the serial number, else the system title (never both null)."""
        return self.serial or self.system_title  # type: ignore[return-value]

    @property
    def title(self) -> str:
        """Human name of the meter: manufacturer and model, else manufacturer and meter id
        (two meters of one make must not share a name), else the meter id."""
        if self.manufacturer and self.model:
            return f"{self.manufacturer} {self.model}"
        return f"{self.manufacturer or 'Meter'} {self.meter}"

    def same_meter(self, other: MeterInfo) -> bool:
        """Whether `other` describes the same physical meter.

        A serial number that appears later (a push meter announces it after its first
        telegram) does not change the meter: the system title, when both carry one,
        decides; otherwise the serial numbers do.
        """
        if self.system_title and other.system_title:
            return self.system_title == other.system_title
        if self.serial and other.serial:
            return self.serial == other.serial
        return False

    def as_dict(self) -> dict[str, Any]:
        """JSON-compatible form stored in the config entry; `from_dict` reads it back."""
        return asdict(self) | {
            "objects": [asdict(obj) for obj in self.objects],
            "profiles": list(self.profiles),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MeterInfo:
        """Validate a decoded `info` object; raise InvalidPayload on any contract breach."""
        valid = _validate(_INFO_SCHEMA, data)
        if not valid["serial"] and not valid["system_title"]:
            raise InvalidPayload(
                "neither 'serial' nor 'system_title' is set: the meter has no identity"
            )
        objects = tuple(MeterObject(**obj) for obj in valid.pop("objects"))
        if len({obj.obis for obj in objects}) != len(objects):
            raise InvalidPayload("'objects' lists an OBIS code twice")
        profiles = tuple(dict.fromkeys(valid.pop("profiles")))
        return cls(**valid, objects=objects, profiles=profiles)

    @classmethod
    def from_payload(cls, payload: str | bytes | bytearray) -> MeterInfo:
        """Parse the MQTT payload of an `info` message."""
        return cls.from_dict(_load_json_object(payload))


@dataclass(frozen=True, slots=True)
class Health:
    """The retained `<prefix>/<agent>/<meter>/health` message."""

    state: str
    code: str | None
    message: str
    since: str | None

    @property
    def problem(self) -> bool:
        return self.state == HEALTH_PROBLEM

    @classmethod
    def from_payload(cls, payload: str | bytes | bytearray) -> Health:
        valid = _validate(_HEALTH_SCHEMA, _load_json_object(payload))
        if valid["state"] == HEALTH_PROBLEM and not valid["code"]:
            raise InvalidPayload("state is 'problem' but 'code' is missing")
        return cls(
            state=valid["state"],
            code=valid["code"],
            message=valid["message"] or "",
            since=valid["since"],
        )


@dataclass(frozen=True, slots=True)
class Reading:
    """A `<prefix>/<agent>/<meter>/<obis>` value message."""

    value: float | int | str | bool | list[Any] | None
    unit: str | None
    ts: str | None

    @classmethod
    def from_payload(cls, payload: str | bytes | bytearray) -> Reading:
        data = _load_json_object(payload)
        if "value" not in data:
            raise InvalidPayload("the key 'value' is missing")
        value = data["value"]
        # Structures and arrays of COSEM data arrive as JSON arrays (contract details).
        if value is not None and not isinstance(value, (int, float, str, list)):
            raise InvalidPayload(
                f"'value' must be a number, a string or an array, got {type(value).__name__}"
            )
        unit, ts = data.get("unit"), data.get("ts")
        if not (unit is None or isinstance(unit, str)) or not (ts is None or isinstance(ts, str)):
            raise InvalidPayload("'unit' and 'ts' must be strings or null")
        return cls(value=value, unit=unit, ts=ts)


@dataclass(frozen=True, slots=True)
class MeterTopic:
    """A topic `<prefix>/<agent>/<meter>/<leaf>` split into its parts."""

    prefix: str
    agent: str
    meter: str
    leaf: str

    @classmethod
    def parse(cls, topic: str) -> MeterTopic:
        # The prefix may itself contain '/', the last three levels never do.
        parts = topic.rsplit("/", 3)
        if len(parts) != 4 or not all(parts):
            raise InvalidPayload(f"topic {topic!r} is not <prefix>/<agent>/<meter>/<leaf>")
        return cls(*parts)


def parse_discovery(topic: str, payload: str | bytes | bytearray) -> tuple[str, MeterInfo]:
    """Validate an `info` message seen on `topic`; return (prefix, info).

    The ids inside the payload must match the topic levels, otherwise the integration
    would subscribe where the meter does not publish.
    """
    parts = MeterTopic.parse(topic)
    if parts.leaf != "info":
        raise InvalidPayload(f"topic {topic!r} is not an info topic")
    if not payload:
        raise InvalidPayload("empty payload (the retained info was cleared)")
    info = MeterInfo.from_payload(payload)
    if (info.agent, info.meter) != (parts.agent, parts.meter):
        raise InvalidPayload(
            f"payload names agent {info.agent!r} meter {info.meter!r} "
            f"but was published for agent {parts.agent!r} meter {parts.meter!r}"
        )
    return parts.prefix, info


def valid_prefix(prefix: str) -> str:
    """Normalise a user-given topic prefix; raise InvalidPayload when unusable."""
    prefix = prefix.strip().strip("/")
    if not prefix or any(char in prefix for char in "#+\0") or "//" in prefix:
        raise InvalidPayload(f"{prefix!r} is not a usable topic prefix")
    return prefix


# --- clock and events (docs/mqtt-contract.md, "Clock" and "Events") -----------------------

# Bounds for text from the broker: whatever a state attribute or logbook line shows.
_MAX_TEXT = 255
_MAX_RAW_JSON = 2048
# Snake-case identifiers of the contract (event names, clock status bits, clock bases,
# sync results).
_IDENTIFIER = re.compile(r"^[a-z0-9_]{1,64}$")


def _moment(value: Any) -> datetime:
    """An ISO 8601 time with an offset (the contract's `...Z`), as an aware UTC datetime."""
    moment = parse_time(value) if isinstance(value, str) else None
    if moment is not None and moment.tzinfo is not None:
        return moment.astimezone(UTC)
    raise vol.Invalid(f"expected an ISO 8601 time with an offset, got {value!r:.40}")


def parse_time(value: str) -> datetime | None:
    """An ISO 8601 time, with or without an offset; None when it is not one, also for a
    well-formed impossible one ("2026-43-10T12:00:00Z", on which Home Assistant's
    `dt_util.parse_datetime` raises ValueError)."""
    if len(value) > 40:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _optional_moment(value: Any) -> datetime | None:
    return None if value is None else _moment(value)


def _optional_int(value: Any) -> int | None:
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    raise vol.Invalid(f"expected an integer or null, got {value!r:.40}")


def _optional_bool(value: Any) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    raise vol.Invalid(f"expected true, false or null, got {value!r:.40}")


def _optional_seconds(value: Any) -> float | None:
    """A finite number of seconds or null (Python's json reads NaN and Infinity)."""
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    raise vol.Invalid(f"expected a finite number or null, got {value!r:.40}")


def _text(value: Any) -> str:
    if isinstance(value, str) and len(value) <= _MAX_TEXT and value.isprintable():
        return value
    raise vol.Invalid(f"expected printable text of at most {_MAX_TEXT} characters")


def _optional_text(value: Any) -> str | None:
    return None if value is None else _text(value)


def _identifier(value: Any) -> str:
    if isinstance(value, str) and _IDENTIFIER.match(value):
        return value
    raise vol.Invalid(f"expected a snake_case identifier, got {value!r:.40}")


def _optional_identifier(value: Any) -> str | None:
    return None if value is None else _identifier(value)


def _status_names(value: Any) -> tuple[str, ...] | None:
    """Names of clock status bits (at most the octet's eight), or null."""
    if value is None:
        return None
    if isinstance(value, list) and len(value) <= 8:
        return tuple(_identifier(name) for name in value)
    raise vol.Invalid(f"expected a list of at most 8 status names or null, got {value!r:.40}")


def _raw(value: Any) -> dict[str, Any]:
    """The event row's columns by capture object: small, JSON scalars and arrays."""
    if not isinstance(value, dict) or not all(isinstance(key, str) for key in value):
        raise vol.Invalid("expected an object of the row's columns")
    if len(json.dumps(value, separators=(",", ":"))) > _MAX_RAW_JSON:
        raise vol.Invalid(f"the row's columns take more than {_MAX_RAW_JSON} characters")
    if any(isinstance(item, dict) for item in value.values()):
        raise vol.Invalid("a column of the row is an object")
    return value


_DAYLIGHT_SAVING_SCHEMA = vol.Schema(
    {
        vol.Optional("enabled", default=None): _optional_bool,
        vol.Optional("active", default=None): _optional_bool,
        vol.Optional("deviation", default=None): _optional_int,
        vol.Optional("begin", default=None): _optional_text,
        vol.Optional("end", default=None): _optional_text,
    },
    extra=vol.REMOVE_EXTRA,
)
_SYNC_SCHEMA = vol.Schema(
    {
        vol.Required("enabled"): bool,
        vol.Optional("result", default=None): _optional_identifier,
        vol.Optional("step", default=None): _optional_int,
        vol.Optional("message", default=None): _optional_text,
    },
    extra=vol.REMOVE_EXTRA,
)
_CLOCK_SCHEMA = vol.Schema(
    {
        vol.Required("ts"): _moment,
        vol.Required("drift"): _optional_seconds,
        vol.Optional("meter_time", default=None): _optional_moment,
        vol.Optional("meter_local_time", default=None): _optional_text,
        vol.Optional("deviation", default=None): _optional_int,
        vol.Optional("status", default=None): _status_names,
        vol.Optional("time_zone", default=None): _optional_int,
        vol.Optional("daylight_saving", default=None): vol.Any(None, _DAYLIGHT_SAVING_SCHEMA),
        vol.Optional("clock_base", default=None): _optional_identifier,
        vol.Optional("sync", default=None): vol.Any(None, _SYNC_SCHEMA),
    },
    # Newer agents may add keys; ignoring them keeps old integrations working.
    extra=vol.REMOVE_EXTRA,
)
_EVENT_SCHEMA = vol.Schema(
    {
        vol.Required("ts"): _moment,
        vol.Required("log"): _obis,
        vol.Required("code"): _optional_int,
        vol.Required("name"): _identifier,
        vol.Optional("text", default=""): _text,
        vol.Optional("status", default=None): _status_names,
        vol.Optional("raw", default=dict): _raw,
    },
    extra=vol.REMOVE_EXTRA,
)


@dataclass(frozen=True, slots=True)
class ClockSync:
    """What the agent's `clock_sync` did with a reading (`sync` of the clock payload)."""

    enabled: bool
    result: str | None
    step: int | None
    message: str | None


@dataclass(frozen=True, slots=True)
class ClockReading:
    """The retained `<prefix>/<agent>/<meter>/clock` message: the meter's clock against
    the agent's. `drift` is meter time minus agent time in seconds (positive: the meter
    is ahead), None when the meter's time is unusable."""

    ts: datetime
    drift: float | None
    meter_time: datetime | None
    meter_local_time: str | None
    deviation: int | None
    status: tuple[str, ...] | None
    time_zone: int | None
    daylight_saving_enabled: bool | None
    daylight_saving_active: bool | None
    clock_base: str | None
    sync: ClockSync

    @classmethod
    def from_payload(cls, payload: str | bytes | bytearray) -> ClockReading:
        valid = _validate(_CLOCK_SCHEMA, _load_json_object(payload))
        dst = valid.pop("daylight_saving") or {}
        sync = valid.pop("sync") or {"enabled": False}
        return cls(
            **valid,
            daylight_saving_enabled=dst.get("enabled"),
            daylight_saving_active=dst.get("active"),
            sync=ClockSync(
                enabled=sync["enabled"],
                result=sync.get("result"),
                step=sync.get("step"),
                message=sync.get("message"),
            ),
        )


@dataclass(frozen=True, slots=True)
class MeterEvent:
    """One `<prefix>/<agent>/<meter>/event` message: an event of a meter's event log."""

    ts: datetime
    log: str
    code: int | None
    name: str
    text: str
    status: tuple[str, ...] | None
    raw: dict[str, Any] = field(hash=False, compare=False)

    @property
    def time_trusted(self) -> bool:
        """Whether the meter vouches for the time stamp (no invalid/doubtful status bit)."""
        return not UNTRUSTED_CLOCK_STATUS.intersection(self.status or ())

    @property
    def event_type(self) -> str:
        """The event entity's type: the name, or `unknown` for a name newer than this
        integration (the contract only adds names)."""
        return self.name if self.name in EVENT_TYPES else UNKNOWN_EVENT

    @classmethod
    def from_payload(cls, payload: str | bytes | bytearray) -> MeterEvent:
        return cls(**_validate(_EVENT_SCHEMA, _load_json_object(payload)))


class Verdict(StrEnum):
    """What an event is to the integration (see MeterEventMarks.judge)."""

    NEW = "new"  # not seen before, happened while the integration watched the meter
    HISTORY = "history"  # not seen before, but from before (the agent's first backfill)
    DUPLICATE = "duplicate"  # seen before (QoS 1 redelivery, the agent read it again)


# Events remembered per log for deduplication; the agent publishes a log oldest first,
# so an event older than all of a full memory was seen before it.
MARKS_PER_LOG = 64


@dataclass(slots=True)
class MeterEventMarks:
    """Which events of one meter the integration has seen, and since when it watches.

    `since` is when the integration began watching the meter's events. `logs` holds, per
    event log, the identities (time stamp, code) of the newest events seen, oldest first
    (the contract's deduplication key, docs/mqtt-contract.md "Events").
    """

    since: datetime
    logs: dict[str, list[tuple[datetime, int | None]]] = field(default_factory=dict)

    def judge(self, event: MeterEvent) -> Verdict:
        """Classify `event` and remember it."""
        seen = self.logs.setdefault(event.log, [])
        identity = (event.ts, event.code)
        if identity in seen:
            return Verdict.DUPLICATE
        if event.time_trusted and len(seen) >= MARKS_PER_LOG and event.ts < seen[0][0]:
            return Verdict.DUPLICATE
        seen.append(identity)
        seen.sort(key=lambda mark: mark[0])
        del seen[:-MARKS_PER_LOG]
        # A time stamp the meter flags invalid or doubtful says nothing about its age.
        if event.time_trusted and event.ts < self.since:
            return Verdict.HISTORY
        return Verdict.NEW

    def last(self, log: str) -> datetime | None:
        """Time of the newest event seen in `log`."""
        seen = self.logs.get(log)
        return seen[-1][0] if seen else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "since": self.since.isoformat(),
            "logs": {
                log: [[ts.isoformat(), code] for ts, code in seen]
                for log, seen in self.logs.items()
            },
        }

    @classmethod
    def from_dict(cls, data: Any) -> MeterEventMarks:
        """Read back `as_dict`; raise InvalidPayload when the stored data is unusable."""
        try:
            since = _moment(data["since"])
            logs: dict[str, list[tuple[datetime, int | None]]] = {
                _obis(log): _marks(seen) for log, seen in data["logs"].items()
            }
        except (vol.Invalid, KeyError, TypeError, AttributeError, ValueError) as err:
            raise InvalidPayload(f"stored event marks unusable: {err}") from None
        return cls(since=since, logs=logs)


def _marks(seen: Iterable[Any]) -> list[tuple[datetime, int | None]]:
    marks = [(_moment(ts), _optional_int(code)) for ts, code in seen]
    return sorted(marks, key=lambda mark: mark[0])[-MARKS_PER_LOG:]
