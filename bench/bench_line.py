"""Reading 20 registers over an emulated 9600 baud line: our client, gurux's, the line's limit.

    .venv/bin/python bench/bench_line.py [--baud 9600] [--latency 0.02] [--rounds 3]

The simulated meter serves HDLC on one end of an emulated serial line
(edge_agent/transport/line_emulator.py: 10 bits per byte, the meter answering
``--latency`` seconds after the line went quiet); a client reads the value and the
scaler_unit of 20 registers on the other end, association and release included (SNRM,
AARQ, the reads, RLRQ, DISC). Measured per client: the line's busy time (first byte to
last), the bytes on the wire in both directions, and the line-rate minimum for those
bytes (bytes x bits / baud). Contenders:

* dlms-edge's MeterClient (what ``dlms-edge read`` and the agent run): GET-with-list sized
  to the meter's PDU;
* gurux-dlms's GXDLMSClient (test-only peer, GPL): ``readList`` of the same attributes
  (GET-with-list, as we do), and one ``read`` per attribute (how its examples read).

Targets: ours <= 0.3x gurux's busy time and <= 1.3x the line minimum of our bytes.
Printed, never asserted.
"""

from __future__ import annotations

import argparse
import os
import select
import statistics
import tempfile
import threading
import tty
from collections.abc import Callable

from edge_agent.client.client import MeterClient
from edge_agent.client.connection import ConnectionSettings
from edge_agent.dlms.association.client import ClientSettings
from edge_agent.dlms.cosem.obis import Obis
from edge_agent.simulator.meter import SimulatedMeterStation, SimulatorOptions
from edge_agent.simulator.server import MeterServer
from edge_agent.transport.line_emulator import EmulatedLine

REGISTERS = [
    "1.0.1.8.0.255", "1.0.2.8.0.255", "1.0.3.8.0.255", "1.0.4.8.0.255", "1.0.1.8.1.255",
    "1.0.1.8.2.255", "1.0.2.8.1.255", "1.0.2.8.2.255", "1.0.1.7.0.255", "1.0.2.7.0.255",
    "1.0.14.7.0.255", "1.0.13.7.0.255", "1.0.32.7.0.255", "1.0.31.7.0.255",
    "1.0.33.7.0.255", "1.0.52.7.0.255", "1.0.51.7.0.255", "1.0.53.7.0.255",
    "1.0.72.7.0.255", "1.0.71.7.0.255",
]


def ours(device: str, baud: int, state_dir: str) -> int:
    connection = ConnectionSettings(serial=device, baud=baud, timeout=5)
    with MeterClient(connection, ClientSettings(), meter_id="bench", state_dir=state_dir,
                     frame_counter=None) as meter:
        readings = meter.read([Obis.parse(code) for code in REGISTERS],
                              class_ids=dict.fromkeys(map(Obis.parse, REGISTERS), 3))
    return len(readings)


def gurux_reader(per_attribute: bool = False) -> Callable[[str, int, str], int] | None:
    try:
        import gurux_dlms as gurux
        from gurux_dlms import enums, objects
    except ImportError:
        return None

    def read(device: str, baud: int, state_dir: str) -> int:
        fd = os.open(device, os.O_RDWR | os.O_NOCTTY)
        tty.setraw(fd)
        client = gurux.GXDLMSClient(True, 16, gurux.GXDLMSClient.getServerAddress(1, 16, 4),
                                    enums.Authentication.NONE, None, enums.InterfaceType.HDLC)

        def exchange(request, reply) -> None:
            if request:
                os.write(fd, bytes(request))
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

        try:
            reply = gurux.GXReplyData()
            exchange(client.snrmRequest(), reply)
            client.parseUAResponse(reply.data)
            client.parseAareResponse(exchange_all(client.aarqRequest()).data)
            registers = [objects.GXDLMSRegister(code) for code in REGISTERS]
            pairs = [(r, 3) for r in registers] + [(r, 2) for r in registers]
            if per_attribute:  # one GET-Request-Normal per attribute, as gurux's examples read
                for register, attribute in pairs:
                    reply = exchange_all(client.read(register, attribute))
                    client.updateValue(register, attribute, reply.value)
            else:
                values = []
                for requests in client.readList(pairs):
                    values.extend(exchange_all(requests).value)
                client.updateValues(pairs, values)
            exchange_all(client.releaseRequest())
            exchange(client.disconnectRequest(), gurux.GXReplyData())
            return sum(1 for r in registers if r.value is not None)
        finally:
            os.close(fd)

    return read


def run_once(read: Callable[[str, int, str], int], baud: int, latency: float
             ) -> tuple[float, int, int]:
    """(busy seconds, bytes on the wire, registers read) of one session."""
    line = EmulatedLine(baud=baud, bits=10, latency=latency)
    server = MeterServer([SimulatedMeterStation(SimulatorOptions(seed=5)).station])
    thread = threading.Thread(target=server.serve_serial, args=(line.path_a, baud),
                              daemon=True)
    thread.start()
    if not server.serial_open.wait(10):
        raise SystemExit(f"the simulator did not open {line.path_a}")
    try:
        with tempfile.TemporaryDirectory() as state_dir:
            count = read(line.path_b, baud, state_dir)
        stats = line.stats
        return stats.busy_time, stats.bytes_to_client + stats.bytes_to_meter, count
    finally:
        server.stop()
        thread.join(timeout=5)
        line.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baud", type=int, default=9600)
    parser.add_argument("--latency", type=float, default=0.02, help="meter turnaround (s)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    contenders: dict[str, Callable[[str, int, str], int] | None] = {
        "dlms-edge": ours, "gurux-dlms": gurux_reader(),
        "gurux-dlms, one GET per attribute": gurux_reader(per_attribute=True)}
    results: dict[str, tuple[float, int]] = {}
    print(f"20 registers (value + scaler_unit), HDLC over an emulated {args.baud} baud 8N1 "
          f"line, meter turnaround {args.latency * 1000:g} ms, association and release "
          f"included; median of {args.rounds} rounds")
    for name, read in contenders.items():
        if read is None:
            print(f"  {name:33} not installed: skipped")
            continue
        runs = [run_once(read, args.baud, args.latency) for _ in range(args.rounds)]
        busy = statistics.median(r[0] for r in runs)
        wire = int(statistics.median(r[1] for r in runs))
        minimum = wire * 10 / args.baud
        results[name] = (busy, wire)
        print(f"  {name:33} busy {busy:6.3f} s, {wire:5d} bytes on the wire, line minimum "
              f"{minimum:6.3f} s -> {busy / minimum:4.2f}x the minimum "
              f"({runs[0][2]} registers read)")
    ours_busy, ours_wire = results["dlms-edge"]
    for name, (busy, _) in results.items():
        if name != "dlms-edge":
            print(f"  dlms-edge / {name}: {ours_busy / busy:.2f}x the busy time (target <= 0.3x)")
    print(f"  dlms-edge vs the line minimum of its bytes: "
          f"{ours_busy / (ours_wire * 10 / args.baud):.2f}x (target <= 1.3x)")


if __name__ == "__main__":
    main()
