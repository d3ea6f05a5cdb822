"""Payload builders: exact JSON of docs/mqtt-contract.md and the value rendering rules."""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from enum import IntEnum

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.dlms.encoding.date_time import CosemDateTime
from edge_agent.dlms.errors import DecodeError, EncodeError
from edge_agent.mqtt.payloads import (
    MeterInfo,
    ObjectInfo,
    ReplayRequest,
    format_ts,
    health_payload,
    objects_info,
    profile_row_payload,
    render_value,
    state_payload,
    status_payload,
    value_payload,
)

TS = datetime(2026, 11, 25, 1, 0, 0, tzinfo=UTC)


def test_value_payload_exact_bytes() -> None:
    assert value_payload(12345.6, "Wh", TS, "1-0:1.8.0*255", "Active energy import (+A)") == (
        b'{"value":12345.6,"unit":"Wh","ts":"2026-11-25T01:00:00Z","obis":"1.0.1.8.0.255",'
        b'"name":"Active energy import (+A)"}')


def test_state_payload_exact_bytes() -> None:
    payload = state_payload(TS, {"1.0.1.8.0.255": (12345, "Wh"), "0.0.96.1.0.255":
                                 (b"1SAG67929081", None)})
    assert payload == (b'{"ts":"2026-11-25T01:00:00Z","values":{"1.0.1.8.0.255":{"value":12345,'
                       b'"unit":"Wh"},"0.0.96.1.0.255":{"value":"1SAG67929081","unit":null}}}')


def test_profile_row_payload_exact_bytes() -> None:
    payload = profile_row_payload(TS, {"1.0.1.8.0.255": 10.5}, {"1.0.1.8.0.255": "kWh"}, 8)
    assert payload == (b'{"ts":"2026-11-25T01:00:00Z","values":{"1.0.1.8.0.255":10.5},'
                       b'"units":{"1.0.1.8.0.255":"kWh"},"status":8}')
    assert json.loads(profile_row_payload(TS, {}, {}, None))["status"] is None


def test_health_payloads() -> None:
    assert health_payload(None, "reading", TS) == (
        b'{"state":"ok","code":null,"message":"reading","since":"2026-11-25T01:00:00Z"}')
    assert json.loads(health_payload("wrong_key", "tag mismatch", TS))["state"] == "problem"
    with pytest.raises(EncodeError, match="not in the contract"):
        health_payload("bad_mood", "?", TS)


def test_status_payloads() -> None:
    assert status_payload(True) == b"online"
    assert status_payload(False) == b"offline"


def test_non_ascii_is_utf8_not_escaped() -> None:
    payload = value_payload(1, "°C", TS, "0.0.96.9.0.255", "Température")
    assert "Température".encode() in payload and "°C".encode() in payload


@pytest.mark.parametrize(("ts", "text"), [
    (TS, "2026-11-25T01:00:00Z"),
    (datetime(2026, 11, 25, 2, 0, 0, 999_999, tzinfo=timezone(timedelta(hours=1))),
     "2026-11-25T01:00:00Z"),
    (0, "1970-01-01T00:00:00Z"),
    (1_795_568_400.7, "2026-11-25T01:00:00Z"),
])
def test_format_ts(ts: object, text: str) -> None:
    assert format_ts(ts) == text  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [datetime(2026, 1, 1), "2026-01-01", True, None])
def test_format_ts_rejects(bad: object) -> None:
    with pytest.raises(EncodeError):
        format_ts(bad)  # type: ignore[arg-type]


class _Unit(IntEnum):
    WH = 30


@pytest.mark.parametrize(("value", "rendered"), [
    (None, None), (True, True), (False, False), (42, 42), (_Unit.WH, 30), (-1.5, -1.5),
    (Decimal("12.50"), 12.5), (Decimal("3.000"), 3), (math.nan, None), (math.inf, None),
    (b"1SAG67929081", "1SAG67929081"), (b"\x53\x41\x47\x67\x70\x06\x7a\x23", "5341476770067a23"),
    (b"", ""), (b"line\nbreak", "6c696e650a627265616b"), (bytearray(b"\xff"), "ff"),
    ("text", "text"),
    (TS, "2026-11-25T01:00:00Z"),
    (datetime(2026, 11, 25, 2, 0, tzinfo=timezone(timedelta(hours=1))), "2026-11-25T01:00:00Z"),
    (datetime(2026, 11, 25, 2, 0), "2026-11-25T02:00:00"),
    (date(2026, 11, 25), "2026-11-25"),
    ([1, b"A", (2.5, None)], [1, "A", [2.5, None]]),
])
def test_render_value(value: object, rendered: object) -> None:
    assert render_value(value) == rendered


