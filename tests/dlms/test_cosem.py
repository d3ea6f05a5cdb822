"""Interface-class tables and attribute parsers."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.dlms.apdu.base import SelectiveAccess
from edge_agent.dlms.cosem.interface_classes import (
    CLOCK_TIME,
    INTERFACE_CLASSES,
    CaptureObject,
    ObjectListEntry,
    entry_descriptor,
    interface_class,
    parse_buffer,
    parse_capture_objects,
    parse_object_list,
    range_descriptor,
)
from edge_agent.dlms.cosem.obis import Obis
from edge_agent.dlms.cosem.units import ScalerUnit
from edge_agent.dlms.encoding.axdr import (
    Array,
    CompactArray,
    DoubleLongUnsigned,
    Enum,
    Integer,
    LongUnsigned,
    OctetString,
    Structure,
    Unsigned,
    decode_all,
    encode,
)
from edge_agent.dlms.encoding.date_time import CosemDateTime
from edge_agent.dlms.errors import DecodeError, DlmsError


@pytest.mark.parametrize(("class_id", "index", "name"), [
    (1, 2, "value"), (3, 2, "value"), (3, 3, "scaler_unit"), (4, 5, "capture_time"),
    (5, 4, "scaler_unit"), (5, 9, "number_of_periods"), (7, 2, "buffer"),
    (7, 3, "capture_objects"), (7, 8, "profile_entries"), (8, 2, "time"),
    (8, 9, "clock_base"), (15, 2, "object_list"), (15, 11, "current_user"),
    (40, 2, "push_object_list"), (64, 4, "client_system_title"), (70, 2, "output_state"),
    (70, 4, "control_mode"), (23, 9, "device_address"), (18, 7, "image_to_activate_info"),
])
def test_attribute_tables(class_id: int, index: int, name: str) -> None:
    cls = interface_class(class_id)
    assert cls.attribute(index).name == name
    assert cls.attribute_index(name) == index
    assert cls.attribute(1).name == "logical_name"


@pytest.mark.parametrize(("class_id", "index", "name"), [
    (3, 1, "reset"), (5, 2, "next_period"), (7, 2, "capture"), (8, 6, "shift_time"),
    (15, 1, "reply_to_HLS_authentication"), (40, 1, "push"), (64, 2, "key_transfer"),
    (64, 6, "import_certificate"), (70, 1, "remote_disconnect"),
    (70, 2, "remote_reconnect"), (18, 4, "image_activate"),
])
def test_method_tables(class_id: int, index: int, name: str) -> None:
    cls = interface_class(class_id)
    assert cls.method(index).name == name


def test_static_and_dynamic() -> None:
    register = interface_class(3)
    assert not register.attribute(2).static and register.attribute(3).static
    assert not interface_class(7).attribute(2).static


def test_required_classes_present_and_consistent() -> None:
    assert {1, 3, 4, 5, 7, 8, 15, 40, 64, 70} <= set(INTERFACE_CLASSES)
    for class_id, cls in INTERFACE_CLASSES.items():
        assert cls.class_id == class_id
        indexes = [a.index for a in cls.attributes]
        assert indexes == list(range(1, len(indexes) + 1))


def test_generic_access_to_any_class() -> None:
    cls = interface_class(9999)
    assert cls.name == "class 9999"
    assert cls.attribute(1).name == "logical_name"
    assert cls.attribute(7).name == "attribute 7"
    assert cls.method(3).name == "method 3"
    assert interface_class(3).attribute(42).name == "attribute 42"
    with pytest.raises(DecodeError, match="has no attribute 'nope'"):
        interface_class(3).attribute_index("nope")


# --- object list ----------------------------------------------------------------------------

def _entry(class_id: int, version: int, obis: str, attrs: list, methods: list | None) -> tuple:
    return Structure((
        LongUnsigned(class_id), Unsigned(version), OctetString(bytes(Obis.parse(obis))),
        Structure((
            Array([Structure((Integer(i), Enum(mode), sel)) for i, mode, sel in attrs]),
            None if methods is None else Array(
                [Structure((Integer(i), mode)) for i, mode in methods]),
        )),
    ))


OBJECT_LIST = Array([
    _entry(3, 0, "1.0.1.8.0.255", [(1, 1, None), (2, 1, None), (3, 1, None)], [(1, Enum(0))]),
    _entry(8, 0, "0.0.1.0.0.255", [(1, 1, None), (2, 3, None)], [(6, True)]),
    _entry(7, 1, "1.0.99.1.0.255", [(1, 1, None), (2, 1, Array([Integer(1), Integer(2)]))],
           None),
])


def test_object_list_parse() -> None:
    entries = parse_object_list(decode_all(encode(OBJECT_LIST)))
    assert [e.logical_name.dotted for e in entries] == [
        "1.0.1.8.0.255", "0.0.1.0.0.255", "1.0.99.1.0.255"]
    energy, clock, profile = entries
    assert (energy.class_id, energy.version) == (3, 0)
    assert energy.interface.name == "Register"
    assert energy.attribute_readable(3) and not energy.attribute_readable(4)
    assert clock.attribute_access[1].writable
    assert clock.method_access[0].access_mode == 1  # boolean true in version 0
    assert profile.attribute_access[1].access_selectors == (1, 2)
    assert profile.method_access == ()
    assert isinstance(energy, ObjectListEntry)


@pytest.mark.parametrize("value", [
    "nope",
    Array([Structure((LongUnsigned(3), Unsigned(0)))]),
    Array([Structure((LongUnsigned(3), Unsigned(0), OctetString(b"\x01\x00"), None))]),
    Array([Structure((b"x", Unsigned(0), OctetString(bytes(6)), None))]),
    Array([Structure((LongUnsigned(3), Unsigned(0), OctetString(bytes(6)),
                      Structure((Array([Structure((Integer(1),))]), None))))]),
])
def test_object_list_malformed(value: object) -> None:
    with pytest.raises(DecodeError, match="object_list|must be"):
        parse_object_list(value)


# --- profile generic --------------------------------------------------------------------------

CAPTURE_OBJECTS = Array([
    CLOCK_TIME.to_axdr(),
    CaptureObject(3, Obis.parse("1.0.1.8.0.255"), 2).to_axdr(),
    CaptureObject(3, Obis.parse("1.0.2.8.0.255"), 2).to_axdr(),
])
T0 = CosemDateTime(2024, 5, 1, 3, 0, 15, 0, 0, -120, 0x80)


def test_capture_objects_and_buffer() -> None:
    captured = parse_capture_objects(decode_all(encode(CAPTURE_OBJECTS)))
    assert captured[0] == CLOCK_TIME and captured[0].is_clock
    assert captured[1] == CaptureObject(3, Obis(1, 0, 1, 8, 0, 255), 2, 0)
    buffer = Array([
        Structure((OctetString(T0.encode()), DoubleLongUnsigned(1000), DoubleLongUnsigned(5))),
        Structure((None, DoubleLongUnsigned(1010), DoubleLongUnsigned(5))),
    ])
    rows = parse_buffer(decode_all(encode(buffer)), captured)
    assert rows[0][CLOCK_TIME] == T0
    assert rows[0][captured[1]] == 1000
    assert rows[1][CLOCK_TIME] is None
    assert list(rows[1].values())[1:] == [1010, 5]


def test_buffer_as_compact_array() -> None:
    captured = parse_capture_objects(CAPTURE_OBJECTS)
    rows = [Structure((OctetString(T0.encode()), DoubleLongUnsigned(v), DoubleLongUnsigned(0)))
            for v in (1, 2)]
    compact = decode_all(encode(CompactArray.from_values(rows)))
    parsed = parse_buffer(compact, captured)
    assert [r[captured[1]] for r in parsed] == [1, 2]
    assert parsed[1][CLOCK_TIME] == T0


def test_buffer_row_width_mismatch() -> None:
    captured = parse_capture_objects(CAPTURE_OBJECTS)
    with pytest.raises(DecodeError, match="row 0 must be a structure of 3 values"):
        parse_buffer(Array([Structure((1, 2))]), captured)


def test_scaler_unit() -> None:
    assert ScalerUnit.from_axdr(decode_all(bytes.fromhex("02020FFE1623"))) == ScalerUnit(-2, 35)


# --- selective access -------------------------------------------------------------------------

def test_range_descriptor_encoding() -> None:
    start = CosemDateTime(2024, 1, 1, None, 0, 0, 0, 0, None, None)
    end = CosemDateTime(2024, 1, 2, None, 0, 0, 0, 0, None, None)
    selection = range_descriptor(start, end)
    assert selection.access_selector == 1
    assert encode(selection.access_parameters) == bytes.fromhex(
        "0204"
        "0204 120008 0906 0000010000FF 0F02 120000"   # restricting object: clock time
        "090C 07E80101FF00000000 8000FF"               # from
        "090C 07E80102FF00000000 8000FF"               # to
        "0100")                                        # all columns


def test_range_descriptor_selected_values() -> None:
    column = CaptureObject(3, Obis.parse("1.0.1.8.0.255"), 2)
    selection = range_descriptor(1, 5, restricting_object=column, selected_values=[column])
    params = decode_all(encode(selection.access_parameters))
    assert params[1] == 1 and params[2] == 5
    assert parse_capture_objects(params[3]) == [column]


def test_entry_descriptor_encoding() -> None:
    selection = entry_descriptor(1, 0, 1, 0)
    assert selection == SelectiveAccess(2, selection.access_parameters)
    assert encode(selection.access_parameters) == bytes.fromhex(
        "0204 0600000001 0600000000 120001 120000")


@given(st.recursive(st.none() | st.integers(-5, 300) | st.binary(max_size=8),
                    lambda c: st.lists(c, max_size=5) | st.lists(c, max_size=5).map(tuple),
                    max_leaves=30))
def test_parsers_raise_only_dlms_errors(value: object) -> None:
    for parser in (parse_object_list, parse_capture_objects, ScalerUnit.from_axdr,
                   lambda v: parse_buffer(v, [CLOCK_TIME])):
        try:
            parser(value)
        except DlmsError:
            pass
