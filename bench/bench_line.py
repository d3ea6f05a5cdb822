"""Reading 20 registers over an emulated 9600 baud line: our client, gurux's, the line's limit.

    .venv/bin/python bench/bench_line.py [--baud 9600] [--latency 0.02] [--rounds 3]
                                         [--meter-info 512] [--meter-window 1]

The simulated meter serves HDLC on one end of an emulated serial line
(edge_agent/transport/line_emulator.py: 10 bits per byte, the meter answering
``--latency`` seconds after the line went quiet) and grants at most ``--meter-info``-byte
information fields and a window of ``--meter-window`` frames in its UA (the simulator's own
512 and 1 by default). A client reads 20 registers on the other end, two ways:

1. **one-shot read** (``dlms-edge read`` with a fresh state dir): SNRM/UA, AARQ/AARE, the
   value and scaler_unit of every register, RLRQ/RLRE, DISC/UA;
2. **steady-state poll** (what the agent does on its second and later polls): on an
   association kept open, scalers known from the first poll, the 20 values alone. Only the
   poll is measured; the association and the first read before it are not.

Measured per client and mode: the line's busy time (first byte to last), the bytes on the
wire in both directions, the meter's turnarounds (answers it had to start), and the
line-rate minimum for those bytes (bytes x bits / baud). Contenders:

* dlms-edge's MeterClient (what ``dlms-edge read`` and the agent run): the largest HDLC
  parameters proposed in SNRM, what the meter grants used; GET-with-list sized to the
  meter's PDU; scalers cached per meter;
* gurux-dlms's GXDLMSClient (test-only peer, GPL) with its default HDLC settings (128-byte
  information fields, window 1): ``readList`` of the same attributes (GET-with-list, at most
  10 attributes per request), and one ``read`` per attribute (how its examples read); in
  the poll, reading attribute 2 only, the scaler kept in its register objects.

Targets: ours <= 0.3x gurux's busy time and <= 1.3x the line minimum of our bytes.
Printed, never asserted.
"""

from __future__ import annotations

import argparse
import copy
import os
import select
import statistics
import tempfile
import threading
import time
import tty
from collections.abc import Callable
from dataclasses import dataclass

from edge_agent.client.client import MeterClient
from edge_agent.client.connection import ConnectionSettings
from edge_agent.dlms.association.client import ClientSettings
from edge_agent.dlms.cosem.obis import Obis
from edge_agent.dlms.link.hdlc.frame import HdlcParameters
from edge_agent.simulator.meter import SimulatedMeterStation, SimulatorOptions
from edge_agent.simulator.server import MeterServer
from edge_agent.transport.line_emulator import EmulatedLine, LineStats

REGISTERS = [
    "1.0.1.8.0.255", "1.0.2.8.0.255", "1.0.3.8.0.255", "1.0.4.8.0.255", "1.0.1.8.1.255",
    "1.0.1.8.2.255", "1.0.2.8.1.255", "1.0.2.8.2.255", "1.0.1.7.0.255", "1.0.2.7.0.255",
    "1.0.14.7.0.255", "1.0.13.7.0.255", "1.0.32.7.0.255", "1.0.31.7.0.255",
    "1.0.33.7.0.255", "1.0.52.7.0.255", "1.0.51.7.0.255", "1.0.53.7.0.255",
    "1.0.72.7.0.255", "1.0.71.7.0.255",
]
MODES = {
    "one-shot": "(1) one-shot read: association, values + scaler_unit, release",
    "poll": "(2) steady-state poll on an open association, scalers cached: 20 values",
}
_QUIET = 0.05  # s: the relay has counted the last bytes by then (the client waits for none)


class Session:
    """What a reader tells the harness: the poll starts/ends here, a meter answer came,
    the HDLC parameters in use."""

    def __init__(self, line: EmulatedLine) -> None:
        self.line = line
        self.turnarounds = 0
        self.measured: tuple[LineStats, int] | None = None  # the poll's (line, turnarounds)
        self.parameters = ""
        self._turnarounds_before = 0

    def start(self) -> None:
        """From here on is the poll: the line's counters restart (the line is quiet)."""
        time.sleep(_QUIET)
        self.line.stats = LineStats()
        self._turnarounds_before = self.turnarounds

    def stop(self) -> None:
        """The poll ends here: keep its counters (the release that follows is not counted)."""
        time.sleep(_QUIET)
        self.measured = (copy.deepcopy(self.line.stats),
                         self.turnarounds - self._turnarounds_before)


