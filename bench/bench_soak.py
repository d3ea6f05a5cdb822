"""Fault soak, long: recovery time per fault class, and bit-error rates 1e-4 and 1e-3.

    .venv/bin/python bench/bench_soak.py                  # 1 min of each part (bench/run)
    .venv/bin/python bench/bench_soak.py --minutes 8      # the run in docs/RELIABILITY.md
    .venv/bin/python bench/bench_soak.py --max-info 512   # a meter granting 512-byte fields

The rig of tests/agent/test_fault_soak.py (tests/agent/soak_harness.py): the agent polls a
frozen-clock simulated meter every second over an emulated 38 400 baud line, and a
Mosquitto broker on a free port carries what it publishes. Three parts of ``--minutes``
each:

1. **fault classes**: a clean line; one fault of each class in turn (the line's bit
   flips, dropped and duplicated bytes, truncated bursts, silences; the simulator's
   ``--fault`` kinds), each right after a good poll, until the time is up. Recovery: from
   the end of the fault to the next good poll at the broker.
2. **bit errors 1e-4** with drops, truncations and 1.5 s silences at the rates of a poor
   real line (CI raises the other classes' rates so that each occurs within seconds and
   adds duplicates: tests/agent/test_fault_soak.py), and
3. **bit errors 1e-3**: continuous noise from the first association on (CI associates on
   a clean line first), where faults have no single end; the times without a good poll
   (outages) stand in for recovery.

Printed per row: polls published (and missed against the schedule), wrong values
(must be 0), snapshots lost between the agent's queue and the broker (must be 0),
objects missing from a published snapshot, recovery p50/max. Printed, never asserted.
``--max-info`` is the HDLC information field the meter grants (default 128, the
standard's default; the client proposes 2030).
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPOSITORY / "tests" / "agent"), str(REPOSITORY / "tests")]

from agent_watch import mosquitto_binary
from conftest import Mosquitto, free_port
from soak_harness import (
    BAUD,
    FAULT_CLASSES,
    INTERVAL,
    NOT_EXERCISED,
    Tally,
    recovery_bound,
    run_episodes,
    soak_rig,
)

from edge_agent.transport.line_emulator import LineFaults

NOISE = {
    "bit errors 1e-4": (LineFaults(bit_error_rate=1e-4, drop_rate=2e-5, truncate_rate=0.002,
                                   silence_rate=0.002, silence=1.5), 3),
    "bit errors 1e-3": (LineFaults(bit_error_rate=1e-3), 10),
}


def fault_classes(work: Path, broker: Mosquitto, seconds: float, max_info: int) -> None:
    tallies: dict[str, Tally] = {}
    (work / "classes").mkdir()
    with soak_rig(work / "classes", broker, max_info=max_info) as rig:
        deadline = time.monotonic() + seconds
        rounds = 0
        while time.monotonic() < deadline:
            run_episodes(rig, list(FAULT_CLASSES.values()), tallies,
                         keep_going=lambda: time.monotonic() < deadline)
            rounds += 1
        lost = rig.count_lost()
        print(f"fault classes: {seconds / 60:g} min, {rounds} rounds, lost overall "
              f"{len(lost)}; recovery bound {recovery_bound(0.0, rig.retries):.1f} s + the "
              "fault's length")
    for name, tally in tallies.items():
        print(f"  {tally.line(name)}")
    for kind, reason in NOT_EXERCISED.items():
        print(f"  meter: {kind:17s} not exercised: {reason}")


def noise(work: Path, broker: Mosquitto, name: str, seconds: float, max_info: int) -> None:
    faults, retries = NOISE[name]
    tally = Tally()
    (work / name.replace(" ", "-")).mkdir()
    with soak_rig(work / name.replace(" ", "-"), broker, faults, retries=retries,
                  max_info=max_info) as rig:
        started = time.monotonic()
        time.sleep(seconds)
        ended = time.monotonic()
        rig.tally(tally, started, ended)
        rig.add_outages(tally, started, ended)
        rig.count_lost()
        injected = rig.line.stats.injected
    print(f"  {tally.line(name)} (retries {retries}; injected "
          + ", ".join(f"{count} {what}" for what, count in injected.items()) + ")")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=1.0, help="minutes of each part")
    parser.add_argument("--max-info", type=int, default=128,
                        help="HDLC information field the meter grants (bytes)")
    args = parser.parse_args()
    binary = mosquitto_binary()
    if binary is None:
        print("mosquitto not installed: nothing measured (bash scripts/test installs it)")
        return
    seconds = 60.0 * args.minutes
    logging.disable(logging.WARNING)  # the agent's warnings of each fault: the figures say it
    print(f"fault soak: agent polling every {INTERVAL:g} s over a {BAUD} baud emulated line, "
          f"meter grants {args.max_info}-byte HDLC fields; Python "
          f"{platform.python_version()}, {os.cpu_count()} cores, load "
          + " ".join(f"{load:.2f}" for load in os.getloadavg()))
    with tempfile.TemporaryDirectory(prefix="bench-soak-") as tmp:
        work = Path(tmp)
        (work / "broker").mkdir()
        broker = Mosquitto(binary, work / "broker", free_port()).start()
        try:
            fault_classes(work, broker, seconds, args.max_info)
            print(f"continuous noise: {args.minutes:g} min each")
            for name in NOISE:
                noise(work, broker, name, seconds, args.max_info)
        finally:
            broker.stop()


if __name__ == "__main__":
    main()
