"""What a simulated meter pushes, in the forms real meters use (see edge_agent.dlms.push.decoder).

* ``mbus``: the Austrian T-210D customer interface. A DataNotification whose body is
  date-time, (OBIS, value, scaler_unit) for eleven registers and the meter number, in
  general-glo-ciphering with SC 0x20 (encryption only), cut into two wired M-Bus long
  frames (CI 0x00, 0x11) as ``tests/vectors/mbus-push.json`` shows.
* ``dsmr``: the T-210D-r P1 port. A DSMR P1 text telegram (with CRC) in
  general-glo-ciphering: SC 0x30 when an AK is given, else 0x20.
* ``hdlc``: an IDIS-style push: a DataNotification whose body holds the values of the
  push setup's ``push_object_list`` (0-0:25.9.0.255 attribute 2) in order, in a UI frame
  (IEC 62056-46 6.4.3.6, unnumbered information: no link needed), ciphered when keys are
  given.
* ``wrapper``: the same notification in an IEC 62056-47 wrapper frame.

:func:`build_push` is one push for one instant; :func:`push_stream` paces them.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any, Final

from edge_agent.dlms.apdu import DataNotification
from edge_agent.dlms.cosem.units import ScalerUnit
from edge_agent.dlms.encoding.axdr import Array, OctetString, Structure
from edge_agent.dlms.encoding.date_time import ClockStatus
from edge_agent.dlms.errors import ConfigError
from edge_agent.dlms.link.hdlc.frame import LLC_RESPONSE, FrameKind, HdlcAddress, HdlcFrame
from edge_agent.dlms.link.mbus import split_telegram
from edge_agent.dlms.link.wrapper import WrapperFrame
from edge_agent.dlms.push.dsmr import DsmrTelegram
from edge_agent.dlms.security import CipherKeys, SecurityControl, protect
from edge_agent.dlms.security.tags import Form
from edge_agent.simulator.meter_models import PUSH_SETUP, SimulatedMeter, ln
from edge_agent.simulator.objects import Request

__all__ = ["PUSH_FORMATS", "T210D_PUSHED", "build_push", "push_stream"]

# The registers of the Austrian customer interface, in the order the T-210D sends them.
T210D_PUSHED: Final = tuple(ln(code) for code in (
    "1.0.1.8.0.255", "1.0.2.8.0.255", "1.0.1.7.0.255", "1.0.2.7.0.255",
    "1.0.32.7.0.255", "1.0.52.7.0.255", "1.0.72.7.0.255",
    "1.0.31.7.0.255", "1.0.51.7.0.255", "1.0.71.7.0.255", "1.0.13.7.0.255"))
# P1 lines: logical name, DSMR reference, decimals of the value as printed.
_P1_LINES: Final = (
    ("1.0.1.8.0.255", "1-0:1.8.0", 0), ("1.0.2.8.0.255", "1-0:2.8.0", 0),
    ("1.0.1.7.0.255", "1-0:1.7.0", 0), ("1.0.2.7.0.255", "1-0:2.7.0", 0),
    ("1.0.32.7.0.255", "1-0:32.7.0", 1), ("1.0.52.7.0.255", "1-0:52.7.0", 1),
    ("1.0.72.7.0.255", "1-0:72.7.0", 1), ("1.0.31.7.0.255", "1-0:31.7.0", 2),
    ("1.0.51.7.0.255", "1-0:51.7.0", 2), ("1.0.71.7.0.255", "1-0:71.7.0", 2),
)
_ENC_ONLY: Final = SecurityControl(suite=0, encryption=True)
_AUTH_ENC: Final = SecurityControl(suite=0, authentication=True, encryption=True)
# HDLC addresses of a push: from the meter's management logical device to the client SAP
# the push setup's destination names (IDIS uses 102 for its push client).
_PUSH_CLIENT_SAP: Final = 102
_SERVER: Final = HdlcAddress.server(1, 16)
_LONG_INVOKE_ID_MASK: Final = 0x00FFFFFF


class _Reader:
    """Reads the meter's attributes as a GET at one instant would."""

    def __init__(self, meter: SimulatedMeter, world: datetime) -> None:
        self.meter = meter
        model = meter.meter
        self.request = Request(meter_now=world + model.clock_offset, world_now=world,
                               association=None)  # type: ignore[arg-type]
        self.meter_time = model.cosem_time(self.request.meter_now)

    def value(self, logical_name: bytes, attribute: int = 2) -> Any:
        if attribute == 1:
            return OctetString(logical_name)
        return self.meter.objects[logical_name].attributes[attribute].get(self.request)

    def scaled(self, logical_name: bytes) -> float | int:
        return ScalerUnit.from_axdr(self.value(logical_name, 3)).apply(self.value(logical_name))


def _t210d_body(reader: _Reader) -> Structure:
    """Austrian customer interface layout (see edge_agent.dlms.push.body)."""
    elements: list[Any] = [OctetString(reader.meter_time.encode())]
    for logical_name in T210D_PUSHED:
        elements += [OctetString(logical_name), reader.value(logical_name),
                     reader.value(logical_name, 3)]
    elements.append(OctetString(reader.meter.serial.encode("ascii")))
    return Structure(elements)


