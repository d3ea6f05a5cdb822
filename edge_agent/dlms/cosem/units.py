"""Units and scalers (Blue Book, DLMS UA 1000-1, 4.3.2 Register, scaler_unit; unit table).

A Register's value is an integer (or float) on the wire; its ``scaler_unit`` attribute
(structure {scaler: integer, unit: enum}) says what it means: physical value =
value × 10^scaler, in the unit whose enumeration code is ``unit``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from edge_agent.dlms.encoding.axdr import Enum, Float32, Integer, Structure
from edge_agent.dlms.errors import DecodeError, EncodeError


@dataclass(frozen=True, slots=True)
class Unit:
    """One row of the unit enumeration: code, symbol as printed, quantity."""

    code: int
    symbol: str | None
    quantity: str


# Codes 1..72 from the Blue Book unit table; 128..174 are the customary (imperial/US)
# units added in later editions. 253 is reserved, 254 "other", 255 "count" (no unit).
_TABLE: tuple[tuple[int, str | None, str], ...] = (
    (1, "a", "time (year)"),
    (2, "mo", "time (month)"),
    (3, "wk", "time (week)"),
    (4, "d", "time (day)"),
    (5, "h", "time (hour)"),
    (6, "min", "time (minute)"),
    (7, "s", "time (second)"),
    (8, "°", "phase angle"),
    (9, "°C", "temperature"),
    (10, "currency", "local currency"),
    (11, "m", "length"),
    (12, "m/s", "speed"),
    (13, "m³", "volume"),
    (14, "m³", "corrected volume"),
    (15, "m³/h", "volume flux"),
    (16, "m³/h", "corrected volume flux"),
    (17, "m³/d", "volume flux"),
    (18, "m³/d", "corrected volume flux"),
    (19, "l", "volume"),
    (20, "kg", "mass"),
    (21, "N", "force"),
    (22, "Nm", "energy"),
    (23, "Pa", "pressure"),
    (24, "bar", "pressure"),
    (25, "J", "energy"),
    (26, "J/h", "thermal power"),
    (27, "W", "active power"),
    (28, "VA", "apparent power"),
    (29, "var", "reactive power"),
    (30, "Wh", "active energy"),
    (31, "VAh", "apparent energy"),
    (32, "varh", "reactive energy"),
    (33, "A", "current"),
    (34, "C", "electrical charge"),
    (35, "V", "voltage"),
    (36, "V/m", "electric field strength"),
    (37, "F", "capacitance"),
    (38, "Ω", "resistance"),
    (39, "Ωm²/m", "resistivity"),
    (40, "Wb", "magnetic flux"),
    (41, "T", "magnetic flux density"),
    (42, "A/m", "magnetic field strength"),
    (43, "H", "inductance"),
    (44, "Hz", "frequency"),
    (45, "1/(Wh)", "active energy meter constant or pulse value"),
    (46, "1/(varh)", "reactive energy meter constant or pulse value"),
    (47, "1/(VAh)", "apparent energy meter constant or pulse value"),
    (48, "V²h", "volt-squared hours"),
    (49, "A²h", "ampere-squared hours"),
    (50, "kg/s", "mass flux"),
    (51, "S", "conductance"),
    (52, "K", "temperature"),
    (53, "1/(V²h)", "volt-squared hour meter constant or pulse value"),
    (54, "1/(A²h)", "ampere-squared hour meter constant or pulse value"),
    (55, "1/m³", "volume meter constant or pulse value"),
    (56, "%", "percentage"),
    (57, "Ah", "ampere-hours"),
    (60, "Wh/m³", "energy per volume"),
    (61, "J/m³", "calorific value, wobbe"),
    (62, "mol %", "molar fraction of gas composition"),
    (63, "g/m³", "mass density, quantity of material"),
    (64, "Pa s", "dynamic viscosity"),
    (65, "J/kg", "specific energy"),
    (66, "g/cm²", "pressure"),
    (67, "atm", "pressure"),
    (70, "dBm", "signal strength"),
    (71, "dBμV", "signal strength"),
    (72, "dB", "logarithmic ratio"),
    (128, "in", "length"),
    (129, "ft", "length"),
    (130, "lb", "mass"),
    (131, "°F", "temperature"),
    (132, "°R", "temperature"),
    (133, "sq in", "area"),
    (134, "sq ft", "area"),
    (135, "ac", "area"),
    (136, "cu in", "volume"),
    (137, "cu ft", "volume"),
    (138, "ac-ft", "volume"),
    (139, "gal (imp)", "volume"),
    (140, "gal (US)", "volume"),
    (141, "lbf", "force"),
    (142, "psi", "pressure"),
    (143, "lb/cu ft", "density"),
    (144, "lb/(ft s)", "dynamic viscosity"),
    (145, "sq ft/s", "kinematic viscosity"),
    (146, "Btu", "energy"),
    (147, "thm (EU)", "energy"),
    (148, "thm (US)", "energy"),
    (149, "Btu/lb", "specific energy"),
    (150, "Btu/cu ft", "calorific value"),
    (151, "cu ft", "volume (corrected)"),
    (152, "ft/s", "speed"),
    (153, "cu ft/s", "volume flux"),
    (154, "cu ft/min", "volume flux"),
    (155, "cu ft/h", "volume flux"),
    (156, "cu ft/d", "volume flux"),
    (157, "ac-ft/s", "volume flux"),
    (158, "ac-ft/min", "volume flux"),
    (159, "ac-ft/h", "volume flux"),
    (160, "ac-ft/d", "volume flux"),
    (161, "imp gal", "volume"),
    (162, "imp gal/s", "volume flux"),
    (163, "imp gal/min", "volume flux"),
    (164, "imp gal/h", "volume flux"),
    (165, "imp gal/d", "volume flux"),
    (166, "US gal", "volume"),
    (167, "US gal/s", "volume flux"),
    (168, "US gal/min", "volume flux"),
    (169, "US gal/h", "volume flux"),
    (170, "US gal/d", "volume flux"),
    (171, "Btu/s", "power"),
    (172, "Btu/min", "power"),
    (173, "Btu/h", "power"),
    (174, "Btu/d", "power"),
    (253, None, "reserved"),
    (254, None, "other unit"),
    (255, None, "count (no unit)"),
)

UNITS: dict[int, Unit] = {code: Unit(code, symbol, quantity) for code, symbol, quantity in _TABLE}

NO_UNIT = 255


def unit(code: int) -> Unit:
    """The table row for ``code``; unknown codes get a row saying so (never raises)."""
    found = UNITS.get(code)
    return found if found is not None else Unit(code, None, f"unknown unit code {code}")


def unit_symbol(code: int) -> str | None:
    """Symbol as printed (``Wh``, ``V``...), ``None`` for no unit or an unknown code."""
    found = UNITS.get(code)
    return None if found is None else found.symbol


def unit_code(symbol: str) -> int:
    """The first code whose symbol is ``symbol`` (``"Wh"`` → 30)."""
    for row in UNITS.values():
        if row.symbol == symbol:
            return row.code
    raise EncodeError(f"unknown unit symbol {symbol!r}; expected one of the Blue Book symbols "
                      "such as Wh, W, V, A, Hz, varh")


def float32_shortest(value: float) -> float:
    """The shortest decimal that is the same float32 (230.10000610351562 → 230.1).

    A float32 read from a meter printed as a double shows noise the meter never meant.
    """
    packed = struct.pack(">f", value)
    for digits in range(6, 10):
        candidate = float(f"{value:.{digits}g}")
        if struct.pack(">f", candidate) == packed:
            return candidate
    return value


def apply_scaler(raw: Any, scaler: int) -> int | float:
    """``raw`` × 10^scaler as exactly as a float allows.

    Integers with a non-negative scaler stay integers. With a negative scaler the
    integer is divided by a power of ten: Python's int/int division is correctly rounded,
    so 3 with scaler -1 gives 0.3, not 0.30000000000000004 as 3 * 0.1 would.
    """
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise DecodeError(f"a scaler applies to numbers; got {type(raw).__name__} {raw!r}")
    if isinstance(raw, int):
        power: int = 10 ** abs(scaler)  # int ** int is typed Any: the sign decides int or float
        return int(raw) * power if scaler >= 0 else int(raw) / power
    value = float32_shortest(raw) if isinstance(raw, Float32) else float(raw)
    if scaler == 0:
        return value
    scaled = value * 10**scaler if scaler > 0 else value / 10**-scaler
    # Remove the binary noise the multiplication adds, keeping 15 significant digits.
    return float(f"{scaled:.15g}")


@dataclass(frozen=True, slots=True)
class ScalerUnit:
    """Register/Extended register/Demand register ``scaler_unit`` (4.3.2)."""

    scaler: int
    unit: int

    def __post_init__(self) -> None:
        if not -128 <= self.scaler <= 127 or not 0 <= self.unit <= 255:
            raise EncodeError(f"scaler_unit needs scaler -128..127 and unit 0..255, got "
                              f"{self.scaler}, {self.unit}")

    @classmethod
    def from_axdr(cls, value: Any) -> ScalerUnit:
        """From the decoded structure {integer scaler, enum unit}."""
        if (not isinstance(value, tuple) or len(value) != 2
                or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)):
            raise DecodeError(
                f"scaler_unit must be a structure of 2 integers {{scaler, unit}}, got {value!r}")
        try:
            return cls(int(value[0]), int(value[1]))
        except EncodeError as exc:
            raise DecodeError(str(exc)) from None

    def to_axdr(self) -> Structure:
        return Structure((Integer(self.scaler), Enum(self.unit)))

    @property
    def symbol(self) -> str | None:
        return unit_symbol(self.unit)

    def apply(self, raw: Any) -> int | float:
        return apply_scaler(raw, self.scaler)

    def __str__(self) -> str:
        return f"10^{self.scaler} {self.symbol or unit(self.unit).quantity}"
