"""Fault soak: the agent polls a simulated meter over an emulated serial line that flips
bits, drops and truncates, and holds bursts back, and against a meter that misbehaves
(``simulate --fault``); every value it publishes is right, nothing it queued is lost, and
it recovers from every fault class within a bound that its time-outs and retries set.

The rig and the fault classes are tests/agent/soak_harness.py. Bounded in CI (10 and 20 s
for the two bit-error rates, one fault of each class); DLMS_EDGE_SOAK=1 runs each rate for five
minutes and ten rounds of the classes; bench/bench_soak.py --minutes N is the long run.
Recovery times are printed, never asserted beyond the generous bound."""

from __future__ import annotations

import os
import time

import pytest
from soak_harness import (
    FAULT_CLASSES,
    INTERVAL,
    NOT_EXERCISED,
    Tally,
    recovery_bound,
    run_episodes,
    soak_rig,
)

from edge_agent.simulator.faults import FAULTS
from edge_agent.transport.line_emulator import LineFaults

SOAK = os.environ.get("DLMS_EDGE_SOAK") == "1"
ROUNDS = 10 if SOAK else 1
pytestmark = [pytest.mark.mosquitto, pytest.mark.slow, pytest.mark.timeout(900 if SOAK else 240)]

# (faults, HDLC retries, seconds, the fewest polls that must get through in them). At
# 1e-3 a 128-byte segment is damaged 64 % of the time and the first association reads the
# object list in dozens of them: a poll or two gets through in 20 s (how many is
# printed); none may be wrong.
CASES = {
    "ber-1e-4": (LineFaults(bit_error_rate=1e-4, drop_rate=2e-5, truncate_rate=0.002,
                            silence_rate=0.002, silence=1.5), 3, 300.0 if SOAK else 10.0, 2),
    "ber-1e-3": (LineFaults(bit_error_rate=1e-3), 10, 300.0 if SOAK else 20.0, 0),
}


@pytest.mark.parametrize("case", CASES)
def test_no_wrong_value_is_published_over_a_noisy_line(tmp_path, mosquitto, case: str) -> None:
    faults, retries, seconds, fewest = CASES[case]
    with soak_rig(tmp_path, mosquitto, faults, retries=retries) as rig:
        started = time.monotonic()
        time.sleep(seconds)
        ended = time.monotonic()
        tally = Tally()
        rig.tally(tally, started, ended)
        rig.add_outages(tally, started, ended)
        lost = rig.count_lost()
        snapshots = rig.snapshots()
        injected = rig.line.stats.injected
    print(f"\n{tally.line(case)}; injected {injected}")
    assert injected["bit_flips"] > 0
    assert len(snapshots) >= fewest, f"{len(snapshots)} polls got through, expected {fewest}+"
    assert {code for s in snapshots for code in s.values} == set(rig.right)
    assert not rig.wrong_values(), rig.wrong_values()[:10]
    assert not lost, f"{len(lost)} snapshots queued by the agent never reached the broker"


def test_the_agent_recovers_from_every_fault_class(tmp_path, mosquitto) -> None:
    assert set(FAULTS) == {kind for c in FAULT_CLASSES.values() for kind in c.meter} | set(
        NOT_EXERCISED), "a simulator fault kind with no fault class and no reason"
    tallies: dict[str, Tally] = {}
    with soak_rig(tmp_path, mosquitto) as rig:
        episodes = [episode for _ in range(ROUNDS)
                    for episode in run_episodes(rig, list(FAULT_CLASSES.values()), tallies)]
        lost = rig.count_lost()
        wrong = rig.wrong_values()
    print(f"\nrecovery, polling every {INTERVAL:g} s over {len(episodes)} faults "
          f"(bound from time-outs, retries and back-off: "
          f"{recovery_bound(0.0, rig.retries):.1f} s + the fault's length):")
    for name, tally in tallies.items():
        print(f"  {tally.line(name)}")
    for kind, reason in NOT_EXERCISED.items():
        print(f"  meter: {kind:17s} not exercised: {reason}")
    no_opportunity = [e.fault for e in episodes if e.fired is None]
    assert not no_opportunity, f"faults that never fired: {no_opportunity}"
    slow = [(e.fault, e.recovery, e.bound) for e in episodes
            if e.recovery is None or e.recovery > e.bound]
    assert not slow, f"no good poll within the bound after: {slow}"
    assert not wrong, wrong[:10]
    assert not lost, f"{len(lost)} snapshots queued by the agent never reached the broker"
