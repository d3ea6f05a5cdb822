"""Reading from inside the autumn hour that repeats, against the simulator over TCP, on a
meter that writes bare local time stamps (no deviation, no clock status): only the order
of the rows tells the two passes of 02:00-03:00 in Vienna apart, so the reader asks for
the rows from the first pass of that hour and keeps those of the range asked."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest

from edge_agent.client.client import MeterClient
from edge_agent.client.connection import ConnectionSettings
from edge_agent.client.load_profile import ProfileReader, repeated_hour_start
from edge_agent.dlms.association.client import ClientSettings
from edge_agent.simulator.meter import SimulatedMeterStation, SimulatorOptions
from edge_agent.simulator.server import MeterServer

VIENNA = zoneinfo.ZoneInfo("Europe/Vienna")
UTC = dt.UTC
NOW = dt.datetime(2026, 10, 25, 6, 0, tzinfo=UTC)
STEP = dt.timedelta(minutes=15)


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture(scope="module")
def bare_meter():
    station = SimulatedMeterStation(SimulatorOptions(profile="generic", seed=7),
                                    clock=lambda: NOW)
    station.model.meter.time_stamp_style = "bare"
    server = MeterServer([station.station])
    _, port = server.start_tcp("127.0.0.1", 0)
    yield port
    server.stop()


def read(port: int, tmp_path, start: dt.datetime, end: dt.datetime):
    client = MeterClient(ConnectionSettings(tcp=("127.0.0.1", port)), ClientSettings(),
                         meter_id="bare", state_dir=tmp_path)
    with client:
        reader = ProfileReader(client, zone=VIENNA)
        rows = list(reader.rows(start, end))
    return [r["timestamp"].astimezone(UTC) for r in rows], reader.report


@pytest.mark.parametrize("start, end", [
    ("01:15", "02:00"),  # 02:15-03:00 local, second pass
    ("01:00", "01:30"),  # the second pass from its first row
    ("00:30", "01:30"),  # from the first pass into the second
    ("00:45", "02:30"),  # over the whole second pass and on
])
def test_a_range_from_inside_the_repeated_hour_gives_its_rows(bare_meter, tmp_path, start,
                                                               end) -> None:
    low, high = at(f"2026-10-25T{start}"), at(f"2026-10-25T{end}")
    stamps, report = read(bare_meter, tmp_path, low, high)
    expected = [low + i * STEP for i in range(int((high - low) / STEP))]
    assert stamps == expected
    # Only rows of the range are reported, those read before it to learn the order not.
    assert all(low <= moment < high for moment in report.repeated_hour)
    assert report.rows == len(expected)


def test_a_local_start_without_offset_is_the_first_pass(bare_meter, tmp_path) -> None:
    stamps, _ = read(bare_meter, tmp_path, dt.datetime(2026, 10, 25, 2, 15),
                     dt.datetime(2026, 10, 25, 3, 0))
    # 02:15 local is taken as its first pass (00:15 UTC); to 03:00 local (02:00 UTC).
    assert stamps == [at("2026-10-25T00:15") + i * STEP for i in range(7)]


def test_the_first_pass_of_a_repeated_hour() -> None:
    # Both passes of 02:xx local lead to the first pass of 02:00 (00:00 UTC).
    assert repeated_hour_start(at("2026-10-25T01:15"), VIENNA) == at("2026-10-25T00:00")
    assert repeated_hour_start(at("2026-10-25T00:45"), VIENNA) == at("2026-10-25T00:00")
    assert repeated_hour_start(at("2026-10-25T01:00"), VIENNA) == at("2026-10-25T00:00")
    # Outside it, and in zones without the change, the time itself.
    for moment in (at("2026-10-25T02:00"), at("2026-10-24T23:45"), at("2026-03-29T01:15")):
        assert repeated_hour_start(moment, VIENNA) == moment
    assert repeated_hour_start(at("2026-10-25T01:15"), UTC) == at("2026-10-25T01:15")
    # Lord Howe Island repeats half an hour (01:30-02:00 local): read from 01:00 local.
    lord_howe = zoneinfo.ZoneInfo("Australia/Lord_Howe")
    second_pass = dt.datetime(2026, 4, 5, 1, 45, fold=1, tzinfo=lord_howe)
    assert repeated_hour_start(second_pass, lord_howe) == dt.datetime(
        2026, 4, 5, 1, 0, tzinfo=lord_howe).astimezone(UTC)
