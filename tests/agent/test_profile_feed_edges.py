"""The profile feed at the edges of its reads, against the simulator over TCP: a gap in
the meter's profile that spans a chunk's edge (a power failure over midnight) or the time
since the last look is reported; a look that starts inside the autumn hour that repeats,
on a meter whose time stamps carry neither deviation nor clock status, loses no row."""

from __future__ import annotations

import datetime as dt
import logging

import pytest
from daemon_harness import WorldClock, capture_times

from edge_agent.agent.config_model import ProfileConfig
from edge_agent.agent.load_profile_feed import ProfileFeed, ProfileRow
from edge_agent.client.client import MeterClient
from edge_agent.client.connection import ConnectionSettings
from edge_agent.dlms.association.client import ClientSettings
from edge_agent.simulator.meter import SimulatedMeterStation, SimulatorOptions
from edge_agent.simulator.server import MeterServer
from edge_agent.state.facts import FactStore

pytestmark = pytest.mark.timeout(120)

PROFILE = "1.0.99.1.0.255"
UTC = dt.UTC
# Seed 55 loses power from 2026-01-27 23:49:02 to 2026-01-28 00:22:44 UTC: the rows of
# 00:00 and 00:15 UTC are never captured, and UTC midnight (a chunk edge of a profile
# whose timezone is UTC) lies inside the gap.
OUTAGE_SEED = 55
GAP_LINE = ("gap: 2 row(s) missing between 2026-01-27T23:45:00Z and 2026-01-28T00:30:00Z")


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture
def simulator():
    servers: list[MeterServer] = []

    def start(seed: int, now: dt.datetime):
        clock = WorldClock(now)
        station = SimulatedMeterStation(SimulatorOptions(seed=seed), clock=clock)
        server = MeterServer([station.station], idle_timeout=120.0)
        servers.append(server)
        _, port = server.start_tcp("127.0.0.1", 0)
        return station, port, clock

    yield start
    for server in servers:
        server.stop()


def looks(tmp_path, port: int, clock: WorldClock, profile: ProfileConfig, advances):
    """One look now and one after each of ``advances``; returns the rows published."""
    feed = ProfileFeed(FactStore(tmp_path / "state"), "kitchen", clock.posix)
    rows: list[ProfileRow] = []
    client = MeterClient(ConnectionSettings(tcp=("127.0.0.1", port)), ClientSettings(),
                         meter_id="kitchen", state_dir=tmp_path / "client")
    with client:
        feed.collect(client, profile, lambda obis, chunk: rows.extend(chunk))
        for advance in advances:
            clock.advance(advance)
            feed.collect(client, profile, lambda obis, chunk: rows.extend(chunk))
    return rows


def gap_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.levelno == logging.WARNING and "gap:" in r.getMessage()]


def test_a_power_failure_over_a_chunks_edge_is_reported(tmp_path, simulator, caplog) -> None:
    """A day of backfill read as two calendar days (UTC): the first ends with the row
    before the failure, the second begins with the row after it."""
    station, port, clock = simulator(OUTAGE_SEED, at("2026-01-28T06:00"))
    rows = looks(tmp_path, port, clock, ProfileConfig(PROFILE, 900.0, 86400.0, "UTC"), [])
    assert [r.ts for r in rows] == capture_times(station, at("2026-01-27T06:00"),
                                                 at("2026-01-28T05:45"))
    assert at("2026-01-28T00:00") not in [r.ts for r in rows]
    (line,) = gap_warnings(caplog)
    assert line.endswith(GAP_LINE + " (the meter captured nothing: power failure, reset or "
                         "clock change)")


def test_a_power_failure_since_the_last_look_is_reported(tmp_path, simulator,
                                                         caplog) -> None:
    """The last look published the row before the failure; the next one's first row is
    the one after it, in the next chunk: the gap between the two looks is named."""
    station, port, clock = simulator(OUTAGE_SEED, at("2026-01-27T23:50"))
    rows = looks(tmp_path, port, clock, ProfileConfig(PROFILE, 900.0, 3600.0, "UTC"),
                 [dt.timedelta(minutes=50)])
    assert [r.ts for r in rows] == capture_times(station, at("2026-01-27T23:00"),
                                                 at("2026-01-28T00:30"))
    assert [line.split("profile 1.0.99.1.0.255: ")[1] for line in gap_warnings(caplog)] == [
        GAP_LINE + " (the meter captured nothing: power failure, reset or clock change)"]


@pytest.mark.parametrize("first_look", ["00:40", "01:10", "01:40"])
def test_a_look_from_inside_the_repeated_hour_loses_no_row(tmp_path, simulator,
                                                          first_look) -> None:
    """2026-10-25 in Vienna: 02:00-03:00 local comes twice (00:00-01:00 and 01:00-02:00
    UTC). The meter writes bare local times (no deviation, no clock status), so only the
    order of the rows tells the passes apart. A look ends inside the repeated hour (its
    first pass, the start of its second, inside its second); the next, an hour later,
    publishes every row after it once, none placed on the other pass."""
    station, port, clock = simulator(7, at(f"2026-10-25T{first_look}"))
    station.model.meter.time_stamp_style = "bare"
    rows = looks(tmp_path, port, clock,
                 ProfileConfig(PROFILE, 900.0, 3 * 3600.0, "Europe/Vienna"),
                 [dt.timedelta(hours=1)])
    # The backfill reaches 3 h back from the first look: its first capture time after.
    first = at(f"2026-10-25T{first_look}") - dt.timedelta(hours=3) + dt.timedelta(minutes=5)
    assert [r.ts for r in rows] == capture_times(station, first,
                                                 clock() - dt.timedelta(minutes=10))
