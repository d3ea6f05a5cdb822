"""The emulated serial line: paced at its baud rate, the meter's turnaround, and faults
at the rates asked for (seeded: a run repeats), counted in its stats; a real HDLC read
over it takes at least the line's minimum time."""

from __future__ import annotations

import os
import select
import threading
import time

import pytest

from edge_agent.client.client import MeterClient
from edge_agent.client.connection import ConnectionSettings
from edge_agent.dlms.association.client import ClientSettings
from edge_agent.dlms.cosem.obis import Obis
from edge_agent.simulator.meter import SimulatedMeterStation, SimulatorOptions
from edge_agent.simulator.server import MeterServer
from edge_agent.transport.line_emulator import EmulatedLine, LineFaults, bits_per_byte

pytestmark = pytest.mark.timeout(60)


def endpoints(line: EmulatedLine) -> tuple[int, int]:
    """Raw file descriptors on the meter's and the client's device."""
    import tty

    meter = os.open(line.path_a, os.O_RDWR | os.O_NOCTTY)
    client = os.open(line.path_b, os.O_RDWR | os.O_NOCTTY)
    for fd in (meter, client):
        tty.setraw(fd)
    return meter, client


def receive(fd: int, count: int, timeout: float) -> bytes:
    data = bytearray()
    deadline = time.monotonic() + timeout
    while len(data) < count:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        readable, _, _ = select.select([fd], [], [], left)
        if readable:
            data += os.read(fd, 4096)
    return bytes(data)


@pytest.fixture
def make_line():
    made: list[tuple[EmulatedLine, tuple[int, int]]] = []

    def make(**options) -> tuple[EmulatedLine, int, int]:
        line = EmulatedLine(**options)
        fds = endpoints(line)
        made.append((line, fds))
        return line, *fds

    yield make
    for line, fds in made:
        for fd in fds:
            os.close(fd)
        line.close()


def test_bits_per_byte_of_the_usual_framings() -> None:
    assert bits_per_byte("N") == 10 and bits_per_byte("E") == 11
    assert bits_per_byte("E", 7, 2) == 11


def test_a_clean_line_carries_every_byte_no_faster_than_its_baud_rate(make_line) -> None:
    line, meter, client = make_line(baud=9600, bits=10)
    payload = bytes(range(256)) * 2  # 512 bytes: 0.533 s at 9600 8N1
    started = time.monotonic()
    os.write(client, payload)
    assert receive(meter, len(payload), 20) == payload
    assert time.monotonic() - started >= len(payload) * 10 / 9600
    os.write(meter, b"\x7e answer \x7e")
    assert receive(client, 10, 20) == b"\x7e answer \x7e"
    assert (line.stats.bytes_to_meter, line.stats.bytes_to_client) == (512, 10)
    assert line.stats.busy_time >= (512 + 10) * 10 / 9600
    assert not any(line.stats.injected.values())


def test_the_meter_answers_after_its_turnaround_latency(make_line) -> None:
    _, meter, client = make_line(baud=115200, latency=2.0)
    started = time.monotonic()
    os.write(meter, b"ua")
    assert receive(client, 2, 10) == b"ua"
    assert time.monotonic() - started >= 2.0
    started = time.monotonic()
    os.write(client, b"snrm")  # the client's direction has no turnaround
    assert receive(meter, 4, 10) == b"snrm"
    assert time.monotonic() - started < 2.0


def test_bit_flips_at_the_asked_rate_are_counted_and_repeat_with_the_seed(make_line) -> None:
    payload = bytes(2000)
    seen = []
    for _ in range(2):
        line, meter, client = make_line(baud=1_000_000, faults=LineFaults(bit_error_rate=0.01),
                                        seed=42)
        os.write(meter, payload)
        got = receive(client, len(payload), 20)
        flipped = sum(byte.bit_count() for byte in got)
        assert flipped == line.stats.injected["bit_flips"]
        assert 80 <= flipped <= 250  # 16 000 bits at 1e-2
        seen.append(got)
    assert seen[0] == seen[1]


@pytest.mark.parametrize(("faults", "expect", "check"), [
    (LineFaults(drop_rate=1.0), 0, lambda got, stats: got == b"" and stats["dropped"] == 100),
    (LineFaults(duplicate_rate=1.0), 200,
     lambda got, stats: got == bytes(b for b in range(100) for _ in (0, 1))),
    (LineFaults(truncate_rate=1.0), 100,
     lambda got, stats: got == bytes(range(len(got))) and len(got) < 100
     and stats["truncated"] == 1),
])
def test_dropped_duplicated_and_truncated_bytes(make_line, faults, expect, check) -> None:
    line, meter, client = make_line(baud=1_000_000, faults=faults, seed=7)
    os.write(meter, bytes(range(100)))
    # All that will come: 200 bytes, or what arrives within a second when less is due.
    got = receive(client, expect or 1, 10 if expect == 200 else 1.0)
    assert check(got, line.stats.injected), (got, line.stats.injected)


def test_a_silence_holds_the_burst_back(make_line) -> None:
    line, meter, client = make_line(baud=1_000_000,
                                    faults=LineFaults(silence_rate=1.0, silence=0.3))
    started = time.monotonic()
    os.write(meter, b"late")
    assert receive(client, 4, 5) == b"late"
    assert time.monotonic() - started >= 0.3
    assert line.stats.injected["silences"] == 1


def test_an_hdlc_read_over_9600_baud_takes_at_least_the_line_minimum(tmp_path) -> None:
    line = EmulatedLine(baud=9600, bits=10, latency=0.02)
    station = SimulatedMeterStation(SimulatorOptions(seed=3))
    server = MeterServer([station.station])
    thread = threading.Thread(target=server.serve_serial, args=(line.path_a,), daemon=True)
    thread.start()
    try:
        client = MeterClient(ConnectionSettings(serial=line.path_b, baud=9600, timeout=3),
                             ClientSettings(), meter_id="line", state_dir=tmp_path)
        with client:
            value = client.get(Obis.parse("1.0.1.8.0.255"), 3, 2)
        assert isinstance(value, int)
        stats = line.stats
        wire_bytes = stats.bytes_to_client + stats.bytes_to_meter
        assert wire_bytes > 50  # SNRM/UA, AARQ/AARE, GET, RLRQ, DISC at least
        assert stats.busy_time >= wire_bytes * 10 / 9600
    finally:
        server.stop()
        thread.join(timeout=2)
        line.close()