Reader = Callable[[str, int, str, str, Session], int]


def ours(device: str, baud: int, state_dir: str, mode: str, session: Session) -> int:
    answered = [True]

    def tap(direction: str, frame: bytes) -> None:
        if direction == "rx" and not answered[0]:
            session.turnarounds += 1
        answered[0] = direction == "rx"

    codes = [Obis.parse(code) for code in REGISTERS]
    connection = ConnectionSettings(serial=device, baud=baud, timeout=5)
    with MeterClient(connection, ClientSettings(), meter_id="bench", state_dir=state_dir,
                     frame_counter=None, tap=tap) as meter:
        granted = meter.link.connection.parameters
        session.parameters = (f"{granted.max_info_transmit}/{granted.max_info_receive}-byte "
                              f"information fields, window {granted.window_transmit}/"
                              f"{granted.window_receive}")
        readings = meter.read(codes, class_ids=dict.fromkeys(codes, 3))
        if mode == "poll":
            session.start()
            readings = meter.read(codes, class_ids=dict.fromkeys(codes, 3))
            session.stop()
    return len(readings)


def gurux_reader(per_attribute: bool = False) -> Reader | None:
    try:
        import gurux_dlms as gurux
        from gurux_dlms import enums, objects
    except ImportError:
        return None

    def read(device: str, baud: int, state_dir: str, mode: str, session: Session) -> int:
        fd = os.open(device, os.O_RDWR | os.O_NOCTTY)
        tty.setraw(fd)
        client = gurux.GXDLMSClient(True, 16, gurux.GXDLMSClient.getServerAddress(1, 16, 4),
                                    enums.Authentication.NONE, None, enums.InterfaceType.HDLC)

        def exchange(request, reply) -> None:
            if request:
                os.write(fd, bytes(request))
                session.turnarounds += 1
            received = gurux.GXByteBuffer()
            while not client.getData(received, reply, gurux.GXReplyData()):
                ready, _, _ = select.select([fd], [], [], 5.0)
                if not ready:
                    raise TimeoutError("the meter did not answer gurux within 5 s")
                received.set(os.read(fd, 4096))

        def exchange_all(requests):
            reply = gurux.GXReplyData()
            for request in requests:
                reply.clear()
                exchange(request, reply)
                while reply.isMoreData():
                    exchange(client.receiverReady(reply), reply)
            return reply

        def read_all(pairs) -> None:
            if per_attribute:  # one GET-Request-Normal per attribute, as gurux's examples read
                for register, attribute in pairs:
                    reply = exchange_all(client.read(register, attribute))
                    client.updateValue(register, attribute, reply.value)
            else:
                values = []
                for requests in client.readList(pairs):
                    values.extend(exchange_all(requests).value)
                client.updateValues(pairs, values)

        try:
            reply = gurux.GXReplyData()
            exchange(client.snrmRequest(), reply)
            client.parseUAResponse(reply.data)
            hdlc = client.hdlcSettings
            session.parameters = (f"{hdlc.maxInfoTX}/{hdlc.maxInfoRX}-byte information fields,"
                                  f" window {hdlc.windowSizeTX}/{hdlc.windowSizeRX}")
            client.parseAareResponse(exchange_all(client.aarqRequest()).data)
            registers = [objects.GXDLMSRegister(code) for code in REGISTERS]
            read_all([(r, 3) for r in registers] + [(r, 2) for r in registers])
            if mode == "poll":  # the scalers stay in the register objects: values only
                for register in registers:
                    register.value = None
                session.start()
                read_all([(r, 2) for r in registers])
                session.stop()
            exchange_all(client.releaseRequest())
            exchange(client.disconnectRequest(), gurux.GXReplyData())
            return sum(1 for r in registers if r.value is not None)
        finally:
            os.close(fd)

    return read


