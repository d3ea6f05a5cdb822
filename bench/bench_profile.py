"""30 days of load profile (2 880 rows) over an emulated 9600 baud line: bytes, line-rate
minimum, wall time.

    .venv/bin/python bench/bench_profile.py [--days N] [--baud B] [--chunk-hours H]

The simulated meter serves HDLC (IEC 62056-46) on one end of an emulated line (a pty pair
paced at ``baud`` / 10 bytes per second each way,
:class:`edge_agent.transport.line_emulator.EmulatedLine`; 8N1 framing is 10 bits a byte),
the client reads on the other, so it sees the timing of a real line: a byte arrives no
sooner than the line could have carried it. ``--latency`` adds the meter's turnaround. The client reads the profile the way ``dlms-edge profile`` does (a GET with a
range descriptor per day, answers in GET datablocks and HDLC segments) and the relay
counts every byte both ways.

Printed: rows, bytes on the wire, the line-rate minimum (bytes × 10 / baud: no client
could be faster on that line), the wall time and their ratio (the protocol's waiting:
turn-arounds, acknowledgements, the simulator's processing). Never asserted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import threading
import time
import zoneinfo

from edge_agent.client.client import MeterClient
from edge_agent.client.connection import ConnectionSettings
from edge_agent.client.load_profile import ProfileReader
from edge_agent.dlms.association.client import ClientSettings
from edge_agent.simulator.meter import SimulatedMeterStation, SimulatorOptions
from edge_agent.simulator.server import MeterServer
from edge_agent.transport.line_emulator import EmulatedLine

BITS_PER_BYTE = 10  # start bit, 8 data bits, stop bit
NOW = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--baud", type=int, default=9600)
    parser.add_argument("--chunk-hours", type=float, default=24.0)
    parser.add_argument("--latency", type=float, default=0.0,
                        help="the meter's turnaround: seconds before each answer")
    parser.add_argument("--quick", action="store_true", help="two days (a smoke run)")
    args = parser.parse_args()
    if args.quick:
        args.days = 2

    station = SimulatedMeterStation(SimulatorOptions(profile="generic", seed=7),
                                    clock=lambda: NOW)
    server = MeterServer([station.station])
    line = EmulatedLine(args.baud, bits=BITS_PER_BYTE, latency=args.latency)

    def on_wire() -> int:
        return line.stats.bytes_to_client + line.stats.bytes_to_meter

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
                at_connect = on_wire()
                reader = ProfileReader(client, chunk=dt.timedelta(hours=args.chunk_hours),
                                       zone=zone)
                rows = list(reader.rows(start, end))
                finished = time.monotonic()
        finally:
            server.stop()
            serving.join(timeout=2)  # the server lets go of the pty before it closes
            line.close()
    wire = on_wire()
    profile_bytes = wire - at_connect
    minimum = wire * BITS_PER_BYTE / args.baud
    wall = finished - began
    print(f"profile {args.days} days at {args.baud} baud ({BITS_PER_BYTE} bits a byte), "
          f"chunks of {args.chunk_hours:g} h, meter turnaround {args.latency:g} s, report: "
          f"{reader.report.missing} missing row(s)")
    print(f"  rows                 {len(rows):>10}")
    print(f"  bytes on the wire    {wire:>10}   (association {at_connect}, profile "
          f"{profile_bytes}, {profile_bytes / max(len(rows), 1):.1f} a row)")
    print(f"  requests             {reader.requests:>10}")
    print(f"  line-rate minimum    {minimum:>10.1f} s")
    print(f"  wall time            {wall:>10.1f} s   (association {connected - began:.1f} s; "
          f"{wall / minimum:.2f} x the line-rate minimum)")


if __name__ == "__main__":
    main()
