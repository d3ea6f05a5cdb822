"""What a pushed notification body says: OBIS codes, values, scalers and units.

Meters fill the notification-body of a DataNotification (Green Book 9.5) in one of three
ways, and :func:`decode_body` reads them all:

* **OBIS triples** (Austrian customer interface, "Kundenschnittstelle", of the Sagemcom
  T-210D and its peers): one structure holding the date-time, then for every value its
  logical name (octet-string of 6), the value and the register's scaler_unit structure,
  and the meter number as a printable string. The meter names every value itself.
* **push object list** (IDIS and any Push setup object, Blue Book 4.4.8 class 40): one
  structure with the values of ``push_object_list`` (attribute 2 of the push setup) in
  order, nothing else. The first is by convention the push setup's own logical name.
  Only the object list says what the values are, so it must be given (from the
  configuration, or read once from the meter).
* **push object list sent along** (Landis+Gyr E450/E570, Iskraemeco AM550 on the Swiss and
  Austrian customer interfaces): the same, but the list's first entry is the push setup's
  own attribute 2, so the first value is the object list itself and the body describes
  itself. The values come bare: no scaler_unit travels with them.

Both give :class:`PushContent`: a tuple of :class:`PushItem` plus the time stamp and
meter number the body carried.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from edge_agent.dlms.cosem.obis import Obis
from edge_agent.dlms.cosem.units import ScalerUnit, unit_code, unit_symbol
from edge_agent.dlms.encoding.axdr import Array, CosemDateTime, Structure
from edge_agent.dlms.encoding.date_time import looks_like_date_time
from edge_agent.dlms.errors import DecodeError

__all__ = [
    "LAYOUT_OBIS_TRIPLES",
    "LAYOUT_PUSH_OBJECT_LIST",
    "PushContent",
    "PushItem",
    "PushObject",
    "decode_body",
    "parse_object_list",
]

LAYOUT_OBIS_TRIPLES: Final = "obis-triples"
LAYOUT_PUSH_OBJECT_LIST: Final = "push-object-list"

# Blue Book 4.3: class -> (value attribute, scaler_unit attribute) of the scaled classes:
# Register 3 and Extended register 4 keep it in 3, Demand register 5 in 4.
_SCALED: Final = {3: (2, 3), 4: (2, 3), 5: (3, 4)}
_CLOCK_CLASS: Final = 8
_PUSH_SETUP_CLASS: Final = 40
# Push setup logical names are 0-x:25.9.0.y (Blue Book 7.5, table "push setup objects").
_PUSH_SETUP_CD: Final = (25, 9)
# Data objects holding a meter/device number (Blue Book 7.5: 0-0:96.1.0..9, 0-0:42.0.0).
_METER_NUMBER_CD: Final = frozenset({(96, 1), (42, 0)})
_OBIS_LENGTH: Final = 6


@dataclass(frozen=True, slots=True)
class PushItem:
    """One pushed value. ``value`` is physical (scaled) when a scaler was known.

    ``raw`` is the value as sent (A-XDR typed value, or the text of a P1 line);
    ``unit`` the unit symbol (Blue Book table, or the P1 telegram's own unit text).
    """

    obis: Obis
    value: Any
    unit: str | None = None
    raw: Any = None
    scaler: int | None = None
    class_id: int | None = None

    @classmethod
    def of(cls, obis: Obis, raw: Any, scaler_unit: ScalerUnit | None,
           class_id: int | None = None) -> PushItem:
        """Apply ``scaler_unit`` to numbers; anything else passes unchanged."""
        if scaler_unit is not None and _is_number(raw):
            return cls(obis, scaler_unit.apply(raw), unit_symbol(scaler_unit.unit), raw,
                       scaler_unit.scaler, class_id)
        return cls(obis, raw, None, raw, None, class_id)


@dataclass(frozen=True, slots=True)
class PushObject:
    """One entry of a push object list: which attribute of which object is pushed.

    ``scaler_unit`` is the register's attribute 3 when known (config or an earlier read):
    IDIS pushes carry bare numbers.
    """

    class_id: int
    obis: Obis
    attribute: int = 2
    scaler_unit: ScalerUnit | None = None


@dataclass(frozen=True, slots=True)
class PushContent:
    items: tuple[PushItem, ...]
    timestamp: datetime | None
    meter_number: str | None
    layout: str


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _printable(value: Any) -> str | None:
    """The text of an octet/visible string of printable ASCII (a meter number), else None."""
    if isinstance(value, str):
        raw = value.encode("latin-1", "replace")
    elif isinstance(value, bytes):
        raw = bytes(value)
    else:
        return None
    if len(raw) >= 2 and raw.isascii() and all(0x20 <= b < 0x7F for b in raw):
        return raw.decode("ascii")
    return None


def _as_obis(value: Any) -> Obis | None:
    """A logical name: an octet-string of 6 that is not printable text (a short number)."""
    if isinstance(value, bytes) and len(value) == _OBIS_LENGTH and _printable(value) is None:
        return Obis.from_bytes(value)
    return None


def _scaler_unit(value: Any) -> ScalerUnit | None:
    if isinstance(value, Structure) and len(value) == 2 and all(_is_number(v) for v in value):
        try:
            return ScalerUnit.from_axdr(value)
        except DecodeError:
            return None
    return None


def _date_time(value: Any) -> datetime | None:
    """A point in time from a date-time value (octet-string of 12 or tag 25), else None."""
    if isinstance(value, bytes) and looks_like_date_time(value):
        value = CosemDateTime.decode(value)
    if isinstance(value, CosemDateTime):
        try:
            return value.to_datetime()
        except DecodeError:  # a pattern (unspecified fields): no point in time
            return None
    return None


def _is_push_setup(code: Obis) -> bool:
    return (code.c, code.d) == _PUSH_SETUP_CD


# --- layout (a): OBIS, value, scaler_unit ----------------------------------------------------


def _triples(elements: tuple[Any, ...] | list[Any], depth: int = 0) -> PushContent:
    items: list[PushItem] = []
    timestamp: datetime | None = None
    meter_number: str | None = None
    index, count = 0, len(elements)
    while index < count:
        element = elements[index]
        code = _as_obis(element)
        if code is not None and index + 1 < count:
            scaler_unit = _scaler_unit(elements[index + 2]) if index + 2 < count else None
            if not _is_push_setup(code):
                items.append(PushItem.of(code, elements[index + 1], scaler_unit))
            index += 3 if scaler_unit is not None else 2
            continue
        if isinstance(element, Structure | Array) and depth == 0:
            # Some firmware nests each entry: structure {OBIS, value, scaler_unit}.
            inner = _triples(element, depth + 1)
            items += inner.items
            timestamp = timestamp or inner.timestamp
            meter_number = meter_number or inner.meter_number
        elif (text := _printable(element)) is not None:
            meter_number = meter_number or text
        elif timestamp is None:
            timestamp = _date_time(element)
        index += 1
    return PushContent(tuple(items), timestamp, meter_number, LAYOUT_OBIS_TRIPLES)


# --- layout (b): values in the order of the push object list ----------------------------------


def _by_object_list(elements: tuple[Any, ...] | list[Any],
                    objects: tuple[PushObject, ...]) -> PushContent:
    if len(elements) != len(objects):
        raise DecodeError(
            f"push carries {len(elements)} values but the configured push object list has "
            f"{len(objects)} entries: read attribute 2 of the meter's push setup "
            "(0-0:25.9.0.255) and configure exactly that list")
    scalers = {o.obis: o.scaler_unit for o in objects if o.scaler_unit is not None}
    # A list may push a register's scaler_unit itself (attribute 3): it wins.
    for obj, value in zip(objects, elements):
        scaled = _SCALED.get(obj.class_id)
        if scaled is not None and obj.attribute == scaled[1] and (su := _scaler_unit(value)):
            scalers[obj.obis] = su
    items: list[PushItem] = []
    timestamp: datetime | None = None
    meter_number: str | None = None
    for obj, value in zip(objects, elements):
        scaled = _SCALED.get(obj.class_id)
        if obj.class_id == _PUSH_SETUP_CLASS and obj.attribute in (1, 2):
            continue  # the push's identifier or its object list, not a measurement
        if scaled is not None and obj.attribute == scaled[1]:
            continue  # consumed as a scaler above
        if obj.class_id == _CLOCK_CLASS and obj.attribute == 2 and timestamp is None:
            timestamp = _date_time(value)
        if (obj.obis.c, obj.obis.d) in _METER_NUMBER_CD and meter_number is None:
            meter_number = _printable(value)
        scaler_unit = scalers.get(obj.obis) if scaled and obj.attribute == scaled[0] else None
        items.append(PushItem.of(obj.obis, value, scaler_unit, obj.class_id))
    return PushContent(tuple(items), timestamp, meter_number, LAYOUT_PUSH_OBJECT_LIST)


# --- layout (c): the push object list sent along, as its first value -------------------------


def _capture_object(value: Any) -> PushObject | None:
    """One capture_object_definition (Blue Book 4.4.8 class 40 attribute 2): structure
    {class_id, logical_name, attribute_index, data_index}."""
    if not (isinstance(value, Structure) and len(value) == 4):
        return None
    class_id, name, attribute, _data_index = value
    if not (_is_number(class_id) and _is_number(attribute) and isinstance(name, bytes)
            and len(name) == _OBIS_LENGTH):
        return None
    return PushObject(int(class_id), Obis.from_bytes(name), int(attribute))


def _object_list_sent_along(elements: tuple[Any, ...]) -> tuple[PushObject, ...] | None:
    """The push object list when the body's first value is that list itself.

    A push setup whose list starts with its own attribute 2 (push_object_list) sends the
    list with every push: Landis+Gyr E450/E570 and Iskraemeco AM550 on the Swiss and
    Austrian customer interfaces do. The body is then self-describing.
    """
    if not elements or not isinstance(elements[0], Array) or len(elements[0]) != len(elements):
        return None
    objects = tuple(_capture_object(value) for value in elements[0])
    if not objects or any(o is None for o in objects):
        return None
    first = objects[0]
    assert first is not None
    if first.class_id != _PUSH_SETUP_CLASS or first.attribute != 2:
        return None
    return tuple(o for o in objects if o is not None)


def decode_body(body: Any, objects: tuple[PushObject, ...] | None = None) -> PushContent:
    """Items of a notification body; ``objects`` is the push object list when known.

    A body that names its values (OBIS triples) is read as such even when an object list
    is configured, so one configuration serves both firmware variants. Raises DecodeError when the body names no value and no object list was given.
    """
    elements = tuple(body) if isinstance(body, Structure | Array) else (body,)
    described = _object_list_sent_along(elements)
    if described is not None:
        return _by_object_list(elements, described)
    content = _triples(elements)  # a body that names its values is read as it says
    if content.items:
        return content
    if objects:
        return _by_object_list(elements, objects)
    raise DecodeError(
        f"notification body of {len(elements)} values names no OBIS code: the meter pushes "
        "the values of its push object list (IDIS style); configure that list "
        "(push objects, or --objects on the command line)")


# --- object lists as the configuration and the CLI write them --------------------------------


def _scaler_text(text: str, where: str) -> ScalerUnit:
    scaler, _, symbol = text.partition(",")
    try:
        return ScalerUnit(int(scaler), unit_code(symbol) if symbol else 255)
    except (ValueError, DecodeError) as exc:
        raise DecodeError(f"{where}: scaler {text!r}: expected SCALER or SCALER,UNIT "
                          f"such as -1,V ({exc})") from None


def parse_object_list(entries: list[str] | tuple[str, ...]) -> tuple[PushObject, ...]:
    """Object list entries ``[CLASS/]OBIS[:ATTRIBUTE][@SCALER[,UNIT]]``.

    ``3/1.0.32.7.0.255@-1,V`` is register 1-0:32.7.0 scaled 10^-1 in volts; without a
    class, OBIS codes 0-x:25.9.0 are push setups (40, attribute 1), 0-0:1.0.0 the clock (8)
    and electricity quantities registers (3). Raises DecodeError naming the entry.
    """
    objects = []
    for number, entry in enumerate(entries, 1):
        where = f"object list entry {number} ({entry!r})"
        text, _, scaler = entry.strip().partition("@")
        class_text, _, text = text.rpartition("/")
        head, _, attribute_text = text.rpartition(":")
        if attribute_text.isdigit() and head:  # "1-0:1.8.0" keeps its colon: not a digit run
            text = head
        else:
            attribute_text = ""
        try:
            code = Obis.parse(text)
            class_id = int(class_text) if class_text else _usual_class(code)
            attribute = int(attribute_text) if attribute_text else (
                1 if class_id == _PUSH_SETUP_CLASS else _SCALED.get(class_id, (2, 3))[0])
        except (ValueError, DecodeError) as exc:
            raise DecodeError(f"{where}: {exc}; expected [CLASS/]OBIS[:ATTRIBUTE]"
                              "[@SCALER[,UNIT]]") from None
        objects.append(PushObject(class_id, code, attribute,
                                  _scaler_text(scaler, where) if scaler else None))
    return tuple(objects)


def _usual_class(code: Obis) -> int:
    if _is_push_setup(code):
        return _PUSH_SETUP_CLASS
    if (code.a, code.c, code.d) == (0, 1, 0):
        return _CLOCK_CLASS
    return 3 if code.a == 1 and 1 <= code.c <= 89 else 1
