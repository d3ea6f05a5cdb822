"""A serial line with the speed and the faults of a real one, between two pseudo-terminals.

``EmulatedLine`` is a :class:`~edge_agent.transport.pty.PtyPair` whose relay behaves like
the wire between a meter (``path_a``) and a client (``path_b``):

* **pace**: a byte takes ``bits_per_byte / baud`` seconds (10 bits for 8N1, 11 for 8E1:
  start bit, 8 data bits, parity, stop bit; IEC 62056-21 and -46 lines), in each
  direction independently;
* **turnaround**: the meter answers ``latency`` seconds after the line went quiet
  (applied to every burst from the meter's side);
* **faults**, each at its own rate from a seeded random source so that a run repeats:
  bit flips (per bit), dropped and duplicated bytes (per byte), truncated bursts (the rest
  of a burst lost) and silences (a burst held back for ``silence`` seconds).

:class:`LineStats` counts what crossed and what was injected, and the line's busy time
(first byte to last), the figure that benchmarks compare with the line-rate minimum.
"""

from __future__ import annotations

import os
import random
import select
import threading
import time
from dataclasses import dataclass, field

from edge_agent.transport.pty import PtyPair

__all__ = ["EmulatedLine", "LineFaults", "LineStats", "bits_per_byte"]

_CHUNK = 4096
_SLICE_SECONDS = 0.01  # bytes are handed on in slices of about this much line time
_BURST_GAP = 0.005  # seconds of quiet after which the next bytes start a new burst


def bits_per_byte(parity: str = "N", bytesize: int = 8, stopbits: int = 1) -> int:
    """Bits on the wire per byte: start bit, data bits, parity bit (unless N), stop bits."""
    return 1 + bytesize + (0 if parity.upper() == "N" else 1) + stopbits


@dataclass(frozen=True, slots=True)
class LineFaults:
    """Fault rates: ``bit_error_rate`` per bit, ``drop_rate``/``duplicate_rate`` per byte,
    ``truncate_rate``/``silence_rate`` per burst (``silence`` seconds each)."""

    bit_error_rate: float = 0.0
    drop_rate: float = 0.0
    duplicate_rate: float = 0.0
    truncate_rate: float = 0.0
    silence_rate: float = 0.0
    silence: float = 1.0

    def __post_init__(self) -> None:
        for name in ("bit_error_rate", "drop_rate", "duplicate_rate", "truncate_rate",
                     "silence_rate"):
            rate = getattr(self, name)
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{name} must be within 0..1, got {rate}")
        if self.silence < 0:
            raise ValueError(f"silence must be >= 0 seconds, got {self.silence}")


@dataclass(slots=True)
class LineStats:
    """What crossed the line in each direction and what the line did to it."""

    bytes_to_client: int = 0
    bytes_to_meter: int = 0
    first_byte: float | None = None  # time.monotonic() of the first byte on the wire
    last_byte: float | None = None  # ... and of the end of the last one
    injected: dict[str, int] = field(default_factory=lambda: dict.fromkeys(
        ("bit_flips", "dropped", "duplicated", "truncated", "silences"), 0))

    @property
    def busy_time(self) -> float:
        """Seconds from the first byte on the wire to the end of the last one."""
        if self.first_byte is None or self.last_byte is None:
            return 0.0
        return self.last_byte - self.first_byte


class EmulatedLine(PtyPair):
    """Two linked ptys (meter ``path_a`` <-> client ``path_b``) paced like a serial line."""

    def __init__(self, baud: int = 9600, *, bits: int = 10, latency: float = 0.0,
                 faults: LineFaults = LineFaults(), seed: int = 0) -> None:
        if baud <= 0 or bits <= 0 or latency < 0:
            raise ValueError(f"need baud > 0, bits > 0, latency >= 0; got {baud}, {bits}, "
                             f"{latency}")
        self.byte_time = bits / baud
        self.latency = latency
        self.faults = faults
        self.stats = LineStats()
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        super().__init__()

    # PtyPair starts one relay thread on _relay; the line runs one per direction.
    def _relay(self) -> None:
        directions = ((self._a.master_fd, self._b.master_fd, True),
                      (self._b.master_fd, self._a.master_fd, False))
        self._threads = [threading.Thread(target=self._carry, args=direction, daemon=True,
                                          name=f"line-{'up' if direction[2] else 'down'}")
                         for direction in directions]
        for thread in self._threads:
            thread.start()
        for thread in self._threads:
            thread.join()

    def _carry(self, source: int, sink: int, from_meter: bool) -> None:
        line_free = 0.0  # when the last byte handed on has left the wire
        while True:
            readable, _, _ = select.select([source, self._wake_read], [], [])
            if self._wake_read in readable:
                return
            try:
                data = os.read(source, _CHUNK)
            except OSError:  # EIO: no slave open on that side right now
                time.sleep(0.01)
                continue
            now = time.monotonic()
            new_burst = now - line_free > _BURST_GAP
            start = max(now, line_free)
            if new_burst and from_meter:
                start += self.latency
            data, hold = self._damage(data, new_burst)
            start += hold
            line_free = self._send_paced(sink, data, start, from_meter)

    def _damage(self, data: bytes, new_burst: bool) -> tuple[bytes, float]:
        """``data`` as the line delivers it, and the silence (s) to hold it back."""
        faults, rnd, out = self.faults, self._random, bytearray()
        counts = dict.fromkeys(("bit_flips", "dropped", "duplicated", "truncated",
                                "silences"), 0)
        hold = 0.0
        if new_burst and faults.silence_rate and rnd.random() < faults.silence_rate:
            hold = faults.silence
            counts["silences"] += 1
        cut = len(data)
        if new_burst and faults.truncate_rate and rnd.random() < faults.truncate_rate:
            cut = rnd.randrange(len(data))
            counts["truncated"] += 1
        for byte in data[:cut]:
            if faults.drop_rate and rnd.random() < faults.drop_rate:
                counts["dropped"] += 1
                continue
            if faults.bit_error_rate:
                for bit in range(8):
                    if rnd.random() < faults.bit_error_rate:
                        byte ^= 1 << bit
                        counts["bit_flips"] += 1
            out.append(byte)
            if faults.duplicate_rate and rnd.random() < faults.duplicate_rate:
                out.append(byte)
                counts["duplicated"] += 1
        with self._lock:
            for name, count in counts.items():
                self.stats.injected[name] += count
        return bytes(out), hold

    def _send_paced(self, sink: int, data: bytes, start: float, from_meter: bool) -> float:
        """Write ``data`` so that no byte arrives before the line could have carried it;
        returns when the last byte leaves the wire."""
        per_slice = max(1, int(_SLICE_SECONDS / self.byte_time))
        at = start
        for offset in range(0, len(data), per_slice):
            piece = data[offset:offset + per_slice]
            at += len(piece) * self.byte_time
            delay = at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            self._count(piece, start, at, from_meter)  # before the far side can read it
            view = memoryview(piece)
            while view:
                try:
                    view = view[os.write(sink, view):]
                except OSError:  # the far side is not open: the bytes fall off the line
                    break
        return at

    def _count(self, piece: bytes, start: float, end: float, from_meter: bool) -> None:
        with self._lock:
            stats = self.stats
            if stats.first_byte is None:
                stats.first_byte = start
            stats.last_byte = end
            if from_meter:
                stats.bytes_to_client += len(piece)
            else:
                stats.bytes_to_meter += len(piece)
