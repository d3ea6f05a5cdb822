"""Payloads of the MQTT contract (docs/mqtt-contract.md), parsed and validated.

Pure functions and frozen dataclasses: no Home Assistant state here, so the flow, the
subscription manager and the tests share one definition of a valid payload.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from typing import Any

import voluptuous as vol
from voluptuous.humanize import humanize_error

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
