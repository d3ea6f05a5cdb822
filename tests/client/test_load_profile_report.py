"""The profile reader's report on buffers that real meters send and the simulator does not:
duplicates, conflicting rows, clocks flagged invalid or doubtful, a local hour that does not
exist, rows before the range. The meter here is a stand-in that answers GETs with fixed
A-XDR values, as decoded by the client's session (the reader's input)."""

from __future__ import annotations

import datetime as dt
import zoneinfo

from edge_agent.client.load_profile import Gap, ProfileReader
from edge_agent.dlms.apdu.conformance import Conformance
from edge_agent.dlms.cosem.interface_classes import CLOCK_TIME, CaptureObject
from edge_agent.dlms.cosem.obis import Obis
from edge_agent.dlms.encoding.date_time import ClockStatus, CosemDateTime

VIENNA = zoneinfo.ZoneInfo("Europe/Vienna")
ENERGY = CaptureObject(3, Obis.parse("1.0.1.8.0.255"), 2)
UTC = dt.UTC


class FixedMeter:
    """Answers the reader's GETs from a fixed buffer (attribute 2 ignores the selector,
    as a meter's answer to a range that covers the whole buffer would)."""

    def __init__(self, buffer: list, conformance: Conformance = Conformance.SELECTIVE_ACCESS
                 | Conformance.GET) -> None:
        self.buffer = buffer
        self.conformance = conformance

    def get(self, code, class_id, attribute, access=None):
        if attribute == 3:
            return [CLOCK_TIME.to_axdr(), ENERGY.to_axdr()]
        assert attribute == 2
        return self.buffer

    def get_many(self, items):
        # capture period, entries in use, profile entries, then the register's scaler_unit
        return [900, len(self.buffer), 1000, (0, 30)][:len(items)]


def stamp(local: str, deviation: int | None = -60, status: int | None = 0) -> bytes:
    moment = dt.datetime.fromisoformat(local)
    return CosemDateTime(moment.year, moment.month, moment.day, moment.isoweekday(),
                         moment.hour, moment.minute, 0, 0, deviation, status).encode()


def read(buffer, start="2026-11-20T00:00+01:00", end="2026-11-21T00:00+01:00"):
    reader = ProfileReader(FixedMeter(buffer), zone=VIENNA)
    rows = list(reader.rows(dt.datetime.fromisoformat(start), dt.datetime.fromisoformat(end)))
    return rows, reader.report


def test_gaps_duplicates_and_conflicts_are_reported_never_hidden():
    rows, report = read([
        (stamp("2026-11-20T10:00"), 100),
        (stamp("2026-11-20T10:15"), 110),
        (stamp("2026-11-20T10:15"), 110),  # sent twice: one kept
        (stamp("2026-11-20T11:00"), 150),  # 10:30 and 10:45 missing
        (stamp("2026-11-20T11:00"), 151),  # same time, another value: the first kept
        (stamp("2026-11-20T10:45"), 140),  # older than a row given: the clock went back
        (stamp("2026-11-20T11:15"), 160),
    ])
    assert [(r["timestamp"].astimezone(UTC).strftime("%H:%M"), r["1.0.1.8.0.255"])
            for r in rows] == [("09:00", 100), ("09:15", 110), ("10:00", 150), ("10:15", 160)]
    assert report.gaps == (Gap(rows[1]["timestamp"], rows[2]["timestamp"], 2),)
    assert report.missing == 2 and report.rows == 4
    assert [d.astimezone(UTC).strftime("%H:%M") for d in report.duplicates] == ["09:15"]
    assert [d.astimezone(UTC).strftime("%H:%M") for d in report.conflicts] == ["10:00",
                                                                                "09:45"]
    lines = report.lines()
    assert lines[0] == ("gap: 2 row(s) missing between 2026-11-20T09:15:00Z and "
                        "2026-11-20T10:00:00Z (the meter captured nothing: power failure, "
                        "reset or clock change)")
    assert report.as_json()["gaps"] == [{"after": "2026-11-20T09:15:00Z",
                                         "before": "2026-11-20T10:00:00Z", "missing": 2}]


