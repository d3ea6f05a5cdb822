"""SNRM/UA parameter negotiation end to end: our client against the simulated meter over a
pty pair (a serial line), the meter granting various HDLC parameters.

The client proposes the largest parameters the standard allows (2030-byte information
fields, window 7) and must use exactly what the meter's UA grants: never a longer
information field (the meter would answer FRMR), never more frames before a poll than
the granted window; and, where the meter grants room, no segment or RR round trip that
the grant makes unnecessary. Readings are the same whatever the meter grants. A meter
that answers the proposal with DM is asked again with the defaults, and read.
"""

from __future__ import annotations

import datetime as dt
import os
import select
import threading
import tty
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from edge_agent.agent.config import load_config
from edge_agent.agent.meter_settings import connection_settings
from edge_agent.cli import main
from edge_agent.client.client import MeterClient
from edge_agent.client.connection import ConnectionSettings
from edge_agent.dlms.association.client import ClientSettings
from edge_agent.dlms.cosem.obis import Obis
from edge_agent.dlms.inspect import parse_line
from edge_agent.dlms.link.hdlc.frame import FrameKind, FrameSplitter, HdlcFrame, HdlcParameters
from edge_agent.simulator.meter import SimulatedMeterStation, SimulatorOptions
from edge_agent.simulator.server import MeterServer
from edge_agent.transport.pty import PtyPair

pytestmark = pytest.mark.timeout(60)

FROZEN = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
REGISTERS = [Obis.parse(code) for code in (
    "1.0.1.8.0.255", "1.0.2.8.0.255", "1.0.3.8.0.255", "1.0.4.8.0.255", "1.0.1.8.1.255",
    "1.0.1.8.2.255", "1.0.2.8.1.255", "1.0.2.8.2.255", "1.0.1.7.0.255", "1.0.2.7.0.255",
    "1.0.14.7.0.255", "1.0.13.7.0.255", "1.0.32.7.0.255", "1.0.31.7.0.255",
    "1.0.33.7.0.255", "1.0.52.7.0.255", "1.0.51.7.0.255", "1.0.53.7.0.255",
    "1.0.72.7.0.255", "1.0.71.7.0.255")]
CLASSES = dict.fromkeys(REGISTERS, 3)


@dataclass
class Wire:
    """The client's tap: frames sent, frames received (split from the raw reads), and the
    bursts we sent (the frames written between two answers of the meter)."""

    sent: list[HdlcFrame] = field(default_factory=list)
    received: list[HdlcFrame] = field(default_factory=list)
    bursts: list[list[HdlcFrame]] = field(default_factory=lambda: [[]])
    _splitter: FrameSplitter = field(default_factory=FrameSplitter)

    def __call__(self, direction: str, data: bytes) -> None:
        if direction == "tx":
            frame = HdlcFrame.decode(data)[0]
            self.sent.append(frame)
            self.bursts[-1].append(frame)
            return
        frames = [f for f in self._splitter.feed(data) if isinstance(f, HdlcFrame)]
        self.received += frames
        if frames and self.bursts[-1]:
            self.bursts.append([])


@pytest.fixture
def meter_granting() -> Iterator:
    lines: list[tuple[PtyPair, MeterServer, threading.Thread]] = []

    def start(granted: HdlcParameters) -> str:
        line = PtyPair()
        station = SimulatedMeterStation(SimulatorOptions(seed=5), clock=lambda: FROZEN)
        server = MeterServer([station.station], parameters=granted)
        thread = threading.Thread(target=server.serve_serial, args=(line.path_a,), daemon=True)
        thread.start()
        assert server.serial_open.wait(10), "the simulator did not open its pty"
        lines.append((line, server, thread))
        return line.path_b

    yield start
    for line, server, thread in lines:
        server.stop()
        thread.join(timeout=5)
        line.close()


def poll_twice(device: str, state: Path, wire: Wire
               ) -> tuple[HdlcParameters, list, list, int]:
    """Associate, read 20 registers (values and scalers), read them again (scalers cached,
    as the agent polls), release. Returns the link's parameters, both readings and the
    index of the first burst of the second read in ``wire.bursts``."""
    connection = ConnectionSettings(serial=device, timeout=3)
    with MeterClient(connection, ClientSettings(), meter_id="m", state_dir=state,
                     pass3_signing="never", clock=lambda: FROZEN, frame_counter=None,
                     tap=wire) as meter:
        parameters = meter.link.connection.parameters
        first = meter.read(REGISTERS, class_ids=CLASSES)
        assert wire.bursts[-1] == []  # the meter answered last: the next burst is the read's
        second_starts = len(wire.bursts) - 1
        second = meter.read(REGISTERS, class_ids=CLASSES)
    return parameters, first, second, second_starts


