"""Fault injection: each kind, driven by the real client over a real TCP socket, emits what
it says -- asserted on the raw bytes the simulator sent (a recording proxy sits between).

What the client makes of each fault is another test's business; here only "the meter
misbehaved exactly like this" is checked.
"""

from __future__ import annotations

import re
import socket
import subprocess
import time
from pathlib import Path

import pytest
from sim_io import CLI, Recording, RecordingProxy, cli, hdlc_frames, simulator, wrapper_frames

from edge_agent import children
from edge_agent.dlms import apdu as x
from edge_agent.dlms.apdu.acse import AARE
from edge_agent.dlms.errors import ConfigError, DlmsError, FrameError, TruncatedError
from edge_agent.dlms.link.hdlc.frame import FrameKind, HdlcAddress, HdlcFrame, HdlcParameters
from edge_agent.simulator.faults import (
    FAULTS,
    Emission,
    FaultInjector,
    describe_faults,
    parse_fault,
)
from edge_agent.simulator.meter import SimulatorOptions

pytestmark = pytest.mark.timeout(90)

SNRM = HdlcFrame(HdlcAddress.server(1, 16), HdlcAddress.client(16), FrameKind.SNRM, True,
                 info=HdlcParameters().encode()).encode()


def read_through(proxy: RecordingProxy, state: Path, *args: str, hdlc: bool = False) -> Recording:
    """``dlms-edge read`` through the proxy (short time-outs); the one recorded connection."""
    cli("read", "--tcp", f"127.0.0.1:{proxy.port}", *(["--hdlc"] if hdlc else []), "--timeout", "2",
        "--retries", "1", "--state-dir", str(state), *args)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not (proxy.recordings and proxy.recordings[0].from_meter):
        time.sleep(0.05)
    time.sleep(0.3)  # what the meter sent after the client hung up
    return proxy.recordings[0]


def faulty(*specs: str, delay: float = 1.0) -> FaultInjector:
    return FaultInjector.of(specs, seed=3, delay=delay)


# --- the table and its options --------------------------------------------------------------


def test_help_lists_every_kind_with_one_line() -> None:
    lines = describe_faults().splitlines()
    assert [line.split()[0] for line in lines] == list(FAULTS)
    assert set(FAULTS) == {"drop", "delay", "fcs", "stale", "garbage", "close", "refuse", "counter", "trailing"}
    out = cli("simulate", "--help").stdout
    for name in FAULTS:
        assert any(line.split()[:1] == [name] for line in out.splitlines()), name


@pytest.mark.parametrize("spec", ["bogus", "drop:2", "drop:x", "delay:-0.1"])
def test_a_bad_fault_is_a_config_error(spec: str) -> None:
    with pytest.raises(ConfigError):
        parse_fault(spec)
    result = cli("simulate", "--tcp", "127.0.0.1:0", "--fault", spec)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "fault" in result.stderr


def test_rates_are_reproducible_with_the_seed() -> None:
    def run(seed: int) -> list[tuple[int, ...]]:
        injector = FaultInjector.of(["drop:0.5", "garbage:0.3"], seed=seed)
        return [tuple(map(len, injector.on_wire([b"\x7eframe\x7e"], hdlc=True).chunks)) for _ in range(64)]

    assert run(7) == run(7)
    assert run(7) != run(8)
    never = FaultInjector.of(["drop:0"])
    assert all(never.on_wire([b"x"], hdlc=True).chunks == [b"x"] for _ in range(50))
    assert not never.fired


def test_faults_of_one_kind_do_not_shift_another() -> None:
    alone = FaultInjector.of(["drop:0.5"], seed=1)
    paired = FaultInjector.of(["garbage:0.5", "drop:0.5"], seed=1)
    for _ in range(40):
        dropped = alone.on_wire([b"a"], hdlc=True).chunks == []
        assert dropped == (paired.on_wire([b"a"], hdlc=True).chunks == [])


# --- each kind, on the wire -----------------------------------------------------------------


def test_drop_leaves_the_client_without_an_answer(tmp_path: Path) -> None:
    with simulator(faults=(injector := faulty("drop"))) as (_, _, port), RecordingProxy(port) as proxy:
        recording = read_through(proxy, tmp_path, "1.0.1.8.0.255", hdlc=True)
    assert recording.meter_bytes == b""
    snrms = [f for f in hdlc_frames(recording.client_bytes)[0] if f.kind is FrameKind.SNRM]
    assert len(snrms) >= 2, "the client asked again, the meter stayed silent"
    assert injector.fired["drop"] == len(snrms)


def test_delay_holds_each_answer_back(tmp_path: Path) -> None:
    with simulator(faults=faulty("delay", delay=1.0)) as (_, _, port), RecordingProxy(port) as proxy:
        recording = read_through(proxy, tmp_path, "1.0.1.8.0.255")
    asked, answered = recording.to_meter[0][0], recording.from_meter[0][0]
    assert answered - asked >= 1.0
    assert wrapper_frames(recording.meter_bytes)  # intact, only late


def test_fcs_corrupts_the_last_frame_of_an_answer(tmp_path: Path) -> None:
    with simulator(faults=faulty("fcs")) as (_, _, port), RecordingProxy(port) as proxy:
        recording = read_through(proxy, tmp_path, "1.0.1.8.0.255", hdlc=True)
    first = recording.from_meter[0][1]
    with pytest.raises(FrameError, match="FCS mismatch"):
        HdlcFrame.decode(first)
    repaired = bytearray(first)
    repaired[-3] ^= 0xFF
    assert HdlcFrame.decode(bytes(repaired))[0].kind is FrameKind.UA
    assert hdlc_frames(recording.meter_bytes)[0] == [], "no answer got through intact"


