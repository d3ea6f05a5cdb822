"""Two days of load profile over HDLC on a pty pair (the serial path of an optical head or
RS-485 adapter), through the same reader as over TCP."""

from __future__ import annotations

import datetime as dt
import itertools
import threading
import zoneinfo

import pytest

from edge_agent.client.client import MeterClient
from edge_agent.client.connection import ConnectionSettings
from edge_agent.client.load_profile import ProfileReader
from edge_agent.dlms.association.client import ClientSettings
from edge_agent.simulator.meter import SimulatedMeterStation, SimulatorOptions
from edge_agent.simulator.server import MeterServer
from edge_agent.transport.pty import PtyPair

NOW = dt.datetime(2026, 10, 26, 12, 0, tzinfo=dt.UTC)  # the day after the autumn change
VIENNA = zoneinfo.ZoneInfo("Europe/Vienna")
ENERGY = "1.0.1.8.0.255"


def read(settings: ConnectionSettings, tmp_path, start, end, client_settings=None, **options):
    client = MeterClient(settings, client_settings or ClientSettings(), meter_id="pty",
                         state_dir=tmp_path)
    with client:
        reader = ProfileReader(client, zone=VIENNA, **options)
        return list(reader.rows(start, end)), reader.report


@pytest.mark.timeout(120)
def test_two_days_over_a_pty_pair_match_the_same_days_over_tcp(tmp_path) -> None:
    station = SimulatedMeterStation(SimulatorOptions(profile="generic", seed=7),
                                    clock=lambda: NOW)
    server = MeterServer([station.station])
    pair = PtyPair()
    serving = threading.Thread(target=server.serve_serial, args=(pair.path_a, 9600),
                               daemon=True)
    serving.start()
    tcp = MeterServer([station.station])
    _, port = tcp.start_tcp("127.0.0.1", 0)
    # Two local days, one of them 25 hours long (02:00-03:00 twice).
    start, end = dt.datetime(2026, 10, 24), dt.datetime(2026, 10, 26)
    try:
        rows, report = read(ConnectionSettings(serial=pair.path_b, baud=9600, parity="N"),
                            tmp_path / "serial", start, end)
        same, _ = read(ConnectionSettings(tcp=("127.0.0.1", port)), tmp_path / "tcp",
                       start, end)
    finally:
        server.stop()
        tcp.stop()
        serving.join(timeout=5)
        pair.close()
    stamps = [r["timestamp"].astimezone(dt.UTC) for r in rows]
    assert len(rows) + report.missing == 96 + 100
    assert all(a < b for a, b in itertools.pairwise(stamps))
    assert stamps[0] == dt.datetime(2026, 10, 23, 22, 0, tzinfo=dt.UTC)
    assert stamps[-1] == dt.datetime(2026, 10, 25, 22, 45, tzinfo=dt.UTC)
    energy = [r[ENERGY] for r in rows]
    assert all(a <= b for a, b in itertools.pairwise(energy))
    assert rows == same
    assert report.mode == "range" and report.requests == 4  # capture objects, one with-list, two days
    assert [d.isoformat() for d in report.dst_changes] == ["2026-10-25T02:00:00+01:00"]


def test_a_day_in_get_datablocks_of_128_bytes_gives_the_same_rows(tmp_path) -> None:
    """A client that receives at most 128-byte APDUs gets the day in GET datablocks
    (Green Book, GET service with block transfer): the same rows as in one answer."""
    station = SimulatedMeterStation(SimulatorOptions(profile="generic", seed=7),
                                    clock=lambda: NOW)
    sent: list[bytes] = []
    server = MeterServer([station.station],
                         tap=lambda direction, data: sent.append(data) if direction == "tx" else None)
    _, port = server.start_tcp("127.0.0.1", 0)
    start, end = dt.datetime(2026, 10, 20), dt.datetime(2026, 10, 21)
    try:
        small, _ = read(ConnectionSettings(tcp=("127.0.0.1", port)), tmp_path / "small",
                        start, end, ClientSettings(max_receive_pdu_size=128))
        blocks = sum(data[8:10] == b"\xc4\x02" for data in sent)  # GET-Response-With-Datablock
        whole, _ = read(ConnectionSettings(tcp=("127.0.0.1", port)), tmp_path / "whole",
                        start, end)
    finally:
        server.stop()
    assert len(small) == 96 and small == whole
    assert blocks > 30  # about 5 kB of rows in blocks of at most 128 bytes
