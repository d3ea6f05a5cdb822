"""The lane schedule: cadence per poll group, fairness on a bus, back-off with jitter.

Time is fake: the lane's clock and sleep are injected, so an hour of polling runs in
milliseconds and every assertion is exact (but for the one test of the lane's own sleep).
"""

from __future__ import annotations

import logging
import math
import threading
import time as real_time
from collections.abc import Callable

import pytest

from edge_agent.agent.config_model import PollGroup
from edge_agent.agent.scheduler import BackOff, Lane, LaneSchedule

POWER = PollGroup("power", 10.0, ("1.0.1.7.0.255",))
ENERGY = PollGroup("energy", 60.0, ("1.0.1.8.0.255",))


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds > 0, "a lane must never spin"
        self.sleeps.append(seconds)
        self.now += seconds


class FakeMeter:
    """Records (time, group names) of each poll; a poll takes ``duration`` fake seconds."""

    def __init__(self, label: str, groups: tuple[PollGroup, ...], time: FakeTime, *,
                 duration: float = 0.0, outcome: Callable[[float], bool] = lambda t: True
                 ) -> None:
        self.label, self.groups, self.time = label, groups, time
        self.duration, self.outcome = duration, outcome
        self.polls: list[tuple[float, tuple[str, ...]]] = []
        self.closed = False
        self.busy = False

    def poll(self, groups: tuple[PollGroup, ...]) -> bool:
        start = self.time.now
        self.polls.append((start - 1000.0, tuple(g.name for g in groups)))
        self.time.now += self.duration
        return self.outcome(start - 1000.0)

    def close(self) -> None:
        self.closed = True


NO_JITTER = BackOff(initial=1.0, maximum=8.0, jitter=0.0)


def run_lane(meters: list[FakeMeter], time: FakeTime, until: float,
             backoff: BackOff = NO_JITTER,
             random: Callable[[], float] = lambda: 0.5) -> Lane:
    lane = Lane("test", meters, backoff=backoff, stop=threading.Event(), clock=time.clock,
                sleep=time.sleep, random=random)
    while time.now - 1000.0 < until:
        lane.step()
    return lane


# --- back-off ------------------------------------------------------------------------------


def test_backoff_doubles_up_to_the_maximum_without_jitter() -> None:
    backoff = BackOff(initial=5.0, maximum=60.0, factor=2.0, jitter=0.0)
    assert [backoff.delay(n, lambda: 0.9) for n in range(1, 7)] == [5, 10, 20, 40, 60, 60]


@pytest.mark.parametrize("draw, expected", [(0.0, 8.0), (0.5, 10.0), (1.0, 12.0)])
def test_backoff_jitter_spreads_each_delay(draw: float, expected: float) -> None:
    backoff = BackOff(initial=5.0, maximum=300.0, jitter=0.2)
    assert backoff.delay(2, lambda: draw) == pytest.approx(expected)


def test_backoff_with_jitter_never_exceeds_the_maximum() -> None:
    backoff = BackOff(initial=5.0, maximum=60.0, jitter=0.2)
    assert backoff.delay(10, lambda: 1.0) == 60.0


@pytest.mark.parametrize("kwargs", [{"initial": 0}, {"initial": 10, "maximum": 5},
                                    {"factor": 0.5}, {"jitter": 1.0}])
