"""Blue Book unit table and scalers."""

from __future__ import annotations

import struct
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.dlms.cosem.units import (
    UNITS,
    ScalerUnit,
    apply_scaler,
    float32_shortest,
    unit,
    unit_code,
    unit_symbol,
)
from edge_agent.dlms.encoding.axdr import Enum, Float32, Integer, Structure, decode_all, encode
from edge_agent.dlms.errors import DecodeError, EncodeError


@pytest.mark.parametrize(("code", "symbol"), [
    (27, "W"), (28, "VA"), (29, "var"), (30, "Wh"), (31, "VAh"), (32, "varh"), (33, "A"),
    (35, "V"), (44, "Hz"), (9, "°C"), (13, "m³"), (56, "%"), (7, "s"), (72, "dB"),
    (255, None), (254, None),
])
def test_symbols(code: int, symbol: str | None) -> None:
    assert unit_symbol(code) == symbol


def test_table_shape() -> None:
    assert set(range(1, 58)) <= set(UNITS)  # 1..57 contiguous in the Blue Book
    assert {60, 61, 62, 63, 64, 65, 66, 67, 70, 71, 72, 253, 254, 255} <= set(UNITS)
    assert all(row.code == code for code, row in UNITS.items())
    assert unit(58).quantity == "unknown unit code 58" and unit_symbol(58) is None
    assert unit_code("Wh") == 30
    with pytest.raises(EncodeError, match="unknown unit symbol"):
        unit_code("furlong")


@pytest.mark.parametrize(("raw", "scaler", "expected"), [
    (3, -1, 0.3),
    (12345, -3, 12.345),
    (230, 0, 230),
    (5, 3, 5000),
    (-7, -2, -0.07),
    (2**64 - 1, -3, 18446744073709551.615),
    (Float32(230.1), 0, 230.1),
    (Float32(230.1), -1, 23.01),
    (0.1, 1, 1.0),
])
def test_apply_scaler_known_values(raw: object, scaler: int, expected: float) -> None:
    result = apply_scaler(raw, scaler)
    assert result == expected
    assert type(result) is type(expected)


@given(st.integers(-(2**63), 2**64 - 1), st.integers(-9, -1))
def test_negative_scaler_gives_the_float_nearest_the_exact_decimal(raw: int, scaler: int) -> None:
    assert apply_scaler(raw, scaler) == float(Decimal(raw).scaleb(scaler))


@given(st.integers(-(2**31), 2**31), st.integers(0, 6))
def test_positive_scaler_stays_exact_integer(raw: int, scaler: int) -> None:
    assert apply_scaler(raw, scaler) == raw * 10**scaler


@given(st.floats(width=32, allow_nan=False, allow_infinity=False))
def test_float32_shortest_is_the_same_float32(value: float) -> None:
    assert struct.pack(">f", float32_shortest(value)) == struct.pack(">f", value)


def test_apply_scaler_refuses_non_numbers() -> None:
    with pytest.raises(DecodeError, match="applies to numbers"):
        apply_scaler(b"1SAG", -1)
    with pytest.raises(DecodeError):
        apply_scaler(True, 0)


def test_scaler_unit_from_register_attribute_3() -> None:
    # 02 02 0F FF 16 1E: {integer -1, enum 30 (Wh)}
    value = decode_all(bytes.fromhex("02020FFF161E"))
    su = ScalerUnit.from_axdr(value)
    assert su == ScalerUnit(-1, 30)
    assert su.symbol == "Wh" and str(su) == "10^-1 Wh"
    assert su.apply(123456) == 12345.6
    assert encode(su.to_axdr()) == bytes.fromhex("02020FFF161E")
    assert su.to_axdr() == Structure((Integer(-1), Enum(30)))


@pytest.mark.parametrize("value", [
    (1,), (1, 2, 3), "ab", None, (b"x", 30), (1, 300), (-200, 30), (True, 30),
])
def test_scaler_unit_rejects_bad_structures(value: object) -> None:
    with pytest.raises(DecodeError, match="scaler"):
        ScalerUnit.from_axdr(value)
