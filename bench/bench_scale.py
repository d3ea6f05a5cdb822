"""One agent, many TCP meters: polls on time, CPU and memory as the fleet grows.

    .venv/bin/python bench/bench_scale.py                      # 10, 100, 300 meters, 10 min each
    .venv/bin/python bench/bench_scale.py --meters 100 --duration 60

For each size, a separate process serves that many simulated meters on 127.0.0.1 (one TCP
port each), ``dlms-edge run`` polls every meter's eight instantaneous values every
``--interval`` seconds and publishes them on a Mosquitto broker, and a subscriber notes
when each meter's ``state`` snapshot arrives. A poll is **on time** when it follows the
meter's previous one by the interval, within ``--tolerance`` seconds (a late or missed
poll shows as a longer gap). Printed per size: polls, share on time, the agent's CPU per
poll and in all, its RSS (VmRSS and peak VmHWM). Target: >= 99 % on time at 100 meters.
Printed, never asserted.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

INSTANTANEOUS = ["1.0.1.7.0.255", "1.0.2.7.0.255", "1.0.32.7.0.255", "1.0.52.7.0.255",
                 "1.0.72.7.0.255", "1.0.31.7.0.255", "1.0.51.7.0.255", "1.0.71.7.0.255"]
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
ON_TIME_TARGET = 0.99


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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


class Arrivals:
    def __init__(self, port: int) -> None:
        self.times: dict[str, list[float]] = defaultdict(list)
        self._lock = threading.Lock()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.subscribe("dlms/bench/+/state", qos=1)
        self.client.loop_start()

    def _on_message(self, client, userdata, message) -> None:
        if message.retain:
            return
        now = time.monotonic()
        with self._lock:
            self.times[message.topic.split("/")[2]].append(now)

    def snapshot(self) -> dict[str, list[float]]:
        with self._lock:
            return {meter: list(times) for meter, times in self.times.items()}

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def proc(pid: int) -> tuple[float, float, float]:
    """(CPU seconds, VmRSS MB, VmHWM MB) of ``pid``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    memory = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            memory[key] = int(rest.split()[0]) / 1024
    return cpu, memory["VmRSS"], memory["VmHWM"]


def measure(count: int, interval: float, duration: float, tolerance: float,
            broker_binary: str) -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    broker_port = free_port()
    (work / "mosquitto.conf").write_text(
        f"listener {broker_port} 127.0.0.1\nallow_anonymous true\nlog_dest none\n"
        "max_queued_messages 100000\n")
    broker = subprocess.Popen([broker_binary, "-c", str(work / "mosquitto.conf")])
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
""" for index, port in enumerate(ports))
        config = work / "config.yaml"
        config.write_text(f"agent: {{id: bench}}\nstate_dir: {work / 'state'}\n"
                          f"logging: {{level: WARNING}}\n"
                          f"mqtt: {{host: 127.0.0.1, port: {broker_port}}}\nmeters:\n{entries}")
        time.sleep(0.3)
        arrivals = Arrivals(broker_port)
        agent = subprocess.Popen([sys.executable, "-m", "edge_agent", "run", "--config",
                                  str(config)])
        time.sleep(2 * interval)  # first associations and object lists: not measured
        cpu0, _, _ = proc(agent.pid)
        started = time.monotonic()
        peak_rss = 0.0
        while time.monotonic() - started < duration:
            time.sleep(min(5.0, duration))
            _, rss, _ = proc(agent.pid)
            peak_rss = max(peak_rss, rss)
        ended = time.monotonic()
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
    gaps = []
    polls = 0
    for times in arrivals.snapshot().values():
        window = [t for t in times if started - interval <= t <= ended]
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
          f"RSS {rss:5.1f} MB (peak {max(peak_rss, hwm):5.1f} MB)")


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
    broker_binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not os.access(broker_binary, os.X_OK):
        print("mosquitto not installed: nothing measured (bash scripts/test installs it)")
        return
    print(f"one agent, TCP meters polled every {args.interval:g} s (8 values each), "
          f"{args.duration:g} s measured per size, {os.cpu_count()} cores")
    for count in (int(n) for n in args.meters.split(",")):
        measure(count, args.interval, args.duration, args.tolerance, broker_binary)


if __name__ == "__main__":
    main()
