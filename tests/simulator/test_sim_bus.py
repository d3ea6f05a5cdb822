"""Simulated meters on a shared HDLC bus (a pty, as an RS-485 line): each station answers
only frames addressed to it, never speaks unpolled, and answers every poll."""

from __future__ import annotations

import os
import select
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
from sim_io import cli

from edge_agent.dlms.apdu import CosemAttributeDescriptor, GetRequestNormal
from edge_agent.dlms.encoding.crc import crc16_x25
from edge_agent.dlms.errors import TruncatedError
from edge_agent.dlms.link.hdlc.connection import HdlcConnection, State
from edge_agent.dlms.link.hdlc.frame import (
    LLC_COMMAND,
    FrameKind,
    FrameSplitter,
    HdlcAddress,
    HdlcFrame,
)
from edge_agent.simulator.faults import NO_FAULTS, FaultInjector
from edge_agent.simulator.meter import SimulatedMeterStation, SimulatorOptions
from edge_agent.simulator.server import MeterServer
from edge_agent.transport.pty import PtyPair

pytestmark = pytest.mark.timeout(60)

CLIENT = HdlcAddress.client(16)
A = HdlcAddress.server(1, 17)
B = HdlcAddress.server(1, 18)
GET_ENERGY = GetRequestNormal(0xC1, CosemAttributeDescriptor(3, bytes((1, 0, 1, 8, 0, 255)), 2)).encode()
QUIET = 0.6  # seconds of silence that count as "no answer" (the server polls its fd every 0.2 s)


@dataclass
class Bus:
    """The stations serve one end of a pty pair (``pair.path_a``, as ``--serial``); the
    test is the client on the other end (``fd`` on ``pair.path_b``)."""

    pair: PtyPair
    fd: int
    server: MeterServer
    sent: list[bytes]  # every frame a station put on the bus (the server's tap)

    def station(self, address: HdlcAddress) -> HdlcConnection:
        bus = self.server.buses[0]
        return next(e.connection for e in bus.endpoints if e.connection.local == address)

    def write(self, *frames: bytes) -> None:
        for frame in frames:
            os.write(self.fd, frame)

    def read(self, count: int = 1, timeout: float = 3.0) -> list[HdlcFrame]:
        """Up to ``count`` frames, or fewer after ``timeout`` (QUIET when count is 0)."""
        splitter, frames = FrameSplitter(), []
        deadline = time.monotonic() + (QUIET if count == 0 else timeout)
        while time.monotonic() < deadline and (count == 0 or len(frames) < count):
            if select.select([self.fd], [], [], 0.05)[0]:
                frames += [f for f in splitter.feed(os.read(self.fd, 4096)) if isinstance(f, HdlcFrame)]
        return frames

    def ask(self, frame: bytes) -> HdlcFrame:
        self.write(frame)
        (answer,) = self.read(1)
        return answer

    def silent_after(self, *frames: bytes) -> bool:
        self.write(*frames)
        return self.read(0) == []


@contextmanager
def open_bus(faults: FaultInjector = NO_FAULTS) -> Iterator[Bus]:
    stations = [SimulatedMeterStation(SimulatorOptions(physical=physical)) for physical in (17, 18)]
    sent: list[bytes] = []
    server = MeterServer([s.station for s in stations], faults=faults,
                         tap=lambda direction, frame: sent.append(frame) if direction == "tx" else None)
    pair = PtyPair()
    thread = threading.Thread(target=server.serve_serial, args=(pair.path_a,), daemon=True)
    thread.start()
    deadline = time.monotonic() + 5
    while not server.buses and time.monotonic() < deadline:
        time.sleep(0.01)
    fd = os.open(pair.path_b, os.O_RDWR | os.O_NOCTTY)
    try:
        yield Bus(pair, fd, server, sent)
    finally:
        server.stop()
        thread.join(5)
        os.close(fd)
        pair.close()
        for station in stations:
            station.close()


@pytest.fixture
def bus() -> Iterator[Bus]:
    with open_bus() as opened:
        yield opened


def snapshot(connection: HdlcConnection) -> tuple[object, ...]:
    """Everything the protocol state of a station is made of."""
    c = connection
    return (c.state, c.remote, c._reply_address, c.parameters, c._vs, c._vr, list(c._unacked),
            list(c._pending), bytes(c._reassembly), c._reassembly_started, c._polled,
            c._frmr_condition, c._peer_busy, c.next_event())


