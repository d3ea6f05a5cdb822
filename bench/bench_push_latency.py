"""Push to MQTT latency: from the meter's last byte to the subscriber, through Mosquitto.

    .venv/bin/python bench/bench_push_latency.py [--rate 100] [--duration 20]

A simulated Sagemcom T-210D pushes ciphered DataNotifications the way its customer
interface does (two wired M-Bus long frames per telegram, general-glo-ciphering with
encryption only, eleven OBIS-named registers) over TCP, as from a serial-to-Ethernet
converter, to ``dlms-edge run`` at ``--rate`` telegrams
per second; the agent deciphers, decodes and publishes them (QoS 1, through its durable
queue) on a Mosquitto broker on 127.0.0.1; a subscriber takes the ``state`` snapshot of
each. Each telegram carries its own time stamp (one second apart in the meter's world), so
the snapshot's ``ts`` names the telegram; latency is the subscriber's receipt time minus
the sender's write time. Prints p50, p99 and the maximum next to the target (p99 <= 20 ms)
and how many telegrams arrived. Printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from edge_agent.dlms.secret import Secret
from edge_agent.dlms.security import CipherKeys
from edge_agent.simulator import meter_models
from edge_agent.simulator.push_telegrams import build_push

P99_TARGET_MS = 20.0
EK = bytes(range(16))
WORLD = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Arrivals:
    """Receipt time of every state snapshot, by its ``ts``."""

    def __init__(self, port: int) -> None:
        self.at: dict[str, float] = {}
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2)
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *_: self._ready.set()
        self.client.connect("127.0.0.1", port)
        self.client.subscribe("dlms/bench/+/state", qos=1)
        self.client.loop_start()
        self._ready.wait(10)

    def _on_message(self, client, userdata, message) -> None:
        now = time.perf_counter()
        if message.retain:
            return
        ts = json.loads(message.payload)["ts"]
        with self._lock:
            self.at.setdefault(ts, now)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def telegrams(count: int) -> list[tuple[str, bytes]]:
    """(expected ts, bytes) of a warm-up push and ``count`` measured ones, built before
    timing starts; one second apart in the meter's world, counters increasing."""
    meter = meter_models.build("t210d", 7, lambda: WORLD)
    keys = CipherKeys(ek=Secret(EK, "EK"))
    out = []
    for index in range(count + 1):
        world = WORLD + timedelta(seconds=index)
        out.append((world.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    build_push("mbus", meter, keys, index + 1, world)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=100.0, help="pushes per second")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of pushing")
    args = parser.parse_args()
    broker_binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not os.access(broker_binary, os.X_OK):
        print("mosquitto not installed: nothing measured (bash scripts/test installs it)")
        return
    work = Path(tempfile.mkdtemp(prefix="bench-push-"))
    broker_port, push_port = free_port(), free_port()
    (work / "mosquitto.conf").write_text(
        f"listener {broker_port} 127.0.0.1\nallow_anonymous true\nlog_dest none\n")
    (work / "ek").write_text(EK.hex())
    (work / "ek").chmod(0o600)
    config = work / "config.yaml"
    config.write_text(f"""\
agent: {{id: bench}}
state_dir: {work / 'state'}
logging: {{level: WARNING}}
mqtt: {{host: 127.0.0.1, port: {broker_port}}}
meters:
  - id: pusher
    push: {{format: mbus, bind: 127.0.0.1, port: {push_port}, interval: 1}}
    security:
      suite: 0
      policy: enc
      keys: {{ek: {{file: {work / 'ek'}}}}}
""")
    count = int(args.rate * args.duration)
    pushes = telegrams(count)
    broker = subprocess.Popen([broker_binary, "-c", str(work / "mosquitto.conf")])
    agent = subprocess.Popen([sys.executable, "-m", "edge_agent", "run", "--config",
                              str(config)])
    arrivals = None
    sent: dict[str, float] = {}
    try:
        time.sleep(0.5)
        arrivals = Arrivals(broker_port)
        deadline = time.monotonic() + 20
        while True:
            try:
                line = socket.create_connection(("127.0.0.1", push_port), timeout=5)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("the agent's push listener did not come up") from None
                time.sleep(0.1)
        line.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        (_, warm_up), *measured_pushes = pushes  # first decode and publish: not measured
        line.sendall(warm_up)
        time.sleep(1.0)
        start = time.perf_counter()
        for index, (ts, data) in enumerate(measured_pushes):
            due = start + (index + 1) / args.rate
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            line.sendall(data)
            sent[ts] = time.perf_counter()
        time.sleep(2.0)
        line.close()
    finally:
        agent.terminate()
        agent.wait(timeout=20)
        if arrivals is not None:
            arrivals.close()
        broker.terminate()
        broker.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)
    assert arrivals is not None
    latencies = [(arrivals.at[ts] - at) * 1000 for ts, at in sent.items()
                 if ts in arrivals.at]
    measured = sorted(latencies)
    print(f"push -> MQTT latency, {args.rate:g} pushes/s for {args.duration:g} s "
          f"(M-Bus over TCP, SC 0x20, QoS 1, Mosquitto on 127.0.0.1)")
    print(f"  arrived {len(latencies)} of {len(sent)}")
    if measured:
        p50 = statistics.median(measured)
        p99 = measured[min(len(measured) - 1, int(0.99 * len(measured)))]
        print(f"  p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {measured[-1]:.1f} ms "
              f"(target p99 <= {P99_TARGET_MS:g} ms: {p99 / P99_TARGET_MS:.2f}x the target)")


if __name__ == "__main__":
    main()
