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


def upper_bound(expected: float) -> float:
    """What a paced transfer may take at most on a busy 2-core machine: the relay sleeps
    to absolute deadlines, so a late wake-up delays the end once, it does not add up."""
    return expected * 1.5 + 0.1


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


def receive_until_quiet(fd: int, quiet: float = 0.25, timeout: float = 10.0) -> bytes:
    """Everything that comes until the line stays quiet for ``quiet`` seconds."""
    data = bytearray()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        readable, _, _ = select.select([fd], [], [], quiet)
        if not readable:
            break
        data += os.read(fd, 65536)
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


def test_a_clean_line_carries_every_byte_at_its_baud_rate(make_line) -> None:
    line, meter, client = make_line(baud=9600, bits=10)
    payload = bytes(range(256)) * 2  # 512 bytes: 0.533 s at 9600 8N1
    started = time.monotonic()
    os.write(client, payload)
    assert receive(meter, len(payload), 20) == payload
    took = time.monotonic() - started
    assert len(payload) * 10 / 9600 <= took <= upper_bound(len(payload) * 10 / 9600)
    os.write(meter, b"\x7e answer \x7e")
    assert receive(client, 10, 20) == b"\x7e answer \x7e"
    assert (line.stats.bytes_to_meter, line.stats.bytes_to_client) == (512, 10)
    assert line.stats.busy_time >= (512 + 10) * 10 / 9600
    assert not any(line.stats.injected.values())


@pytest.mark.parametrize(("parity", "other"), [("E", "N"), ("N", "E")])
def test_each_byte_takes_its_framings_bits_on_the_wire(make_line, parity, other) -> None:
    """8E1 is 11 bits a byte, 8N1 10: 2 048 bytes at 19 200 baud take 1.173 s and 1.067 s.
    Timed, the transfer lies between its framing's time and the upper bound; 8E1's time
    is over what 8N1 pacing would take, and the line's busy time is its framing's."""
    bits, other_bits = bits_per_byte(parity), bits_per_byte(other)
    line, meter, client = make_line(baud=19200, bits=bits)
    payload = bytes(range(256)) * 8
    expected = len(payload) * bits / 19200
    started = time.monotonic()
    os.write(client, payload)
    assert receive(meter, len(payload), 20) == payload
    took = time.monotonic() - started
    assert expected <= took <= upper_bound(expected), (parity, took, expected)
    # The line's own account of its busy time is the framing's, to a slice (10 ms).
    assert line.stats.busy_time == pytest.approx(expected, abs=0.011)
    assert line.stats.busy_time != pytest.approx(len(payload) * other_bits / 19200,
                                                 abs=0.05)
    if bits > other_bits:
        assert took > len(payload) * other_bits / 19200


def test_the_meter_answers_after_its_turnaround_latency(make_line) -> None:
    _, meter, client = make_line(baud=115200, latency=2.0)
    started = time.monotonic()
    os.write(meter, b"ua")
    assert receive(client, 2, 10) == b"ua"
    assert 2.0 <= time.monotonic() - started <= upper_bound(2.0)
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


def is_sent_with_dropped_bytes(got: bytes, sent: bytes) -> bool:
    """``got`` is ``sent`` with some bytes left out, the rest in order."""
    rest = iter(sent)
    return all(byte in rest for byte in got)


def is_sent_with_duplicated_bytes(got: bytes, sent: bytes) -> int | None:
    """How many bytes of ``sent`` came twice in a row in ``got``; None when ``got`` is not
    ``sent`` with some bytes doubled (``sent``'s neighbours must differ)."""
    at, twice = 0, 0
    for byte in sent:
        if got[at:at + 1] != bytes((byte,)):
            return None
        at += 1
        if got[at:at + 1] == bytes((byte,)):
            at += 1
            twice += 1
    return twice if at == len(got) else None


# 5 000 bytes whose neighbours always differ, so that a doubled byte shows.
SPREAD = bytes((index * 7) % 251 for index in range(5000))


@pytest.mark.parametrize("rate", [0.1, 0.3])
def test_bytes_are_dropped_at_an_intermediate_rate(make_line, rate) -> None:
    """Each byte is lost with probability ``rate``, independently: over 5 000 bytes the
    count lies within 5 standard deviations of 5 000 x rate, and the rest arrive in order."""
    line, meter, client = make_line(baud=1_000_000, faults=LineFaults(drop_rate=rate),
                                    seed=11)
    os.write(meter, SPREAD)
    expected = len(SPREAD) * rate
    got = receive_until_quiet(client)
    dropped = line.stats.injected["dropped"]
    assert len(got) == len(SPREAD) - dropped
    assert abs(dropped - expected) <= 5 * (len(SPREAD) * rate * (1 - rate)) ** 0.5
    assert is_sent_with_dropped_bytes(got, SPREAD)
    assert line.stats.injected["duplicated"] == line.stats.injected["bit_flips"] == 0


@pytest.mark.parametrize("rate", [0.1, 0.3])
def test_bytes_are_duplicated_at_an_intermediate_rate(make_line, rate) -> None:
    line, meter, client = make_line(baud=1_000_000, faults=LineFaults(duplicate_rate=rate),
                                    seed=12)
    os.write(meter, SPREAD)
    got = receive_until_quiet(client)
    duplicated = line.stats.injected["duplicated"]
    assert len(got) == len(SPREAD) + duplicated
    assert abs(duplicated - len(SPREAD) * rate) <= 5 * (len(SPREAD) * rate * (1 - rate)) ** 0.5
    assert is_sent_with_duplicated_bytes(got, SPREAD) == duplicated
    assert line.stats.injected["dropped"] == 0


def test_bursts_are_truncated_at_an_intermediate_rate(make_line) -> None:
    """Truncation is per burst: of 80 bursts at 0.25 each, 20 +- 5 sigma are cut short
    (the rest of the burst lost, what came before intact), the others arrive whole."""
    line, meter, client = make_line(baud=1_000_000, faults=LineFaults(truncate_rate=0.25),
                                    seed=13)
    bursts, cut = 80, 0
    for number in range(bursts):
        burst = bytes((number, *range(1, 60)))
        os.write(meter, burst)
        got = receive(client, len(burst), 0.05)  # 0.6 ms on the wire, then quiet
        assert got == burst[:len(got)], (number, got)
        cut += len(got) < len(burst)
        time.sleep(0.01)  # past the 5 ms gap that makes the next write a new burst
    assert line.stats.injected["truncated"] == cut
    assert abs(cut - bursts * 0.25) <= 5 * (bursts * 0.25 * 0.75) ** 0.5
    assert cut > 0


def test_a_silence_holds_the_burst_back(make_line) -> None:
    line, meter, client = make_line(baud=1_000_000,
                                    faults=LineFaults(silence_rate=1.0, silence=0.3))
    started = time.monotonic()
    os.write(meter, b"late")
    assert receive(client, 4, 5) == b"late"
    assert 0.3 <= time.monotonic() - started <= upper_bound(0.3)
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