@dataclass(frozen=True, slots=True)
class Run:
    busy: float  # s, first byte to last
    wire: int  # bytes, both directions
    turnarounds: int
    count: int  # registers read
    parameters: str  # HDLC parameters in use


def run_once(read: Reader, mode: str, args: argparse.Namespace) -> Run:
    line = EmulatedLine(baud=args.baud, bits=10, latency=args.latency)
    granted = HdlcParameters(args.meter_info, args.meter_info, args.meter_window,
                             args.meter_window)
    server = MeterServer([SimulatedMeterStation(SimulatorOptions(seed=5)).station],
                         parameters=granted)
    thread = threading.Thread(target=server.serve_serial, args=(line.path_a, args.baud),
                              daemon=True)
    thread.start()
    if not server.serial_open.wait(10):
        raise SystemExit(f"the simulator did not open {line.path_a}")
    session = Session(line)
    try:
        with tempfile.TemporaryDirectory() as state_dir:
            count = read(line.path_b, args.baud, state_dir, mode, session)
        time.sleep(_QUIET)
        stats, turnarounds = session.measured or (line.stats, session.turnarounds)
        return Run(stats.busy_time, stats.bytes_to_client + stats.bytes_to_meter,
                   turnarounds, count, session.parameters)
    finally:
        server.stop()
        thread.join(timeout=5)
        line.close()


def median_run(runs: list[Run]) -> Run:
    return Run(statistics.median(r.busy for r in runs),
               int(statistics.median(r.wire for r in runs)),
               int(statistics.median(r.turnarounds for r in runs)),
               min(r.count for r in runs), runs[0].parameters)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baud", type=int, default=9600)
    parser.add_argument("--latency", type=float, default=0.02, help="meter turnaround (s)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--meter-info", type=int, default=512,
                        help="largest information field the meter grants (bytes)")
    parser.add_argument("--meter-window", type=int, default=1,
                        help="largest window the meter grants (frames)")
    args = parser.parse_args()
    contenders: dict[str, Reader | None] = {
        "dlms-edge": ours, "gurux-dlms readList": gurux_reader(),
        "gurux-dlms, one GET per attribute": gurux_reader(per_attribute=True)}
    print(f"20 registers, HDLC over an emulated {args.baud} baud 8N1 line, meter turnaround "
          f"{args.latency * 1000:g} ms, the meter granting up to {args.meter_info}-byte "
          f"information fields and window {args.meter_window}; median of {args.rounds} rounds")
    results: dict[str, dict[str, Run]] = {mode: {} for mode in MODES}
    for mode, title in MODES.items():
        print(f"\n{title}")
        print(f"  {'client':34} {'busy':>8} {'bytes':>6} {'turns':>5} {'line min':>8} "
              f"{'x min':>6}  HDLC parameters in use")
        for name, read in contenders.items():
            if read is None:
                print(f"  {name:34} not installed: skipped")
                continue
            run = median_run([run_once(read, mode, args) for _ in range(args.rounds)])
            results[mode][name] = run
            minimum = run.wire * 10 / args.baud
            print(f"  {name:34} {run.busy:6.3f} s {run.wire:6d} {run.turnarounds:5d} "
                  f"{minimum:6.3f} s {run.busy / minimum:5.2f}x  {run.parameters}"
                  + ("" if run.count == len(REGISTERS) else f"  ONLY {run.count} READ"))
    print("\ndlms-edge against the targets (<= 0.3x gurux's busy time, <= 1.3x the line "
          "minimum of its bytes):")
    for mode, runs in results.items():
        mine = runs.get("dlms-edge")
        if mine is None:
            continue
        ratios = [f"{mine.busy / run.busy:.2f}x {name}"
                  for name, run in runs.items() if name != "dlms-edge"]
        minimum = mine.busy / (mine.wire * 10 / args.baud)
        print(f"  {mode:9} {', '.join(ratios)}; {minimum:.2f}x the line minimum")


if __name__ == "__main__":
    main()
