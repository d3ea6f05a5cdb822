"""I/O helpers of the simulator tests: a simulator in a thread, a recording TCP proxy, the
real CLI as a subprocess, and frame splitting of what was recorded."""

from __future__ import annotations

import os
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Self

from edge_agent.dlms.link.hdlc.frame import FrameSplitter, HdlcFrame
from edge_agent.dlms.link.wrapper import WrapperDecoder, WrapperFrame
from edge_agent.simulator.faults import NO_FAULTS, FaultInjector
from edge_agent.simulator.meter import SimulatedMeterStation, SimulatorOptions
from edge_agent.simulator.server import MeterServer

CLI = [sys.executable, "-m", "edge_agent"]


def cli(*args: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DLMS_EK", "DLMS_AK", "DLMS_PASSWORD")}
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout,
                          env=env, check=False)


@contextmanager
def simulator(options: SimulatorOptions | None = None,
              faults: FaultInjector = NO_FAULTS, *, station: SimulatedMeterStation | None = None,
              ) -> Iterator[tuple[SimulatedMeterStation, MeterServer, int]]:
    """One simulated meter on 127.0.0.1 (a free port), served from a thread: ``station``,
    or one made of ``options``."""
    station = station or SimulatedMeterStation(options or SimulatorOptions())
    server = MeterServer([station.station], faults=faults)
    _, port = server.start_tcp("127.0.0.1", 0)
    try:
        yield station, server, port
    finally:
        server.stop()
        station.close()


@dataclass
class Recording:
    """What went through the proxy: (time, bytes) per direction, and whether the meter
    side closed the connection."""

    to_meter: list[tuple[float, bytes]] = field(default_factory=list)
    from_meter: list[tuple[float, bytes]] = field(default_factory=list)
    meter_closed: bool = False

    @property
    def meter_bytes(self) -> bytes:
        return b"".join(chunk for _, chunk in self.from_meter)

    @property
    def client_bytes(self) -> bytes:
        return b"".join(chunk for _, chunk in self.to_meter)


class RecordingProxy:
    """127.0.0.1:port -> the simulator: relays both ways and records every byte."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.recordings: list[Recording] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            recording = Recording()
            self.recordings.append(recording)
            threading.Thread(target=self._relay, args=(client, recording), daemon=True).start()

    def _relay(self, client: socket.socket, recording: Recording) -> None:
        meter = socket.create_connection(("127.0.0.1", self.upstream_port))
        ends = {client: (meter, recording.to_meter), meter: (client, recording.from_meter)}
        try:
            while True:
                readable, _, _ = select.select(list(ends), [], [], 30)
                if not readable:
                    return
                for sock in readable:
                    data = sock.recv(65536)
                    other, log = ends[sock]
                    if not data:
                        if sock is meter:
                            recording.meter_closed = True
                        return
                    log.append((time.monotonic(), data))
                    other.sendall(data)
        except OSError:
            return
        finally:
            client.close()
            meter.close()

    def close(self) -> None:
        self.listener.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def hdlc_frames(data: bytes) -> tuple[list[HdlcFrame], FrameSplitter]:
    splitter = FrameSplitter()
    frames = [f for f in splitter.feed(data) if isinstance(f, HdlcFrame)]
    return frames, splitter


def wrapper_frames(data: bytes) -> list[WrapperFrame]:
    return list(WrapperDecoder().feed(data))
