"""COSEM interface classes as tables, and parsers for the attributes clients read
(Blue Book, DLMS UA 1000-1, clause 4: interface classes).

Every class is data: id, version, attributes (index → name, static or dynamic) and
methods (index → name). Classes not in the table are still addressable as "attribute n"
(:func:`interface_class` never fails). The parsers turn decoded A-XDR values
(:mod:`.axdr`) into frozen records and raise :class:`~.errors.DecodeError` naming the
element that does not fit.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from edge_agent.dlms.apdu.base import SelectiveAccess
from edge_agent.dlms.cosem.obis import Obis
from edge_agent.dlms.encoding.axdr import (
    CompactArray,
    DoubleLongUnsigned,
    Integer,
    LongUnsigned,
    OctetString,
    Structure,
)
from edge_agent.dlms.encoding.date_time import CosemDateTime, date_time_from_octets
from edge_agent.dlms.errors import DecodeError

# --- interface classes ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Attribute:
    index: int
    name: str
    static: bool  # static: configuration, changes rarely; dynamic: changes by itself


@dataclass(frozen=True, slots=True)
class Method:
    index: int
    name: str


@dataclass(frozen=True, slots=True)
class InterfaceClass:
    class_id: int
    name: str
    version: int
    attributes: tuple[Attribute, ...]
    methods: tuple[Method, ...] = ()

    def attribute(self, index: int) -> Attribute:
        """The attribute at ``index``; unknown indexes are "attribute n" (dynamic)."""
        for attribute in self.attributes:
            if attribute.index == index:
                return attribute
        return Attribute(index, f"attribute {index}", False)

    def attribute_index(self, name: str) -> int:
        for attribute in self.attributes:
            if attribute.name == name:
                return attribute.index
        raise DecodeError(f"{self.name} (class {self.class_id}) has no attribute {name!r}; "
                          f"it has {', '.join(a.name for a in self.attributes)}")

    def method(self, index: int) -> Method:
        for method in self.methods:
            if method.index == index:
                return method
        return Method(index, f"method {index}")


S, D = True, False  # static / dynamic, to keep the tables on one line each


def _cls(class_id: int, name: str, version: int, attributes: Sequence[tuple[str, bool]],
         methods: Sequence[str] = ()) -> InterfaceClass:
    """Attribute 1 is always logical_name (static); the rest are numbered from 2."""
    attrs = (Attribute(1, "logical_name", S),) + tuple(
        Attribute(i, n, s) for i, (n, s) in enumerate(attributes, start=2))
    return InterfaceClass(class_id, name, version, attrs,
                          tuple(Method(i, n) for i, n in enumerate(methods, start=1)))


# Versions are the ones the Blue Book lists as current for metering; an object's own
# version comes with the object_list and wins.
INTERFACE_CLASSES: dict[int, InterfaceClass] = {c.class_id: c for c in (
    _cls(1, "Data", 0, [("value", D)]),
    _cls(3, "Register", 0, [("value", D), ("scaler_unit", S)], ["reset"]),
    _cls(4, "Extended register", 0,
         [("value", D), ("scaler_unit", S), ("status", D), ("capture_time", D)], ["reset"]),
    _cls(5, "Demand register", 0,
         [("current_average_value", D), ("last_average_value", D), ("scaler_unit", S),
          ("status", D), ("capture_time", D), ("start_time_current", D), ("period", S),
          ("number_of_periods", S)], ["reset", "next_period"]),
    _cls(7, "Profile generic", 1,
         [("buffer", D), ("capture_objects", S), ("capture_period", S), ("sort_method", S),
          ("sort_object", S), ("entries_in_use", D), ("profile_entries", S)],
         ["reset", "capture"]),
    _cls(8, "Clock", 0,
         [("time", D), ("time_zone", S), ("status", D), ("daylight_savings_begin", S),
          ("daylight_savings_end", S), ("daylight_savings_deviation", S),
          ("daylight_savings_enabled", S), ("clock_base", S)],
         ["adjust_to_quarter", "adjust_to_measuring_period", "adjust_to_minute",
          "adjust_to_preset_time", "preset_adjusting_time", "shift_time"]),
    _cls(9, "Script table", 0, [("scripts", S)], ["execute"]),
    _cls(15, "Association LN", 2,
         [("object_list", S), ("associated_partners_id", S), ("application_context_name", S),
          ("xDLMS_context_info", S), ("authentication_mechanism_name", S), ("secret", S),
          ("association_status", D), ("security_setup_reference", S), ("user_list", S),
          ("current_user", D)],
         ["reply_to_HLS_authentication", "change_HLS_secret", "add_object", "remove_object",
          "add_user", "remove_user"]),
    _cls(18, "Image transfer", 0,
         [("image_block_size", S), ("image_transferred_blocks_status", D),
          ("image_first_not_transferred_block_number", D), ("image_transfer_enabled", S),
          ("image_transfer_status", D), ("image_to_activate_info", D)],
         ["image_transfer_initiate", "image_block_transfer", "image_verify",
          "image_activate"]),
    _cls(20, "Activity calendar", 0,
         [("calendar_name_active", S), ("season_profile_active", S),
          ("week_profile_table_active", S), ("day_profile_table_active", S),
          ("calendar_name_passive", S), ("season_profile_passive", S),
          ("week_profile_table_passive", S), ("day_profile_table_passive", S),
          ("activate_passive_calendar_time", S)], ["activate_passive_calendar"]),
    _cls(22, "Single action schedule", 0,
         [("executed_script", S), ("type", S), ("execution_time", S)]),
    _cls(23, "IEC HDLC setup", 1,
         [("comm_speed", S), ("window_size_transmit", S), ("window_size_receive", S),
          ("max_info_field_length_transmit", S), ("max_info_field_length_receive", S),
          ("inter_octet_time_out", S), ("inactivity_time_out", S), ("device_address", S)]),
    _cls(40, "Push setup", 0,
         [("push_object_list", S), ("send_destination_and_method", S),
          ("communication_window", S), ("randomisation_start_interval", S),
          ("number_of_retries", S), ("repetition_delay", S)], ["push"]),
    _cls(41, "TCP-UDP setup", 0,
         [("TCP-UDP_port", S), ("IP_reference", S), ("MSS", S), ("nb_of_sim_conn", S),
          ("inactivity_time_out", S)]),
    _cls(64, "Security setup", 1,
         [("security_policy", S), ("security_suite", S), ("client_system_title", S),
          ("server_system_title", S), ("certificates", S)],
         ["security_activate", "key_transfer", "key_agreement", "generate_key_pair",
          "generate_certificate_request", "import_certificate", "export_certificate",
          "remove_certificate"]),
    _cls(70, "Disconnect control", 0,
         [("output_state", D), ("control_state", D), ("control_mode", S)],
         ["remote_disconnect", "remote_reconnect"]),
)}


def interface_class(class_id: int) -> InterfaceClass:
    """The table entry, or a generic class whose attributes are "attribute n"."""
    found = INTERFACE_CLASSES.get(class_id)
    if found is not None:
        return found
    return InterfaceClass(class_id, f"class {class_id}", 0,
                          (Attribute(1, "logical_name", S),))


# --- value checks shared by the parsers -----------------------------------------------------


def _structure(value: Any, size: int, what: str) -> tuple[Any, ...]:
    if not isinstance(value, tuple) or len(value) != size:
        raise DecodeError(f"{what} must be a structure of {size} elements, got {value!r}")
    return value


def _sequence(value: Any, what: str) -> Sequence[Any]:
    if isinstance(value, CompactArray):
        return value.values
    if not isinstance(value, list | tuple):
        raise DecodeError(f"{what} must be an array, got {value!r}")
    return value


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise DecodeError(f"{what} must be an integer, got {value!r}")
    return int(value)


def _obis(value: Any, what: str) -> Obis:
    if not isinstance(value, bytes) or len(value) != 6:
        raise DecodeError(f"{what} must be an octet-string of 6 octets (OBIS), got {value!r}")
    return Obis.from_bytes(value)


# --- Association LN object_list (class 15, attribute 2) -------------------------------------


@dataclass(frozen=True, slots=True)
class AttributeAccess:
    """attribute_access_item: access_mode 0 no access, 1 read, 2 write, 3 read+write,
    4..6 the same with authentication (4.4.3, Association LN attribute 2)."""

    attribute_id: int
    access_mode: int
    access_selectors: tuple[int, ...] = ()

    @property
    def readable(self) -> bool:
        return self.access_mode in (1, 3, 4, 6)

    @property
    def writable(self) -> bool:
        return self.access_mode in (2, 3, 5, 6)


@dataclass(frozen=True, slots=True)
class MethodAccess:
    """method_access_item: access_mode 0 no access, 1 access, 2 authenticated access
    (a boolean in version 0 of the class)."""

    method_id: int
    access_mode: int


@dataclass(frozen=True, slots=True)
class ObjectListEntry:
    class_id: int
    version: int
    logical_name: Obis
    attribute_access: tuple[AttributeAccess, ...] = ()
    method_access: tuple[MethodAccess, ...] = ()

    @property
    def interface(self) -> InterfaceClass:
        return interface_class(self.class_id)

    def attribute_readable(self, attribute_id: int) -> bool:
        return any(a.attribute_id == attribute_id and a.readable for a in self.attribute_access)


def _attribute_access(value: Any, where: str) -> AttributeAccess:
    attribute_id, mode, selectors = _structure(value, 3, f"{where} attribute_access_item")
    chosen = () if selectors is None else tuple(
        _int(s, f"{where} access_selector") for s in _sequence(selectors, where))
    return AttributeAccess(_int(attribute_id, f"{where} attribute_id"),
                           _int(mode, f"{where} access_mode"), chosen)


def _method_access(value: Any, where: str) -> MethodAccess:
    method_id, mode = _structure(value, 2, f"{where} method_access_item")
    if isinstance(mode, bool):  # version 0: boolean access
        mode = int(mode)
    return MethodAccess(_int(method_id, f"{where} method_id"), _int(mode, f"{where} mode"))


def parse_object_list(value: Any) -> list[ObjectListEntry]:
    """Association LN attribute 2: array of {class_id, version, logical_name,
    access_rights {attribute_access[], method_access[]}}."""
    entries = []
    for position, item in enumerate(_sequence(value, "object_list")):
        where = f"object_list[{position}]"
        class_id, version, logical_name, rights = _structure(item, 4, where)
        attributes: tuple[AttributeAccess, ...] = ()
        methods: tuple[MethodAccess, ...] = ()
        if rights is not None:
            attribute_items, method_items = _structure(rights, 2, f"{where} access_rights")
            attributes = tuple(_attribute_access(a, where)
                               for a in _sequence(attribute_items, where))
            methods = tuple(_method_access(m, where)
                            for m in (() if method_items is None
                                      else _sequence(method_items, where)))
        entries.append(ObjectListEntry(
            _int(class_id, f"{where} class_id"), _int(version, f"{where} version"),
            _obis(logical_name, f"{where} logical_name"), attributes, methods))
    return entries


# --- Profile generic (class 7) -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CaptureObject:
    """capture_object_definition: which attribute (and element, data_index > 0) of which
    object fills one column of the buffer (4.3.6, attribute 3)."""

    class_id: int
    logical_name: Obis
    attribute_index: int
    data_index: int = 0

    @classmethod
    def from_axdr(cls, value: Any, where: str = "capture object") -> CaptureObject:
        class_id, logical_name, attribute_index, data_index = _structure(value, 4, where)
        return cls(_int(class_id, f"{where} class_id"), _obis(logical_name, f"{where} name"),
                   _int(attribute_index, f"{where} attribute_index"),
                   _int(data_index, f"{where} data_index"))

    def to_axdr(self) -> Structure:
        return Structure((LongUnsigned(self.class_id), OctetString(bytes(self.logical_name)),
                          Integer(self.attribute_index), LongUnsigned(self.data_index)))

    @property
    def is_clock(self) -> bool:
        return self.class_id == 8 and self.attribute_index == 2


#: The usual restricting object of a range_descriptor: the clock's time attribute.
CLOCK_TIME = CaptureObject(8, Obis(0, 0, 1, 0, 0, 255), 2, 0)


def parse_capture_objects(value: Any) -> list[CaptureObject]:
    """Profile generic attribute 3: array of capture_object_definition."""
    return [CaptureObject.from_axdr(item, f"capture_objects[{position}]")
            for position, item in enumerate(_sequence(value, "capture_objects"))]


def parse_buffer(value: Any, capture_objects: Sequence[CaptureObject]
                 ) -> list[dict[CaptureObject, Any]]:
    """Profile generic attribute 2: rows as {capture object: value}.

    Clock columns sent as octet-string(12) become :class:`CosemDateTime`. A null-data
    cell stays ``None``: the meter left it out (4.3.6 allows omitting values that follow
    from the previous row, e.g. the time stamp at a regular capture period).
    """
    rows = []
    width = len(capture_objects)
    clock_columns = [i for i, c in enumerate(capture_objects) if c.is_clock]
    for position, row in enumerate(_sequence(value, "buffer")):
        if not isinstance(row, tuple | list) or len(row) != width:
            raise DecodeError(
                f"buffer row {position} must be a structure of {width} values (one per "
                f"capture object), got {row!r}; were the capture objects read from the same "
                "profile?")
        cells = list(row)
        for i in clock_columns:
            if isinstance(cells[i], bytes) and len(cells[i]) == CosemDateTime.SIZE:
                cells[i] = date_time_from_octets(cells[i])
        rows.append(dict(zip(capture_objects, cells)))
    return rows


# --- selective access to Profile generic buffers (4.3.6, access selectors 1 and 2) --------


def _date_time_value(value: CosemDateTime | Any) -> Any:
    # The clock's time attribute is octet-string(12) in most meters' capture objects, so
    # range bounds travel as octet-strings (4.1.6.1); other restricting objects take their
    # own type unchanged.
    if isinstance(value, CosemDateTime):
        return OctetString(value.encode())
    return value


def range_descriptor(from_value: CosemDateTime | Any, to_value: CosemDateTime | Any,
                     restricting_object: CaptureObject = CLOCK_TIME,
                     selected_values: Iterable[CaptureObject] = ()) -> SelectiveAccess:
    """Selector 1: rows whose ``restricting_object`` lies in [from_value, to_value];
    ``selected_values`` empty means all columns."""
    return SelectiveAccess(1, Structure((
        restricting_object.to_axdr(), _date_time_value(from_value), _date_time_value(to_value),
        [c.to_axdr() for c in selected_values])))


def entry_descriptor(from_entry: int = 1, to_entry: int = 0, from_selected_value: int = 1,
                     to_selected_value: int = 0) -> SelectiveAccess:
    """Selector 2: rows from_entry..to_entry (1-based, 0 = to the last) and columns
    from_selected_value..to_selected_value (0 = to the last)."""
    return SelectiveAccess(2, Structure((
        DoubleLongUnsigned(from_entry), DoubleLongUnsigned(to_entry),
        LongUnsigned(from_selected_value), LongUnsigned(to_selected_value))))
