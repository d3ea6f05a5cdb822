"""voluptuous schema of the config file: one mapping schema per section.

Lists of mappings (``meters``, ``buses``, ``poll``, ``profiles``) are only type-checked
here; the loader validates each item on its own so that every item reports its errors (voluptuous
stops at the first failing item of a list). Cross-field rules live in the loader.
Every mapping rejects unknown keys, naming the allowed ones.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import voluptuous as vol

from edge_agent.agent.config_model import DEFAULT_ASSOCIATION, DEFAULT_FRAME_COUNTER
from edge_agent.dlms.association.settings import Authentication, Pass3Signing
from edge_agent.dlms.errors import ConfigError
from edge_agent.dlms.link.hdlc.frame import LARGEST_MAX_INFO_LENGTH, LARGEST_WINDOW_SIZE
from edge_agent.dlms.security.control import SecurityPolicy
from edge_agent.mqtt.queue import DEFAULT_MAX_BYTES, DEFAULT_MAX_MESSAGES
from edge_agent.mqtt.topics import check_id, check_prefix, obis_leaf

_INLINE_KEY = (
    "inline key values are not accepted (config files end up in backups, bug reports and "
    "screen shares); put the key in a file readable only by the agent "
    "({file: /etc/dlms-edge/keys/meter.ek}, chmod 600) or in an environment variable "
    "({env: DLMS_EK})")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SCALES = {
    "seconds": ({"": 1, "s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400},
                "10, 10s, 5m, 1h, 1d"),
    "bytes": ({"": 1, "b": 1, "k": 1 << 10, "kb": 1 << 10, "m": 1 << 20, "mb": 1 << 20,
               "g": 1 << 30, "gb": 1 << 30}, "65536, 512k, 64MB"),
    "messages": ({"": 1, "k": 1000}, "100000, 100k"),
}
_PARITY = {"n": "N", "none": "N", "e": "E", "even": "E", "o": "O", "odd": "O"}
BAUD_RATES = (300, 600, 1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200)


def _id(value: Any) -> str:
    try:
        return check_id(value, "id")
    except ConfigError as exc:
        raise vol.Invalid(str(exc)) from None


def _prefix(value: Any) -> str:
    try:
        return check_prefix(value)
    except ConfigError as exc:
        raise vol.Invalid(str(exc)) from None


def _obis(value: Any) -> str:
    try:
        return obis_leaf(value)
    except ConfigError as exc:
        raise vol.Invalid(str(exc)) from None


def _obis_or_none(value: Any) -> str | None:
    """An OBIS code, or ``none`` (YAML null too) to switch the feature off."""
    if value is None or isinstance(value, str) and value.strip().lower() == "none":
        return None
    return _obis(value)


def _secret_ref(value: Any) -> tuple[str, str]:
    if isinstance(value, dict) and len(value) == 1:
        ((source, ref),) = value.items()
        if source == "file" and isinstance(ref, str) and ref:
            return ("file", ref)
        if source == "env" and isinstance(ref, str) and _ENV_NAME.match(ref):
            return ("env", ref)
    if isinstance(value, str) and ("/" in value or value.endswith((".key", ".ek", ".ak"))):
        raise vol.Invalid(f"a bare text is read as an inline key; for a key file write "
                          f"{{file: {value}}}")
    if isinstance(value, (str, int, bytes)):
        raise vol.Invalid(_INLINE_KEY)
    raise vol.Invalid("expected {file: PATH} or {env: VARIABLE_NAME}")


def _path(value: Any) -> str:
    if isinstance(value, dict) and set(value) == {"file"}:
        value = value["file"]
    if not isinstance(value, str) or not value:
        raise vol.Invalid("expected a file path")
    if value.lstrip().startswith("-----BEGIN"):
        raise vol.Invalid("expected a file path, got PEM text; save it to a file and "
                          "give the path")
    return value


def _hex_bytes(length: int) -> Callable[[Any], bytes]:
    def validate(value: Any) -> bytes:
        if isinstance(value, int):
            raise vol.Invalid(f"YAML read this as the number {value}; put the "
                              f"{2 * length} hex digits in quotes (\"0F0E0D0C0B0A0908\")")
        try:
            raw = bytes.fromhex("".join(str(value).split()).removeprefix("0x"))
        except ValueError:
            raw = b""
        if len(raw) != length:
            raise vol.Invalid(f"expected {2 * length} hex digits ({length} bytes), got "
                              f"{value!r}")
        return raw
    return validate


def _scaled(kind: str, minimum: float) -> Callable[[Any], float]:
    """A number, or text with a unit from ``_SCALES[kind]`` (``10s``, ``5m``, ``64MB``)."""
    units, examples = _SCALES[kind]

    def validate(value: Any) -> float:
        if isinstance(value, str):
            match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", value)
            if match is None or match.group(2).lower() not in units:
                raise vol.Invalid(f"expected {kind} as a number or with a unit ({examples}), "
                                  f"got {value!r}")
            value = float(match.group(1)) * units[match.group(2).lower()]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum:
            raise vol.Invalid(f"expected {kind} >= {minimum}, got {value!r}")
        return value
    return validate


def _parity(value: Any) -> str:
    if isinstance(value, str) and value.lower() in _PARITY:
        return _PARITY[value.lower()]
    raise vol.Invalid("expected N, E or O (none, even, odd); quote it if YAML reads it "
                      "as a boolean")


def _protocol(value: Any) -> str:
    text = str(value).strip().lower().removeprefix("v")
    if text in ("3.1.1", "311", "4"):
        return "3.1.1"
    if text in ("5", "5.0"):
        return "5"
    raise vol.Invalid("expected \"3.1.1\" or 5")


def _host_port(value: Any) -> tuple[str, int]:
    match = re.fullmatch(r"\s*(\[[0-9a-fA-F:.]+\]|[^\s:\[\]]+)(?::(\d{1,5}))?\s*", str(value))
    if match is None or (match.group(2) and not 0 < int(match.group(2)) < 65536):
        raise vol.Invalid(f"expected HOST:PORT (e.g. 192.168.1.50:4059), got {value!r}")
    return match.group(1).strip("[]"), int(match.group(2) or 4059)  # 4059: IANA DLMS/COSEM


def _int_range(low: int, high: int, what: str) -> vol.All:
    return vol.All(vol.Coerce(int), vol.Range(low, high, msg=f"{what} must be {low}..{high}"))


def _strict(mapping: dict) -> vol.Schema:
    """A mapping that rejects unknown keys with a did-you-mean suggestion."""
    names = sorted(str(key) for key in mapping)

    def unknown(_value: Any) -> None:
        raise vol.Invalid("unknown key; allowed here: " + ", ".join(names))
    return vol.Schema({**mapping, vol.Extra: unknown})


def _off_or(schema: vol.Schema, example: str) -> Callable[[Any], dict | None]:
    """``false`` / ``off`` / ``none`` (YAML null too) switch a feature off (None);
    anything else must match ``schema``."""
    def validate(value: Any) -> dict | None:
        if value is False or value is None or (
                isinstance(value, str) and value.strip().lower() in ("off", "none", "false")):
            return None
        if not isinstance(value, dict):
            raise vol.Invalid(f"expected a mapping ({example}) or false to switch it off, "
                              f"got {value!r}")
        return schema(value)
    return validate


def _time_zone(value: Any) -> str:
    """An IANA time zone name the system knows (``Europe/Vienna``)."""
    import zoneinfo

    if isinstance(value, str) and value.strip():
        try:
            zoneinfo.ZoneInfo(value.strip())
            return value.strip()
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            pass
    raise vol.Invalid(f"expected an IANA time zone name such as Europe/Vienna, got {value!r}")


def _none_or(validate: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """None stays None (the default applies later); anything else must pass ``validate``
    (whose message then names the fix)."""
    return lambda value: None if value is None else validate(value)


def _enum(*choices: str) -> vol.Any:
    return vol.In(choices, msg="expected one of: " + ", ".join(choices))


# --- schema ----------------------------------------------------------------------------

# Short names keep the schema tables readable.
O, R = vol.Optional, vol.Required
_BOOL = vol.Boolean()

SERIAL = _strict({
    R("device"): vol.All(str, vol.Length(min=1)),
    O("baud"): vol.In(BAUD_RATES, msg="expected one of " + ", ".join(map(str, BAUD_RATES))),
    O("parity"): _parity,
    O("bytesize"): vol.In((7, 8), msg="expected 7 or 8"),
    O("stopbits"): vol.In((1, 2), msg="expected 1 or 2"),
    O("rs485"): _BOOL,
    O("optical"): _BOOL,
})
TRANSPORT = _strict({O("tcp"): _host_port, O("serial"): SERIAL, O("bus"): _id})
KEYS = _strict({O("ek"): _secret_ref, O("ak"): _secret_ref, O("password"): _secret_ref})
SECURITY = _strict({
    O("suite", default=0): vol.In((0, 1, 2), msg="expected 0, 1 or 2"),
    O("policy", default="none"): _enum(*SecurityPolicy),
    O("auth", default="none"): _enum(*Authentication),
    O("keys", default=dict): KEYS,
    O("system_title"): _hex_bytes(8),
    O("pass3_signing"): _enum(*Pass3Signing),
    O("signing_key"): _path,
    O("meter_certificate"): _path,
    # The Association LN object HLS pass 3 is sent to (Blue Book 4.4.3 method 1): the
    # current association unless a meter wants its instance (0.0.40.0.N.255).
    O("association", default=DEFAULT_ASSOCIATION): _obis,
    # The meter's frame counter of our key, read with the public client before the first
    # ciphered association; none: the meter has none readable (the counter store decides).
    O("frame_counter", default=DEFAULT_FRAME_COUNTER): _obis_or_none,
})
ADDRESSES = _strict({
    O("client", default=16): _int_range(0, 0x7F, "client SAP"),
    O("logical", default=1): _int_range(0, 0x3FFF, "logical device address"),
    O("physical"): _int_range(0, 0x3FFF, "physical device address"),
})
POLL_GROUP = _strict({
    R("name"): vol.All(str, vol.Length(min=1)),
    R("interval"): _scaled("seconds", 1),
    O("objects", default="all"): vol.Any("all", [_obis],
                                         msg="expected 'all' or a list of OBIS codes"),
})
# A load profile to publish (profile generic, Blue Book 4.3.6): new rows looked for every
# interval (the usual capture period is 15 min); after an outage, and the first time, the
# agent reads back by backfill (default: what the meter keeps, entries x capture period).
PROFILE = _strict({
    R("obis"): _obis,
    O("interval", default=900): _scaled("seconds", 1),
    O("backfill", default=None): _none_or(_scaled("seconds", 0)),
    # The meter's zone, for time stamps without deviation (4.1.6.1); default the host's.
    O("timezone", default=None): _none_or(_time_zone),
})
# The meter's clock (Blue Book 4.5.1), read for the clock topic: drift and status.
CLOCK = _strict({O("interval", default=3600): _scaled("seconds", 10)})
# Setting the clock from the agent's: only within [min_step, max_step] seconds, and only
# while the meter's daylight-saving handling (4.5.1 attribute 8) is what is configured.
# max_step is bounded by shift_time's range (4.5.1 method 6: -900..900 s).
CLOCK_SYNC = _strict({
    R("max_step"): vol.All(_scaled("seconds", 1), vol.Range(
        max=900, msg="at most 900 s (15 min, the range of the clock's shift_time); a larger "
                     "error needs a person: set the clock by hand")),
    O("min_step", default=2): _scaled("seconds", 0),
    O("daylight_saving", default=True): _BOOL,
})
# Event logs (profile generic 0.0.99.98.x.255 and power failure logs) for the event topic.
EVENTS = _strict({
    O("interval", default=900): _scaled("seconds", 10),
    O("backfill", default=86400): _scaled("seconds", 0),
    O("logs", default="all"): vol.Any("all", [_obis],
                                      msg="expected 'all' or a list of OBIS codes"),
})
PUSH = _strict({
    R("format"): _enum("hdlc", "mbus", "dsmr", "wrapper"),
    O("port"): _int_range(1, 65535, "port"),
    O("bind", default="0.0.0.0"): str,
    O("serial"): SERIAL,
    # The push setup's object list, for bodies that carry values without OBIS codes:
    # entries "[CLASS/]OBIS[:ATTR][@SCALER[,UNIT]]" in push order.
    O("objects"): [vol.All(str, vol.Length(min=1))],
    O("interval"): _scaled("seconds", 1),  # expected push period (push_stopped after 3x)
    O("system_title"): _hex_bytes(8),  # the meter's, for glo- pushes that carry none
})
# Shorter information fields would cut even an AARQ into several frames.
MIN_PROPOSED_INFO_LENGTH = 32

METER = _strict({
    O("id"): _id,
    O("transport"): TRANSPORT,
    O("link"): _enum("hdlc", "wrapper"),
    O("addresses", default=dict): ADDRESSES,
    O("security", default=dict): SECURITY,
    O("poll"): list,
    O("profiles"): list,
    O("push"): PUSH,
    O("timeout", default=5.0): _scaled("seconds", 0.1),
    # HDLC: frames repeated after a time-out before the meter counts as unreachable
    # (IEC 62056-46 6.4.4.4.3.3, max retries); the wrapper relies on TCP instead.
    O("retries"): _int_range(0, 10, "retries"),
    # HDLC: what the client proposes in SNRM (IEC 62056-46 6.4.4.4.3.2), the same both
    # ways; the meter grants what it can. Default: the largest the standard allows.
    O("hdlc"): _strict({O("max_info", default=LARGEST_MAX_INFO_LENGTH): _int_range(
                            MIN_PROPOSED_INFO_LENGTH, LARGEST_MAX_INFO_LENGTH, "max_info"),
                        O("window", default=LARGEST_WINDOW_SIZE): _int_range(
                            1, LARGEST_WINDOW_SIZE, "window")}),
    # Waiting after failed polls: initial, doubling to maximum (with 20 % jitter).
    O("backoff"): _strict({O("initial"): _scaled("seconds", 0.1),
                           O("maximum"): _scaled("seconds", 1)}),
    O("clock"): _off_or(CLOCK, "{interval: 1h}"),
    O("clock_sync"): _off_or(CLOCK_SYNC, "{max_step: 30s}"),
    O("events"): _off_or(EVENTS, "{interval: 15m, backfill: 1d}"),
})
BUS = _strict({
    R("id"): _id, R("device"): vol.All(str, vol.Length(min=1)),
    O("baud"): SERIAL.schema[O("baud")], O("parity"): _parity,
    O("bytesize"): SERIAL.schema[O("bytesize")], O("stopbits"): SERIAL.schema[O("stopbits")],
    O("rs485", default=True): _BOOL,
})
TLS = _strict({O("ca"): _path, O("cert"): _path, O("key"): _path,
               O("insecure", default=False): _BOOL})
MQTT = _strict({
    O("host", default="localhost"): vol.All(str, vol.Length(min=1)),
    O("port"): _int_range(1, 65535, "port"),
    O("tls"): vol.Any(TLS, vol.All(bool, lambda on: {"insecure": False} if on else None)),
    O("username"): str,
    O("password"): vol.Any(str, _secret_ref, msg="expected text, {file: PATH} or {env: NAME}"),
    O("password_env"): vol.Match(_ENV_NAME, msg="expected an environment variable name"),
    O("prefix", default="dlms"): _prefix,
    O("protocol", default="3.1.1"): _protocol,
    O("keepalive", default=60): _int_range(5, 3600, "keepalive"),
    O("client_id"): vol.All(str, vol.Length(min=1, max=65535)),
    O("discovery", default=False): _BOOL,
    O("discovery_prefix", default="homeassistant"): _prefix,
    O("queue", default=dict): _strict({
        O("max_messages", default=DEFAULT_MAX_MESSAGES): vol.All(
            _scaled("messages", 100), vol.Coerce(int)),
        O("max_bytes", default=DEFAULT_MAX_BYTES): vol.All(
            _scaled("bytes", 64 * 1024), vol.Coerce(int)),
    }),
})
TOP = _strict({
    O("agent", default=dict): _strict({O("id"): _id}),
    O("mqtt", default=dict): MQTT,
    O("state_dir"): vol.All(str, vol.Length(min=1)),
    O("logging", default=dict): _strict({
        O("level", default="INFO"): vol.All(str, vol.Upper, _enum(
            "DEBUG", "INFO", "WARNING", "ERROR")),
        O("format", default="text"): _enum("text", "json"),
    }),
    O("buses", default=list): list,
    O("poll"): list,
    O("profiles"): list,
    R("meters"): vol.All(list, vol.Length(min=1, msg="list at least one meter")),
})
