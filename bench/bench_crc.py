"""CRC-16/X.25 throughput: binascii.crc_hqx with bit reflection vs the 256-entry table.

Run: .venv/bin/python bench/bench_crc.py   (prints MB/s of both and their ratio per size)
"""

from __future__ import annotations

import os
import timeit

from edge_agent.dlms.encoding.crc import crc16_x25, crc16_x25_table

# Sizes that matter: an HDLC header (HCS), a default 128-byte info field, a big frame.
SIZES = (9, 128, 1024, 2048)


def throughput(function, data: bytes) -> float:
    """Best-of-5 throughput in MB/s."""
    timer = timeit.Timer(lambda: function(data))
    loops, _ = timer.autorange()
    best = min(timer.repeat(repeat=5, number=loops))
    return loops * len(data) / best / 1e6


def main() -> None:
    print(f"{'bytes':>6} {'crc_hqx MB/s':>13} {'table MB/s':>11} {'ratio':>7}")
    for size in SIZES:
        data = os.urandom(size)
        assert crc16_x25(data) == crc16_x25_table(data)
        fast = throughput(crc16_x25, data)
        table = throughput(crc16_x25_table, data)
        print(f"{size:>6} {fast:>13.1f} {table:>11.1f} {fast / table:>6.1f}x")


if __name__ == "__main__":
    main()
