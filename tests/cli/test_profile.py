"""dlms-edge profile against the simulator over TCP, and the profile reader's pieces."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import itertools
import json
import os
import re
import subprocess
import sys
import threading

import pytest

from edge_agent.cli import main
from edge_agent.cli.progress import ProgressBar, throughput
from edge_agent.client.load_profile import ProfileColumn, ProfileLayout, ProfileReader, day_chunks
from edge_agent.dlms.apdu.conformance import Conformance
from edge_agent.dlms.cosem.interface_classes import CLOCK_TIME, CaptureObject
from edge_agent.dlms.cosem.obis import Obis
from edge_agent.dlms.cosem.units import ScalerUnit
from edge_agent.dlms.encoding.date_time import CosemDateTime
from edge_agent.dlms.errors import ConfigError, DecodeError
from edge_agent.simulator.meter import SimulatedMeterStation, SimulatorOptions
from edge_agent.simulator.meter_models import LOAD_PROFILE
from edge_agent.simulator.server import MeterServer

# The simulated meter's clock stands still here: 13:00 local (CET, deviation -60).
NOW = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)
ENERGY = "1.0.1.8.0.255"
HEADER = ["ts", ENERGY, "1.0.2.8.0.255", "1.0.3.8.0.255", "1.0.4.8.0.255", "status"]
VIENNA = ("--timezone", "Europe/Vienna")
STEP = dt.timedelta(minutes=15)


def serve(clock=lambda: NOW, *, seed: int = 7):
    station = SimulatedMeterStation(SimulatorOptions(profile="generic", seed=seed), clock=clock)
    server = MeterServer([station.station])
    host, port = server.start_tcp("127.0.0.1", 0)
    return station, server, f"{host}:{port}"


@pytest.fixture(scope="module")
def meter_address():
    _, server, address = serve()
    yield address
    server.stop()


def profile(capsys, address, state, *args, timeout: float = 3):
    code = main(["profile", "--tcp", address, "--timeout", str(timeout), "--state-dir", str(state),
                 *args])
    out, err = capsys.readouterr()
    return code, out, err


def table(out: str) -> list[list[str]]:
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == HEADER
    return rows[1:]


def utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def test_two_days_to_now_are_about_192_rows_increasing_in_time_and_energy(meter_address,
                                                                          tmp_path, capsys):
    """The issue's done-when, through the CLI: --from two days ago --to now, CSV."""
    start = (NOW - dt.timedelta(days=2)).isoformat()
    code, out, err = profile(capsys, meter_address, tmp_path, "--from", start,
                             "--to", NOW.isoformat(), "--format", "csv")
    assert code == 0, err
    rows = table(out)
    stamps = [utc(r[0]) for r in rows]
    # 192 capture times; a power failure may leave a gap, which the report names.
    missing = sum(int(line.split()[2]) for line in err.splitlines()
                  if line.startswith("report: gap:"))
    assert len(rows) + missing == 192 and len(rows) >= 185
    assert stamps[0] == NOW - dt.timedelta(days=2) and stamps[-1] == NOW - STEP
    assert all(a < b for a, b in itertools.pairwise(stamps))
    assert all(r[0].endswith("Z") for r in rows)
    energy = [float(r[1]) for r in rows]
    assert all(a <= b for a, b in itertools.pairwise(energy)) and energy[-1] > energy[0]
    assert "[" not in err  # not a terminal: no progress bar


def test_one_local_day_is_96_rows_with_utc_stamps(meter_address, tmp_path, capsys):
    target = tmp_path / "day.csv"
    code, out, err = profile(capsys, meter_address, tmp_path, "--from", "2026-11-20", "--to", "2026-11-21",
                             "--csv", str(target), *VIENNA)
    assert code == 0, err
    assert out == ""  # data went to the file
    rows = table(target.read_text(encoding="utf-8"))
    assert len(rows) == 96
    assert rows[0][0] == "2026-11-19T23:00:00Z" and rows[-1][0] == "2026-11-20T22:45:00Z"
    assert all(b - a == STEP for a, b in itertools.pairwise(utc(r[0]) for r in rows))


