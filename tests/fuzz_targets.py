"""Every entry point that takes bytes from outside, as fuzz targets.

A target takes arbitrary bytes and may fail only in its documented way: the DLMS layers
raise :class:`~edge_agent.dlms.errors.DlmsError` (a clear message, never another
exception), the push decoder raises nothing at all (a bad telegram becomes a rejection
event), the config loader raises ``ConfigError``, the Home Assistant payload models raise
``InvalidPayload``. Anything else is a bug. A target may bring ``seeds``, well-formed
inputs of its own to mutate (JSON payloads, sign-on lines), beside the known-answer
frames every target gets. The same table drives the bounded hypothesis
run in CI (tests/test_fuzz_entry_points.py) and the long run (bench/fuzz.py).
"""

from __future__ import annotations

import importlib.util
import json
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType

from edge_agent.agent.config import load_config
from edge_agent.dlms.apdu import CosemAttributeDescriptor, decode_apdu
from edge_agent.dlms.association.client import ClientSession
from edge_agent.dlms.association.settings import ClientSettings
from edge_agent.dlms.encoding import axdr
from edge_agent.dlms.errors import ConfigError, DecodeError, DlmsError
from edge_agent.dlms.inspect import DecodeKeys, inspect, parse_line
from edge_agent.dlms.link.hdlc.frame import FrameSplitter, HdlcFrame
from edge_agent.dlms.link.iec62056_21 import Identification, SignOn
from edge_agent.dlms.link.mbus import MbusLongFrame
from edge_agent.dlms.link.wrapper import WrapperFrame
from edge_agent.dlms.push.decoder import FORMATS, PushDecoder
from edge_agent.dlms.secret import Secret
from edge_agent.dlms.security import CipherKeys
from edge_agent.mqtt import payloads
from edge_agent.mqtt.payloads import ReplayRequest

REPOSITORY = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPOSITORY / "tests" / "dlms"))
EK = Secret(bytes.fromhex("000102030405060708090a0b0c0d0e0f"), "EK")
AK = Secret(bytes.fromhex("d0d1d2d3d4d5d6d7d8d9dadbdcdddedf"), "AK")
METER_TITLE = bytes.fromhex("4d4d4d0000bc614e")


@dataclass(frozen=True, slots=True)
class Target:
    """``run(data)`` may raise only ``allowed`` (empty: nothing)."""

    name: str
    run: Callable[[bytes], object]
    allowed: tuple[type[BaseException], ...] = (DlmsError,)
    seeds: tuple[bytes, ...] = ()


