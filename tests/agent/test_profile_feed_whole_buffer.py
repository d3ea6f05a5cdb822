"""The profile feed against a meter whose association lacks selective access (Green Book
9.4.6.1, conformance bit 21): the simulator over TCP, its client without the bit, so only
the whole buffer (~0.8 MB, in GET datablocks) can be asked for. Each look reads it once
and publishes every new row from it, in day-sized batches with their marks, in order,
once; a pending replay is served from the same read."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging

import pytest
from daemon_harness import WorldClock, capture_times

from edge_agent.agent.config_model import ProfileConfig
from edge_agent.agent.load_profile_feed import ProfileFeed, ProfileRow
from edge_agent.client.client import MeterClient
from edge_agent.client.connection import ConnectionSettings
from edge_agent.dlms.apdu.conformance import Conformance
from edge_agent.dlms.association.client import ClientSettings
from edge_agent.dlms.cosem.obis import Obis
from edge_agent.simulator.meter import SimulatedMeterStation, SimulatorOptions
from edge_agent.simulator.server import MeterServer
from edge_agent.state.facts import FactStore

pytestmark = pytest.mark.timeout(120)

PROFILE = "1.0.99.1.0.255"
STEP = dt.timedelta(minutes=15)
START = dt.datetime(2026, 3, 10, 12, 7, 30, tzinfo=dt.UTC)  # between two capture times
# GET-Request-Normal (0xC0 0x01, invoke-id) of attribute 2 (buffer) of the profile,
# class 7, without access selection: the whole buffer.
BUFFER_GET = bytes((0x00, 0x07)) + bytes(Obis.parse(PROFILE)) + bytes((0x02, 0x00))


@pytest.fixture
def whole_meter():
    """A simulated meter that grants no client selective access; ``gets`` collects the
    buffer GETs it receives."""
    clock = WorldClock(START)
    station = SimulatedMeterStation(SimulatorOptions(seed=7), clock=clock)
    clients = {sap: dataclasses.replace(access, conformance=access.conformance
                                        & ~Conformance.SELECTIVE_ACCESS)
               for sap, access in station.settings.clients.items()}
    station.settings = dataclasses.replace(station.settings, clients=clients)
    gets: list[bytes] = []

    def tap(direction: str, data: bytes) -> None:
        # The wrapper header is 8 bytes; the request is in clear on this association.
        if direction == "rx" and data[8:10] == b"\xc0\x01" and data[11:] == BUFFER_GET:
            gets.append(data)

    server = MeterServer([station.station], idle_timeout=120.0, tap=tap)
    _, port = server.start_tcp("127.0.0.1", 0)
    yield station, port, clock, gets
    server.stop()


def test_each_look_reads_the_buffer_once_and_publishes_every_new_row(
        tmp_path, whole_meter, caplog) -> None:
    station, port, clock, gets = whole_meter
    feed = ProfileFeed(FactStore(tmp_path / "state"), "kitchen", clock.posix)
    profile = ProfileConfig(PROFILE, 900.0, 3 * 86400.0, "Europe/Vienna")
    batches: list[list[ProfileRow]] = []
    again: list[list[ProfileRow]] = []

    def publish(obis: str, rows: list[ProfileRow], *, replay: bool = False) -> None:
        assert obis == PROFILE
        (again if replay else batches).append(rows)

    client = MeterClient(ConnectionSettings(tcp=("127.0.0.1", port)), ClientSettings(),
                         meter_id="kitchen", state_dir=tmp_path / "client")
    caplog.set_level(logging.INFO, "edge_agent.agent.load_profile_feed")
    with client:
        # The worker asks for one chunk a look; a buffer read whole gives everything.
        count, more = feed.collect(client, profile, publish, max_chunks=1)
        assert len(gets) == 1 and not more
        first = START.replace(minute=15, second=0) - dt.timedelta(days=3)
        expected = capture_times(station, first, START)
        times = [row.ts for rows in batches for row in rows]
        assert times == expected and count == len(expected)
        # Day-sized batches (calendar days of the profile's zone), each with its mark.
        zone = feed._readers[PROFILE][0].zone
        days = [{row.ts.astimezone(zone).date() for row in rows} for rows in batches]
        assert len(batches) == 4 and all(len(day) == 1 for day in days)
        assert sorted(d for (d,) in days) == [d for (d,) in days]
        assert feed.last(PROFILE) == expected[-1]

        # An hour later, with a replay pending: one more read serves both.
        feed.request_replay(PROFILE, expected[-9], expected[-1])
        clock.advance(dt.timedelta(hours=1))
        count, more = feed.collect(client, profile, publish, max_chunks=1)
        assert len(gets) == 2 and not more and not feed.replaying(PROFILE)
        newer = capture_times(station, expected[-1] + STEP, clock())
        assert [row.ts for row in batches[-1]] == newer and count == len(newer) + 8
        assert [row.ts for rows in again for row in rows] == expected[-8:]
        assert feed.last(PROFILE) == newer[-1]

        # Nothing new yet: a look still costs one read, and publishes nothing.
        assert feed.collect(client, profile, publish, max_chunks=1) == (0, False)
        assert len(gets) == 3
    times = [row.ts for rows in batches for row in rows]
    assert times == expected + newer  # each row once, in order
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING
                and "no selective access" in r.getMessage()]
    assert len(warnings) == 1  # once per profile, not per look
    assert "21504 entries at most" in warnings[0] and "entries in use" in warnings[0]
    reads = [r.getMessage() for r in caplog.records if "read whole" in r.getMessage()]
    assert len(reads) == 3 and "exchange(s)" in reads[0]
