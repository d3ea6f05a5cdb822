"""One agent, many TCP meters: polls on time, CPU and memory as the fleet grows.

    .venv/bin/python bench/bench_scale.py                      # 10, 100, 300 meters, 10 min each
    .venv/bin/python bench/bench_scale.py --meters 100 --duration 60

For each size, a separate process serves that many simulated meters on 127.0.0.1 (one TCP
port each), ``dlms-edge run`` polls every meter's eight instantaneous values every
``--interval`` seconds (its clock and event logs at their default intervals; no load
profile: its first backfill is months of rows, a separate cost) and publishes them on a
Mosquitto broker, and a subscriber notes
when each meter's ``state`` snapshot arrives. A poll is **on time** when it follows the
meter's previous one by the interval, within ``--tolerance`` seconds (a late or missed
poll shows as a longer gap). Printed per size: polls, share on time, the agent's CPU per
poll and in all, its RSS (VmRSS at the start and end of the measured window, its growth,
and the peak VmHWM). Target: >= 99 % on time at 100 meters.
Printed, never asserted.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from agent_watch import StateArrivals, cpu_seconds, memory_mb, mosquitto_binary, start_broker

INSTANTANEOUS = ["1.0.1.7.0.255", "1.0.2.7.0.255", "1.0.32.7.0.255", "1.0.52.7.0.255",
                 "1.0.72.7.0.255", "1.0.31.7.0.255", "1.0.51.7.0.255", "1.0.71.7.0.255"]
ON_TIME_TARGET = 0.99


def serve(count: int) -> None:
    """Child mode: ``count`` simulated meters; prints their ports, serves until stdin ends."""
    from edge_agent.simulator.meter import SimulatedMeterStation, SimulatorOptions
    from edge_agent.simulator.server import MeterServer

    servers, ports = [], []
    for index in range(count):
        server = MeterServer([SimulatedMeterStation(SimulatorOptions(seed=index + 1)).station])
        ports.append(server.start_tcp("127.0.0.1", 0)[1])
        servers.append(server)
    print(json.dumps(ports), flush=True)
    sys.stdin.read()
    for server in servers:
        server.stop()


def proc(pid: int) -> tuple[float, float, float]:
    """(CPU seconds, VmRSS MB, VmHWM MB) of ``pid``."""
    memory = memory_mb(pid)
    return cpu_seconds(pid), memory["VmRSS"], memory["VmHWM"]


def measure(count: int, interval: float, duration: float, tolerance: float,
            broker_binary: str) -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    broker, broker_port = start_broker(broker_binary, work)
    meters = subprocess.Popen([sys.executable, __file__, "--serve", str(count)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    agent = None
    arrivals = None
    try:
        ports = json.loads(meters.stdout.readline())
        entries = "".join(f"""\
  - id: m{index:03d}
    transport: {{tcp: "127.0.0.1:{port}"}}
    poll: [{{name: instantaneous, interval: {interval}, objects: [{", ".join(INSTANTANEOUS)}]}}]
    profiles: []
""" for index, port in enumerate(ports))
        config = work / "config.yaml"
        config.write_text(f"agent: {{id: bench}}\nstate_dir: {work / 'state'}\n"
                          f"logging: {{level: WARNING}}\n"
                          f"mqtt: {{host: 127.0.0.1, port: {broker_port}}}\nmeters:\n{entries}")
        time.sleep(0.3)
        arrivals = StateArrivals(broker_port)
        agent = subprocess.Popen([sys.executable, "-m", "edge_agent", "run", "--config",
                                  str(config)])
        time.sleep(2 * interval)  # first associations and object lists: not measured
        cpu0, rss0, _ = proc(agent.pid)
        started = time.monotonic()
        until = started + duration
        peak_rss = rss0
        while (left := until - time.monotonic()) > 0:
            time.sleep(min(5.0, left))
            _, rss, _ = proc(agent.pid)
            peak_rss = max(peak_rss, rss)
        cpu1, rss, hwm = proc(agent.pid)
    finally:
        if agent is not None:
            agent.terminate()
            agent.wait(timeout=60)
        if arrivals is not None:
            arrivals.close()
        meters.stdin.close()
        meters.wait(timeout=60)
        broker.terminate()
        broker.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)
    # Half-open [started, until): exactly duration / interval polls of each meter are due
    # in it, whatever the meters' phase (a closed window holds one more for a meter polled
    # right at both ends).
    gaps = []
    polls = 0
    for times in arrivals.times().values():
        window = [t for t in times if started - interval <= t < until]
        polls += sum(1 for t in window if t >= started)
        gaps += [b - a for a, b in itertools.pairwise(window) if b >= started]
    expected = count * duration / interval
    on_time = sum(1 for gap in gaps if abs(gap - interval) <= tolerance)
    share = on_time / expected if expected else 0.0
    cpu = cpu1 - cpu0
    print(f"{count:4d} meters: {polls:6d} polls of {expected:6.0f} expected, "
          f"{share:6.1%} on time (+-{tolerance:g} s; target {ON_TIME_TARGET:.0%}), "
          f"CPU {cpu:6.1f} s = {cpu / duration:5.1%} of a core, "
          f"{1000 * cpu / max(polls, 1):5.2f} ms per poll, "
          f"RSS {rss:5.1f} MB (at start {rss0:5.1f} MB, growth {rss - rss0:+5.1f} MB; "
          f"peak {max(peak_rss, hwm):5.1f} MB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meters", default="10,100,300", help="sizes, comma-separated")
    parser.add_argument("--interval", type=float, default=10.0, help="poll interval (s)")
    parser.add_argument("--duration", type=float, default=600.0, help="measured s per size")
    parser.add_argument("--tolerance", type=float, default=1.0, help="on-time window (s)")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve is not None:
        serve(args.serve)
        return
    broker_binary = mosquitto_binary()
    if broker_binary is None:
        print("mosquitto not installed: nothing measured (bash scripts/test installs it)")
        return
    print(f"one agent, TCP meters polled every {args.interval:g} s (8 values each), "
          f"{args.duration:g} s measured per size, {os.cpu_count()} cores")
    for count in (int(n) for n in args.meters.split(",")):
        measure(count, args.interval, args.duration, args.tolerance, broker_binary)


if __name__ == "__main__":
    main()
