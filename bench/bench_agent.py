"""The agent's footprint with three simulated meters over TCP: RSS and CPU per poll.

    .venv/bin/python bench/bench_agent.py [--duration S] [--interval S]

Runs ``dlms-edge run`` as its own process (so only the agent is measured, not the
simulators or the broker) against three simulated meters on 127.0.0.1 and a Mosquitto
broker on a free port. Each meter has two poll groups, as in the examples: eight
instantaneous values every ``--interval`` seconds and everything in the association
view every 10 intervals. After a warm-up (first association, object lists, info), it
samples the agent's resident set size (VmRSS, and the peak VmHWM) from /proc and its CPU
time (utime + stime), and counts the polls by the ``state`` snapshots the broker
delivers. Target on a Raspberry Pi: RSS <= 40 MB. Printed, never asserted.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from edge_agent.simulator.meter import SimulatedMeterStation, SimulatorOptions
from edge_agent.simulator.server import MeterServer

RSS_TARGET_MB = 40.0
INSTANTANEOUS = ["1.0.1.7.0.255", "1.0.2.7.0.255", "1.0.32.7.0.255", "1.0.52.7.0.255",
                 "1.0.72.7.0.255", "1.0.31.7.0.255", "1.0.51.7.0.255", "1.0.71.7.0.255"]
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def proc_status(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM in MB."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024
    return values


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


class StateCounter:
    def __init__(self, port: int) -> None:
        self.count = 0
        self._lock = threading.Lock()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.subscribe("dlms/bench/+/state", qos=1)
        self.client.loop_start()

    def _on_message(self, client, userdata, message) -> None:
        with self._lock:
            self.count += 1

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=20.0, help="measured seconds")
    parser.add_argument("--interval", type=float, default=1.0,
                        help="seconds between instantaneous polls (default 1)")
    args = parser.parse_args()
    broker_binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not os.access(broker_binary, os.X_OK):
        print("mosquitto not installed: nothing measured (bash scripts/test installs it)")
        return
    work = Path(tempfile.mkdtemp(prefix="bench-agent-"))
    broker_port = free_port()
    (work / "mosquitto.conf").write_text(
        f"listener {broker_port} 127.0.0.1\nallow_anonymous true\nlog_dest none\n")
    broker = subprocess.Popen([broker_binary, "-c", str(work / "mosquitto.conf")])
    servers = []
    meters = []
    for index in range(3):
        server = MeterServer([SimulatedMeterStation(SimulatorOptions(seed=index + 1)).station])
        _, port = server.start_tcp("127.0.0.1", 0)
        servers.append(server)
        meters.append(f"""\
  - id: meter-{index + 1}
    transport: {{tcp: "127.0.0.1:{port}"}}
    poll:
      - {{name: instantaneous, interval: {args.interval}, objects: [{", ".join(INSTANTANEOUS)}]}}
      - {{name: everything, interval: {10 * args.interval}, objects: all}}
""")
    config = work / "config.yaml"
    config.write_text(f"agent: {{id: bench}}\nstate_dir: {work / 'state'}\n"
                      f"logging: {{level: WARNING}}\n"
                      f"mqtt: {{host: 127.0.0.1, port: {broker_port}}}\n"
                      "meters:\n" + "".join(meters))
    time.sleep(0.3)
    counter = StateCounter(broker_port)
    agent = subprocess.Popen([sys.executable, "-m", "edge_agent", "run", "--config",
                              str(config)])
    try:
        warm_up = 3.0 * args.interval + 2.0
        time.sleep(warm_up)
        cpu0, polls0, t0 = cpu_seconds(agent.pid), counter.count, time.monotonic()
        samples = []
        while time.monotonic() - t0 < args.duration:
            time.sleep(1.0)
            samples.append(proc_status(agent.pid)["VmRSS"])
        cpu1, polls1, t1 = cpu_seconds(agent.pid), counter.count, time.monotonic()
        status = proc_status(agent.pid)
    finally:
        agent.terminate()
        agent.wait(timeout=20)
        counter.close()
        for server in servers:
            server.stop()
        broker.terminate()
        broker.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)
    polls = polls1 - polls0
    cpu = cpu1 - cpu0
    print(f"dlms-edge agent, 3 simulated meters over TCP, Python {platform.python_version()} "
          f"on {platform.machine()}")
    print(f"  polls: {polls} in {t1 - t0:.1f} s ({polls / (t1 - t0):.1f}/s; 8 values each, "
          f"every 10th poll all ~27 objects)")
    print(f"  RSS: {status['VmRSS']:.1f} MB now, {max(samples):.1f} MB max while measured, "
          f"peak {status['VmHWM']:.1f} MB (target <= {RSS_TARGET_MB:.0f} MB: "
          f"{'met' if status['VmHWM'] <= RSS_TARGET_MB else 'NOT met'})")
    if polls:
        print(f"  CPU: {cpu:.2f} s user+system, {1000 * cpu / polls:.2f} ms per poll "
              f"({100 * cpu / (t1 - t0):.1f} % of one core)")
    else:
        print("  CPU: no polls counted (is the broker reachable?)")


if __name__ == "__main__":
    main()