def values(readings: list) -> list[tuple[str, object, object]]:
    return [(r.obis.dotted, r.value, r.unit) for r in readings]


GRANTS = [
    HdlcParameters(512, 512, 1, 1),  # the simulator's own: one frame per message here
    HdlcParameters(128, 128, 7, 7),  # the defaults' frame size with the largest window
    HdlcParameters(64, 48, 3, 2),  # small and uneven: segments both ways, windows of 2 and 3
    HdlcParameters(),  # the standard's defaults: 128 bytes, window 1
]


@pytest.mark.parametrize("granted", GRANTS, ids=lambda p: (
    f"info{p.max_info_transmit}-{p.max_info_receive}-window{p.window_transmit}-{p.window_receive}"))
def test_the_client_uses_what_the_meter_grants(meter_granting, tmp_path: Path,
                                               granted: HdlcParameters) -> None:
    wire = Wire()
    parameters, first, second, _ = poll_twice(meter_granting(granted), tmp_path, wire)
    snrm = wire.sent[0]
    assert snrm.kind is FrameKind.SNRM
    assert HdlcParameters.decode(snrm.info) == HdlcParameters.largest()
    # The meter's view is the client's mirrored: what it transmits we receive.
    assert parameters == HdlcParameters(granted.max_info_receive, granted.max_info_transmit,
                                        granted.window_receive, granted.window_transmit)
    assert len(first) == len(second) == 20
    assert values(first) == values(second)
    for burst in wire.bursts:
        info_frames = [f for f in burst if f.kind is FrameKind.I]
        assert len(info_frames) <= granted.window_receive
        assert all(len(f.info) <= granted.max_info_receive for f in info_frames)
    assert all(len(f.info) <= granted.max_info_transmit for f in wire.received)
    assert [f.kind for f in wire.received].count(FrameKind.FRMR) == 0


def test_room_granted_saves_segments_and_round_trips(meter_granting, tmp_path: Path) -> None:
    """A poll of 20 cached registers: one I-frame each way when the meter grants 512 bytes;
    with 128 bytes and window 7 the two request segments go in one burst (no RR wait)."""
    roomy, windowed, default = Wire(), Wire(), Wire()
    results = {}
    for wire, granted in ((roomy, HdlcParameters(512, 512, 1, 1)),
                          (windowed, HdlcParameters(128, 128, 7, 7)),
                          (default, HdlcParameters())):
        state = tmp_path / str(granted.max_info_receive) / str(granted.window_receive)
        _, _, second, start = poll_twice(meter_granting(granted), state, wire)
        results[id(wire)] = values(second)
        results[id(wire), "frames"] = [[f.kind for f in b] for b in wire.bursts[start:]]
    assert results[id(roomy)] == results[id(windowed)] == results[id(default)]
    # 512 bytes: the GET is one I-frame and its answer needs no RR; then RLRQ, then DISC.
    assert results[id(roomy), "frames"][:2] == [[FrameKind.I], [FrameKind.I]]
    # 128 bytes, window 7: both segments of the GET in one burst, then RLRQ.
    assert results[id(windowed), "frames"][:2] == [[FrameKind.I, FrameKind.I], [FrameKind.I]]
    # Defaults: one segment, wait for the meter's RR, the next segment.
    assert results[id(default), "frames"][:3] == [[FrameKind.I], [FrameKind.I], [FrameKind.I]]


class ParameterRefusingMeter:
    """The simulator behind a pty relay that answers DM to any SNRM carrying parameters,
    as a meter that cannot serve a proposal may; everything else passes both ways."""

    def __init__(self, device_to_client: str, device_to_meter: str) -> None:
        self.client_fd = os.open(device_to_client, os.O_RDWR | os.O_NOCTTY)
        self.meter_fd = os.open(device_to_meter, os.O_RDWR | os.O_NOCTTY)
        for fd in (self.client_fd, self.meter_fd):
            tty.setraw(fd)
        self.refused = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._relay, daemon=True)
        self._thread.start()

    def _relay(self) -> None:
        splitter = FrameSplitter()
        while not self._stop.is_set():
            readable, _, _ = select.select([self.client_fd, self.meter_fd], [], [], 0.1)
            if self.meter_fd in readable:
                os.write(self.client_fd, os.read(self.meter_fd, 4096))
            if self.client_fd in readable:
                for frame in splitter.feed(os.read(self.client_fd, 4096)):
                    assert isinstance(frame, HdlcFrame)
                    if frame.kind is FrameKind.SNRM and frame.info:
                        self.refused += 1
                        dm = HdlcFrame(frame.source, frame.destination, FrameKind.DM, True)
                        os.write(self.client_fd, dm.encode())
                    else:
                        os.write(self.meter_fd, frame.encode())

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        os.close(self.client_fd)
        os.close(self.meter_fd)