def test_profile_rows_are_the_registers_at_their_time(tmp_path, capsys):
    station, server, address = serve()
    try:
        code, out, err = profile(capsys, address, tmp_path, "--from", "2026-11-25T12:00",
                                 "--to", "2026-11-25T13:15", "--format", "json", *VIENNA)
    finally:
        server.stop()
    assert code == 0, err
    document = json.loads(out)
    rows = document["rows"]
    assert [r["ts"] for r in rows] == ["2026-11-25T11:00:00Z", "2026-11-25T11:15:00Z",
                                       "2026-11-25T11:30:00Z", "2026-11-25T11:45:00Z",
                                       "2026-11-25T12:00:00Z"]
    assert rows[0]["local"] == "2026-11-25T12:00:00+01:00"
    units = {c["key"]: c["unit"] for c in document["columns"]}
    assert units[ENERGY] == "Wh" and units["1.0.3.8.0.255"] == "varh"
    assert document["capture_period"] == 900 and document["entries_in_use"] == 96 * 224
    assert document["report"]["rows"] == 5 and document["report"]["mode"] == "range"
    model = station.model
    for row in rows:
        when = model.meter.to_world(utc(row["ts"]))
        for code in (ENERGY, "1.0.2.8.0.255"):
            assert row[code] == int(model.register_values[bytes(Obis.parse(code))](when))
    assert rows[0][ENERGY] < rows[-1][ENERGY]


def test_chunks_do_not_lose_or_repeat_rows_at_their_edges(meter_address, tmp_path, capsys):
    code, out, err = profile(capsys, meter_address, tmp_path, "--from", "2026-11-20T18:00",
                             "--to", "2026-11-22T06:00", "--chunk-hours", "5", "--csv", "-",
                             *VIENNA)
    assert code == 0, err
    stamps = [r[0] for r in table(out)]
    assert len(stamps) == 36 * 4 == len(set(stamps))
    assert stamps[0] == "2026-11-20T17:00:00Z" and stamps[-1] == "2026-11-22T04:45:00Z"
    assert "report:" not in err


@pytest.mark.parametrize("start, end, first, count", [
    ("2026-11-20T00:00Z", "2026-11-20T01:00Z", "2026-11-20T00:00:00Z", 4),  # on capture times
    ("2026-11-20T00:00:01Z", "2026-11-20T01:00:01Z", "2026-11-20T00:15:00Z", 4),  # between
    ("2026-11-20T00:14:59Z", "2026-11-20T00:15:00Z", None, 0),  # no capture time inside
    ("2026-11-25T11:00Z", "2026-11-26T00:00Z", "2026-11-25T11:00:00Z", 5),  # the end in the future
])
def test_range_edges_start_inclusive_end_exclusive(meter_address, tmp_path, capsys, start,
                                                   end, first, count):
    code, out, err = profile(capsys, meter_address, tmp_path, "--from", start, "--to", end,
                             "--format", "csv")
    assert code == 0, err
    rows = table(out)
    assert len(rows) == count
    if count:
        assert rows[0][0] == first


@pytest.mark.parametrize("day, rows, change", [
    ("2026-03-29", 92, "2026-03-29T01:00:00Z"),  # spring: 02:00-03:00 local does not exist
    ("2026-10-25", 100, "2026-10-25T01:00:00Z"),  # autumn: 02:00-03:00 local twice
])
@pytest.mark.parametrize("style", ["full", "local", "bare"])
def test_both_dst_changes_give_every_quarter_hour_once(tmp_path, capsys, day, rows, change,
                                                       style):
    """The local day of a DST change has 92 or 100 rows, 15 minutes apart in UTC, never
    shifted. Time stamps with deviation are exact; without it the DST bit places the
    repeated hour, and without either the order does -- and the report says so."""
    station, server, address = serve(lambda: dt.datetime(2026, 11, 2, tzinfo=dt.UTC))
    station.model.meter.time_stamp_style = style
    try:
        following = (dt.date.fromisoformat(day) + dt.timedelta(days=1)).isoformat()
        code, out, err = profile(capsys, address, tmp_path, "--from", day, "--to", following,
                                 "--format", "csv", *VIENNA)
    finally:
        server.stop()
    assert code == 0, err
    found = table(out)
    stamps = [utc(r[0]) for r in found]
    assert len(found) == rows
    assert all(b - a == STEP for a, b in itertools.pairwise(stamps))
    assert f"report: daylight saving: 1 row(s) at {change.replace('+00:00', 'Z')}" in err
    repeated = [line for line in err.splitlines() if line.startswith("report: repeated hour")]
    if style != "full" and rows == 100:
        assert repeated and "8 row(s)" in repeated[0]  # 02:00-02:45 local, twice
    else:
        assert not repeated
    assert "skipped hour" not in err and "gap" not in err


