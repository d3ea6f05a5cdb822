"""What the agent benchmarks watch of a ``dlms-edge run`` process from outside.

Shared by bench_agent.py, bench_scale.py and bench_soak.py: a Mosquitto broker on a free
127.0.0.1 port, a subscriber that notes when each meter's ``state`` snapshot arrives (one
snapshot per poll, topic contract ``dlms/<agent>/<meter>/state``), and the agent's CPU time
and memory read from /proc. Nothing here asserts: the benchmarks print what it measured.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def mosquitto_binary() -> str | None:
    """The broker binary, or None (then the benchmark says so and measures nothing)."""
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    return binary if os.access(binary, os.X_OK) else None


def start_broker(binary: str, work: Path) -> tuple[subprocess.Popen, int]:
    """A Mosquitto on a free 127.0.0.1 port that queues without bound for a lagging
    subscriber (its default drops QoS 1 messages past 1000, which would count as losses)."""
    port = free_port()
    (work / "mosquitto.conf").write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\nlog_dest none\n"
        "max_queued_messages 0\n")
    return subprocess.Popen([binary, "-c", str(work / "mosquitto.conf")]), port


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` (proc(5): utime and stime, fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def memory_mb(pid: int) -> dict[str, float]:
    """VmRSS (resident now) and VmHWM (resident peak) of ``pid`` in MB."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024
    return values


@dataclass(frozen=True, slots=True)
class StateArrival:
    """One ``state`` snapshot: when it arrived (monotonic s) and its decoded payload."""

    meter: str
    at: float
    payload: Any


class StateArrivals:
    """Subscribes to ``dlms/<agent>/+/state`` and keeps every live snapshot per meter.

    Retained snapshots (a broker's copy of an earlier poll, delivered on subscription) are
    not polls of this run and are skipped."""

    def __init__(self, port: int, agent: str = "bench") -> None:
        self._arrivals: dict[str, list[StateArrival]] = defaultdict(list)
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2)
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *args: self._subscribed.set()
        for _ in range(50):  # the broker may still be starting
            try:
                self.client.connect("127.0.0.1", port)
                break
            except OSError:
                time.sleep(0.1)
        self.client.subscribe(f"dlms/{agent}/+/state", qos=1)
        self.client.loop_start()
        self._subscribed.wait(10)

    def _on_message(self, client, userdata, message) -> None:
        if message.retain:
            return
        now = time.monotonic()
        try:
            payload = json.loads(message.payload)
        except ValueError:
            payload = None
        with self._lock:
            meter = message.topic.split("/")[2]
            self._arrivals[meter].append(StateArrival(meter, now, payload))

    @property
    def count(self) -> int:
        with self._lock:
            return sum(len(arrivals) for arrivals in self._arrivals.values())

    def times(self) -> dict[str, list[float]]:
        with self._lock:
            return {meter: [a.at for a in arrivals] for meter, arrivals in self._arrivals.items()}

    def snapshot(self) -> list[StateArrival]:
        with self._lock:
            return sorted((a for arrivals in self._arrivals.values() for a in arrivals),
                          key=lambda arrival: arrival.at)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()
