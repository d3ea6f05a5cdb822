"""Every entry point that takes bytes from outside, as fuzz targets.

A target takes arbitrary bytes and may fail only in its documented way: the DLMS layers
raise :class:`~edge_agent.dlms.errors.DlmsError` (a clear message, never another
exception), the push decoder raises nothing at all (a bad telegram becomes a rejection
event), the config loader raises ``ConfigError``, the Home Assistant payload models raise
``InvalidPayload``. Anything else is a bug. The same table drives the bounded hypothesis
run in CI (tests/test_fuzz_entry_points.py) and the long run (bench/fuzz.py).
"""

from __future__ import annotations

import importlib.util
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
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
from edge_agent.dlms.link.mbus import MbusLongFrame
from edge_agent.dlms.link.wrapper import WrapperFrame
from edge_agent.dlms.push.decoder import FORMATS, PushDecoder
from edge_agent.dlms.secret import Secret
from edge_agent.dlms.security import CipherKeys
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


def _ha_models() -> ModuleType:
    """The integration's payload models, loaded by path: they import no Home Assistant,
    only the integration's constants beside them, so they go in a bare package whose
    ``__init__`` (which imports Home Assistant) is not run."""
    package, name = "dlms_edge_ha", "dlms_edge_ha.models"
    if name not in sys.modules:
        folder = REPOSITORY / "custom_components" / "dlms_edge"
        if package not in sys.modules:
            bare = ModuleType(package)
            bare.__path__ = [str(folder)]  # where ``from .const import ...`` looks
            sys.modules[package] = bare
        spec = importlib.util.spec_from_file_location(name, folder / "models.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


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


def targets() -> list[Target]:
    invalid_payload = _ha_models().InvalidPayload
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
    ]


def check(target: Target, data: bytes) -> BaseException | None:
    """Run ``target`` on ``data``; the unexpected exception, if one was raised."""
    try:
        target.run(data)
    except target.allowed:
        return None
    except Exception as error:  # noqa: BLE001 - that is what a fuzzer looks for
        return error
    return None