def test_a_power_failure_shows_as_a_gap_with_the_status_bit(tmp_path, capsys):
    """Seed 7 has power failures; a year of rows shows them as gaps (rows missing,
    named in the report) and the row after each gap has the power-down bit (0x80)."""
    _, server, address = serve(lambda: dt.datetime(2026, 11, 2, tzinfo=dt.UTC))
    try:
        code, out, err = profile(capsys, address, tmp_path, "--from", "2026-04-01T00:00Z",
                                 "--to", "2026-11-01T00:00Z", "--format", "csv")
    finally:
        server.stop()
    assert code == 0, err
    rows = table(out)
    gaps = [line for line in err.splitlines() if line.startswith("report: gap:")]
    assert gaps
    after = {r[0]: int(r[-1]) for r in rows}
    for line in gaps:
        before = line.split(" and ")[1].split(" ")[0]
        assert after[before] & 0x80
    missing = sum(int(line.split()[2]) for line in gaps)
    assert len(rows) + missing == (dt.datetime(2026, 11, 1) - dt.datetime(2026, 4, 1)) / STEP


def access_variants():
    """The same range read three ways: by range, by entry (the meter refuses ranges) and
    the whole buffer (the association has no selective access)."""
    def entry_only(station):
        profile = station.model.objects[LOAD_PROFILE]
        profile.attributes[2] = dataclasses.replace(profile.attributes[2], selectors=(2,))

    def no_selective_access(station):
        clients = {sap: dataclasses.replace(access, conformance=access.conformance
                                            & ~Conformance.SELECTIVE_ACCESS)
                   for sap, access in station.settings.clients.items()}
        station.settings = dataclasses.replace(station.settings, clients=clients)

    return [("range", lambda station: None), ("entry", entry_only),
            ("whole", no_selective_access)]


@pytest.mark.parametrize("mode, change", access_variants())
def test_by_entry_and_whole_buffer_give_the_same_rows_as_by_range(meter_address, tmp_path,
                                                                   capsys, mode, change):
    code, expected, err = profile(capsys, meter_address, tmp_path, "--from", "2026-11-20T05:00Z",
                                  "--to", "2026-11-22T05:00Z", "--format", "csv")
    assert code == 0, err
    station, server, address = serve()
    change(station)
    try:
        # Read whole, the first block waits for the meter to encode 32 weeks of rows (the
        # simulator runs in this process): seconds on a loaded machine.
        code, out, err = profile(capsys, address, tmp_path, "--from", "2026-11-20T05:00Z",
                                 "--to", "2026-11-22T05:00Z", "--format", "json", timeout=20)
    finally:
        server.stop()
    assert code == 0, err
    document = json.loads(out)
    assert document["report"]["mode"] == mode
    assert [r["ts"] for r in document["rows"]] == [r[0] for r in table(expected)]
    assert [r[ENERGY] for r in document["rows"]] == [int(r[1]) for r in table(expected)]
    assert "duplicate" not in err


def test_the_default_range_is_the_last_24_hours(tmp_path, capsys):
    _, server, address = serve(lambda: dt.datetime.now(dt.UTC))
    try:
        code, out, err = profile(capsys, address, tmp_path, "--format", "csv")
    finally:
        server.stop()
    assert code == 0, err
    rows = table(out)
    assert 94 <= len(rows) <= 96  # a power failure may take a row or two
    span = utc(rows[-1][0]) - utc(rows[0][0])
    assert dt.timedelta(hours=23) <= span < dt.timedelta(hours=24)


def test_table_format_shows_units(meter_address, tmp_path, capsys):
    code, out, err = profile(capsys, meter_address, tmp_path, "--from", "2026-11-20T00:00Z",
                             "--to", "2026-11-20T00:30Z")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["ts", "(UTC)", "1.0.1.8.0.255", "[Wh]", "1.0.2.8.0.255", "[Wh]",
                                "1.0.3.8.0.255", "[varh]", "1.0.4.8.0.255", "[varh]", "status"]
    assert len(lines) == 3 and lines[1].startswith("2026-11-20T00:00:00Z")