def i_frame(to: HdlcAddress, ns: int, nr: int, apdu: bytes, *, poll: bool = True) -> bytes:
    return HdlcFrame(to, CLIENT, FrameKind.I, poll, ns, nr, info=LLC_COMMAND + apdu).encode()


def frame(to: HdlcAddress, kind: FrameKind, poll: bool = True, nr: int = 0) -> bytes:
    return HdlcFrame(to, CLIENT, kind, poll, receive_sequence=nr).encode()


def undefined(to: HdlcAddress, control: int) -> bytes:
    """An intact frame whose control byte IEC 62056-46 does not define (REJ 0x09, P: 0x10)."""
    body = bytes.fromhex("a00a") + to.encode() + CLIENT.encode() + bytes((control,))
    return b"\x7e" + body + crc16_x25(body).to_bytes(2, "little") + b"\x7e"


def test_a_frame_for_one_station_leaves_the_other_silent_and_unchanged(bus: Bus) -> None:
    assert bus.ask(frame(B, FrameKind.SNRM)).kind is FrameKind.UA  # B has a link of its own
    b_before, b_sent = snapshot(bus.station(B)), len(bus.sent)
    # A whole conversation with A, including what provokes FRMR and DM, and a bad frame.
    assert bus.ask(frame(A, FrameKind.RR)).kind is FrameKind.DM  # not connected yet
    ua = bus.ask(frame(A, FrameKind.SNRM))
    assert (ua.kind, ua.source) == (FrameKind.UA, A)
    answer = bus.ask(i_frame(A, 0, 0, GET_ENERGY))
    assert answer.kind is FrameKind.I and answer.source == A  # ExceptionResponse: no association
    assert bus.ask(undefined(A, 0x19)).kind is FrameKind.FRMR
    assert bus.ask(frame(A, FrameKind.SNRM)).kind is FrameKind.UA
    corrupt = bytearray(i_frame(A, 0, 0, GET_ENERGY))
    corrupt[-3] ^= 0xFF
    assert bus.silent_after(bytes(corrupt))
    assert bus.ask(frame(A, FrameKind.DISC)).kind is FrameKind.UA
    assert all(HdlcFrame.decode(f)[0].source == A for f in bus.sent[b_sent:]), "only A spoke"
    assert snapshot(bus.station(B)) == b_before
    assert bus.ask(frame(B, FrameKind.RR)).kind is FrameKind.RR  # B's link is still up


def test_frames_for_another_station_never_draw_frmr_or_change_state(bus: Bus) -> None:
    assert bus.ask(frame(A, FrameKind.SNRM)).kind is FrameKind.UA
    before = snapshot(bus.station(A))
    # Connected to A, the same client talks to B: undefined control, an impossible N(R),
    # I-frames with and without P, a DISC. A must neither answer nor change.
    assert bus.ask(undefined(B, 0x19)).kind is FrameKind.DM  # B answers for itself (DM)
    assert bus.silent_after(undefined(B, 0x09), i_frame(B, 3, 5, GET_ENERGY, poll=False))
    assert bus.ask(frame(B, FrameKind.DISC)).source == B
    assert snapshot(bus.station(A)) == before
    assert bus.station(A).state is State.CONNECTED


def test_the_real_client_reads_one_station_while_the_other_stays_silent(bus: Bus, tmp_path) -> None:
    assert bus.ask(frame(B, FrameKind.SNRM)).kind is FrameKind.UA
    b_before, b_sent = snapshot(bus.station(B)), len(bus.sent)
    result = cli("read", "--serial", bus.pair.path_b, "--physical", "17", "--state-dir", str(tmp_path),
                 "--json", "1.0.1.8.0.255")
    assert result.returncode == 0, result.stderr
    assert '"1.0.1.8.0.255"' in result.stdout
    spoken = [HdlcFrame.decode(f)[0] for f in bus.sent[b_sent:]]
    assert spoken and {f.source for f in spoken} == {A}
    assert snapshot(bus.station(B)) == b_before


