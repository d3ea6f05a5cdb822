"""dlms-edge profile against the simulator over TCP, and the profile reader's pieces."""

from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
import json

import pytest

from edge_agent.cli import main
from edge_agent.cli.progress import ProgressBar
from edge_agent.client.load_profile import ProfileColumn, ProfileLayout, ProfileReader, day_chunks
from edge_agent.dlms.cosem.interface_classes import CLOCK_TIME, CaptureObject
from edge_agent.dlms.encoding.date_time import CosemDateTime
from edge_agent.dlms.errors import ConfigError, DecodeError
from edge_agent.dlms.cosem.obis import Obis
from edge_agent.dlms.cosem.units import ScalerUnit
from edge_agent.simulator.meter import SimulatedMeterStation, SimulatorOptions
from edge_agent.simulator.server import MeterServer

# The simulated meter's clock stands still here: 13:00 local (CET, deviation -60).
NOW = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)
ENERGY = "1.0.1.8.0.255"


@pytest.fixture(scope="module")
def meter_address():
    station = SimulatedMeterStation(SimulatorOptions(profile="generic", seed=7), clock=lambda: NOW)
    server = MeterServer([station.station])
    host, port = server.start_tcp("127.0.0.1", 0)
    yield f"{host}:{port}"
    server.stop()


def profile(capsys, address, state, *args):
    code = main(["profile", "--tcp", address, "--timeout", "3", "--state-dir", str(state), *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_one_day_is_96_rows_in_csv_with_obis_and_unit_headers(meter_address, tmp_path, capsys):
    target = tmp_path / "day.csv"
    code, out, err = profile(capsys, meter_address, tmp_path, "--from", "2026-11-20", "--to", "2026-11-21",
                             "--csv", str(target))
    assert code == 0, err
    assert out == ""  # data went to the file, progress to stderr
    assert "1/1" in err and "96 rows" in err
    table = list(csv.reader(target.open(encoding="utf-8")))
    assert table[0] == ["timestamp", "0.0.96.10.1.255", "1.0.1.8.0.255 [Wh]", "1.0.2.8.0.255 [Wh]",
                        "1.0.3.8.0.255 [varh]", "1.0.4.8.0.255 [varh]"]
    rows = table[1:]
    assert len(rows) == 96
    assert rows[0][0] == "2026-11-20T00:00:00+01:00"
    assert rows[-1][0] == "2026-11-20T23:45:00+01:00"
    stamps = [dt.datetime.fromisoformat(r[0]) for r in rows]
    assert all(b - a == dt.timedelta(minutes=15) for a, b in itertools.pairwise(stamps))
    energy = [int(r[2]) for r in rows]
    assert energy == sorted(energy) and energy[-1] > energy[0]  # an energy register only grows


def test_profile_row_matches_the_register_read_at_the_same_moment(meter_address, tmp_path, capsys):
    code, out, err = profile(capsys, meter_address, tmp_path, "--from", "2026-11-25T12:00",
                             "--to", "2026-11-25T13:15", "--json")
    assert code == 0, err
    document = json.loads(out)
    rows = document["rows"]
    assert [r["timestamp"] for r in rows] == [
        "2026-11-25T12:00:00+01:00", "2026-11-25T12:15:00+01:00", "2026-11-25T12:30:00+01:00",
        "2026-11-25T12:45:00+01:00", "2026-11-25T13:00:00+01:00"]
    units = {c["key"]: c["unit"] for c in document["columns"]}
    assert units[ENERGY] == "Wh" and units["1.0.3.8.0.255"] == "varh"
    assert document["capture_period"] == 900

    assert main(["read", "--tcp", meter_address, "--state-dir", str(tmp_path), "--json",
                 ENERGY, "1.0.2.8.0.255"]) == 0
    registers = json.loads(capsys.readouterr().out)
    # The meter's clock stands at 13:00 local: the last row is the register's value now.
    assert rows[-1][ENERGY] == registers[ENERGY]["value"]
    assert rows[-1]["1.0.2.8.0.255"] == registers["1.0.2.8.0.255"]["value"]
    assert rows[0][ENERGY] < rows[-1][ENERGY]


def test_chunks_do_not_lose_or_repeat_rows_at_their_edges(meter_address, tmp_path, capsys):
    code, out, err = profile(capsys, meter_address, tmp_path, "--from", "2026-11-20T18:00",
                             "--to", "2026-11-22T06:00", "--chunk-hours", "5", "--csv", "-")
    assert code == 0, err
    stamps = [line.split(",")[0] for line in out.splitlines()[1:]]
    assert len(stamps) == 36 * 4 == len(set(stamps))
    assert stamps[0] == "2026-11-20T18:00:00+01:00" and stamps[-1] == "2026-11-22T05:45:00+01:00"


def test_range_with_offset_is_absolute_time(meter_address, tmp_path, capsys):
    code, out, err = profile(capsys, meter_address, tmp_path, "--from", "2026-11-20T00:00Z",
                             "--to", "2026-11-20T01:00Z", "--json")
    assert code == 0, err
    stamps = [r["timestamp"] for r in json.loads(out)["rows"]]
    assert stamps[0] == "2026-11-20T01:00:00+01:00" and len(stamps) == 4


def test_range_without_rows_gives_the_header_only(meter_address, tmp_path, capsys):
    # The simulated buffer holds 40 days; a year back is empty.
    code, out, err = profile(capsys, meter_address, tmp_path, "--from", "2025-11-20", "--to", "2025-11-21",
                             "--csv", "-")
    assert code == 0, err
    header = ("timestamp,0.0.96.10.1.255,1.0.1.8.0.255 [Wh],1.0.2.8.0.255 [Wh],"
              "1.0.3.8.0.255 [varh],1.0.4.8.0.255 [varh]")
    assert out.splitlines() == [header]
    assert "0 rows" in err


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