def _push_object_list_body(reader: _Reader) -> Structure:
    """IDIS layout: the values of push_object_list (Blue Book 4.4.8, attribute 2), in order."""
    entries: Array = reader.value(PUSH_SETUP, 2)
    return Structure(reader.value(bytes(entry[1]), int(entry[2])) for entry in entries)


def _notification(reader: _Reader, body: Structure, counter: int) -> bytes:
    return DataNotification(counter & _LONG_INVOKE_ID_MASK, reader.meter_time.encode(),
                            body).encode()


def _cipher(plain: bytes, meter: SimulatedMeter, keys: CipherKeys, counter: int,
            sc: SecurityControl | None = None) -> bytes:
    if keys.ek is None:
        return plain
    chosen = sc or (_AUTH_ENC if keys.ak is not None else _ENC_ONLY)
    return protect(plain, sc=chosen, keys=keys, system_title=meter.system_title,
                   invocation_counter=counter, form=Form.GENERAL_GLO)


def _p1_telegram(reader: _Reader) -> bytes:
    meter, local = reader.meter, reader.meter_time
    summer = bool((local.status or 0) & ClockStatus.DAYLIGHT_SAVING_ACTIVE)
    stamp = (f"{(local.year or 0) % 100:02d}{local.month:02d}{local.day:02d}"
             f"{local.hour:02d}{local.minute:02d}{local.second:02d}{'S' if summer else 'W'}")
    lines = ["1-3:0.2.8(50)", f"0-0:1.0.0({stamp})",
             f"0-0:96.1.1({meter.serial.encode('ascii').hex().upper()})"]
    for logical_name, reference, decimals in _P1_LINES:
        unit = ScalerUnit.from_axdr(reader.value(ln(logical_name), 3)).symbol
        value = reader.scaled(ln(logical_name))
        lines.append(f"{reference}({value:0{7 + decimals}.{decimals}f}*{unit})")
    return DsmrTelegram(f"SAG5\\T210-D-r {meter.serial}", tuple(lines)).encode()


def _mbus(meter: SimulatedMeter, keys: CipherKeys, counter: int, reader: _Reader) -> bytes:
    apdu = _cipher(_notification(reader, _t210d_body(reader), counter), meter, keys, counter,
                   _ENC_ONLY)
    return b"".join(frame.encode() for frame in split_telegram(apdu))


def _dsmr(meter: SimulatedMeter, keys: CipherKeys, counter: int, reader: _Reader) -> bytes:
    if keys.ek is None:
        raise ConfigError("the T-210D-r P1 push is always ciphered: give an EK")
    return _cipher(_p1_telegram(reader), meter, keys, counter)


def _hdlc(meter: SimulatedMeter, keys: CipherKeys, counter: int, reader: _Reader) -> bytes:
    apdu = _cipher(_notification(reader, _push_object_list_body(reader), counter), meter, keys,
                   counter)
    return HdlcFrame(HdlcAddress.client(_PUSH_CLIENT_SAP), _SERVER, FrameKind.UI,
                     info=LLC_RESPONSE + apdu).encode()


def _wrapper(meter: SimulatedMeter, keys: CipherKeys, counter: int, reader: _Reader) -> bytes:
    apdu = _cipher(_notification(reader, _push_object_list_body(reader), counter), meter, keys,
                   counter)
    return WrapperFrame(1, _PUSH_CLIENT_SAP, apdu).encode()


PUSH_FORMATS: Final[dict[str, Callable[[SimulatedMeter, CipherKeys, int, _Reader], bytes]]] = {
    "mbus": _mbus,
    "dsmr": _dsmr,
    "hdlc": _hdlc,
    "wrapper": _wrapper,
}


def build_push(format: str, meter: SimulatedMeter, keys: CipherKeys,
               invocation_counter: int, world: datetime) -> bytes:
    """The bytes ``meter`` sends for one push at the world's time ``world``."""
    try:
        build = PUSH_FORMATS[format]
    except KeyError:
        raise ConfigError(f"push format {format!r}: expected one of "
                          f"{', '.join(PUSH_FORMATS)}") from None
    return build(meter, keys, invocation_counter, _Reader(meter, world))


def push_stream(format: str, meter: SimulatedMeter, keys: CipherKeys,
                interval: float, *, invocation_counter: Callable[[], int] | None = None,
                clock: Callable[[], datetime] | None = None,
                sleep: Callable[[float], None] = time.sleep) -> Iterator[bytes]:
    """Pushes every ``interval`` seconds, forever: write each to the line as it comes.

    ``invocation_counter`` should be the meter's own counter when it also answers requests
    under the same key (one GCM IV must never serve twice); default: 1, 2, 3, ...
    """
    build_push(format, meter, keys, 1, datetime.now(UTC))  # refuse a bad format at once
    counter = invocation_counter or itertools.count(1).__next__
    now = clock or (lambda: datetime.now(UTC))
    while True:
        yield build_push(format, meter, keys, counter(), now())
        sleep(interval)