def test_stale_sends_the_previous_answer_first(tmp_path: Path) -> None:
    with simulator(faults=faulty("stale")) as (_, _, port), RecordingProxy(port) as proxy:
        recording = read_through(proxy, tmp_path, "1.0.1.8.0.255", "1.0.32.7.0.255")
    apdus = [frame.apdu for frame in wrapper_frames(recording.meter_bytes)]
    assert apdus[0][0] == AARE.TAG
    assert apdus[1] == apdus[0], "the AARE again, before the answer to the first GET"
    assert apdus[2][0] == 0xC4, "then the answer to the GET"


def test_garbage_comes_between_frames(tmp_path: Path) -> None:
    with simulator(faults=faulty("garbage")) as (_, _, port), RecordingProxy(port) as proxy:
        recording = read_through(proxy, tmp_path, "1.0.1.8.0.255", hdlc=True)
    data = recording.meter_bytes
    assert data[0] != 0x7E and 1 <= data.index(0x7E) <= 16
    frames, splitter = hdlc_frames(data)
    assert frames[0].kind is FrameKind.UA and splitter.discarded >= data.index(0x7E)


def test_close_hangs_up_in_the_middle_of_a_frame(tmp_path: Path) -> None:
    with simulator(faults=faulty("close")) as (_, _, port), RecordingProxy(port) as proxy:
        recording = read_through(proxy, tmp_path, "1.0.1.8.0.255", hdlc=True)
    assert recording.meter_closed
    data = recording.meter_bytes
    assert data[0] == 0x7E
    with pytest.raises(TruncatedError):
        HdlcFrame.decode(data)


def test_refuse_answers_the_aarq_with_a_rejection(tmp_path: Path) -> None:
    with simulator(faults=faulty("refuse")) as (_, _, port), RecordingProxy(port) as proxy:
        recording = read_through(proxy, tmp_path, "1.0.1.8.0.255")
    (frame,) = wrapper_frames(recording.meter_bytes)
    assert AARE.decode(frame.apdu).result == 1  # rejected-permanent


def test_counter_reports_a_wrong_frame_counter(tmp_path: Path) -> None:
    with simulator(faults=faulty("counter")) as (station, _, port), RecordingProxy(port) as proxy:
        recording = read_through(proxy, tmp_path, "0.0.43.1.0.255")
        real = station.model.meter.invocation_counter
    answers = [x.decode_apdu(f.apdu) for f in wrapper_frames(recording.meter_bytes) if f.apdu[0] == 0xC4]
    reported = [a.result if isinstance(a, x.GetResponseNormal) else a.results[0] for a in answers]
    assert reported and all(int(value) == real + 1000 for value in reported)


def test_trailing_bytes_follow_each_answer_apdu(tmp_path: Path) -> None:
    with simulator(faults=faulty("trailing")) as (_, _, port), RecordingProxy(port) as proxy:
        recording = read_through(proxy, tmp_path, "1.0.1.8.0.255")
    (aare, *rest) = wrapper_frames(recording.meter_bytes)
    assert aare.apdu[0] == AARE.TAG
    gets = [frame for frame in rest if frame.apdu[0] == 0xC4]
    assert gets
    for frame in gets:
        with pytest.raises(DlmsError, match="unexpected byte"):
            x.decode_apdu(frame.apdu)
        assert any(_decodes(frame.apdu[:-cut]) for cut in range(1, 5))


def _decodes(apdu: bytes) -> bool:
    try:
        x.decode_apdu(apdu)
    except DlmsError:
        return False
    return True


def test_wire_faults_leave_the_wrapper_checksum_alone() -> None:
    emission = FaultInjector.of(["fcs"]).on_wire([b"\x00\x01\x00\x01\x00\x10\x00\x01\xc4"], hdlc=False)
    assert emission == Emission([b"\x00\x01\x00\x01\x00\x10\x00\x01\xc4"], hdlc=False)


# --- the CLI ----------------------------------------------------------------------------------


def test_simulate_fault_option_reaches_the_wire() -> None:
    """``dlms-edge simulate --fault fcs``: the UA to an SNRM comes with a broken FCS."""
    process = children.spawn([*CLI, "simulate", "--tcp", "127.0.0.1:0", "--fault", "fcs", "--seed", "5"],
                             stderr=subprocess.PIPE, text=True)
    try:
        port, head = _listening(process)
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(SNRM)
            data = sock.recv(4096)
        with pytest.raises(FrameError, match="FCS"):
            HdlcFrame.decode(data)
    finally:
        children.stop(process)
    assert "faults: fcs (rate 1); seed 5" in head


def _listening(process: subprocess.Popen[str]) -> tuple[int, str]:
    assert process.stderr is not None
    head = ""
    for line in process.stderr:
        head += line
        if match := re.search(r"listening on [0-9.]+:(\d+)", line):
            return int(match.group(1)), head
    raise AssertionError(f"the simulator did not start: {head}")


def test_default_opportunities_fire_every_time(tmp_path: Path) -> None:
    with simulator(SimulatorOptions(), faults=(injector := faulty("trailing"))) as (_, _, port), \
            RecordingProxy(port) as proxy:
        recording = read_through(proxy, tmp_path, "1.0.1.8.0.255", "1.0.32.7.0.255")
    assert injector.fired["trailing"] == len(wrapper_frames(recording.meter_bytes))
