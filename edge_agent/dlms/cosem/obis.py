"""OBIS codes (IEC 62056-6-1; Blue Book 7, "COSEM object identification system").

An OBIS code is six value groups A..F of 0..255: A medium (0 abstract, 1 electricity),
B channel, C quantity, D processing, E tariff/classification, F billing period (255 =
current value). It is the ``logical_name`` of every COSEM object, sent as an
octet-string of 6 octets.

Accepted text forms (``Obis.parse``):

    1-0:1.8.0*255   IEC form (``&`` is accepted for ``*``; ``1-0:1.8.0`` means F=255)
    1-0:1.8.0.255   IEC form with a dot before F
    1.0.1.8.0.255   six dotted groups (the MQTT leaf form)
    1.0.1.8.0       five groups: F=255
    1.8.0 / 1.8.0*255   electricity short form: A=1, B=0 (and F=255). Abstract objects
                    (clock, serial number...) have A=0 and must be written in full.
    0100010800FF    twelve hex digits, the octets on the wire
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from edge_agent.dlms.errors import DecodeError

_IEC = re.compile(
    r"""^\s*(?:(?P<a>\d{1,3})-(?P<b>\d{1,3}):)?
        (?P<c>\d{1,3})\.(?P<d>\d{1,3})\.(?P<e>\d{1,3})
        (?:(?P<sep>[*&.])(?P<f>\d{1,3}))?\s*$""",
    re.VERBOSE,
)
_DOTTED = re.compile(r"^\s*\d{1,3}(?:\.\d{1,3}){4,5}\s*$")
_HEX = re.compile(r"^\s*[0-9A-Fa-f]{12}\s*$")


@dataclass(frozen=True, slots=True, order=True)
class Obis:
    """One OBIS code. ``str()`` gives the IEC form, :attr:`dotted` the MQTT leaf form."""

    a: int
    b: int
    c: int
    d: int
    e: int
    f: int = 255

    def __post_init__(self) -> None:
        for group, value in zip("ABCDEF", (self.a, self.b, self.c, self.d, self.e, self.f)):
            if not isinstance(value, int) or not 0 <= value <= 255:
                raise DecodeError(f"OBIS value group {group} must be 0..255, got {value!r}")

    @classmethod
    def parse(cls, text: str) -> Obis:
        """Any of the forms in the module docstring; DecodeError names the accepted ones."""
        if _HEX.match(text):
            return cls.from_bytes(bytes.fromhex(text.strip()))
        if _DOTTED.match(text):
            groups = [int(g) for g in text.strip().split(".")]
            return cls(*groups)
        match = _IEC.match(text)
        # "1.0.1.8" would read as C.D.E.F without A-B: too ambiguous to guess.
        if match is None or match["a"] is None and match["sep"] == ".":
            raise DecodeError(
                f"not an OBIS code: {text!r}; write it as 1-0:1.8.0*255, 1.0.1.8.0.255, "
                "1.8.0 (electricity, A=1 B=0) or 12 hex digits 0100010800FF")
        a, b, f = match["a"], match["b"], match["f"]
        return cls(1 if a is None else int(a), 0 if b is None else int(b), int(match["c"]),
                   int(match["d"]), int(match["e"]), 255 if f is None else int(f))

    @classmethod
    def coerce(cls, value: Obis | str | bytes) -> Obis:
        """An Obis from an Obis, its text, or its 6 octets."""
        if isinstance(value, Obis):
            return value
        if isinstance(value, bytes | bytearray | memoryview):
            return cls.from_bytes(value)
        if isinstance(value, str):
            return cls.parse(value)
        raise DecodeError(f"not an OBIS code: {type(value).__name__} {value!r}")

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview, offset: int = 0) -> Obis:
        """From the logical_name octet-string (6 octets at ``offset``; a longer buffer is
        read from ``offset``, a 6-octet value exactly)."""
        if len(data) - offset < 6:
            raise DecodeError(
                f"a logical name (OBIS code) has 6 octets, got {max(len(data) - offset, 0)}")
        return cls(*data[offset:offset + 6])

    def __bytes__(self) -> bytes:
        return bytes((self.a, self.b, self.c, self.d, self.e, self.f))

    encode = __bytes__

    @property
    def dotted(self) -> str:
        return f"{self.a}.{self.b}.{self.c}.{self.d}.{self.e}.{self.f}"

    def __str__(self) -> str:
        return f"{self.a}-{self.b}:{self.c}.{self.d}.{self.e}*{self.f}"

    @property
    def name(self) -> str:
        return name(self)


# --- names --------------------------------------------------------------------------------

def _o(text: str) -> Obis:
    return Obis.parse(text)


# Exact objects (Blue Book 7.4/7.5 and the IDIS/DSMR companion lists meters follow).
_EXACT: dict[Obis, str] = {
    _o("0.0.1.0.0.255"): "Clock",
    _o("0.0.42.0.0.255"): "COSEM logical device name",
    _o("0.0.96.1.0.255"): "Meter serial number (device ID 1)",
    _o("0.0.96.1.1.255"): "Device ID 2",
    _o("0.0.96.1.2.255"): "Device ID 3",
    _o("0.0.96.1.3.255"): "Device ID 4",
    _o("0.0.96.1.4.255"): "Device ID 5",
    _o("0.0.96.1.5.255"): "Device ID 6",
    _o("0.0.96.1.6.255"): "Device ID 7",
    _o("0.0.96.1.7.255"): "Device ID 8",
    _o("0.0.96.1.8.255"): "Device ID 9",
    _o("0.0.96.1.9.255"): "Device ID 10",
    _o("0.0.96.3.10.255"): "Disconnect control",
    _o("0.0.96.7.9.255"): "Number of long power failures in any phase",
    _o("0.0.96.7.21.255"): "Number of power failures in any phase",
    _o("0.0.96.11.0.255"): "Event code (standard event log)",
    _o("0.0.96.13.0.255"): "Consumer message text",
    _o("0.0.96.13.1.255"): "Consumer message code",
    _o("0.0.96.14.0.255"): "Currently active tariff",
    _o("0.0.99.98.0.255"): "Standard event log",
    _o("0.0.22.0.0.255"): "IEC HDLC setup",
    _o("0.0.25.0.0.255"): "TCP-UDP setup",
    _o("0.0.25.1.0.255"): "IPv4 setup",
    _o("0.0.44.0.0.255"): "Image transfer",
    _o("0.0.13.0.0.255"): "Activity calendar",
    _o("0.0.15.0.0.255"): "Single action schedule (end of billing period)",
    _o("0.0.17.0.0.255"): "Limiter",
    _o("0.0.10.0.0.255"): "Global meter reset script table",
    _o("0.0.10.0.1.255"): "End of billing period script table",
    _o("0.0.10.0.100.255"): "Tariffication script table",
    _o("0.0.10.0.106.255"): "Disconnector script table",
    _o("1.0.0.2.0.255"): "Active firmware identifier",
    _o("1.0.99.1.0.255"): "Load profile 1",
    _o("1.0.99.2.0.255"): "Load profile 2",
    _o("1.0.98.1.0.255"): "Billing period values",
    _o("1.0.99.97.0.255"): "Power failure event log",
}

# Families of abstract objects: (C, D) → name with E as the instance number.
_FAMILIES: dict[tuple[int, int], str] = {
    (40, 0): "Association LN {e}",
    (43, 0): "Security setup {e}",
    (43, 1): "Invocation counter (security setup {e})",
    (25, 9): "Push setup {e}",
    (99, 98): "Event log {e}",
    (10, 0): "Script table {e}",
}

# Electricity quantities by C within a phase block (Blue Book 7.5.2, Table "Value group C
# codes - Electricity"): 1..16 all phases, +20 L1, +40 L2, +60 L3. "{x}" becomes
# "power" or "energy" after value group D.
_ELECTRIC_C: dict[int, str] = {
    1: "Active {x} import (+A)",
    2: "Active {x} export (-A)",
    3: "Reactive {x} import (+R)",
    4: "Reactive {x} export (-R)",
    5: "Reactive {x} QI (+Ri)",
    6: "Reactive {x} QII (+Rc)",
    7: "Reactive {x} QIII (-Ri)",
    8: "Reactive {x} QIV (-Rc)",
    9: "Apparent {x} import (+VA)",
    10: "Apparent {x} export (-VA)",
    11: "Current",
    12: "Voltage",
    13: "Power factor",
    14: "Supply frequency",
    15: "Active {x} absolute (|+A|+|-A|)",
    16: "Active {x} net (+A - -A)",
}
_PHASES = {0: "", 20: " L1", 40: " L2", 60: " L3"}
_ELECTRIC_OTHER_C: dict[int, str] = {
    0: "General purpose",
    81: "Phase angle",
    91: "Current neutral",
    92: "Voltage neutral",
    96: "Electricity service entry",
    97: "Electricity error register",
    98: "Billing list",
    99: "Electricity profile",
}

# Value group D for electricity (Blue Book 7.5.3): processing of the quantity.
_ELECTRIC_D: dict[int, str] = {
    1: "cumulative minimum 1", 2: "cumulative maximum 1", 3: "minimum 1",
    4: "current average 1", 5: "last average 1", 6: "maximum 1", 7: "",
    8: "", 9: "time integral 2", 10: "time integral 3",
    11: "cumulative minimum 2", 12: "cumulative maximum 2", 13: "minimum 2",
    14: "current average 2", 15: "last average 2", 16: "maximum 2",
    21: "cumulative minimum 3", 22: "cumulative maximum 3", 23: "minimum 3",
    24: "current average 3", 25: "last average 3", 26: "maximum 3",
    27: "current average 5", 28: "current average 6", 29: "time integral 5",
    31: "under limit threshold", 32: "under limit occurrence counter",
    33: "under limit duration", 34: "under limit magnitude",
    35: "over limit threshold", 36: "over limit occurrence counter",
    37: "over limit duration", 38: "over limit magnitude",
    39: "missing threshold", 40: "missing occurrence counter", 41: "missing duration",
    42: "missing magnitude", 55: "test average", 58: "time integral 4 (test)",
}
_ENERGY_D = frozenset({8, 9, 10, 29, 58})  # time integrals: energy registers
_TARIFF_D = _ENERGY_D | {2, 4, 5, 6, 12, 14, 15, 16, 22, 24, 25, 26}  # E = tariff here

# Value group C for abstract objects (A = 0), Blue Book 7.4.
_ABSTRACT_C: dict[int, str] = {
    1: "Clock", 2: "Modem configuration", 10: "Script table", 11: "Special days table",
    12: "Schedule", 13: "Activity calendar", 14: "Register activation",
    15: "Single action schedule", 16: "Register monitor", 17: "Limiter",
    19: "IEC local port setup", 20: "IEC optical port setup", 21: "Standard readout",
    22: "IEC HDLC setup", 23: "IEC twisted pair setup", 24: "M-Bus setup",
    25: "Communication setup", 26: "Utility tables", 27: "Auto answer",
    40: "Association", 41: "SAP assignment", 42: "Logical device name",
    43: "Security", 44: "Image transfer", 65: "Utility tables",
    94: "Country specific", 96: "Service entry", 97: "Error register",
    98: "Billing list", 99: "Profile",
}
_MEDIA = {0: "Abstract", 1: "Electricity", 4: "Heat cost allocator", 5: "Cooling",
          6: "Heat", 7: "Gas", 8: "Cold water", 9: "Hot water"}


def _electricity_name(code: Obis) -> str | None:
    c, d, e, f = code.c, code.d, code.e, code.f
    block = 0 if c <= 16 else (c - 1) // 20 * 20
    quantity = _ELECTRIC_C.get(c - block) if block in _PHASES and c - block <= 16 else None
    if quantity is None:
        other = _ELECTRIC_OTHER_C.get(c)
        return None if other is None else f"{other} {c}.{d}.{e}"
    processing = _ELECTRIC_D.get(d)
    if processing is None:
        return None
    text = quantity.format(x="energy" if d in _ENERGY_D else "power") + _PHASES[block]
    if processing:
        text += f", {processing}"
    if e:
        text += f", tariff {e}" if d in _TARIFF_D else f", E={e}"
    if f != 255:
        text += f", billing period {f}"
    return text


def name(code: Obis | str | bytes) -> str:
    """A human name for ``code``: exact table, families, value-group rules, fallback."""
    code = Obis.coerce(code)
    exact = _EXACT.get(code)
    if exact is not None:
        return exact
    if code.a == 0:
        family = _FAMILIES.get((code.c, code.d))
        if family is not None:
            return family.format(e=code.e)
    if code.a == 1:
        electric = _electricity_name(code)
        if electric is not None:
            return electric
    group = _ABSTRACT_C.get(code.c) if code.a == 0 else None
    medium = _MEDIA.get(code.a, f"Medium {code.a}")
    return f"{group or medium} {code.dotted}"


# --- Home Assistant hints (docs/mqtt-contract.md: device_class / state_class) -------------

_DEVICE_CLASS_BY_UNIT: dict[str, str] = {
    "Wh": "energy", "W": "power", "V": "voltage", "A": "current", "Hz": "frequency",
    "varh": "reactive_energy", "var": "reactive_power", "VA": "apparent_power",
}
_NET_ENERGY_C = frozenset({16, 36, 56, 76})  # +A - -A can go down


def suggest(code: Obis | str | bytes, unit: str | None) -> tuple[str | None, str | None]:
    """(device_class, state_class) in Home Assistant's names for an object and its unit
    symbol (as :func:`units.unit_symbol` gives it)."""
    code = Obis.coerce(code)
    if code.a == 0 and code.c == 1 and code.d == 0:
        return "timestamp", None
    if code.a == 1 and code.c in (13, 33, 53, 73) and unit in (None, "%"):
        return "power_factor", "measurement"
    if unit is None or unit not in _DEVICE_CLASS_BY_UNIT and unit != "VAh":
        if code.a == 0 and code.c == 96 and code.d == 7:  # power-failure counters
            return None, "total_increasing"
        return None, ("measurement" if unit is not None else None)
    device_class = _DEVICE_CLASS_BY_UNIT.get(unit)
    if unit in ("Wh", "varh", "VAh"):
        if code.f != 255:  # a billing-period snapshot does not accumulate
            return device_class, None
        return device_class, "total" if code.c in _NET_ENERGY_C else "total_increasing"
    return device_class, "measurement"
