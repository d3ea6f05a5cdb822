"""The agent's configuration: one YAML file, validated with voluptuous.

``load_config(path)`` returns a frozen :class:`Config` or raises ConfigError listing
every problem as ``<key path>: <what is wrong and how to fix it>``, for example
``meters[1].security.keys.ek: inline key values are not accepted; ...``. The
exception's ``problems`` attribute holds the same lines as a list.
``check_config(path)`` also reads what the file points to (keys, certificates) and
returns warnings.

Validation runs in three passes: the voluptuous schema (config_schema.py) checks each
mapping's keys and value types, each item of a list on its own; then the cross-field
rules below (a bus that exists, the keys a security policy needs, unique ids, devices
and addresses); then the frozen dataclasses of config_model.py are built. Key material
is never read while loading: keys are :class:`KeyRef` (a file or an environment
variable), resolved into a :class:`~edge_agent.dlms.secret.Secret` when a session needs
them.

Relative paths in the file are relative to the file's directory.
"""

from __future__ import annotations

import difflib
import os
import socket
import stat
from pathlib import Path
from typing import Any

import voluptuous as vol
import yaml

from edge_agent.agent.config_model import (
    DEFAULT_BACKOFF_INITIAL,
    DEFAULT_BACKOFF_MAXIMUM,
    DEFAULT_PROFILE,
    DEFAULT_PROFILE_INTERVAL,
    DEFAULT_RETRIES,
    Addresses,
    BackOffSettings,
    BusConfig,
    BusTransport,
    ClockConfig,
    ClockSyncConfig,
    Config,
    EventsConfig,
    KeyRef,
    LoggingConfig,
    MeterConfig,
    PollGroup,
    ProfileConfig,
    PushConfig,
    SecurityConfig,
    SerialSettings,
    SerialTransport,
    TcpTransport,
    Transport,
)
from edge_agent.agent.config_schema import BUS, METER, POLL_GROUP, PROFILE, TOP
from edge_agent.dlms.errors import ConfigError
from edge_agent.dlms.link.hdlc.frame import HdlcParameters
from edge_agent.dlms.secret import Secret
from edge_agent.mqtt.settings import MqttSettings, TlsSettings
from edge_agent.state import default_state_dir

__all__ = [
    "Addresses", "BusConfig", "BusTransport", "Config", "KeyRef", "LoggingConfig",
    "MeterConfig", "PollGroup", "ProfileConfig", "PushConfig", "SecurityConfig", "SerialSettings",
    "SerialTransport", "TcpTransport", "Transport", "check_config", "load_config",
]

# Serial defaults per use: optical heads and RS-485 (IEC 62056-46 over 62056-21 mode E,
# 9600 8N1 after the baud switch); Austrian T-210D M-Bus customer interface 2400 8E1;
# DSMR 5 P1 115200 8N1.
_SERIAL_DEFAULTS = {"meter": (9600, "N"), "bus": (9600, "N"), "hdlc": (9600, "N"),
                    "wrapper": (9600, "N"), "mbus": (2400, "E"), "dsmr": (115200, "N")}
_DEFAULT_POLL = ({"name": "all", "interval": 60.0, "objects": "all"},)
# Authentication and protection each need these keys (Green Book 9.2.7: GCM uses EK;
# authentication adds AK to the AAD; HLS-5 GMAC uses both).
_POLICY_KEYS = {"none": (), "enc": ("ek",), "auth": ("ek", "ak"), "authenc": ("ek", "ak")}
_AUTH_KEYS = {"none": (), "low": ("password",), "hls-gmac": ("ek", "ak"),
              "hls-ecdsa": ("ek", "ak")}
_KEY_LENGTH = {0: 16, 1: 16, 2: 32}  # suite 2: AES-GCM-256
# Point-to-point HDLC: the physical address most meters answer to (the T-210D trace in
# tests/vectors/t210d-pass3-general-signing.txt shows logical 1, physical 16). On a shared bus it must be given.
_DEFAULT_PHYSICAL = 16


