"""The A-XDR fast paths: Get-Data-Result lists (and their layout memo), compact-array rows.

Each fast path must give exactly what the plain per-value decoding gives, on every input,
including inputs that look like a layout seen before but differ in a structure octet.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_axdr import SCALARS, same, values

from edge_agent.dlms.encoding import axdr
from edge_agent.dlms.encoding.axdr import (
    CompactArray,
    DataType,
    DoubleLongUnsigned,
    Long,
    LongUnsigned,
    OctetString,
    Structure,
    StructureDescription,
    Unsigned,
    decode_all,
    decode_get_data_results,
    encode,
)
from edge_agent.dlms.errors import DecodeError, DlmsError, TruncatedError


def failure(code: int) -> tuple[str, int]:
    return ("data-access-result", code)


class Failed(int):
    """Stands for a data-access-result code in a generated result list."""


flat_values = st.one_of(
    *(SCALARS[tag] for tag in (
        DataType.DOUBLE_LONG, DataType.DOUBLE_LONG_UNSIGNED, DataType.LONG,
        DataType.LONG_UNSIGNED, DataType.UNSIGNED, DataType.INTEGER, DataType.ENUM,
        DataType.BCD, DataType.BOOLEAN, DataType.LONG64, DataType.LONG64_UNSIGNED,
        DataType.FLOAT32, DataType.FLOAT64, DataType.OCTET_STRING, DataType.VISIBLE_STRING)),
)
results_lists = st.lists(
    st.one_of(flat_values, flat_values, values, st.integers(0, 255).map(Failed)), max_size=25)


def encode_results(results: list) -> bytes:
    out = bytearray()
    for result in results:
        if isinstance(result, Failed):
            out += bytes((1, result))
        else:
            out.append(0)
            axdr.encode_into(out, result)
    return bytes(out)


def reference(raw: bytes, count: int) -> tuple[list, int]:
    """The plain decoding, one axdr.decode per value, no fast path."""
    decoded, offset = [], 0
    for _ in range(count):
        if raw[offset] == 1:
            decoded.append(failure(raw[offset + 1]))
            offset += 2
        elif raw[offset] != 0:
            raise DecodeError("not a Get-Data-Result CHOICE")
        else:
            value, offset = axdr.decode(raw, offset + 1)
            decoded.append(value)
    return decoded, offset


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(results_lists, results_lists)
def test_results_equal_the_plain_decoding_also_when_a_layout_was_learnt(
        first: list, second: list) -> None:
    for results in (first, first, second, second, first):  # learn, reuse, switch, reuse
        raw = encode_results(results)
        decoded, end = decode_get_data_results(raw, 0, len(results), failure)
        assert end == len(raw)
        assert same(decoded, reference(raw, len(results))[0])


@given(st.lists(flat_values, min_size=1, max_size=20), st.data())
def test_a_learnt_layout_is_not_applied_to_other_structure(results: list,
                                                           data: st.DataObject) -> None:
    raw = bytearray(encode_results(results))
    decode_get_data_results(bytes(raw), 0, len(results), failure)  # learn the layout
    raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    try:
        expected, expected_end = reference(bytes(raw), len(results))
    except (DlmsError, IndexError):
        with pytest.raises(DlmsError):
            decode_get_data_results(bytes(raw), 0, len(results), failure)
        return
    decoded, end = decode_get_data_results(bytes(raw), 0, len(results), failure)
    assert end == expected_end and same(decoded, expected)


def test_a_learnt_layout_never_reads_past_the_input() -> None:
    raw = encode_results([DoubleLongUnsigned(1), LongUnsigned(2), OctetString(b"abc")])
    decode_get_data_results(raw, 0, 3, failure)
    for cut in range(len(raw)):
        with pytest.raises(TruncatedError):
            decode_get_data_results(raw[:cut], 0, 3, failure)


def test_offset_and_known_answer() -> None:
    raw = bytes.fromhex("FFFF 00 06 00BC614E 01 04 00 12 08FD 00 09 02 ABCD")
    for _ in range(2):  # the second call takes the learnt layout
        decoded, end = decode_get_data_results(raw, 2, 4, failure)
        assert end == len(raw)
        assert same(decoded, [DoubleLongUnsigned(12345678), failure(4), LongUnsigned(2301),
                              OctetString(b"\xab\xcd")])


@pytest.mark.parametrize(("hex_", "error", "text"), [
    ("02 00", DecodeError, "get-data-result: expected 00 \\(data\\) or 01"),
    ("00 07", DecodeError, "get-data-result: unknown A-XDR data type tag 0x07"),
    ("00 06 0000", TruncatedError, "get-data-result: double-long-unsigned at offset 2"),
    ("01", TruncatedError, "get-data-result at offset 0"),
    ("", TruncatedError, "get-data-result"),
])
def test_malformed_results(hex_: str, error: type[Exception], text: str) -> None:
    with pytest.raises(error, match=text):
        decode_get_data_results(bytes.fromhex(hex_), 0, 1, failure)


@settings(max_examples=500)
@given(st.binary(max_size=60), st.integers(0, 8))
def test_random_results_raise_only_dlms_errors(raw: bytes, count: int) -> None:
    try:
        decode_get_data_results(raw, 0, count, failure)
    except DlmsError:
        pass


def test_layout_memo_is_bounded() -> None:
    for count in range(1, 200):
        raw = encode_results([Unsigned(1)] * count)
        assert len(decode_get_data_results(raw, 0, count, failure)[0]) == count
    assert len(axdr._LAYOUTS) <= axdr._LAYOUT_KEYS


# --- compact-array rows of fixed-width types --------------------------------------------------

ROW = StructureDescription((DataType.DOUBLE_LONG_UNSIGNED, DataType.LONG, DataType.BOOLEAN,
                            DataType.FLOAT32, DataType.INTEGER))


def test_fixed_rows_known_answer() -> None:
    raw = bytes.fromhex("13 02 05 06 10 03 17 0F  0B"
                        "00000001 FFFE 02 3F800000 FF"
                        "00")  # a 12th octet: not a whole row
    with pytest.raises(TruncatedError, match="not a whole number of 12-octet elements"):
        decode_all(raw)
    value = decode_all(bytes.fromhex("13 02 05 06 10 03 17 0F 0C 00000001 FFFE 02 3F800000 FF"))
    assert same(value, CompactArray(ROW, (Structure((
        DoubleLongUnsigned(1), Long(-2), True, axdr.Float32(1.0), axdr.Integer(-1))),)))


@given(st.lists(st.tuples(*(SCALARS[t] for t in ROW.elements)).map(Structure), max_size=30))
def test_fixed_rows_round_trip(rows: list) -> None:
    value = CompactArray(ROW, tuple(rows))
    assert same(decode_all(encode(value)), value)
