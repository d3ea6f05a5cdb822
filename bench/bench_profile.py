"""30 days of load profile (2 880 rows) over an emulated 9600 baud line: bytes, line-rate
minimum, wall time.

    .venv/bin/python bench/bench_profile.py [--days N] [--baud B] [--chunk-hours H]

The simulated meter serves HDLC (IEC 62056-46) on one end of a pty pair, the client reads
on the other; between them a relay paces each direction at ``baud`` / 10 bytes per
second (8N1 or 8E1 framing is 10 or 11 bits a byte; 10 is the usual figure), so the
client sees the timing of a real line: a byte arrives no sooner than the line could have
carried it. The client reads the profile the way ``dlms-edge profile`` does (a GET with a
range descriptor per day, answers in GET datablocks and HDLC segments) and the relay
counts every byte both ways.

Printed: rows, bytes on the wire, the line-rate minimum (bytes × 10 / baud: no client
could be faster on that line), the wall time and their ratio (the protocol's waiting:
turn-arounds, acknowledgements, the simulator's processing). Never asserted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import select
import sys
import tempfile
import threading
import time
import zoneinfo
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge_agent.client.client import MeterClient  # noqa: E402
from edge_agent.client.connection import ConnectionSettings  # noqa: E402
from edge_agent.client.load_profile import ProfileReader  # noqa: E402
from edge_agent.dlms.association.client import ClientSettings  # noqa: E402
from edge_agent.simulator.meter import SimulatedMeterStation, SimulatorOptions  # noqa: E402
from edge_agent.simulator.server import MeterServer  # noqa: E402
from edge_agent.transport.pty import open_pty  # noqa: E402

BITS_PER_BYTE = 10  # start bit, 8 data bits, stop bit
NOW = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)


class PacedLine:
    """Two linked ptys whose relay carries at most ``baud / 10`` bytes a second each way."""

    def __init__(self, baud: int) -> None:
        self.seconds_per_byte = BITS_PER_BYTE / baud
        self._a, self._b = open_pty(), open_pty()
        self.path_a, self.path_b = self._a.path, self._b.path
        self.bytes = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._relay, args=(src, dst), daemon=True)
                         for src, dst in ((self._a.master_fd, self._b.master_fd),
                                          (self._b.master_fd, self._a.master_fd))]
        for thread in self._threads:
            thread.start()

    def _relay(self, source: int, target: int) -> None:
        free_at = time.monotonic()  # when the line is idle again in this direction
        while not self._stop.is_set():
            readable, _, _ = select.select([source], [], [], 0.1)
            if not readable:
                continue
            try:
                data = os.read(source, 64)  # small pieces: the pacing stays fine-grained
            except OSError:
                continue
            free_at = max(free_at, time.monotonic()) + len(data) * self.seconds_per_byte
            delay = free_at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            view = memoryview(data)
            while view:
                view = view[os.write(target, view):]
            with self._lock:
                self.bytes += len(data)

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=2)
        self._a.close()
        self._b.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--baud", type=int, default=9600)
    parser.add_argument("--chunk-hours", type=float, default=24.0)
    parser.add_argument("--quick", action="store_true", help="two days (a smoke run)")
    args = parser.parse_args()
    if args.quick:
        args.days = 2

    station = SimulatedMeterStation(SimulatorOptions(profile="generic", seed=7),
                                    clock=lambda: NOW)
    server = MeterServer([station.station])
    line = PacedLine(args.baud)
    serving = threading.Thread(target=server.serve_serial, args=(line.path_a, args.baud),
                               daemon=True)
    serving.start()
    zone = zoneinfo.ZoneInfo("Europe/Vienna")
    end = NOW.astimezone(zone).replace(hour=0, minute=0, second=0, microsecond=0)
    start = end - dt.timedelta(days=args.days)
    with tempfile.TemporaryDirectory() as state:
        client = MeterClient(ConnectionSettings(serial=line.path_b, baud=args.baud, parity="N"),
                             ClientSettings(), meter_id="bench", state_dir=state)
        began = time.monotonic()
        try:
            with client:
                connected = time.monotonic()
                at_connect = line.bytes
                reader = ProfileReader(client, chunk=dt.timedelta(hours=args.chunk_hours),
                                       zone=zone)
                rows = list(reader.rows(start, end))
                finished = time.monotonic()
        finally:
            server.stop()
            serving.join(timeout=2)  # the server lets go of the pty before it closes
            line.close()
    wire = line.bytes
    profile_bytes = wire - at_connect
    minimum = wire * BITS_PER_BYTE / args.baud
    wall = finished - began
    print(f"profile {args.days} days at {args.baud} baud ({BITS_PER_BYTE} bits a byte), "
          f"chunks of {args.chunk_hours:g} h, report: {reader.report.as_json()['missing']} "
          "missing row(s)")
    print(f"  rows                 {len(rows):>10}")
    print(f"  bytes on the wire    {wire:>10}   (association {at_connect}, profile "
          f"{profile_bytes}, {profile_bytes / max(len(rows), 1):.1f} a row)")
    print(f"  requests             {reader.requests:>10}")
    print(f"  line-rate minimum    {minimum:>10.1f} s")
    print(f"  wall time            {wall:>10.1f} s   (association {connected - began:.1f} s; "
          f"{wall / minimum:.2f} x the line-rate minimum)")


if __name__ == "__main__":
    main()
