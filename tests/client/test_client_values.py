"""Client settings and value rendering: host:port parsing, connection settings checks,
the usual class of an OBIS code, and raw A-XDR values turned into readings."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.client.connection import ConnectionSettings, parse_host_port
from edge_agent.client.values import plain, to_reading, usual_class
from edge_agent.dlms.cosem.obis import Obis
from edge_agent.dlms.cosem.units import ScalerUnit
from edge_agent.dlms.encoding import axdr
from edge_agent.dlms.errors import ConfigError

NOW = dt.datetime(2026, 5, 1, 12, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:4059", ("127.0.0.1", 4059)),
        ("meter.local:10000", ("meter.local", 10000)),
        ("meter.local", ("meter.local", 4059)),
        ("[::1]:4060", ("::1", 4060)),
        ("[::1]", ("::1", 4059)),
    ],
)
def test_parse_host_port(text: str, expected: tuple[str, int]) -> None:
    assert parse_host_port(text) == expected


@pytest.mark.parametrize("text", ["127.0.0.1:", ":4059", "127.0.0.1:x", "127.0.0.1:0", "127.0.0.1:65536"])
def test_parse_host_port_refuses(text: str) -> None:
    with pytest.raises(ConfigError, match="expected HOST:PORT"):
        parse_host_port(text)


def test_a_listener_may_ask_for_any_port() -> None:
    assert parse_host_port("127.0.0.1:0", listening=True) == ("127.0.0.1", 0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "exactly one of --tcp"),
        ({"tcp": ("h", 1), "serial": "/dev/ttyUSB0"}, "exactly one of --tcp"),
        ({"tcp": ("h", 1), "client_sap": 128}, "client SAP must be 0..127"),
        ({"tcp": ("h", 1), "address_size": 3}, "1, 2 or 4 bytes"),
        ({"tcp": ("h", 1), "timeout": 0}, "time-out must be positive"),
    ],
)
def test_connection_settings_checks(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ConnectionSettings(**kwargs)


def test_connection_settings_describe_the_link() -> None:
    assert ConnectionSettings(tcp=("h", 4059)).describe() == "tcp://h:4059 (wrapper, client 16 -> server 1)"
    assert ConnectionSettings(tcp=("h", 4059), hdlc=True, client_sap=1).describe() == (
        "tcp://h:4059 (HDLC, client 1 -> server 1/16)"
    )
    assert ConnectionSettings(serial="/dev/ttyUSB0").uses_hdlc


@pytest.mark.parametrize(
    ("code", "class_id"),
    [
        ("0.0.1.0.0.255", 8), ("1.0.99.1.0.255", 7), ("0.0.99.98.0.255", 7), ("0.0.40.0.0.255", 15),
        ("0.0.43.0.0.255", 64), ("0.0.25.9.0.255", 40), ("0.0.96.3.10.255", 70), ("1.0.1.6.0.255", 4),
        ("1.0.1.4.0.255", 5), ("1.0.1.8.0.255", 3), ("1.0.32.7.0.255", 3), ("0.0.96.1.0.255", 1),
        ("0.0.43.1.0.255", 1), ("0.0.96.3.1.255", 1),
    ],
)
def test_usual_class(code: str, class_id: int) -> None:
    assert usual_class(Obis.parse(code)) == class_id


def test_scaled_reading_keeps_raw_and_scaler() -> None:
    reading = to_reading(Obis.parse("1.0.32.7.0.255"), 3, axdr.LongUnsigned(2313), ScalerUnit(-1, 35), NOW)
    assert (reading.value, reading.unit, reading.raw, reading.scaler) == (231.3, "V", 2313, -1)
    out = reading.as_json()
    assert out == {"value": 231.3, "unit": "V", "name": "Voltage L1", "class_id": 3,
                   "ts": "2026-05-01T12:00:00Z", "scaler": -1}


def test_clock_octets_become_iso_date_time() -> None:
    octets = bytes.fromhex("07EA0501050C0000FF000000")  # 2026-05-01 12:00:00, deviation 0
    reading = to_reading(Obis.parse("0.0.1.0.0.255"), 8, axdr.OctetString(octets), None, NOW)
    assert dt.datetime.fromisoformat(reading.value) == NOW


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (axdr.OctetString(b"DLE1234"), "DLE1234"),
        (axdr.OctetString(b"\x00\x01\xff"), "0001ff"),
        (axdr.Unsigned(7), 7),
        (True, True),
        (None, None),
        ([axdr.Long(-2), axdr.OctetString(b"ab")], [-2, "ab"]),
    ],
)
def test_plain_values(raw, expected) -> None:
    assert plain(raw) == expected


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.binary(max_size=20) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4),
    max_leaves=12,
)


@given(json_values)
def test_plain_is_always_json(value) -> None:
    json.dumps(plain(value))
