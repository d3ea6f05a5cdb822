"""MeterClient over a transport it does not own, and the cost of an unreachable HDLC meter.

A silent peer is a TCP listener on 127.0.0.1 that accepts and never answers (HDLC over
TCP, as behind a serial-to-Ethernet converter): the client must spend exactly one SNRM
time-out sequence on it (1 + retries SNRM frames) and send no DISC, since no link came up.
"""

from __future__ import annotations

import datetime as dt
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge_agent.client.client import MeterClient
from edge_agent.client.connection import ConnectionSettings
from edge_agent.dlms.association.client import ClientSettings
from edge_agent.dlms.cosem.obis import Obis
from edge_agent.dlms.errors import NoResponseError, TransportError
from edge_agent.dlms.link.hdlc.frame import HdlcFrame
from edge_agent.simulator.meter import SimulatedMeterStation, SimulatorOptions
from edge_agent.simulator.server import MeterServer
from edge_agent.transport.tcp import TcpTransport

pytestmark = pytest.mark.timeout(30)

FROZEN = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
ENERGY = Obis.parse("1.0.1.8.0.255")
TIMEOUT, RETRIES = 0.5, 2


class FrameLog:
    """The client's tap: frame kinds sent, by HDLC control field name."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    def __call__(self, direction: str, frame: bytes) -> None:
        if direction == "tx":
            self.sent.append(HdlcFrame.decode(frame)[0].kind.value)


class SilentPeer:
    """Accepts TCP connections, reads everything, answers nothing."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.address = self.listener.getsockname()[:2]
        self.received = bytearray()
        self._connections: list[socket.socket] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        try:
            connection, _ = self.listener.accept()
        except OSError:
            return
        self._connections.append(connection)
        connection.settimeout(0.05)
        while True:
            try:
                data = connection.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            if not data:
                return
            self.received += data

    def close(self) -> None:
        self.listener.close()
        for connection in self._connections:
            connection.close()
        self._thread.join(timeout=2)


@pytest.fixture
def silent() -> Iterator[SilentPeer]:
    peer = SilentPeer()
    yield peer
    peer.close()


@pytest.fixture
def meter() -> Iterator[tuple[str, int]]:
    station = SimulatedMeterStation(SimulatorOptions(), clock=lambda: FROZEN)
    server = MeterServer([station.station])
    yield server.start_tcp("127.0.0.1", 0)
    server.stop()


def hdlc_connection(address: tuple[str, int]) -> ConnectionSettings:
    return ConnectionSettings(tcp=address, hdlc=True, timeout=TIMEOUT, retries=RETRIES)


def client(address: tuple[str, int], state: Path, **kwargs) -> MeterClient:
    return MeterClient(hdlc_connection(address), ClientSettings(), meter_id="m1",
                       state_dir=state, pass3_signing="never", clock=lambda: FROZEN, **kwargs)


def test_an_unreachable_hdlc_meter_costs_one_time_out_sequence(silent, tmp_path: Path) -> None:
    frames = FrameLog()
    started = time.monotonic()
    with pytest.raises(NoResponseError):
        client(silent.address, tmp_path, tap=frames).connect()
    elapsed = time.monotonic() - started
    assert frames.sent == ["SNRM"] * (1 + RETRIES)  # no DISC after the last time-out
    sequence = (1 + RETRIES) * TIMEOUT  # a second wait (after a DISC) would double it
    assert sequence * 0.9 <= elapsed < sequence * 1.8


def test_an_external_transport_is_left_open_after_a_failed_link(silent, tmp_path: Path) -> None:
    frames = FrameLog()
    transport = TcpTransport(*silent.address, timeout=2)
    try:
        meter = client(silent.address, tmp_path, tap=frames, transport=transport)
        with pytest.raises(NoResponseError):
            meter.connect()
        assert frames.sent == ["SNRM"] * (1 + RETRIES)
        transport.write(b"still open")  # raises TransportError once closed
        deadline = time.monotonic() + 2
        while b"still open" not in silent.received and time.monotonic() < deadline:
            time.sleep(0.01)
        assert silent.received.endswith(b"still open")
    finally:
        transport.close()


def test_meters_take_turns_on_an_external_transport(meter, tmp_path: Path) -> None:
    frames = FrameLog()
    transport = TcpTransport(*meter, timeout=2)
    try:
        for _ in range(2):  # the second client runs over the line the first released
            with client(meter, tmp_path, tap=frames, transport=transport) as reader:
                (energy,) = reader.read([ENERGY])
            assert energy.obis == ENERGY and energy.unit == "Wh"
        assert frames.sent.count("SNRM") == 2 and frames.sent.count("DISC") == 2
    finally:
        transport.close()
    with pytest.raises(TransportError):
        transport.write(b"closed by its owner only")


def test_an_owned_transport_is_closed_with_the_client(meter, tmp_path: Path) -> None:
    with client(meter, tmp_path) as reader:
        reader.read([ENERGY])
        transport = reader.transport
    assert transport is not None and reader.transport is None
    with pytest.raises(TransportError):
        transport.write(b"x")
