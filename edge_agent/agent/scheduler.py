"""When each meter is polled: per-meter schedules per poll group, one lane per line.

A *lane* is one physical path to meters where only one transaction may be under way at
a time: a shared RS-485 bus (HDLC multidrop, IEC 62056-46: the line is half-duplex and
every station hears every frame), a point-to-point serial line (optical head), or one
TCP meter. Each lane runs in its own thread, so TCP meters and separate serial lines
are polled concurrently while the meters of one bus take turns.

:class:`LaneSchedule` is the decision, free of threads and clocks: given the time, which
meter goes next and which of its poll groups are due (a load profile to publish is
scheduled like a group, by its ``interval``). Groups keep their phase (a 10 s
group polls at t0, t0+10, t0+20 ... even when a poll takes 2 s) and slots missed while
the lane was busy are skipped, not made up in a burst. Every group is due at start, so
the first poll of a meter reads everything once and its ``info`` is complete at once.

Fairness on a bus: meters are served round-robin among those with something due; a
meter that was just served goes to the back of the queue, so a meter with a 1 s group
cannot starve its neighbours.

Failures: a meter whose poll fails is retried after an exponential back-off with jitter
(:class:`BackOff`: the target's own ``backoff`` when it has one, else the lane's), its
due groups kept due meanwhile; one success resets it. Jitter
spreads the retries of many meters that failed together (a power cut on a bus).

:class:`Lane` is the thread around a schedule; its clock and sleep are injected so tests
run a day of polls in milliseconds.
"""

from __future__ import annotations

import logging
import math
import random as random_module
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BackOff:
    """Retry delays after consecutive failures: ``initial * factor**(n-1)``, capped at
    ``maximum``, each stretched by a random factor in ``[1 - jitter, 1 + jitter]``
    (still capped)."""

    initial: float = 5.0
    maximum: float = 300.0
    factor: float = 2.0
    jitter: float = 0.2

    def __post_init__(self) -> None:
        if not 0 < self.initial <= self.maximum or self.factor < 1 or not 0 <= self.jitter < 1:
            raise ValueError(f"back-off needs 0 < initial <= maximum, factor >= 1 and "
                             f"0 <= jitter < 1, got {self}")

    def delay(self, failures: int, random: Callable[[], float]) -> float:
        """Seconds to wait after the ``failures``-th consecutive failure (1, 2, ...)."""
        base = min(self.maximum, self.initial * self.factor ** max(0, failures - 1))
        return min(self.maximum, base * (1.0 - self.jitter + 2.0 * self.jitter * random()))


class Group(Protocol):
    """What the schedule needs of a poll group or a profile: a name and a period (s)."""

    @property
    def name(self) -> str: ...

    @property
    def interval(self) -> float: ...


class Target(Protocol):
    """One meter as a lane sees it (:class:`~edge_agent.agent.meter_worker.MeterWorker`)."""

    @property
    def label(self) -> str: ...

    @property
    def groups(self) -> tuple[Group, ...]: ...

    def poll(self, groups: tuple[Group, ...]) -> bool:
        """One transaction; True on success. Must not raise."""
        ...

    def close(self) -> None:
        """Release the association and the link (from the lane's own thread)."""
        ...


@dataclass(slots=True)
class MeterSchedule:
    """The schedule state of one meter on a lane."""

    target: Target
    due: dict[str, float]  # group name -> next due time
    backoff: BackOff | None = None  # None: the lane's
    failures: int = 0
    retry_at: float = -math.inf

    def runnable_at(self) -> float:
        return max(min(self.due.values()), self.retry_at)

    def due_groups(self, now: float) -> tuple[Group, ...]:
        return tuple(g for g in self.target.groups if self.due[g.name] <= now)


@dataclass(frozen=True, slots=True)
class Next:
    """What a lane does next: poll ``meter`` for ``groups`` now, or wait ``wait`` s."""

    wait: float
    meter: MeterSchedule | None = None
    groups: tuple[Group, ...] = ()