def test_range_without_rows_gives_the_header_only(meter_address, tmp_path, capsys):
    # The simulated buffer holds 32 weeks; a year back is empty.
    code, out, err = profile(capsys, meter_address, tmp_path, "--from", "2025-11-20", "--to", "2025-11-21",
                             "--csv", "-")
    assert code == 0, err
    assert out.splitlines() == [",".join(HEADER)]


@pytest.mark.parametrize("start, end, expected", [
    ("2026-11-32", "2026-12-01", "--from '2026-11-32' is not a date"),
    ("2026-11-20", "yesterday", "--to 'yesterday' is not a date"),
    ("2026-11-21", "2026-11-20", "the range is empty"),
    ("2026-11-20", "2026-11-20", "the range is empty"),
    ("2026-11-20", "2026-11-21T00:00Z", "both ends of the range"),
])
def test_bad_ranges_are_one_clear_line_and_exit_2(meter_address, tmp_path, capsys, start, end, expected):
    code, out, err = profile(capsys, meter_address, tmp_path, "--from", start, "--to", end, "--no-progress")
    assert code == 2
    assert out == ""
    assert err.startswith("dlms-edge profile: error: ") and expected in err
    assert len(err.strip().splitlines()) == 1


def test_unknown_time_zone_is_a_config_error(meter_address, tmp_path, capsys):
    code, _, err = profile(capsys, meter_address, tmp_path, "--timezone", "Europe/Atlantis")
    assert code == 2 and "unknown time zone 'Europe/Atlantis'" in err


def test_unknown_profile_is_a_service_error(meter_address, tmp_path, capsys):
    code, _, err = profile(capsys, meter_address, tmp_path, "--from", "2026-11-20", "--to", "2026-11-21",
                           "--obis", "1.0.99.9.0.255", "--no-progress")
    assert code == 6
    assert "1.0.99.9.0.255" in err


# --- pieces -------------------------------------------------------------------------------


def test_day_chunks_align_to_midnight():
    start, end = dt.datetime(2026, 11, 20, 18), dt.datetime(2026, 11, 22, 6)
    assert day_chunks(start, end, dt.timedelta(days=1)) == [
        (start, dt.datetime(2026, 11, 21)), (dt.datetime(2026, 11, 21), dt.datetime(2026, 11, 22)),
        (dt.datetime(2026, 11, 22), end)]
    assert day_chunks(start, start, dt.timedelta(days=1)) == []
    with pytest.raises(ConfigError):
        day_chunks(start, end, dt.timedelta(0))


def test_day_chunks_of_a_dst_day_are_local_calendar_days():
    import zoneinfo
    zone = zoneinfo.ZoneInfo("Europe/Vienna")
    start = dt.datetime(2026, 10, 25, tzinfo=zone)
    chunks = day_chunks(start, dt.datetime(2026, 10, 27, tzinfo=zone), dt.timedelta(days=1))
    assert [high - low for low, high in chunks] == [dt.timedelta(hours=25), dt.timedelta(hours=24)]
    assert chunks[1][0] == dt.datetime(2026, 10, 25, 23, tzinfo=dt.UTC)


ENERGY_CAPTURE = CaptureObject(3, Obis.parse(ENERGY), 2)
LAYOUT = ProfileLayout(Obis(1, 0, 99, 1, 0, 255), (CLOCK_TIME, ENERGY_CAPTURE), CLOCK_TIME,
                       (ProfileColumn(ENERGY_CAPTURE, ENERGY, ScalerUnit(-1, 30)),), 900)


def test_rows_are_scaled_and_missing_time_stamps_follow_the_capture_period():
    first = CosemDateTime(2026, 11, 20, 5, 0, 15, 0, 0, -60, 0)
    rows = ProfileReader.decode_rows(LAYOUT, [(first.encode(), 12345), (None, 12346), (None, 12350)])
    assert [r[ENERGY] for r in rows] == [1234.5, 1234.6, 1235.0]
    assert [r["timestamp"].isoformat() for r in rows] == [
        "2026-11-20T00:15:00+01:00", "2026-11-20T00:30:00+01:00", "2026-11-20T00:45:00+01:00"]
    assert LAYOUT.columns[0].header == "1.0.1.8.0.255 [Wh]"
    assert LAYOUT.depth is None


def test_a_first_row_without_time_stamp_is_a_decode_error():
    with pytest.raises(DecodeError, match="no usable time stamp"):
        ProfileReader.decode_rows(LAYOUT, [(None, 1)])
    with pytest.raises(DecodeError, match="structure of 2 values"):
        ProfileReader.decode_rows(LAYOUT, [(1, 2, 3)])