def test_an_unpolled_request_is_answered_at_the_next_poll_only(bus: Bus) -> None:
    assert bus.ask(frame(A, FrameKind.SNRM)).kind is FrameKind.UA
    assert bus.silent_after(i_frame(A, 0, 0, GET_ENERGY, poll=False)), "answered unpolled"
    answer = bus.ask(frame(A, FrameKind.RR, nr=0))
    assert (answer.kind, answer.poll_final, answer.send_sequence, answer.receive_sequence) == (
        FrameKind.I, True, 0, 1)
    assert answer.info[3:5] == b"\xd8\x01"  # ExceptionResponse: no association yet


def test_every_poll_is_answered_even_an_i_frame_with_only_the_llc_header(bus: Bus) -> None:
    assert bus.ask(frame(A, FrameKind.SNRM)).kind is FrameKind.UA
    empty = bus.ask(i_frame(A, 0, 0, b""))
    assert (empty.kind, empty.poll_final, empty.receive_sequence) == (FrameKind.RR, True, 1)
    no_llc = bus.ask(HdlcFrame(A, CLIENT, FrameKind.I, True, 1, 0, info=GET_ENERGY).encode())
    assert (no_llc.kind, no_llc.poll_final) == (FrameKind.RR, True)
    assert bus.ask(frame(A, FrameKind.RR, nr=0)).kind is FrameKind.RR
    # A frame reject found in an unpolled frame is reported at the next poll.
    assert bus.silent_after(undefined(A, 0x09))
    assert bus.ask(frame(A, FrameKind.RR, nr=0)).kind is FrameKind.FRMR


def test_each_poll_gets_exactly_one_final_frame(bus: Bus) -> None:
    polls = [frame(A, FrameKind.SNRM), i_frame(A, 0, 0, GET_ENERGY), frame(A, FrameKind.RR, nr=1),
             i_frame(A, 1, 1, b""), frame(A, FrameKind.DISC), frame(A, FrameKind.DISC)]
    for poll in polls:
        bus.write(poll)
        answers = bus.read(2, timeout=QUIET + 0.4)
        assert [a.poll_final for a in answers] == [True], (HdlcFrame.decode(poll)[0], answers)


def test_close_on_a_serial_line_cuts_a_frame_and_drops_every_link() -> None:
    """On a serial line the meter cannot hang up: the close fault cuts its answer short and
    forgets the link state of every station, as a power cut does."""
    with open_bus(FaultInjector.of(["close:0.5"], seed=2)) as bus:
        outcomes = []
        for _ in range(6):
            bus.write(frame(A, FrameKind.SNRM))
            data = b""
            deadline = time.monotonic() + QUIET + 0.4
            while time.monotonic() < deadline:
                if select.select([bus.fd], [], [], 0.05)[0]:
                    data += os.read(bus.fd, 4096)
            whole = [f for f in FrameSplitter().feed(data) if isinstance(f, HdlcFrame)]
            outcomes.append("whole" if whole else "cut")
            if not whole:
                with pytest.raises(TruncatedError):  # half a UA, then nothing
                    HdlcFrame.decode(data)
                assert all(e.connection.state is State.DISCONNECTED for e in bus.server.buses[0].endpoints)
        assert {"whole", "cut"} <= set(outcomes), outcomes


def test_stale_over_hdlc_stays_link_correct() -> None:
    """The stale fault on HDLC: the previous answer takes the poll's final frame (window 1),
    the right answer comes at the client's next poll, with the next N(S)."""
    from edge_agent.dlms.apdu import InitiateRequest
    from edge_agent.dlms.apdu.acse import AARE, AARQ
    from edge_agent.dlms.apdu.conformance import CLIENT_DEFAULT

    aarq = AARQ(user_information=InitiateRequest(CLIENT_DEFAULT).encode()).encode()
    with open_bus(FaultInjector.of(["stale"])) as bus:
        assert bus.ask(frame(A, FrameKind.SNRM)).kind is FrameKind.UA
        aare = bus.ask(i_frame(A, 0, 0, aarq))
        assert aare.info[3] == AARE.TAG and aare.send_sequence == 0
        stale = bus.ask(i_frame(A, 1, 1, GET_ENERGY))
        assert (stale.info, stale.send_sequence, stale.poll_final) == (aare.info, 1, True)
        assert bus.read(0) == [], "nothing more until polled"
        right = bus.ask(frame(A, FrameKind.RR, nr=2))
        assert (right.info[3], right.send_sequence, right.poll_final) == (0xC4, 2, True)
