"""Invocation counters survive kill -9: reads of the T-210D management client are killed
with SIGKILL at random moments, then a normal read succeeds, and the simulator's
``--counter-log`` shows that no invocation counter value ever arrived twice.

The bounded run (15 kills) is part of every test run; DLMS_EDGE_SOAK=1 adds the 50-kill one.
"""

from __future__ import annotations

import collections
import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest
from e2e_support import CLI, T210D_MANAGEMENT, Simulator, counter_log, dlms_edge

ENERGY = "1.0.1.8.0.255"


def _read_command(sim: Simulator, keys: Path, state: Path) -> list[str]:
    return [
        *CLI, "read", "--tcp", sim.tcp, *T210D_MANAGEMENT, "--keys-dir", str(keys),
        "--state-dir", str(state), "--pass3-signing", "auto", "--json", ENERGY,
        # Only the persisted counters may keep the client in step here: learning the
        # meter's frame counter would hide a counter that went backwards.
        "--frame-counter", "none",
    ]


def kill_loop(tmp_path: Path, kills: int) -> None:
    keys, state, log = tmp_path / "keys", tmp_path / "state", tmp_path / "counters.log"
    seed = int.from_bytes(os.urandom(4), "big")
    rng = random.Random(seed)
    killed_running = 0
    with Simulator("--profile", "t210d", "--keys-dir", str(keys), "--counter-log", str(log)) as sim:
        # One undisturbed read measures how long a read takes on this machine (start-up is
        # most of it; the counters are reserved and spent in the last part), so the kills can
        # be spread over the interesting window whatever the machine's speed.
        started = time.monotonic()
        first = dlms_edge(*_read_command(sim, keys, state)[len(CLI):])
        duration = time.monotonic() - started
        assert first.returncode == 0, first.stderr
        for _ in range(kills):
            process = subprocess.Popen(
                _read_command(sim, keys, state), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            time.sleep(rng.uniform(0.5, 1.0) * duration)
            if process.poll() is None:
                killed_running += 1
            process.send_signal(signal.SIGKILL)
            process.wait(10)
        final = dlms_edge(*_read_command(sim, keys, state)[len(CLI):])
    assert final.returncode == 0, f"seed {seed}: {final.stderr}"
    assert json.loads(final.stdout)[ENERGY]["unit"] == "Wh"

    entries = counter_log(log)
    assert entries, "the simulator logged no counter"
    received = collections.Counter((title, counter) for title, counter, _, _ in entries)
    twice = sorted(key for key, count in received.items() if count > 1)
    assert not twice, f"seed {seed}: invocation counters received more than once: {twice}"
    refused = [entry for entry in entries if entry[3] != "accepted"]
    assert not refused, f"seed {seed}: the meter refused counters: {refused}"
    assert killed_running >= kills // 3, f"seed {seed}: too few kills hit a running read ({killed_running})"


@pytest.mark.timeout(60)
def test_fifteen_killed_reads_never_reuse_a_counter(tmp_path: Path) -> None:
    kill_loop(tmp_path, 15)


@pytest.mark.slow
@pytest.mark.timeout(180)
@pytest.mark.skipif(os.environ.get("DLMS_EDGE_SOAK") != "1", reason="soak run: set DLMS_EDGE_SOAK=1")
def test_fifty_killed_reads_never_reuse_a_counter(tmp_path: Path) -> None:
    kill_loop(tmp_path, 50)
