"""dlms-edge profile: read a load profile (profile generic buffer) by time range."""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import sys
from collections.abc import Iterable
from typing import Any, TextIO

from edge_agent.cli.options import (
    FrameTap,
    add_connection_arguments,
    add_output_arguments,
    add_security_arguments,
    client_from_args,
)
from edge_agent.cli.progress import ProgressBar
from edge_agent.client.load_profile import LOAD_PROFILE, ProfileLayout, ProfileReader
from edge_agent.dlms.errors import ConfigError, DecodeError
from edge_agent.dlms.cosem.obis import Obis

HELP = "read a load profile by time range; CSV, JSON or a table"
EXAMPLES = """\
  dlms-edge profile --tcp 127.0.0.1:4059 --from 2026-11-20 --to 2026-11-21
  dlms-edge profile --tcp 127.0.0.1:4059 --from 2026-11-01 --to 2026-12-01 --csv november.csv
  dlms-edge profile --tcp 127.0.0.1:4059 --from 2026-11-20T06:00 --to 2026-11-20T12:00 --json
  dlms-edge profile --serial /dev/ttyUSB0 --optical --client 1 --security authenc --suite 1 \\
      --auth hls-gmac --keys-dir ~/meter-keys --obis 1.0.99.2.0.255 --from 2026-11-01 --csv -
  Dates without an offset are the meter's local time; the end is exclusive (a day of a
  15-minute profile is 96 rows, 00:00 to 23:45). Progress goes to stderr, data to stdout."""

_DATE_FORMS = "YYYY-MM-DD, YYYY-MM-DDTHH:MM or with an offset (2026-11-20T00:00+01:00, ...Z)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    span = parser.add_argument_group("range")
    span.add_argument("--from", dest="start", required=True, metavar="WHEN",
                      help=f"first time stamp to include ({_DATE_FORMS})")
    span.add_argument("--to", dest="end", metavar="WHEN",
                      help="first time stamp to leave out (default: tomorrow 00:00, i.e. up to now)")
    span.add_argument("--obis", default=LOAD_PROFILE.dotted,
                      help=f"the profile generic object (default {LOAD_PROFILE.dotted}, load profile 1)")
    span.add_argument("--chunk-hours", type=float, default=24.0, metavar="H",
                      help="hours per request (default 24; less for meters with small PDUs)")
    out = parser.add_argument_group("output")
    out.add_argument("--csv", metavar="FILE", help="write CSV to FILE ('-' for stdout)")
    out.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    add_connection_arguments(parser)
    add_security_arguments(parser)
    add_output_arguments(parser, "print one JSON document: columns (OBIS, name, unit) and rows")


def parse_when(text: str, option: str) -> dt.datetime:
    """A date or date-time from the command line; naive means meter local time."""
    try:
        moment = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise ConfigError(f"{option} {text!r} is not a date: expected {_DATE_FORMS}") from None
    return moment


def _default_end(start: dt.datetime) -> dt.datetime:
    tomorrow = dt.datetime.combine(dt.date.today() + dt.timedelta(days=1), dt.time())
    return tomorrow if start.tzinfo is None else tomorrow.replace(tzinfo=dt.UTC)


def _cell(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False)
    return "" if value is None else value


def write_csv(stream: TextIO, layout: ProfileLayout, rows: Iterable[dict[str, Any]]) -> None:
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(["timestamp", *(c.header for c in layout.columns)])
    keys = ["timestamp", *(c.key for c in layout.columns)]
    for row in rows:
        writer.writerow([_cell(row.get(k)) for k in keys])


def write_table(stream: TextIO, layout: ProfileLayout, rows: list[dict[str, Any]]) -> None:
    headers = ["timestamp", *(c.header for c in layout.columns)]
    keys = ["timestamp", *(c.key for c in layout.columns)]
    cells = [[str(_cell(row.get(k))) for k in keys] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    stream.write("  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip() + "\n")
    stream.writelines("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip() + "\n" for r in cells)


def _open_csv(path: str) -> TextIO:
    try:
        return open(path, "w", encoding="utf-8", newline="")
    except OSError as error:
        raise ConfigError(f"cannot write --csv {path}: {error.strerror}; choose another path") from None


def run(args: argparse.Namespace) -> int:
    start = parse_when(args.start, "--from")
    end = parse_when(args.end, "--to") if args.end else _default_end(start)
    try:
        profile = Obis.parse(args.obis)
    except DecodeError as error:
        raise ConfigError(f"--obis {args.obis!r} is not an OBIS code: {error}") from None
    if not args.chunk_hours > 0:
        raise ConfigError(f"--chunk-hours must be positive, got {args.chunk_hours}")
    csv_file = _open_csv(args.csv) if args.csv and args.csv != "-" else None
    try:
        return _read(args, profile, start, end, csv_file)
    finally:
        if csv_file is not None:
            csv_file.close()


def _read(args: argparse.Namespace, profile: Obis, start: dt.datetime, end: dt.datetime,
          csv_file: TextIO | None) -> int:
    tap = FrameTap(args.verbose, args.capture)
    bar = ProgressBar(0, f"profile {profile.dotted}", enabled=not args.no_progress)
    try:
        with client_from_args(args, tap) as meter:
            reader = ProfileReader(meter, profile, dt.timedelta(hours=args.chunk_hours))
            reader.chunks(start, end)  # range errors before any request
            layout = reader.layout()

            def advance(done: int, total: int, rows: int) -> None:
                bar.total = total
                bar.update(done, f"{'day' if args.chunk_hours == 24 else 'chunk'}s, {rows} rows")

            rows = list(reader.rows(start, end, advance))
        bar.finish(f"{len(rows)} rows")
    except BaseException:
        bar.abandon()
        raise
    finally:
        tap.close()
    if args.csv:
        write_csv(csv_file or sys.stdout, layout, rows)
    if args.json:
        document = {
            "profile": profile.dotted,
            "from": start.isoformat(),
            "to": end.isoformat(),
            "capture_period": layout.capture_period,
            "columns": [c.as_json() for c in layout.columns],
            "rows": [{k: _cell(v) if isinstance(v, dt.datetime) else v for k, v in row.items()} for row in rows],
        }
        print(json.dumps(document, indent=2, ensure_ascii=False))
    elif not args.csv:
        write_table(sys.stdout, layout, rows)
    return 0
