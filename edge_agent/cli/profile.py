"""dlms-edge profile: read a load profile (profile generic buffer) by time range.

Output formats (``--format``): ``csv`` -- header ``ts`` (ISO 8601 UTC), one column per
captured value object in dotted OBIS form (scaled values), then ``status`` (the AMR
profile status register the profile captures, 0-x:96.10.x, else the clock status octet of
the row's time stamp); ``json`` -- one document with the columns (OBIS, name, unit), the
rows and the report; ``table`` -- aligned columns with units, for people.

What was odd about the rows (gaps, duplicates, clock flagged invalid or doubtful, DST
changes, local times placed by a guess) goes to stderr as ``report:`` lines, and into the
JSON document; the rows themselves are never shifted to hide it.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any, TextIO

from edge_agent.cli.options import (
    FrameTap,
    add_connection_arguments,
    add_output_arguments,
    add_security_arguments,
    client_from_args,
)
from edge_agent.cli.progress import ProgressBar, throughput
from edge_agent.client.load_profile import (
    LOAD_PROFILE,
    MODES,
    ProfileLayout,
    ProfileReader,
    ProfileReport,
    zone_named,
)
from edge_agent.dlms.cosem.obis import Obis
from edge_agent.dlms.errors import ConfigError, DecodeError

EXAMPLES = """\
  dlms-edge profile --tcp 127.0.0.1:4059                       # the last 24 h, a table
  dlms-edge profile --tcp 127.0.0.1:4059 --from 2026-11-20 --to 2026-11-21 --format csv
  dlms-edge profile --tcp 127.0.0.1:4059 --from 2026-11-01 --to 2026-12-01 --format csv \\
      --output november.csv --timezone Europe/Vienna
  dlms-edge profile --tcp 127.0.0.1:4059 --from 2026-11-20T06:00Z --to 2026-11-20T12:00Z --format json
  dlms-edge profile --serial /dev/ttyUSB0 --optical --client 1 --security authenc --suite 1 \\
      --auth hls-gmac --keys-dir ~/meter-keys --obis 1.0.99.2.0.255 --from 2026-11-01 --format csv
  Dates without an offset are local times of --timezone (default: this host's zone); the
  end is exclusive (a day of a 15-minute profile is 96 rows, 00:00 to 23:45). CSV time
  stamps are UTC. Progress and the report go to stderr, data to stdout."""

_DATE_FORMS = "YYYY-MM-DD, YYYY-MM-DDTHH:MM or with an offset (2026-11-20T00:00+01:00, ...Z)"
FORMATS = ("csv", "json", "table")
DEFAULT_SPAN = dt.timedelta(hours=24)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    span = parser.add_argument_group("range")
    span.add_argument("--from", dest="start", metavar="WHEN",
                      help=f"first time stamp to include ({_DATE_FORMS}; default: 24 h "
                           "before --to)")
    span.add_argument("--to", dest="end", metavar="WHEN",
                      help="first time stamp to leave out (default: now)")
    span.add_argument("--obis", default=LOAD_PROFILE.dotted,
                      help=f"the profile generic object (default {LOAD_PROFILE.dotted}, load profile 1)")
    span.add_argument("--timezone", metavar="ZONE",
                      help="the meter's time zone (IANA name, e.g. Europe/Vienna): dates without "
                           "offset and time stamps without deviation are its local times "
                           "(default: this host's zone)")
    span.add_argument("--chunk-hours", type=float, default=24.0, metavar="H",
                      help="hours per request (default 24; less for meters with small PDUs)")
    span.add_argument("--access", choices=MODES, default="auto",
                      help="how to ask for the buffer: by range (selector 1), by entry "
                           "(selector 2) or whole; auto: range, entry when the meter refuses "
                           "ranges, whole when the association has no selective access")
    out = parser.add_argument_group("output")
    out.add_argument("--format", choices=FORMATS,
                     help="csv (ts in UTC, one column per OBIS, status), json or table "
                          "(default table; --json means json)")
    out.add_argument("--output", "-o", metavar="FILE",
                     help="write the data to FILE instead of stdout ('-' for stdout)")
    out.add_argument("--csv", metavar="FILE",
                     help="short for --format csv --output FILE ('-' for stdout)")
    out.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    add_connection_arguments(parser)
    add_security_arguments(parser)
    add_output_arguments(parser, "print one JSON document (same as --format json)")


def parse_when(text: str, option: str) -> dt.datetime:
    """A date or date-time from the command line; naive means local time of --timezone."""
    try:
        return dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise ConfigError(f"{option} {text!r} is not a date: expected {_DATE_FORMS}") from None


def resolve_range(start_text: str | None, end_text: str | None, now: dt.datetime
                  ) -> tuple[dt.datetime, dt.datetime]:
    """--from/--to with their defaults: the 24 h before --to, --to now."""
    end = parse_when(end_text, "--to") if end_text else None
    start = parse_when(start_text, "--from") if start_text else None
    if end is None:
        end = now if start is None or start.tzinfo is not None else now.replace(tzinfo=None)
    if start is None:
        start = end - DEFAULT_SPAN
    return start, end


def output_format(args: argparse.Namespace) -> str:
    if args.format:
        return args.format
    if args.csv:
        return "csv"
    if args.json:
        return "json"
    return "table"


def _utc(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _cell(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False)
    return "" if value is None else value


def _status(layout: ProfileLayout, row: dict[str, Any]) -> Any:
    column = layout.status_column
    return row.get(column.key) if column is not None else row.get("clock_status")


def write_csv(stream: TextIO, layout: ProfileLayout, rows: Iterable[dict[str, Any]]) -> int:
    writer = csv.writer(stream, lineterminator="\n")
    values = layout.value_columns
    writer.writerow(["ts", *(c.key for c in values), "status"])
    count = 0
    for row in rows:
        writer.writerow([_utc(row["timestamp"]), *(_cell(row.get(c.key)) for c in values),
                         _cell(_status(layout, row))])
        count += 1
    return count


def write_table(stream: TextIO, layout: ProfileLayout, rows: list[dict[str, Any]]) -> None:
    values = layout.value_columns
    headers = ["ts (UTC)", *(c.header for c in values), "status"]
    cells = [[_utc(row["timestamp"]), *(str(_cell(row.get(c.key))) for c in values),
              str(_cell(_status(layout, row)))] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    stream.write("  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip() + "\n")
    stream.writelines("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip() + "\n" for r in cells)


def json_document(profile: Obis, start: dt.datetime, end: dt.datetime, layout: ProfileLayout,
                  rows: list[dict[str, Any]], report: ProfileReport | None) -> dict[str, Any]:
    values = layout.value_columns
    return {
        "profile": profile.dotted,
        "from": start.isoformat(),
        "to": end.isoformat(),
        "capture_period": layout.capture_period,
        "entries_in_use": layout.entries_in_use,
        "profile_entries": layout.profile_entries,
        "columns": [c.as_json() for c in values],
        "rows": [{"ts": _utc(row["timestamp"]), "local": row["timestamp"].isoformat(),
                  **{c.key: row.get(c.key) for c in values},
                  "status": _status(layout, row), "clock_status": row.get("clock_status")}
                 for row in rows],
        "report": report.as_json() if report is not None else None,
    }


def _open_output(path: str) -> TextIO:
    try:
        return open(path, "w", encoding="utf-8", newline="")
    except OSError as error:
        raise ConfigError(f"cannot write --output {path}: {error.strerror}; choose another path") from None


def run(args: argparse.Namespace) -> int:
    if args.csv and args.output and args.csv != args.output:
        raise ConfigError(f"--csv {args.csv} and --output {args.output} name two files; give one")
    args.output = args.output or args.csv
    zone = zone_named(args.timezone)
    start, end = resolve_range(args.start, args.end, dt.datetime.now(zone))
    try:
        profile = Obis.parse(args.obis)
    except DecodeError as error:
        raise ConfigError(f"--obis {args.obis!r} is not an OBIS code: {error}") from None
    if not args.chunk_hours > 0:
        raise ConfigError(f"--chunk-hours must be positive, got {args.chunk_hours}")
    form = output_format(args)
    target = _open_output(args.output) if args.output and args.output != "-" else None
    try:
        return _read(args, profile, zone, start, end, form, target or sys.stdout)
    finally:
        if target is not None:
            target.close()


class _WireCount:
    """Bytes on the wire both ways, counted at the client's frame tap; ``listener`` (when
    set) hears of every frame, so the bar moves during one long GET and its blocks (a
    meter without selective access gives its whole buffer in one read)."""

    def __init__(self, tap: FrameTap) -> None:
        self.tap = tap
        self.bytes = 0
        self.listener: Callable[[], None] | None = None

    def __call__(self, direction: str, frame: bytes) -> None:
        self.bytes += len(frame)
        self.tap(direction, frame)
        if self.listener is not None:
            self.listener()


def _read(args: argparse.Namespace, profile: Obis, zone: dt.tzinfo, start: dt.datetime,
          end: dt.datetime, form: str, stream: TextIO) -> int:
    tap = FrameTap(args.verbose, args.capture)
    wire = _WireCount(tap)
    # Progress only for people watching a terminal: pipes, files and CI stay quiet.
    bar = ProgressBar(0, f"profile {profile.dotted}",
                      enabled=not args.no_progress and sys.stderr.isatty())
    began = time.monotonic()
    try:
        with client_from_args(args, wire) as meter:
            reader = ProfileReader(meter, profile, dt.timedelta(hours=args.chunk_hours),
                                   zone=zone, mode=args.access)
            reader.chunks(start, end)  # range errors before any request
            layout = reader.layout()

            state = [0, 1, 0]  # requests done, requests in all, rows so far

            def redraw() -> None:
                done, total, rows = state
                bar.total = total
                bar.update(done, throughput(rows, wire.bytes, time.monotonic() - began,
                                            done, total))

            def advance(done: int, total: int, rows: int) -> None:
                state[:] = done, total, rows
                redraw()

            if bar.enabled:
                wire.listener = redraw
            rows = list(reader.rows(start, end, advance))
        bar.finish(throughput(len(rows), wire.bytes, time.monotonic() - began, 1, 1))
    except BaseException:
        bar.abandon()
        raise
    finally:
        tap.close()
    report = reader.report
    if form == "csv":
        write_csv(stream, layout, rows)
    elif form == "json":
        stream.write(json.dumps(json_document(profile, start, end, layout, rows, report),
                                indent=2, ensure_ascii=False) + "\n")
    else:
        write_table(stream, layout, rows)
    if report is not None:
        for line in report.lines():
            print(f"report: {line}", file=sys.stderr)
    return 0