def test_a_meter_refusing_the_proposal_is_read_with_the_defaults(tmp_path: Path) -> None:
    to_client, to_meter = PtyPair(), PtyPair()
    station = SimulatedMeterStation(SimulatorOptions(seed=5), clock=lambda: FROZEN)
    server = MeterServer([station.station])
    thread = threading.Thread(target=server.serve_serial, args=(to_meter.path_b,), daemon=True)
    thread.start()
    assert server.serial_open.wait(10), "the simulator did not open its pty"
    refusing = ParameterRefusingMeter(to_client.path_a, to_meter.path_a)
    try:
        wire = Wire()
        parameters, first, second, _ = poll_twice(to_client.path_b, tmp_path, wire)
    finally:
        refusing.close()
        server.stop()
        thread.join(timeout=5)
        to_client.close()
        to_meter.close()
    assert refusing.refused == 1
    assert [(f.kind, bool(f.info)) for f in wire.sent[:2]] == [
        (FrameKind.SNRM, True), (FrameKind.SNRM, False)]
    assert parameters == HdlcParameters()
    assert len(first) == len(second) == 20
    assert all(len(f.info) <= 128 for f in wire.sent + wire.received)


def proposed_from_config(tmp_path: Path, device: str, hdlc: dict) -> ConnectionSettings:
    """The connection settings the agent derives from a meter's ``hdlc`` key."""
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"meters": [{
        "id": "m", "transport": {"serial": {"device": device}}, "timeout": 3, "hdlc": hdlc}]}))
    (meter,) = load_config(path).meters
    return connection_settings(meter)


@pytest.mark.parametrize(("hdlc", "proposed"), [
    ({"max_info": 128, "window": 1}, HdlcParameters()),
    ({"max_info": 256}, HdlcParameters(256, 256, 7, 7)),
])
def test_a_configured_proposal_is_what_snrm_carries_and_the_link_uses(
        meter_granting, tmp_path: Path, hdlc: dict, proposed: HdlcParameters) -> None:
    """``hdlc: {max_info, window}`` replaces the largest proposal: the meter grants 512
    bytes and window 1, the link uses the smaller of both, and no frame is longer."""
    device = meter_granting(HdlcParameters(512, 512, 1, 1))
    wire = Wire()
    with MeterClient(proposed_from_config(tmp_path, device, hdlc), ClientSettings(),
                     meter_id="m", state_dir=tmp_path / "state", pass3_signing="never",
                     clock=lambda: FROZEN, frame_counter=None, tap=wire) as meter:
        used = meter.link.connection.parameters
        readings = meter.read(REGISTERS, class_ids=CLASSES)
    snrm = wire.sent[0]
    assert snrm.kind is FrameKind.SNRM
    assert HdlcParameters.decode(snrm.info) == proposed
    size = proposed.max_info_receive
    assert used == HdlcParameters(size, size, 1, 1)
    assert len(readings) == 20
    assert all(len(f.info) <= size for f in wire.sent + wire.received)
    # An answer too long for one frame fills each segment up to the size, no shorter.
    segments = [f for f in wire.received if f.segmented]
    assert all(len(f.info) == size for f in segments) and bool(segments) == (size == 128)


def test_the_command_line_proposes_what_its_flags_say(meter_granting, tmp_path: Path) -> None:
    device = meter_granting(HdlcParameters(512, 512, 1, 1))
    capture = tmp_path / "capture.txt"
    code = main(["read", "--serial", device, "--timeout", "3", "--state-dir",
                 str(tmp_path / "state"), "--hdlc-max-info", "128", "--hdlc-window", "1",
                 "--capture", str(capture), *(code.dotted for code in REGISTERS)])
    assert code == 0
    frames = [HdlcFrame.decode(line.frame)[0]
              for line in map(parse_line, capture.read_text().splitlines()) if line]
    assert frames[0].kind is FrameKind.SNRM and HdlcParameters.decode(frames[0].info) == HdlcParameters()
    assert len(frames) > 10 and all(len(f.info) <= 128 for f in frames)


@pytest.mark.parametrize(("argv", "message"), [
    (["--hdlc-max-info", "16"], "expected 32..2030, got 16"),
    (["--hdlc-window", "8"], "expected 1..7, got 8"),
    (["--hdlc-window", "two"], "expected a whole number 1..7, got 'two'"),
])
def test_the_command_line_refuses_impossible_proposals(capsys, argv: list[str],
                                                       message: str) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["read", "--serial", "/dev/null", *argv, "1.0.1.8.0.255"])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_hdlc_flags_over_the_wrapper_are_refused(capsys) -> None:
    code = main(["read", "--tcp", "127.0.0.1:1", "--hdlc-max-info", "128", "1.0.1.8.0.255"])
    assert code != 0
    assert "add --hdlc or drop them" in capsys.readouterr().err
