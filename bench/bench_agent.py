"""The agent's footprint with three simulated meters over TCP: RSS and CPU per 20-register poll.

    .venv/bin/python bench/bench_agent.py [--duration S] [--interval S]

Runs ``dlms-edge run`` as its own process (so only the agent is measured, not the
simulators or the broker) against three simulated meters on 127.0.0.1 and a Mosquitto
broker on a free port. Each meter has one poll group: the value (attribute 2) of the 20
registers of bench_line.py (energies, tariffs, powers, voltages, currents, frequency,
power factor) every ``--interval`` seconds. The agent reads the scalers once, on its first
poll of a meter, and caches them, as it always does: a measured poll is one GET-with-list
of 20 values on the association it keeps open, and one ``state`` snapshot and 20 per-OBIS
messages through its durable queue to the broker. Nothing else runs: the load profile
(read by default, with a backfill of months on a first start), the clock and the event
logs are switched off in the configuration, so the figures are those of the polls. After a warm-up (first association,
object list, scalers), it samples the agent's resident
set size (VmRSS, and the peak VmHWM) from /proc and its CPU time (utime + stime), and
counts the polls by the ``state`` snapshots the broker delivers. Targets (issue 13 (c)):
RSS <= 40 MB, CPU <= 5 ms per poll. Printed, never asserted.
"""

from __future__ import annotations

import argparse
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from agent_watch import StateArrivals, cpu_seconds, memory_mb, mosquitto_binary, start_broker

from edge_agent.simulator.meter import SimulatedMeterStation, SimulatorOptions
from edge_agent.simulator.server import MeterServer

RSS_TARGET_MB = 40.0
CPU_TARGET_MS = 5.0
METERS = 3
# The 20 registers of bench_line.py, what a T-210D answers a poll with.
REGISTERS = [
    "1.0.1.8.0.255", "1.0.2.8.0.255", "1.0.3.8.0.255", "1.0.4.8.0.255", "1.0.1.8.1.255",
    "1.0.1.8.2.255", "1.0.2.8.1.255", "1.0.2.8.2.255", "1.0.1.7.0.255", "1.0.2.7.0.255",
    "1.0.14.7.0.255", "1.0.13.7.0.255", "1.0.32.7.0.255", "1.0.31.7.0.255",
    "1.0.33.7.0.255", "1.0.52.7.0.255", "1.0.51.7.0.255", "1.0.53.7.0.255",
    "1.0.72.7.0.255", "1.0.71.7.0.255",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=60.0,
                        help="measured seconds (default 60)")
    parser.add_argument("--interval", type=float, default=1.0,
                        help="seconds between polls of a meter (default 1)")
    args = parser.parse_args()
    broker_binary = mosquitto_binary()
    if broker_binary is None:
        print("mosquitto not installed: nothing measured (bash scripts/test installs it)")
        return
    work = Path(tempfile.mkdtemp(prefix="bench-agent-"))
    broker, broker_port = start_broker(broker_binary, work)
    servers = []
    meters = []
    for index in range(METERS):
        server = MeterServer([SimulatedMeterStation(SimulatorOptions(seed=index + 1)).station])
        _, port = server.start_tcp("127.0.0.1", 0)
        servers.append(server)
        meters.append(f"""\
  - id: meter-{index + 1}
    transport: {{tcp: "127.0.0.1:{port}"}}
    poll:
      - {{name: registers, interval: {args.interval}, objects: [{", ".join(REGISTERS)}]}}
    profiles: []
    clock: false
    events: false
""")
    config = work / "config.yaml"
    config.write_text(f"agent: {{id: bench}}\nstate_dir: {work / 'state'}\n"
                      f"logging: {{level: WARNING}}\n"
                      f"mqtt: {{host: 127.0.0.1, port: {broker_port}}}\n"
                      "meters:\n" + "".join(meters))
    time.sleep(0.3)
    counter = StateArrivals(broker_port)
    agent = subprocess.Popen([sys.executable, "-m", "edge_agent", "run", "--config",
                              str(config)])
    try:
        warm_up = 3.0 * args.interval + 2.0
        time.sleep(warm_up)
        cpu0, polls0, t0 = cpu_seconds(agent.pid), counter.count, time.monotonic()
        samples = []
        while time.monotonic() - t0 < args.duration:
            time.sleep(1.0)
            samples.append(memory_mb(agent.pid)["VmRSS"])
        cpu1, polls1, t1 = cpu_seconds(agent.pid), counter.count, time.monotonic()
        status = memory_mb(agent.pid)
        measured = [a for a in counter.snapshot() if t0 <= a.at <= t1]
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
    values = sorted({len((a.payload or {}).get("values") or ()) for a in measured})
    print(f"dlms-edge agent, {METERS} simulated meters over TCP, Python "
          f"{platform.python_version()} on {platform.machine()}")
    print(f"  polls: {polls} in {t1 - t0:.1f} s ({polls / (t1 - t0):.1f}/s; each the value of "
          f"{len(REGISTERS)} registers, scalers cached; values per state snapshot: "
          f"{', '.join(map(str, values)) or 'none'})")
    print(f"  RSS: {status['VmRSS']:.1f} MB now, {max(samples):.1f} MB max while measured, "
          f"peak {status['VmHWM']:.1f} MB (target <= {RSS_TARGET_MB:.0f} MB: "
          f"{'met' if status['VmHWM'] <= RSS_TARGET_MB else 'NOT met'})")
    if polls:
        per_poll = 1000 * cpu / polls
        print(f"  CPU: {cpu:.2f} s user+system, {per_poll:.2f} ms per poll "
              f"({100 * cpu / (t1 - t0):.1f} % of one core; target <= {CPU_TARGET_MS:.0f} ms: "
              f"{'met' if per_poll <= CPU_TARGET_MS else 'NOT met'})")
    else:
        print("  CPU: no polls counted (is the broker reachable?)")

if __name__ == "__main__":
    main()