def _ha_module(leaf: str) -> ModuleType:
    """One of the integration's modules, loaded by path into a bare package whose
    ``__init__`` (which imports Home Assistant) is not run: the payload models import no
    Home Assistant, only the integration's constants beside them."""
    package, name = "dlms_edge_ha", f"dlms_edge_ha.{leaf}"
    if name not in sys.modules:
        folder = REPOSITORY / "custom_components" / "dlms_edge"
        if package not in sys.modules:
            bare = ModuleType(package)
            bare.__path__ = [str(folder)]  # where ``from .const import ...`` looks
            sys.modules[package] = bare
        spec = importlib.util.spec_from_file_location(name, folder / f"{leaf}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
    return sys.modules[name]


def _ha_models() -> ModuleType:
    return _ha_module("models")


def ha_statistics() -> ModuleType | None:
    """The integration's statistics module (``ProfileRow``), which imports Home Assistant
    (the recorder, ``dt_util.parse_datetime``): None where Home Assistant is not
    installed (the agent's .venv; .venv-ha has it, see tests/test_fuzz_entry_points.py)."""
    if importlib.util.find_spec("homeassistant") is None:
        return None
    return _ha_module("statistics")


def _text(data: bytes) -> str:
    return data.decode("utf-8", "replace")


def _push(format_name: str) -> Callable[[bytes], object]:
    def feed(data: bytes) -> object:
        decoder = PushDecoder(format_name, ek=EK, ak=AK, system_title=METER_TITLE)
        return decoder.feed(data)
    return feed


def _splitter(data: bytes) -> object:
    return FrameSplitter().feed(data)


def _associating(data: bytes) -> object:
    """The answer to an AARQ."""
    session = ClientSession(ClientSettings(), iter(range(1, 1 << 32)).__next__, bytes(8))
    session.associate()
    return session.receive_apdu(data)


def _answering_get(data: bytes) -> object:
    """The answer to a GET in an established association (the simulator's meter side)."""
    from session_harness import make_link  # tests/dlms

    from edge_agent.dlms.association.server import ClientAccess

    link = make_link(ClientSettings(), ClientAccess(16))
    link.associate()
    link.client.get(CosemAttributeDescriptor(3, bytes((1, 0, 1, 8, 0, 255)), 2))
    return link.client.receive_apdu(data)


_CONFIG_DIR = tempfile.TemporaryDirectory(prefix="dlms-edge-fuzz-")


def _config(data: bytes) -> object:
    path = Path(_CONFIG_DIR.name) / "config.yaml"
    path.write_bytes(data)
    return load_config(path)


def _ha_info(data: bytes) -> object:
    models = _ha_models()
    return models.parse_discovery("dlms/pi/meter/info", data)


def _ha_reading(data: bytes) -> object:
    return _ha_models().Reading.from_payload(data)


def _ha_health(data: bytes) -> object:
    return _ha_models().Health.from_payload(data)


def _ha_topic(data: bytes) -> object:
    return _ha_models().MeterTopic.parse(_text(data))


def _ha_clock(data: bytes) -> object:
    return _ha_models().ClockReading.from_payload(data)


def _ha_event(data: bytes) -> object:
    return _ha_models().MeterEvent.from_payload(data)


def _sign_on(data: bytes) -> object:
    """The meter's answer to the sign-on request, as an optical head hands it over."""
    sign_on = SignOn()
    sign_on.request()
    return sign_on.receive_data(data)


_TS = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
CLOCK_SEEDS = (
    payloads.clock_payload(
        agent_time=_TS, meter_time=_TS + timedelta(seconds=17),
        meter_local_time="2026-03-10T13:00:17", drift=17.0, deviation=-60,
        status=["daylight_saving_active"], status_raw=0x80, time_zone=-60,
        daylight_saving={"enabled": True, "active": False, "deviation": 60,
                         "begin": "****-03-254 02:00:00.00", "end": "****-10-254 03:00:00.00"},
        clock_base="internal_crystal",
        sync={"enabled": True, "result": "shifted", "step": -17, "message": "shift_time by -17 s"}),
    payloads.clock_payload(
        agent_time=_TS, meter_time=None, meter_local_time=None, drift=None, deviation=None,
        status=None, status_raw=None, time_zone=None, daylight_saving={}, clock_base=None,
        sync={"enabled": False}),
)
EVENT_SEEDS = (
    payloads.event_payload(ts=_TS, log="0.0.99.98.0.255", code=1, name="power_down",
                           text="Power down", status=[],
                           raw={"0.0.1.0.0.255": _TS, "0.0.96.11.0.255": 1}),
    payloads.event_payload(ts=_TS, log="0.0.99.98.4.255", code=None,
                           name="long_power_failure", text="Long power failure",
                           status=["clock_invalid"], raw={}),
)
PROFILE_ROW_SEEDS = (
    payloads.profile_row_payload(_TS, {"1.0.1.8.0.255": 12345.678, "1.0.2.8.0.255": 0},
                                 {"1.0.1.8.0.255": "kWh", "1.0.2.8.0.255": None}, 0),
    payloads.profile_row_payload(_TS, {"1.0.1.8.0.255": None}, {}, None, replay=True),
)
IDENTIFICATION_SEEDS = (
    Identification("LGZ", "5", "ZMD3104107.B32", "2").encode(),
    Identification("KFM", "6", "", "2").encode(),
    b"/?!\r\n/ISK5\\2MT382-1000\r\n",  # an optical head's echo of the request first
)


def targets() -> list[Target]:
    invalid_payload = _ha_models().InvalidPayload
    statistics = ha_statistics()
    profile_row = [] if statistics is None else [Target(
        "ha-profile-row", statistics.ProfileRow.from_payload,
        (statistics.InvalidPayload,), PROFILE_ROW_SEEDS)]
    return [
        Target("hdlc-frame", lambda d: HdlcFrame.decode(d)),
        Target("hdlc-splitter", _splitter),
        Target("wrapper-frame", lambda d: WrapperFrame.decode(d)),
        Target("mbus-frame", lambda d: MbusLongFrame.decode(d)),
        Target("apdu", decode_apdu),
        Target("axdr-data", lambda d: axdr.decode(d)),
        Target("client-associating", _associating),
        Target("client-answering-get", _answering_get),
        Target("decode-without-keys", lambda d: inspect(d)),
        Target("decode-with-keys", lambda d: inspect(d, DecodeKeys(
            cipher=CipherKeys(ek=EK, ak=AK), system_title=METER_TITLE))),
        Target("capture-line", lambda d: parse_line(_text(d))),
        *(Target(f"push-{name}", _push(name), ()) for name in FORMATS),
        Target("config", _config, (ConfigError,)),
        Target("replay-request", ReplayRequest.decode, (DecodeError,)),
        Target("ha-info", _ha_info, (invalid_payload,)),
        Target("ha-reading", _ha_reading, (invalid_payload,)),
        Target("ha-health", _ha_health, (invalid_payload,)),
        Target("ha-topic", _ha_topic, (invalid_payload,)),
        Target("ha-clock", _ha_clock, (invalid_payload,), CLOCK_SEEDS),
        Target("ha-event", _ha_event, (invalid_payload,), EVENT_SEEDS),
        *profile_row,
        Target("iec-identification", lambda d: Identification.decode(d), (DlmsError,),
               IDENTIFICATION_SEEDS),
        Target("iec-sign-on", _sign_on, (DlmsError,), IDENTIFICATION_SEEDS),
    ]


def known_answer_frames() -> list[bytes]:
    """Real frames to mutate: the known-answer vectors' hex strings (tests/vectors)."""
    found: list[bytes] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
        elif isinstance(node, str) and len(node) >= 8 and len(node) % 2 == 0:
            try:
                found.append(bytes.fromhex(node))
            except ValueError:
                pass

    for path in sorted((REPOSITORY / "tests" / "vectors").glob("*.json")):
        walk(json.loads(path.read_text()))
    return found


def check(target: Target, data: bytes) -> BaseException | None:
    """Run ``target`` on ``data``; the unexpected exception, if one was raised."""
    try:
        target.run(data)
    except target.allowed:
        return None
    except Exception as error:  # noqa: BLE001 - that is what a fuzzer looks for
        return error
    return None