def test_backoff_refuses_nonsense(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        BackOff(**kwargs)


# --- cadence -------------------------------------------------------------------------------


def test_first_poll_reads_every_group_then_each_keeps_its_interval() -> None:
    time = FakeTime()
    meter = FakeMeter("m", (POWER, ENERGY), time)
    run_lane([meter], time, until=125)
    assert meter.polls[0] == (0.0, ("power", "energy"))
    power = [t for t, names in meter.polls if "power" in names]
    energy = [t for t, names in meter.polls if "energy" in names]
    assert power == [10.0 * k for k in range(13)]
    assert energy == [0.0, 60.0, 120.0]
    assert (60.0, ("power", "energy")) in meter.polls  # due together: one transaction


def test_slow_polls_keep_the_phase_and_skip_missed_slots() -> None:
    time = FakeTime()
    meter = FakeMeter("m", (POWER,), time, duration=25.0)  # longer than the interval
    run_lane([meter], time, until=100)
    # 0 took until 25: slots 10 and 20 are skipped, the next is 30 (not 35, not a burst).
    assert [t for t, _ in meter.polls] == [0.0, 30.0, 60.0, 90.0]


def test_idle_lane_sleeps_until_the_next_due_group() -> None:
    time = FakeTime()
    meter = FakeMeter("m", (POWER,), time, duration=2.0)
    run_lane([meter], time, until=20)
    assert time.sleeps[:2] == [8.0, 8.0]


def test_meter_without_groups_is_not_scheduled() -> None:
    schedule = LaneSchedule.start([FakeMeter("push-only", (), FakeTime())], 0.0, BackOff())
    assert schedule.next(0.0).meter is None and math.isinf(schedule.next(0.0).wait)


# --- fairness on a bus ---------------------------------------------------------------------


def test_bus_meters_take_turns_round_robin() -> None:
    time = FakeTime()
    fast = PollGroup("fast", 1.0, ("1.0.1.7.0.255",))
    meters = [FakeMeter(f"m{i}", (fast,), time, duration=1.0) for i in range(3)]
    lane = run_lane(meters, time, until=30)
    order = [(t, m.label) for m in meters for t, _ in m.polls]
    order.sort()
    labels = [label for _, label in order]
    # The line is busy all the time; nobody is served twice before the others once.
    assert labels[:9] == ["m0", "m1", "m2"] * 3
    counts = [len(m.polls) for m in meters]
    assert max(counts) - min(counts) <= 1
    times = [t for t, _ in order]
    assert times == sorted(set(times)), "two transactions at once on one lane"
    assert lane.schedule.meters  # still scheduled


def test_greedy_meter_does_not_starve_its_neighbours() -> None:
    time = FakeTime()
    greedy = FakeMeter("greedy", (PollGroup("fast", 1.0, ("x",)),), time, duration=1.0)
    quiet = [FakeMeter(f"q{i}", (POWER,), time, duration=1.0) for i in range(2)]
    run_lane([greedy, *quiet], time, until=60)
    for meter in quiet:  # every 10 s, at most a transaction late
        starts = [t for t, _ in meter.polls]
        assert len(starts) == 6
        assert all(0 <= start - 10 * k <= 2.0 for k, start in enumerate(starts))
    assert len(greedy.polls) >= 45


# --- failures ------------------------------------------------------------------------------


def test_unreachable_meter_backs_off_exponentially_then_recovers() -> None:
    time = FakeTime()
    meter = FakeMeter("m", (POWER,), time, outcome=lambda t: t >= 30)
    run_lane([meter], time, until=60)
    starts = [t for t, _ in meter.polls]
    # failures at 0, 1, 3, 7, 15 (delays 1, 2, 4, 8), capped: 23, then success at 31
    assert starts[:7] == [0.0, 1.0, 3.0, 7.0, 15.0, 23.0, 31.0]
    # after the success the normal 10 s cadence resumes on the group's grid
    assert starts[7:] == [40.0, 50.0]


def test_jitter_moves_each_retry(caplog: pytest.LogCaptureFixture) -> None:
    time = FakeTime()
    draws = iter([0.0, 1.0, 0.25])
    meter = FakeMeter("m", (POWER,), time, outcome=lambda t: False)
    caplog.set_level(logging.INFO, logger="edge_agent.agent.scheduler")
    run_lane([meter], time, until=10, backoff=BackOff(initial=2.0, maximum=60.0, jitter=0.5),
             random=lambda: next(draws, 0.5))
    delays = [r.retry_in for r in caplog.records if hasattr(r, "retry_in")]
    assert delays[:3] == [1.0, 6.0, 6.0]  # 2*0.5, 4*1.5, 8*0.75
    assert "meter m: retry in 1.0 s (failure 1 in a row)" in caplog.text


def test_poll_that_raises_counts_as_failure_and_the_lane_goes_on() -> None:
    time = FakeTime()

    def explode(t: float) -> bool:
        if t == 0:
            raise RuntimeError("bug")
        return True

    bad = FakeMeter("bad", (POWER,), time, outcome=explode)
    good = FakeMeter("good", (POWER,), time)
    run_lane([bad, good], time, until=15)
    assert [t for t, _ in bad.polls] == [0.0, 1.0, 10.0]  # back on its grid
    assert [t for t, _ in good.polls] == [0.0, 10.0]


def test_run_closes_every_meter_when_stopped() -> None:
    time = FakeTime()
    stop = threading.Event()
    meters = [FakeMeter("a", (POWER,), time), FakeMeter("b", (ENERGY,), time)]

    def sleep(seconds: float) -> None:
        time.sleep(seconds)
        if time.now - 1000.0 > 100:
            stop.set()

    lane = Lane("bus", meters, backoff=BackOff(), stop=stop, clock=time.clock, sleep=sleep)
    lane.start()
    assert lane.join(timeout=5.0)
    assert all(m.closed for m in meters)
    assert len(meters[0].polls) == 11


def test_a_hurried_group_is_served_at_once() -> None:
    """A replay request makes a group due now; the others keep their slots."""
    time = FakeTime()
    meter = FakeMeter("a", (POWER, ENERGY), time)
    lane = Lane("test", [meter], backoff=NO_JITTER, stop=threading.Event(), clock=time.clock,
                sleep=time.sleep)
    lane.step()  # both groups are due at the start
    time.now += 5.0
    lane.hurry(meter, ENERGY.name)
    lane.step()
    assert meter.polls == [(0.0, ("power", "energy")), (5.0, ("energy",))]
    assert lane.schedule.next(time.clock()).wait == pytest.approx(5.0)  # power at 10 s
    assert time.sleeps == []


def test_hurry_and_wake_end_the_lane_sleep() -> None:
    """The lane sleeps until its next slot (60 s here) unless hurried or stopped: a hurry
    from another thread is served at once, and stop + wake end it at once."""
    stop = threading.Event()
    slow = PollGroup("slow", 60.0, ("1.0.1.8.0.255",))
    other = PollGroup("other", 60.0, ("1.0.2.8.0.255",))
    meter = FakeMeter("a", (slow, other), FakeTime())
    lane = Lane("test", [meter], backoff=NO_JITTER, stop=stop, clock=real_time.monotonic)
    lane.start()
    try:
        deadline = real_time.monotonic() + 5.0
        while len(meter.polls) < 1 and real_time.monotonic() < deadline:
            real_time.sleep(0.01)
        lane.hurry(meter, other.name)
        while len(meter.polls) < 2 and real_time.monotonic() < deadline:
            real_time.sleep(0.01)
        assert [names for _, names in meter.polls] == [("slow", "other"), ("other",)]
    finally:
        stop.set()
        lane.wake()
        assert lane.join(timeout=5.0)