@dataclass(slots=True)
class LaneSchedule:
    """Which meter of a lane to poll next, and for which groups (no I/O, no clock)."""

    backoff: BackOff
    random: Callable[[], float]
    meters: list[MeterSchedule] = field(default_factory=list)  # round-robin order

    @classmethod
    def start(cls, targets: Sequence[Target], now: float, backoff: BackOff,
              random: Callable[[], float] = random_module.random) -> LaneSchedule:
        # A target may carry its own back-off (MeterWorker: the meter's ``backoff:`` key);
        # the Target protocol does not require it, so test doubles need not have one.
        meters = [MeterSchedule(t, {g.name: now for g in t.groups}, getattr(t, "backoff", None))
                  for t in targets if t.groups]
        return cls(backoff, random, meters)

    def next(self, now: float) -> Next:
        if not self.meters:
            return Next(math.inf)
        for meter in self.meters:  # round-robin order: first runnable wins
            if meter.runnable_at() <= now:
                return Next(0.0, meter, meter.due_groups(now))
        return Next(min(m.runnable_at() for m in self.meters) - now)

    def hurry(self, target: Target, group: str, now: float) -> None:
        """Make ``group`` of ``target`` due now (a back-off after failures still holds)."""
        for meter in self.meters:
            if meter.target is target and group in meter.due:
                meter.due[group] = min(meter.due[group], now)

    def done(self, meter: MeterSchedule, groups: tuple[Group, ...], ok: bool,
             now: float) -> float | None:
        """Record the outcome of a poll; returns the back-off delay after a failure."""
        self.meters.remove(meter)
        self.meters.append(meter)  # to the back of the round-robin queue
        if not ok:
            meter.failures += 1
            delay = (meter.backoff or self.backoff).delay(meter.failures, self.random)
            meter.retry_at = now + delay
            return delay  # the groups stay due: the retry reads them
        meter.failures = 0
        meter.retry_at = -math.inf
        # A target may have work left in a group (MeterWorker: a profile catching up, one
        # chunk per turn); such a group stays due and is served again after the others.
        pending = getattr(meter.target, "pending", None)
        for group in groups:
            if pending is not None and pending(group):
                continue
            due = meter.due[group.name]
            # Keep the phase; skip slots that passed while busy (the first slot at or
            # after now, never this one again).
            meter.due[group.name] = due + group.interval * max(
                1, math.ceil((now - due) / group.interval))
        return None


class Lane:
    """A thread polling the targets of one line, one transaction at a time."""

    def __init__(self, name: str, targets: Sequence[Target], *, backoff: BackOff,
                 stop: threading.Event, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], object] | None = None,
                 random: Callable[[], float] = random_module.random) -> None:
        self.name = name
        self.targets = list(targets)
        self.stop = stop
        self.clock = clock
        self.sleep = sleep if sleep is not None else self._nap
        self.schedule = LaneSchedule.start(self.targets, clock(), backoff, random)
        self._thread: threading.Thread | None = None
        self._wake = threading.Event()
        self._hurried: list[tuple[Target, str]] = []  # from other threads, under the lock
        self._hurried_lock = threading.Lock()

    def hurry(self, target: Target, group: str) -> None:
        """Serve ``group`` of ``target`` as soon as the lane is free (from any thread)."""
        with self._hurried_lock:
            self._hurried.append((target, group))
        self._wake.set()

    def wake(self) -> None:
        """End the lane's sleep now (after setting ``stop``, so that it sees it)."""
        self._wake.set()

    def _nap(self, seconds: float) -> None:
        self._wake.wait(seconds)
        self._wake.clear()

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name=f"lane-{self.name}",
                                        daemon=True)
        self._thread.start()

    def join(self, timeout: float) -> bool:
        """Wait for the thread to end; False if it is still busy after ``timeout``."""
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                self.step()
        finally:
            for target in self.targets:
                target.close()

    def step(self) -> None:
        """Poll what is due, or sleep until something is (at most 60 s at a time)."""
        with self._hurried_lock:
            hurried, self._hurried = self._hurried, []
        for target, group in hurried:
            self.schedule.hurry(target, group, self.clock())
        decision = self.schedule.next(self.clock())
        if decision.meter is None:
            self.sleep(min(decision.wait, 60.0))
            return
        target = decision.meter.target
        try:
            ok = target.poll(decision.groups)
        except Exception:  # a bug in one meter's poll must not stop the others
            log.exception("meter %s: poll failed unexpectedly", target.label)
            ok = False
        delay = self.schedule.done(decision.meter, decision.groups, ok, self.clock())
        if delay is not None:
            log.info("meter %s: retry in %.1f s (failure %d in a row)", target.label, delay,
                     decision.meter.failures, extra={"meter": target.label,
                                                     "retry_in": round(delay, 3)})