def test_invalid_and_doubtful_clocks_are_kept_and_named():
    rows, report = read([
        (stamp("2026-11-20T10:00", status=ClockStatus.INVALID_VALUE), 100),
        (stamp("2026-11-20T10:15", status=ClockStatus.DOUBTFUL_VALUE), 110),
        (stamp("2026-11-20T10:30"), 120),
    ])
    assert len(rows) == 3
    assert rows[0]["clock_status"] == ClockStatus.INVALID_VALUE
    assert [d.astimezone(UTC).strftime("%H:%M") for d in report.invalid] == ["09:00"]
    assert [d.astimezone(UTC).strftime("%H:%M") for d in report.doubtful] == ["09:15"]
    assert any(line.startswith("clock invalid: 1 row(s) at 2026-11-20T09:00:00Z")
               for line in report.lines())


def test_a_local_time_the_spring_change_skips_is_reported():
    rows, report = read([
        (stamp("2026-03-29T01:45", None, None), 1),
        (stamp("2026-03-29T02:15", None, None), 2),  # no such time in Vienna
        (stamp("2026-03-29T03:30", None, None), 3),
    ], "2026-03-29T00:00+01:00", "2026-03-30T00:00+02:00")
    # Placed as the standard time a meter that has not switched yet means, and named.
    assert [r["timestamp"].astimezone(UTC).strftime("%H:%M") for r in rows] == [
        "00:45", "01:15", "01:30"]
    assert len(report.skipped_hour) == 1
    assert any(line.startswith("skipped hour: 1 row(s)") for line in report.lines())


def test_without_deviation_the_dst_bit_places_the_repeated_hour():
    dst = ClockStatus.DAYLIGHT_SAVING_ACTIVE
    rows, report = read([
        (stamp("2026-10-25T02:30", None, dst), 1),
        (stamp("2026-10-25T02:45", None, dst), 2),
        (stamp("2026-10-25T02:00", None, 0), 3),
        (stamp("2026-10-25T02:15", None, 0), 4),
    ], "2026-10-25T00:00+02:00", "2026-10-26T00:00+01:00")
    assert [r["timestamp"].astimezone(UTC).strftime("%H:%M") for r in rows] == [
        "00:30", "00:45", "01:00", "01:15"]
    assert len(report.repeated_hour) == 4 and not report.gaps
    assert [d.astimezone(UTC).strftime("%H:%M") for d in report.dst_changes] == ["01:00"]


def test_rows_outside_the_range_are_not_reported():
    _, report = read([
        (stamp("2026-11-19T10:00", status=ClockStatus.INVALID_VALUE), 1),
        (stamp("2026-11-20T10:00"), 2),
    ])
    assert report.rows == 1 and not report.invalid


def test_without_selective_access_the_whole_buffer_is_read_and_filtered():
    reader = ProfileReader(FixedMeter([(stamp("2026-11-20T10:00"), 1)], Conformance.GET),
                           zone=VIENNA)
    rows = list(reader.rows(dt.datetime(2026, 11, 20), dt.datetime(2026, 11, 21)))
    assert reader.mode == "whole" and reader.report.mode == "whole" and len(rows) == 1


def test_after_reports_the_gap_since_the_row_the_caller_already_has():
    """A read that begins after a power failure cannot see the gap on its own; told the
    time of the last row already given (the previous chunk's), it reports it."""
    buffer = [(stamp("2026-11-20T10:00"), 150), (stamp("2026-11-20T10:15"), 160)]
    meter = FixedMeter(buffer)
    start, end = (dt.datetime.fromisoformat(t) for t in ("2026-11-20T00:00+01:00",
                                                          "2026-11-21T00:00+01:00"))
    reader = ProfileReader(meter, zone=VIENNA)
    given = dt.datetime(2026, 11, 20, 8, 15, tzinfo=UTC)  # 09:15 local
    rows = list(reader.rows(start, end, after=given))
    assert len(rows) == 2  # it filters nothing
    assert reader.report.gaps == (Gap(given, rows[0]["timestamp"], 2),)
    assert reader.report.lines()[0].startswith(
        "gap: 2 row(s) missing between 2026-11-20T08:15:00Z and 2026-11-20T09:00:00Z")
    # Without it, or with the row just before, nothing is missing.
    assert list(reader.rows(start, end)) == rows and not reader.report.gaps
    list(reader.rows(start, end, after=given + dt.timedelta(minutes=30)))
    assert not reader.report.gaps
    # A row the caller already has comes again (the range includes its start): no gap,
    # and the gaps after it still count from the newest row.
    meter.buffer = [(stamp("2026-11-20T09:15"), 140), *buffer]
    rows = list(reader.rows(start, end, after=given))
    assert len(rows) == 3 and reader.report.gaps == (Gap(rows[0]["timestamp"],
                                                         rows[1]["timestamp"], 2),)