# --- loading ---------------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys (PyYAML silently keeps the last one)."""


def _mapping_without_duplicates(loader: _Loader, node: yaml.MappingNode,
                                deep: bool = False) -> dict:
    seen: set = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}; keep one", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
                        _mapping_without_duplicates)


def _read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "?"
        raise ConfigError(f"{path}: YAML syntax error at {where}: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: YAML syntax error: {exc}") from None


def format_path(path: list[Any]) -> str:
    """``["meters", 1, "security"]`` -> ``meters[1].security``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


class _Problems(list[str]):
    def add(self, path: list[Any], message: str) -> None:
        self.append(f"{format_path(path)}: {message}")


def _explain(error: vol.Invalid) -> str:
    message = error.msg
    if message.startswith("unknown key; allowed here: "):
        names = message.removeprefix("unknown key; allowed here: ").split(", ")
        guess = difflib.get_close_matches(str(error.path[-1]), names, n=1)
        hint = f"did you mean {guess[0]!r}? " if guess else ""
        return f"unknown key; {hint}(allowed here: {', '.join(names)})"
    return {"required key not provided": "missing; this key is required",
            "expected a dictionary": "expected a mapping of keys (key: value lines)",
            "expected dict": "expected a mapping of keys (key: value lines)",
            "expected list": "expected a list (lines starting with '- ')"}.get(message, message)


def _check(schema: vol.Schema, data: Any, path: list[Any], problems: _Problems) -> dict | None:
    try:
        return schema(data)
    except vol.MultipleInvalid as exc:
        for error in exc.errors:
            problems.add(path + error.path, _explain(error))
    except vol.Invalid as exc:
        problems.add(path + exc.path, _explain(exc))
    return None


def _items(data: Any, key: str) -> list[Any]:
    value = data.get(key) if isinstance(data, dict) else None
    return value if isinstance(value, list) else []


def _serial(item: dict, use: str) -> SerialSettings:
    baud, parity = _SERIAL_DEFAULTS[use]
    return SerialSettings(item["device"], item.get("baud", baud), item.get("parity", parity),
                          item.get("bytesize", 8), item.get("stopbits", 1),
                          bool(item.get("rs485", use == "bus")), bool(item.get("optical")))


def _poll_groups(raw: list, path: list[Any], problems: _Problems) -> tuple[PollGroup, ...]:
    groups: dict[str, PollGroup] = {}
    for i, item in enumerate(raw):
        group = _check(POLL_GROUP, item, path + [i], problems)
        if group is None:
            continue
        if group["name"] in groups:
            problems.add(path + [i, "name"], f"duplicate poll group {group['name']!r}")
        objects = group["objects"]
        groups[group["name"]] = PollGroup(group["name"], float(group["interval"]),
                                          "all" if objects == "all" else tuple(objects))
    return tuple(groups.values())


def _profiles(raw: list, path: list[Any], problems: _Problems) -> tuple[ProfileConfig, ...]:
    profiles: dict[str, ProfileConfig] = {}
    for i, item in enumerate(raw):
        profile = _check(PROFILE, item, path + [i], problems)
        if profile is None:
            continue
        if profile["obis"] in profiles:
            problems.add(path + [i, "obis"], f"profile {profile['obis']} is listed twice; "
                                             "keep one")
        profiles[profile["obis"]] = ProfileConfig(profile["obis"], float(profile["interval"]),
                                                  None if profile["backfill"] is None
                                                  else float(profile["backfill"]),
                                                  profile["timezone"])
    return tuple(profiles.values())


class _Builder:
    """The cross-field pass: one instance per file, collecting every problem."""

    def __init__(self, source: Path) -> None:
        self.base = source.parent
        self.problems = _Problems()
        self.buses: dict[str, BusConfig] = {}
        self.devices: dict[str, str] = {}  # serial device -> key path of its first user
        self.physical: dict[tuple[str, int], str] = {}
        self.push_ports: dict[int, str] = {}

    def path(self, value: str) -> Path:
        return (self.base / Path(value).expanduser()).resolve()

    def claim_device(self, device: str, path: list[Any]) -> None:
        first = self.devices.setdefault(device, format_path(path))
        if first != format_path(path):
            self.problems.add(path, f"serial device {device} is already used by {first}; "
                                    "meters sharing one RS-485 line belong on a bus")

    def bus(self, index: int, raw: Any) -> None:
        item = _check(BUS, raw, ["buses", index], self.problems)
        if item is None:
            return
        if item["id"] in self.buses:
            self.problems.add(["buses", index, "id"], f"duplicate bus id {item['id']!r}")
        self.claim_device(item["device"], ["buses", index, "device"])
        self.buses[item["id"]] = BusConfig(item["id"], _serial(item, "bus"))

    def transport(self, raw: dict | None, path: list[Any]) -> Transport | None:
        if raw is None:
            return None
        kinds = [kind for kind in ("tcp", "serial", "bus") if kind in raw]
        if len(kinds) != 1:
            got = f" (got {' and '.join(kinds)})" if kinds else ""
            self.problems.add(path, "give exactly one of tcp: HOST:PORT, serial: {device: "
                                    f"...}} or bus: BUS_ID{got}")
            return None
        if kinds == ["tcp"]:
            return TcpTransport(*raw["tcp"])
        if kinds == ["bus"]:
            if raw["bus"] not in self.buses:
                known = ", ".join(self.buses) or "none defined"
                self.problems.add(path + ["bus"], f"no bus {raw['bus']!r} under buses "
                                                  f"({known}); add it there or fix the id")
                return None
            return BusTransport(raw["bus"])
        serial = _serial(raw["serial"], "meter")
        if serial.optical and serial.rs485:
            self.problems.add(path + ["serial"], "optical and rs485 exclude each other; an "
                                                 "optical head is a point-to-point link")
        self.claim_device(serial.device, path + ["serial", "device"])
        return SerialTransport(serial)

    def addresses(self, raw: dict, transport: Transport | None, label: str,
                  path: list[Any]) -> Addresses:
        physical = raw.get("physical")
        if isinstance(transport, BusTransport):
            if physical is None:
                self.problems.add(path + ["physical"], "required for a meter on a shared bus: "
                                  "each meter on the line answers to its own physical address "
                                  "(dlms-edge scan finds it)")
            else:
                first = self.physical.setdefault((transport.bus, physical), label)
                if first != label:
                    self.problems.add(path + ["physical"], f"{physical} is already used by "
                                      f"{first} on bus {transport.bus!r}")
        return Addresses(raw["client"], raw["logical"],
                         _DEFAULT_PHYSICAL if physical is None else physical)

    def security(self, raw: dict, path: list[Any], polled: bool) -> SecurityConfig:
        suite, policy, auth = raw["suite"], raw["policy"], raw["auth"]
        keys = raw["keys"]
        for name in dict.fromkeys(_POLICY_KEYS[policy] + _AUTH_KEYS[auth]):
            if name not in keys:
                self.problems.add(path + ["keys", name], f"missing; policy {policy} with auth "
                                  f"{auth} needs it: {name}: {{file: PATH}} or {{env: NAME}}")
        # Pushes carry the meter's system title; our own is needed only to talk to it.
        if polled and "system_title" not in raw and (policy != "none" or auth != "none"
                                                     and auth != "low"):
            self.problems.add(path + ["system_title"], "missing; ciphering and HLS need the "
                              "client's system title (16 hex digits, quoted)")
        signing = raw.get("pass3_signing", "auto" if "signing_key" in raw else "never")
        if signing != "never" or auth == "hls-ecdsa":
            need = "pass3_signing" if auth != "hls-ecdsa" else "auth hls-ecdsa"
            if suite == 0:
                self.problems.add(path + ["suite"], f"{need} signs with ECDSA, which needs "
                                  "suite 1 (P-256) or 2 (P-384)")
            if "signing_key" not in raw:
                self.problems.add(path + ["signing_key"], f"missing; {need} needs the "
                                  "client's private key file (dlms-edge keys makes one)")
        if signing != "never" and not auth.startswith("hls"):
            self.problems.add(path + ["pass3_signing"], "pass 3 exists only with HLS "
                              "authentication (auth: hls-gmac)")
        if auth == "hls-ecdsa" and "meter_certificate" not in raw:
            self.problems.add(path + ["meter_certificate"], "missing; hls-ecdsa verifies the "
                              "meter's signature with its certificate")

        def ref(name: str) -> KeyRef | None:
            if name not in keys:
                return None
            source, where = keys[name]
            return KeyRef(source, str(self.path(where)) if source == "file" else where,
                          format_path(path + ["keys", name]),
                          None if name == "password" else _KEY_LENGTH[suite])

        def file(name: str) -> Path | None:
            return self.path(raw[name]) if name in raw else None

        return SecurityConfig(suite, policy, auth, ref("ek"), ref("ak"), ref("password"),
                              raw.get("system_title"), signing, file("signing_key"),
                              file("meter_certificate"), raw["association"],
                              raw["frame_counter"])

    def push(self, raw: dict | None, path: list[Any]) -> PushConfig | None:
        if raw is None:
            return None
        if ("port" in raw) == ("serial" in raw):
            self.problems.add(path, "give exactly one of port: N (listen on TCP) or serial: "
                                    "{device: ...}")
            return None
        serial = None
        if "serial" in raw:
            serial = _serial(raw["serial"], raw["format"])
            self.claim_device(serial.device, path + ["serial", "device"])
        else:
            first = self.push_ports.setdefault(raw["port"], format_path(path))
            if first != format_path(path):
                self.problems.add(path + ["port"], f"port {raw['port']} is already used by "
                                                   f"{first}")
        objects = raw.get("objects")
        return PushConfig(raw["format"], raw.get("port"), raw["bind"], serial,
                          tuple(objects) if objects else None, raw.get("interval"),
                          raw.get("system_title"))

    def meter(self, index: int, raw: dict, default_poll: tuple[PollGroup, ...],
              default_profiles: tuple[ProfileConfig, ...] = ()) -> MeterConfig:
        path: list[Any] = ["meters", index]
        transport = self.transport(raw.get("transport"), path + ["transport"])
        push = self.push(raw.get("push"), path + ["push"])
        if "transport" not in raw and "push" not in raw:
            self.problems.add(path, "needs transport (to poll the meter) or push (to receive "
                                    "what it sends), or both")
        if "transport" not in raw and "push" in raw and "id" not in raw:
            self.problems.add(path + ["id"], "missing; a push-only meter needs an id (pushes "
                                             "may carry no meter number)")
        link = raw.get("link")
        if link is None and transport is not None:
            link = "wrapper" if isinstance(transport, TcpTransport) else "hdlc"
        if link == "wrapper" and isinstance(transport, (SerialTransport, BusTransport)):
            self.problems.add(path + ["link"], "the wrapper (IEC 62056-47) runs over TCP; "
                                               "serial lines use hdlc")
        if "poll" in raw:
            if "transport" not in raw:
                self.problems.add(path + ["poll"], "polling needs a transport")
            poll = _poll_groups(raw["poll"], path + ["poll"], self.problems)
        else:
            poll = default_poll if "transport" in raw else ()
        if "profiles" in raw:
            if "transport" not in raw:
                self.problems.add(path + ["profiles"], "reading a load profile needs a "
                                                       "transport (pushes carry no profile)")
            profiles = _profiles(raw["profiles"], path + ["profiles"], self.problems)
        else:
            profiles = default_profiles if "transport" in raw else ()
        if "retries" in raw and link == "wrapper":
            self.problems.add(path + ["retries"], "applies to HDLC links only; the wrapper "
                                                  "runs over TCP, which retransmits itself: "
                                                  "remove it, or set link: hdlc")
        hdlc = None
        if "hdlc" in raw:
            if link != "hdlc":
                self.problems.add(path + ["hdlc"], "sets HDLC frames; this meter's link is "
                                                   f"{link or 'push only'}: remove it, or set "
                                                   "link: hdlc")
            size, window = raw["hdlc"]["max_info"], raw["hdlc"]["window"]
            hdlc = HdlcParameters(size, size, window, window)
        label = raw.get("id") or format_path(path)
        clock, events = self.clock_and_events(raw, path)
        return MeterConfig(
            index, raw.get("id"), transport, link,
            self.addresses(raw["addresses"], transport, label, path + ["addresses"]),
            self.security(raw["security"], path + ["security"], "transport" in raw), poll, push,
            float(raw["timeout"]), raw.get("retries", DEFAULT_RETRIES),
            self.backoff(raw.get("backoff"), path + ["backoff"]), profiles, clock, events, hdlc)

    def clock_and_events(self, raw: dict, path: list[Any]
                         ) -> tuple[ClockConfig | None, EventsConfig | None]:
        """``clock``, ``clock_sync`` and ``events`` of a meter: on by default for polled
        meters (sync off), never for push-only ones (a push carries neither)."""
        polled = "transport" in raw
        for key in ("clock", "clock_sync", "events"):
            if raw.get(key) is not None and not polled:
                self.problems.add(path + [key], "needs a transport: the agent reads it from "
                                                "the meter (pushes do not carry it)")
        sync = None
        if raw.get("clock_sync") is not None:
            item = raw["clock_sync"]
            sync = ClockSyncConfig(float(item["max_step"]), float(item["min_step"]),
                                   bool(item["daylight_saving"]))
            if sync.min_step > sync.max_step:
                self.problems.add(path + ["clock_sync", "min_step"], f"{sync.min_step:g} s is "
                                  f"above max_step ({sync.max_step:g} s); the clock is set "
                                  "only when the drift lies between the two")
            if "clock" in raw and raw["clock"] is None:
                self.problems.add(path + ["clock_sync"], "needs the clock read (clock is "
                                                         "off): remove clock: false, or "
                                                         "remove clock_sync")
        clock = None
        if polled and not ("clock" in raw and raw["clock"] is None):
            interval = raw["clock"]["interval"] if raw.get("clock") else ClockConfig().interval
            clock = ClockConfig(float(interval), sync)
        events = None
        if polled and not ("events" in raw and raw["events"] is None):
            default = EventsConfig()
            item = raw.get("events") or {"interval": default.interval,
                                         "backfill": default.backfill, "logs": "all"}
            logs = item["logs"]
            events = EventsConfig(float(item["interval"]), float(item["backfill"]),
                                  None if logs == "all" else tuple(dict.fromkeys(logs)))
        return clock, events

    def backoff(self, raw: dict | None, path: list[Any]) -> BackOffSettings | None:
        if raw is None:
            return None
        settings = BackOffSettings(float(raw.get("initial", DEFAULT_BACKOFF_INITIAL)),
                                   float(raw.get("maximum", DEFAULT_BACKOFF_MAXIMUM)))
        if settings.initial > settings.maximum:
            self.problems.add(path, f"initial ({settings.initial:g} s) is above maximum "
                                    f"({settings.maximum:g} s); the wait starts at initial "
                                    "and doubles up to maximum")
        return settings

    def mqtt(self, raw: dict) -> MqttSettings:
        path: list[Any] = ["mqtt"]
        tls = None
        if raw.get("tls"):
            t = raw["tls"]
            if "key" in t and "cert" not in t:
                self.problems.add(path + ["tls", "key"], "a client key needs its certificate "
                                                         "(tls.cert)")
            tls = TlsSettings(*(self.path(t[k]) if k in t else None for k in ("ca", "cert",
                                                                               "key")),
                              insecure=t["insecure"])
        password: KeyRef | Secret | None = None
        if "password" in raw and "password_env" in raw:
            self.problems.add(path + ["password_env"], "give password or password_env, "
                                                       "not both")
        elif isinstance(raw.get("password"), str):
            password = Secret(raw["password"].encode(), "mqtt.password")
        elif "password" in raw:
            source, where = raw["password"]
            password = KeyRef(source, str(self.path(where)) if source == "file" else where,
                              "mqtt.password", None)
        elif "password_env" in raw:
            password = KeyRef("env", raw["password_env"], "mqtt.password_env", None)
        if password is not None and "username" not in raw:
            self.problems.add(path + ["username"], "missing; a password needs a username")
        queue = raw["queue"]
        return MqttSettings(
            host=raw["host"], port=raw.get("port", 8883 if tls else 1883), tls=tls,
            username=raw.get("username"), password=password, prefix=raw["prefix"],
            protocol=raw["protocol"], keepalive=raw["keepalive"],
            client_id=raw.get("client_id"), discovery=raw["discovery"],
            discovery_prefix=raw["discovery_prefix"],
            queue_max_messages=queue["max_messages"], queue_max_bytes=queue["max_bytes"])


def default_agent_id() -> str:
    """The short host name (``pi-kitchen`` of ``pi-kitchen.local``)."""
    return socket.gethostname().split(".")[0] or "dlms-edge"


def _raise(source: Path, problems: list[str]) -> None:
    count = f"{len(problems)} problem{'s' if len(problems) > 1 else ''}"
    error = ConfigError(f"{source}: {count}:\n  " + "\n  ".join(problems))
    error.problems = list(problems)  # type: ignore[attr-defined]
    raise error


def load_config(path: str | Path) -> Config:
    """Read and validate one config file; ConfigError lists every problem with its key."""
    source = Path(path)
    data = _read_yaml(source)
    if not isinstance(data, dict):
        _raise(source, ["(top level): expected a mapping with at least `meters:`"])
    builder = _Builder(source)
    problems = builder.problems
    top = _check(TOP, data, [], problems)
    for index, raw in enumerate(_items(data, "buses")):
        builder.bus(index, raw)
    default_poll = (_poll_groups(_items(data, "poll"), ["poll"], problems) if "poll" in data
                    else tuple(PollGroup(g["name"], g["interval"], g["objects"])
                               for g in _DEFAULT_POLL))
    default_profiles = (_profiles(_items(data, "profiles"), ["profiles"], problems)
                        if "profiles" in data else
                        (ProfileConfig(DEFAULT_PROFILE, DEFAULT_PROFILE_INTERVAL, implicit=True),))
    meters = []
    seen_ids: dict[str, int] = {}
    for index, raw in enumerate(_items(data, "meters")):
        meter_id = raw.get("id") if isinstance(raw, dict) else None
        if isinstance(meter_id, str):
            first = seen_ids.setdefault(meter_id, index)
            if first != index:
                problems.add(["meters", index, "id"], f"duplicate meter id {meter_id!r} "
                                                      f"(also meters[{first}])")
        item = _check(METER, raw, ["meters", index], problems)
        if item is None:
            continue
        meters.append(builder.meter(index, item, default_poll, default_profiles))
    mqtt = builder.mqtt(top["mqtt"]) if top is not None else None
    if problems or top is None or mqtt is None:
        _raise(source, problems)
    state_dir = (builder.path(top["state_dir"]) if "state_dir" in top
                 else default_state_dir())
    return Config(source, top["agent"].get("id") or default_agent_id(), mqtt, state_dir,
                  LoggingConfig(top["logging"]["level"], top["logging"]["format"]),
                  tuple(builder.buses.values()), tuple(meters))


# --- deeper check (dlms-edge config check) ------------------------------------------------


def check_config(path: str | Path) -> list[str]:
    """Validate ``path`` and everything it points to; return warnings.

    Raises ConfigError (with ``problems``) for an invalid file or for keys,
    certificates and TLS files that cannot be read or have the wrong size or curve.
    Warnings: environment variables not set in this shell (the service may set them),
    key files readable by other users, serial devices not present right now.
    """
    config = load_config(path)
    errors: list[str] = []
    warnings: list[str] = []
    refs: list[KeyRef] = [ref for meter in config.meters
                          for ref in (meter.security.ek, meter.security.ak,
                                      meter.security.password) if ref is not None]
    if isinstance(config.mqtt.password, KeyRef):
        refs.append(config.mqtt.password)
    for ref in refs:
        if ref.source == "env" and ref.ref not in os.environ:
            warnings.append(f"{ref.what}: environment variable {ref.ref} is not set in this "
                            "shell; make sure the service sets it")
            continue
        try:
            ref.resolve()
        except ConfigError as exc:
            errors.append(str(exc))
            continue
        if ref.source == "file":
            warnings.extend(_permission_warning(Path(ref.ref), ref.what))
    for meter in config.meters:
        _check_signing_files(meter, errors, warnings)
        for where, serial in _serial_users(config, meter):
            if not Path(serial.device).exists():
                warnings.append(f"{where}: {serial.device} does not exist right now "
                                "(unplugged? prefer /dev/serial/by-id/... names)")
    if config.mqtt.tls is not None:
        for name in ("ca", "cert", "key"):
            file = getattr(config.mqtt.tls, name)
            if file is not None and not file.is_file():
                errors.append(f"mqtt.tls.{name}: {file} does not exist")
    if errors:
        _raise(config.source, errors)
    return warnings


def _serial_users(config: Config, meter: MeterConfig) -> list[tuple[str, SerialSettings]]:
    users = []
    if isinstance(meter.transport, SerialTransport):
        users.append((f"meters[{meter.index}].transport.serial", meter.transport.serial))
    if isinstance(meter.transport, BusTransport):
        users.append((f"bus {meter.transport.bus}", config.bus(meter.transport.bus).serial))
    if meter.push is not None and meter.push.serial is not None:
        users.append((f"meters[{meter.index}].push.serial", meter.push.serial))
    return users


def _permission_warning(file: Path, what: str) -> list[str]:
    try:
        mode = stat.S_IMODE(file.stat().st_mode)
    except OSError:
        return []
    if mode & 0o077:
        return [(f"{what}: {file} is readable by other users (mode {mode:04o}); "
                 f"chmod 600 {file}")]
    return []


_CURVES = {1: "secp256r1", 2: "secp384r1"}


def _check_signing_files(meter: MeterConfig, errors: list[str], warnings: list[str]) -> None:
    if meter.security.signing_key is None and meter.security.meter_certificate is None:
        return  # nothing to load: spare the x509 import
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    security = meter.security
    where = f"meters[{meter.index}].security"
    curve = _CURVES.get(security.suite)
    if security.signing_key is not None:
        try:
            data = security.signing_key.read_bytes()
            loader = (serialization.load_pem_private_key if b"-----BEGIN" in data
                      else serialization.load_der_private_key)
            key = loader(data, password=None)
        except (OSError, ValueError, TypeError) as exc:
            errors.append(f"{where}.signing_key: cannot load {security.signing_key} as an "
                          f"unencrypted PEM/DER private key ({type(exc).__name__}); "
                          "dlms-edge keys makes one")
        else:
            if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != curve:
                errors.append(f"{where}.signing_key: expected an EC {curve} key for suite "
                              f"{security.suite}")
            warnings.extend(_permission_warning(security.signing_key, f"{where}.signing_key"))
    if security.meter_certificate is not None:
        try:
            data = security.meter_certificate.read_bytes()
            loader = (x509.load_pem_x509_certificate if b"-----BEGIN" in data
                      else x509.load_der_x509_certificate)
            certificate = loader(data)
        except (OSError, ValueError) as exc:
            errors.append(f"{where}.meter_certificate: cannot load "
                          f"{security.meter_certificate} as a PEM/DER certificate "
                          f"({type(exc).__name__})")
        else:
            public = certificate.public_key()
            if not isinstance(public, ec.EllipticCurvePublicKey) or public.curve.name != curve:
                errors.append(f"{where}.meter_certificate: expected an EC {curve} "
                              f"certificate for suite {security.suite}")
