"""OBIS parse/format, names and Home Assistant hints."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.dlms.cosem.obis import Obis, name, suggest
from edge_agent.dlms.errors import DecodeError

ENERGY = Obis(1, 0, 1, 8, 0, 255)


@pytest.mark.parametrize("text", [
    "1-0:1.8.0*255", "1-0:1.8.0.255", "1-0:1.8.0&255", "1-0:1.8.0", "1.0.1.8.0.255",
    "1.0.1.8.0", "1.8.0", "1.8.0*255", "0100010800FF", "0100010800ff", " 1.0.1.8.0.255 ",
])
def test_parse_forms(text: str) -> None:
    assert Obis.parse(text) == ENERGY


def test_parse_keeps_explicit_groups() -> None:
    assert Obis.parse("0-0:96.1.0*255") == Obis(0, 0, 96, 1, 0, 255)
    assert Obis.parse("1-0:1.8.0*101") == Obis(1, 0, 1, 8, 0, 101)
    assert Obis.parse("1.8.1") == Obis(1, 0, 1, 8, 1, 255)
    assert Obis.parse("0.0.1.0.0.255") == Obis(0, 0, 1, 0, 0, 255)


@pytest.mark.parametrize("text", [
    "", "1.8", "1.0.1.8", "1.0.1.8.0.255.1", "1-0:1.8.0*256", "1.0.1.8.0.300", "abc",
    "0100010800F", "1-0:1.8.x", "1-0-1.8.0",
])
def test_parse_rejects(text: str) -> None:
    with pytest.raises(DecodeError):
        Obis.parse(text)


def test_formats() -> None:
    assert str(ENERGY) == "1-0:1.8.0*255"
    assert ENERGY.dotted == "1.0.1.8.0.255"
    assert bytes(ENERGY) == bytes.fromhex("0100010800FF") == ENERGY.encode()
    assert Obis.from_bytes(bytes.fromhex("AA0100010800FF"), 1) == ENERGY
    assert Obis.coerce(b"\x01\x00\x01\x08\x00\xff") == ENERGY
    assert Obis.coerce("1.8.0") is not None and Obis.coerce(ENERGY) is ENERGY
    with pytest.raises(DecodeError, match="6 octets, got 5"):
        Obis.from_bytes(bytes(5))
    with pytest.raises(DecodeError, match="group C must be 0..255"):
        Obis(1, 0, 256, 8, 0)
    assert sorted([Obis(1, 0, 2, 8, 0), ENERGY]) == [ENERGY, Obis(1, 0, 2, 8, 0)]


obis_codes = st.builds(Obis, *[st.integers(0, 255)] * 6)


@given(obis_codes)
def test_round_trips(code: Obis) -> None:
    assert Obis.parse(str(code)) == code
    assert Obis.parse(code.dotted) == code
    assert Obis.from_bytes(bytes(code)) == code
    assert Obis.parse(bytes(code).hex()) == code
    assert isinstance(name(code), str) and name(code)


@pytest.mark.parametrize(("code", "expected"), [
    ("1.0.1.8.0.255", "Active energy import (+A)"),
    ("1.0.2.8.0.255", "Active energy export (-A)"),
    ("1.0.1.8.1.255", "Active energy import (+A), tariff 1"),
    ("1.0.2.8.2.255", "Active energy export (-A), tariff 2"),
    ("1.0.3.8.0.255", "Reactive energy import (+R)"),
    ("1.0.4.8.0.255", "Reactive energy export (-R)"),
    ("1.0.1.7.0.255", "Active power import (+A)"),
    ("1.0.2.7.0.255", "Active power export (-A)"),
    ("1.0.3.7.0.255", "Reactive power import (+R)"),
    ("1.0.21.7.0.255", "Active power import (+A) L1"),
    ("1.0.32.7.0.255", "Voltage L1"),
    ("1.0.52.7.0.255", "Voltage L2"),
    ("1.0.72.7.0.255", "Voltage L3"),
    ("1.0.31.7.0.255", "Current L1"),
    ("1.0.51.7.0.255", "Current L2"),
    ("1.0.71.7.0.255", "Current L3"),
    ("1.0.91.7.0.255", "Current neutral 91.7.0"),
    ("1.0.14.7.0.255", "Supply frequency"),
    ("1.0.13.7.0.255", "Power factor"),
    ("1.0.33.7.0.255", "Power factor L1"),
    ("1.0.73.7.0.255", "Power factor L3"),
    ("1.0.1.6.0.255", "Active power import (+A), maximum 1"),
    ("1.0.1.8.0.101", "Active energy import (+A), billing period 101"),
    ("1.0.32.32.0.255", "Voltage L1, under limit occurrence counter"),
    ("0.0.1.0.0.255", "Clock"),
    ("0.0.42.0.0.255", "COSEM logical device name"),
    ("0.0.96.1.0.255", "Meter serial number (device ID 1)"),
    ("1.0.99.1.0.255", "Load profile 1"),
    ("0.0.99.98.0.255", "Standard event log"),
    ("0.0.99.98.2.255", "Event log 2"),
    ("0.0.40.0.0.255", "Association LN 0"),
    ("0.0.40.0.3.255", "Association LN 3"),
    ("0.0.43.0.1.255", "Security setup 1"),
    ("0.0.43.1.1.255", "Invocation counter (security setup 1)"),
    ("0.0.25.9.0.255", "Push setup 0"),
    ("0.1.25.9.0.255", "Push setup 0"),
    ("0.0.96.3.10.255", "Disconnect control"),
    ("0.0.96.50.0.255", "Service entry 0.0.96.50.0.255"),
    ("7.0.3.0.0.255", "Gas 7.0.3.0.0.255"),
    ("200.0.0.0.0.0", "Medium 200 200.0.0.0.0.0"),
])
def test_names(code: str, expected: str) -> None:
    assert name(code) == expected
    assert Obis.parse(code).name == expected


@pytest.mark.parametrize(("code", "unit", "expected"), [
    ("1.0.1.8.0.255", "Wh", ("energy", "total_increasing")),
    ("1.0.2.8.1.255", "Wh", ("energy", "total_increasing")),
    ("1.0.16.8.0.255", "Wh", ("energy", "total")),
    ("1.0.1.8.0.101", "Wh", ("energy", None)),
    ("1.0.3.8.0.255", "varh", ("reactive_energy", "total_increasing")),
    ("1.0.9.8.0.255", "VAh", (None, "total_increasing")),
    ("1.0.1.7.0.255", "W", ("power", "measurement")),
    ("1.0.3.7.0.255", "var", ("reactive_power", "measurement")),
    ("1.0.9.7.0.255", "VA", ("apparent_power", "measurement")),
    ("1.0.32.7.0.255", "V", ("voltage", "measurement")),
    ("1.0.31.7.0.255", "A", ("current", "measurement")),
    ("1.0.14.7.0.255", "Hz", ("frequency", "measurement")),
    ("1.0.13.7.0.255", None, ("power_factor", "measurement")),
    ("1.0.33.7.0.255", "%", ("power_factor", "measurement")),
    ("0.0.1.0.0.255", None, ("timestamp", None)),
    ("0.0.96.1.0.255", None, (None, None)),
    ("0.0.96.7.21.255", None, (None, "total_increasing")),
    ("0.0.96.9.0.255", "°C", (None, "measurement")),
])
def test_home_assistant_hints(code: str, unit: str | None, expected: tuple) -> None:
    assert suggest(code, unit) == expected