def test_progress_bar_redraws_in_place_on_a_terminal_and_writes_lines_elsewhere():
    tty = io.StringIO()
    bar = ProgressBar(4, "profile", tty, width=4, interactive=True)
    bar.update(4, "done")
    bar.finish("96 rows")
    assert tty.getvalue() == "\r\x1b[Kprofile [####] 4/4 done\r\x1b[Kprofile [####] 4/4 96 rows\n"
    log = io.StringIO()
    bar = ProgressBar(20, "profile", log, width=4, interactive=False)
    for done in range(21):
        bar.update(done)
    lines = log.getvalue().splitlines()
    assert len(lines) == 11  # one per tenth, not one per step
    assert lines[-1] == "profile [####] 20/20"


def test_throughput_says_rows_bytes_rate_and_time_left():
    assert throughput(96, 4100, 2.0, 1, 3) == "96 rows, 4.1 kB, 2.0 kB/s, ETA 0:04"
    assert throughput(0, 0, 0.0, 0, 3) == "0 rows, 0 B"


def _on_a_terminal(meter_address: str, tmp_path, *options: str
                   ) -> tuple[subprocess.CompletedProcess[bytes], str]:
    """``dlms-edge profile`` with stderr on a terminal (a pty): its exit, and what the
    terminal showed."""
    from edge_agent.transport.pty import open_pty

    terminal = open_pty()
    shown = bytearray()

    def drain() -> None:  # the pty's buffer is small: read while the process writes
        while True:
            try:
                chunk = os.read(terminal.master_fd, 65536)
            except OSError:
                return
            if not chunk:
                return
            shown.extend(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        process = subprocess.run(
            [sys.executable, "-m", "edge_agent", "profile", "--tcp", meter_address,
             "--state-dir", str(tmp_path), "--format", "csv", *options],
            stdout=subprocess.PIPE, stderr=terminal.slave_fd, timeout=120, check=False)
    finally:
        os.close(terminal.slave_fd)  # the reader then sees the end (EIO) and returns
        reader.join(10)
        os.close(terminal.master_fd)
    return process, shown.decode()


def test_progress_shows_rows_bytes_and_rate_on_a_terminal(meter_address, tmp_path):
    """stderr on a terminal (a pty here): the bar with rows, bytes and rate; the data on
    stdout stays clean."""
    process, text = _on_a_terminal(meter_address, tmp_path, "--from", "2026-11-20T00:00Z",
                                   "--to", "2026-11-23T00:00Z")
    assert process.returncode == 0
    assert "\x1b[K" in text and "3/3" in text  # redrawn in place, three days
    assert "288 rows" in text and "kB" in text and "/s" in text
    assert process.stdout.decode().splitlines()[0] == ",".join(HEADER)


def _bytes(size: str, unit: str) -> int:
    return int(float(size) * {"B": 1, "kB": 1000, "MB": 1000_000}[unit])


def test_progress_moves_during_one_whole_buffer_read(tmp_path):
    """Read whole, the buffer comes in one GET and its blocks (32 weeks of rows here):
    the bar shows the bytes growing while that one request runs, not only at its end."""
    station = SimulatedMeterStation(SimulatorOptions(profile="generic", seed=7,
                                                     max_receive_pdu_size=128),
                                    clock=lambda: NOW)
    server = MeterServer([station.station])  # small blocks: a read of a second or more
    host, port = server.start_tcp("127.0.0.1", 0)
    try:
        process, text = _on_a_terminal(f"{host}:{port}", tmp_path, "--access", "whole",
                                       "--from", "2026-11-20T00:00Z",
                                       "--to", "2026-11-21T00:00Z")
    finally:
        server.stop()
    assert process.returncode == 0, text
    shown = [(done, int(rows), _bytes(size, unit)) for done, rows, size, unit in
             re.findall(r"(\d)/1 (\d+) rows, ([0-9.]+) (B|kB|MB)", text)]
    during = [size for done, rows, size in shown if done == "0" and rows == 0 and size]
    # At ten redraws a second, a read of a second or more shows several.
    assert len(during) >= 2 and during == sorted(during) and during[0] < during[-1]
    assert shown[-1][:2] == ("1", 96) and shown[-1][2] >= during[-1]  # the end: the day's rows