def test_render_cosem_date_time() -> None:
    # Blue Book sign: deviation -60 = local time is UTC+01:00.
    dt = CosemDateTime(2026, 11, 25, 3, 2, 0, 0, 0, -60, 0)
    assert render_value(dt) == "2026-11-25T01:00:00Z"
    pattern = CosemDateTime(None, None, None, None, 0, 0, 0, 0, None, None)
    assert render_value(pattern) == str(pattern)


_INFO = MeterInfo(
    agent="pi-kitchen", meter="1SAG67929081", serial="1SAG67929081",
    manufacturer="Sagemcom", model="T-210D", firmware="1.2.3",
    system_title=bytes.fromhex("5341477df129c270"), agent_version="0.1.0",
    objects=(ObjectInfo("1.0.1.8.0.255", "Active energy import (+A)", 3, "Wh", "energy",
                        "total_increasing"),),
    profiles=("1.0.99.1.0.255",))


def test_info_payload_matches_contract_example() -> None:
    # The example document of docs/mqtt-contract.md, key for key.
    assert json.loads(_INFO.encode()) == {
        "agent": "pi-kitchen", "meter": "1SAG67929081",
        "serial": "1SAG67929081", "manufacturer": "Sagemcom", "model": "T-210D",
        "firmware": "1.2.3", "system_title": "5341477df129c270",
        "agent_version": "0.1.0",
        "objects": [
            {"obis": "1.0.1.8.0.255", "name": "Active energy import (+A)", "class_id": 3,
             "unit": "Wh", "device_class": "energy", "state_class": "total_increasing"}],
        "profiles": ["1.0.99.1.0.255"]}
    assert b" " not in _INFO.encode().replace(b"Active energy import (+A)", b"")


_text = st.none() | st.text(max_size=20)


@given(st.builds(
    MeterInfo, agent=st.just("pi"), meter=st.just("m"), serial=_text, manufacturer=_text,
    model=_text, firmware=_text, system_title=st.none() | st.binary(min_size=8, max_size=8),
    agent_version=st.just("0.1.0"),
    objects=st.lists(st.builds(
        ObjectInfo, obis=st.lists(st.integers(0, 255), min_size=6, max_size=6).map(bytes),
        name=_text, class_id=st.integers(1, 70), unit=_text,
        device_class=st.none() | st.sampled_from(["energy", "power"]),
        state_class=st.none() | st.sampled_from(["measurement", "total_increasing"])),
        max_size=4).map(tuple)))
def test_info_round_trip(info: MeterInfo) -> None:
    assert MeterInfo.decode(info.encode()) == info


@pytest.mark.parametrize("bad", [b"", b"[]", b"{}", b'{"agent": 1}', b"\xff"])
def test_info_decode_rejects(bad: bytes) -> None:
    with pytest.raises(DecodeError, match="info payload"):
        MeterInfo.decode(bad)


def test_objects_info_sorted_unique() -> None:
    a = ObjectInfo("1.0.2.8.0.255", "A-", 3, "Wh")
    b = ObjectInfo("1.0.10.8.0.255", "x", 3, "Wh")
    c = ObjectInfo("0.0.1.0.0.255", "clock", 8, None)
    assert [o.obis for o in objects_info([b, a, c, a])] == [
        "0.0.1.0.0.255", "1.0.2.8.0.255", "1.0.10.8.0.255"]


@pytest.mark.parametrize(("payload", "profile", "start"), [
    (b'{"profile": "1.0.99.1.0.255", "from": "2026-11-25T01:00:00Z"}', "1.0.99.1.0.255",
     datetime(2026, 11, 25, 1, 0, tzinfo=UTC)),
    (b'{"profile": "1-0:99.2.0", "from": null}', "1.0.99.2.0.255", None),
    (b'{"profile": "1.0.99.1.0.255"}', "1.0.99.1.0.255", None),
])
def test_replay_request_decodes(payload: bytes, profile: str, start: datetime | None) -> None:
    request = ReplayRequest.decode(payload)
    assert (request.profile, request.start) == (profile, start)


@pytest.mark.parametrize(("payload", "said"), [
    (b"\xff", "expected a JSON object"),
    (b"[1]", "expected a JSON object, got list"),
    (b'{"profile": 7}', "expected 'profile' as an OBIS code"),
    (b'{"profile": "1.0.99.1.0.255", "from": "2026-11-25T01:00:00"}', "with an offset"),
    (b'{"profile": "1.0.99.1.0.255", "from": 5}', "expected 'from' as ISO 8601"),
])
def test_replay_request_says_what_is_wrong(payload: bytes, said: str) -> None:
    with pytest.raises(DecodeError, match=said):
        ReplayRequest.decode(payload)
