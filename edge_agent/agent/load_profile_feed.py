"""Publishing load-profile rows: each row once, in time order, what is new since last time.

A :class:`ProfileFeed` belongs to one meter's worker. On the profile's schedule it reads
the rows of the profile generic buffer (Blue Book 4.3.6) from just after the newest row
published before up to now, and hands them to the sink, which queues one MQTT message
per row (``dlms/<agent>/<meter>/profile/<obis>``, QoS 1, not retained). When nothing of
the profile was published before, the first look reaches back by the profile's
``backfill``, by default as far as the meter keeps rows (entries × capture period).

Exactly once: rows go to the sink one chunk at a time (one GET of the buffer, a calendar
day), and the sink stores the time of the chunk's newest row in the durable queue in the
same SQLite transaction as the rows (:meth:`edge_agent.mqtt.queue.OfflineQueue.append_many`
marks). After any outage -- agent killed, broker away, meter or line down -- the next look
starts after that time: nothing lost, nothing queued twice. The meter's facts keep a copy
(``profiles_published``: profile OBIS -> ISO time), written after the queue, for tools that
read the state dir; when the two differ the queue wins.

Catching up never starves live polling: with ``max_chunks=1`` (what the worker asks) one
look reads one chunk and says whether more is left; the schedule keeps the profile due,
so the lane serves the other meters and the due poll groups between two chunks.

A meter whose association lacks selective access (Green Book 9.4.6.1, conformance bit
21) can only send its whole buffer (the reader's ``whole`` mode): every request costs the
entire buffer, however few rows are new (the simulator's ~0.85 MB is a quarter of an hour at
9600 baud). Such a profile is read once per look -- one GET, in blocks -- and every new
row in it is published, in the same day-sized batches with their marks, in order, once;
a pending replay is served from the same read. The first look logs a warning naming the
buffer's size in entries; each read logs its rows, exchanges (the GET and its blocks) and
duration.

Gaps: each read is told the time of the last row published (``after``), so a gap in the
meter's profile that spans a chunk's edge -- a power failure over midnight, or one since
the last look -- is logged like one inside a chunk.

The autumn hour that repeats: a meter that writes local time stamps without deviation and
without a usable daylight-saving bit can only be placed by the order of its rows. When the
last row published falls in a wall-clock hour that repeats in the profile's ``timezone``,
the reader asks for the rows from the first pass of that hour
(:func:`~edge_agent.client.load_profile.repeated_hour_start`), so that the second pass is
recognised as such; rows at or before the last published one are still left out.

Replays: a subscriber that was away while rows went out (Home Assistant restarting, its
broker session lost) asks for them again (``dlms/<agent>/<meter>/replay``,
:class:`~edge_agent.mqtt.payloads.ReplayRequest`). :meth:`ProfileFeed.request_replay`
notes the range -- after the time asked, up to the newest row published then, never
deeper than the backfill -- and :meth:`ProfileFeed.collect` serves it first, one chunk per
turn like a backfill, through ``publish(..., replay=True)``: the rows go out again
flagged as replayed, and the published cursor does not move. A replay is not persisted:
one cut short by a restart is asked again by the subscriber that still misses rows.

A row becomes :class:`ProfileRow`: its time, the numeric columns by OBIS with their
units, and the status column (an AMR profile status register, 0-x:96.10.x) if the
profile captures one.
"""

from __future__ import annotations

import bisect
import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from edge_agent.agent.config_model import ProfileConfig
from edge_agent.client.client import MeterClient
from edge_agent.client.load_profile import (
    ProfileColumn,
    ProfileLayout,
    ProfileReader,
    zone_named,
)
from edge_agent.dlms.cosem.obis import Obis
from edge_agent.state.facts import PROFILES_PUBLISHED, FactStore

log = logging.getLogger(__name__)

# The fact holding, per profile OBIS, the ISO time of the newest row handed to the sink.
PUBLISHED_FACT = PROFILES_PUBLISHED
# Value groups C.D of the status registers (0-x:96.10.x; DSMR 5 / IDIS "AMR profile
# status", one octet per row) that profiles capture beside their values.
STATUS_REGISTER = (96, 10)

Number = int | float
# The smallest step of a COSEM date-time is 1/100 s (Blue Book 4.1.6.1): a row at
# ``moment + RESOLUTION`` is already after ``moment``.
RESOLUTION = dt.timedelta(microseconds=1)


class Publish(Protocol):
    """Hand ``rows`` (oldest first) of the profile ``obis`` to the sink."""

    def __call__(self, obis: str, rows: list[ProfileRow], *, replay: bool = False) -> None: ...


@dataclass(slots=True)
class Replay:
    """Rows of one profile to send again: captured in ``[start, stop)``."""

    start: dt.datetime
    stop: dt.datetime


@dataclass(frozen=True, slots=True)
class ProfileRow:
    """One row of a load profile as the contract publishes it."""

    ts: dt.datetime  # aware
    values: Mapping[str, Number | None]  # OBIS leaf -> scaled value (None: no value)
    units: Mapping[str, str | None]  # OBIS leaf -> unit symbol
    status: int | None


# Where the rows of one read go: (profile OBIS, rows oldest first).


@dataclass(frozen=True, slots=True)
class RowShape:
    """Which columns of a layout are the status and which the published values."""

    status: ProfileColumn | None
    values: tuple[ProfileColumn, ...]

    @classmethod
    def of(cls, layout: ProfileLayout) -> RowShape:
        status = next((c for c in layout.columns if _is_status(c.capture.logical_name)), None)
        values: dict[Obis, ProfileColumn] = {}
        for column in layout.columns:
            # A code captured twice (two attributes of one object) keeps its first
            # column: the contract keys values by OBIS alone.
            if column is not status:
                values.setdefault(column.capture.logical_name, column)
        return cls(status, tuple(values.values()))

    def row(self, raw: Mapping[str, Any]) -> ProfileRow:
        """``raw`` from :meth:`ProfileReader.rows` as a contract row. Non-numeric cells
        are left out (the contract's values are numbers); null-data stays null."""
        values = {c.capture.logical_name.dotted: raw[c.key] for c in self.values
                  if _number_or_none(raw[c.key])}
        status = raw[self.status.key] if self.status is not None else None
        # In UTC: times of one ZoneInfo compare by wall clock, fold ignored, which would
        # sort the two passes of the autumn hour into each other.
        return ProfileRow(aware(raw["timestamp"]).astimezone(dt.UTC), values,
                          {c.capture.logical_name.dotted: c.unit for c in self.values
                           if c.capture.logical_name.dotted in values},
                          status if isinstance(status, int) and not isinstance(status, bool)
                          else None)


def _is_status(code: Obis) -> bool:
    return (code.c, code.d) == STATUS_REGISTER


def _number_or_none(value: Any) -> bool:
    return value is None or isinstance(value, Number) and not isinstance(value, bool)


def aware(moment: dt.datetime) -> dt.datetime:
    """A row time with an offset. A meter that sends no deviation ("not specified",
    4.1.6.1) means its local time, which is the host's: the agent sits next to it."""
    return moment if moment.tzinfo is not None else moment.astimezone()


class ProfileFeed:
    """The profiles of one meter: what was published, and reading what is new."""

    def __init__(self, facts: FactStore, facts_key: str,
                 wall_clock: Callable[[], float]) -> None:
        self.facts = facts
        self.facts_key = facts_key
        self.wall_clock = wall_clock
        self._readers: dict[str, tuple[ProfileReader, RowShape]] = {}
        self._replays: dict[str, Replay] = {}  # profile OBIS -> rows to send again
        self._replays_lock = threading.Lock()  # requests come from the MQTT thread
        self._whole_noted: set[str] = set()  # profiles read whole, already warned about

    def last(self, obis: str) -> dt.datetime | None:
        """The time of the newest row of ``obis`` handed to the sink, if any."""
        text = self.facts.get_fact(self.facts_key, PUBLISHED_FACT, {}).get(obis)
        try:
            return dt.datetime.fromisoformat(text) if isinstance(text, str) else None
        except ValueError:
            log.warning("%s: facts %s of %s unreadable (%r); starting from the backfill",
                        self.facts_key, PUBLISHED_FACT, obis, text)
            return None

    def _mark(self, obis: str, moment: dt.datetime) -> None:
        marks = dict(self.facts.get_fact(self.facts_key, PUBLISHED_FACT, {}))
        marks[obis] = moment.isoformat()
        self.facts.set_fact(self.facts_key, PUBLISHED_FACT, marks)

    def _reader(self, client: MeterClient, profile: ProfileConfig
                ) -> tuple[ProfileReader, RowShape]:
        """One reader per association (its layout -- columns, scalers -- read once)."""
        known = self._readers.get(profile.obis)
        if known is None or known[0].meter is not client:
            reader = ProfileReader(client, Obis.parse(profile.obis),
                                   zone=zone_named(profile.timezone))
            known = self._readers[profile.obis] = (reader, RowShape.of(reader.layout()))
        return known

    def request_replay(self, obis: str, after: dt.datetime | None,
                       newest: dt.datetime | None) -> Replay | None:
        """Note a request for the rows of ``obis`` captured after ``after`` (None: as deep
        as the backfill reaches) up to ``newest``, the newest row published (None: none
        yet, so nothing to replay: the backfill sends every row once). Merged with a
        replay still pending; returns what is pending, or None."""
        if newest is None:
            return None
        start = dt.datetime.min.replace(tzinfo=dt.UTC) if after is None else after + RESOLUTION
        with self._replays_lock:
            pending = self._replays.get(obis)
            if pending is not None:
                start, newest = min(start, pending.start), max(newest, pending.stop - RESOLUTION)
            if start > newest:
                return None
            replay = self._replays[obis] = Replay(start, newest + RESOLUTION)
            return replay

    def replaying(self, obis: str) -> bool:
        with self._replays_lock:
            return obis in self._replays

    def _replay_chunk(self, reader: ProfileReader, shape: RowShape, obis: str,
                      oldest: dt.datetime, publish: Publish) -> tuple[int, bool]:
        """Send the next chunk of the pending replay of ``obis`` again: (rows, more left)."""
        with self._replays_lock:
            replay = self._replays.get(obis)
            if replay is None:
                return 0, False
            start, stop = max(replay.start, oldest), replay.stop
        if start >= stop:
            self._replay_done(obis, stop)
            return 0, False
        low, high = reader.chunks(start, stop)[0]
        rows = [row for row in sorted((shape.row(raw) for raw in reader.rows(low, high)),
                                      key=lambda row: row.ts) if start <= row.ts < stop]
        self._log_report(reader, obis)
        if rows:
            publish(obis, rows, replay=True)
            log.info("%s: %d row(s) of profile %s sent again, up to %s", self.facts_key,
                     len(rows), obis, rows[-1].ts.isoformat())
        with self._replays_lock:
            replay = self._replays.get(obis)
            if replay is not None:  # a request may have widened it meanwhile
                replay.start = max(replay.start, high)
                if replay.start >= replay.stop:
                    del self._replays[obis]
            return len(rows), obis in self._replays

    def _replay_done(self, obis: str, stop: dt.datetime) -> None:
        with self._replays_lock:
            replay = self._replays.get(obis)
            if replay is not None and replay.stop <= stop:
                del self._replays[obis]

    def collect(self, client: MeterClient, profile: ProfileConfig, publish: Publish,
                queued: Callable[[str], dt.datetime | None] | None = None,
                max_chunks: int | None = None) -> tuple[int, bool]:
        """Read the rows of ``profile`` newer than the last published one up to now and
        ``publish`` them, one chunk at a time, at most ``max_chunks`` chunks (None: all);
        returns how many rows went out and whether rows are left for another turn.

        ``queued(obis)``: the time of the newest row the durable queue holds a note of
        (written in the same transaction as the rows): it wins over the facts' mark, which
        is written after the queue and may lag by one chunk after a crash. Meter errors
        (DlmsError) propagate: rows published before them stay published.

        A pending replay (:meth:`request_replay`) goes first, one chunk per call when
        ``max_chunks`` is 1; new rows follow once it is done."""
        now = dt.datetime.fromtimestamp(self.wall_clock(), dt.UTC)
        last = self.last(profile.obis)
        in_queue = queued(profile.obis) if queued is not None else None
        if in_queue is not None and (last is None or in_queue > last):
            last = in_queue
        reader, shape = self._reader(client, profile)
        depth = self.depth(profile, reader)
        oldest = now - depth
        if reader.mode == "whole":
            return self._collect_whole(reader, shape, profile, publish, last, depth, now)
        replayed, more = 0, self.replaying(profile.obis)
        while more:
            count, more = self._replay_chunk(reader, shape, profile.obis, oldest, publish)
            replayed += count
            if max_chunks is not None:
                return count, True  # the rest, and new rows, in the next turns
        start = self._start(profile, last, oldest, depth)
        if start >= now:
            return replayed, False
        chunks = reader.chunks(start, now)
        count, sent = replayed, 0
        for low, high in chunks:
            # A chunk without new rows (the rest of a day already sent, a meter without
            # power) does not count: the next turn would ask for it again.
            if max_chunks is not None and sent >= max_chunks:
                return count, True
            # ``after``: a gap since the last row published, over this chunk's edge,
            # is reported (module docstring).
            rows = sorted((shape.row(raw) for raw in reader.rows(low, high, after=last)),
                          key=lambda row: row.ts)
            self._log_report(reader, profile.obis)
            if last is not None:  # the range is inclusive of the last row: not again
                rows = [row for row in rows if row.ts > last]
            if not rows:
                continue
            last = self._publish_new(profile.obis, rows, publish)
            sent += 1
            count += len(rows)
        return count, False

    def _start(self, profile: ProfileConfig, last: dt.datetime | None,
               oldest: dt.datetime, depth: dt.timedelta) -> dt.datetime:
        """Where new rows begin: the last row published, not deeper than the backfill."""
        if last is not None and last < oldest:
            log.warning("%s: profile %s was last published up to %s, before the backfill "
                        "depth (%s); rows before %s are not read", self.facts_key,
                        profile.obis, last.isoformat(), depth, oldest.isoformat())
        return oldest if last is None or last < oldest else last

    def _publish_new(self, obis: str, rows: list[ProfileRow], publish: Publish) -> dt.datetime:
        """Hand one batch of new rows to the sink and move the mark; returns the mark."""
        publish(obis, rows)
        last = rows[-1].ts
        self._mark(obis, last)
        log.info("%s: %d row(s) of profile %s published, up to %s", self.facts_key,
                 len(rows), obis, last.isoformat())
        return last

    def _collect_whole(self, reader: ProfileReader, shape: RowShape, profile: ProfileConfig,
                       publish: Publish, last: dt.datetime | None, depth: dt.timedelta,
                       now: dt.datetime) -> tuple[int, bool]:
        """One look at a profile read whole (module docstring): one GET of the buffer
        serves the pending replay and every new row, published in day-sized batches."""
        obis, oldest = profile.obis, now - depth
        self._note_whole(reader, obis)
        with self._replays_lock:
            pending = self._replays.get(obis)
            replay = None if pending is None else (max(pending.start, oldest), pending.stop)
        if replay is not None and replay[0] >= replay[1]:  # all of it beyond the backfill
            self._replay_done(obis, replay[1])
            replay = None
        start = self._start(profile, last, oldest, depth)
        low = start if replay is None else min(start, replay[0])
        if low >= now:
            return 0, False
        began, exchanges = time.monotonic(), reader.meter.exchanges
        rows = sorted((shape.row(raw) for raw in reader.rows(low, now, after=last)),
                      key=lambda row: row.ts)
        log.info("%s: profile %s read whole: %d row(s) from %s on, %d exchange(s) (the GET "
                 "and its blocks), %.1f s",
                 self.facts_key, obis, len(rows), low.isoformat(),
                 reader.meter.exchanges - exchanges, time.monotonic() - began)
        self._log_report(reader, obis)
        count = 0
        if replay is not None:
            again = [row for row in rows if replay[0] <= row.ts < replay[1]]
            for batch in self._batches(reader, again):
                publish(obis, batch, replay=True)
            self._replay_done(obis, replay[1])
            count += len(again)
            if again:
                log.info("%s: %d row(s) of profile %s sent again, up to %s", self.facts_key,
                         len(again), obis, again[-1].ts.isoformat())
        new = [row for row in rows if row.ts >= start and (last is None or row.ts > last)]
        for batch in self._batches(reader, new):
            self._publish_new(obis, batch, publish)
            count += len(batch)
        return count, False

    def _note_whole(self, reader: ProfileReader, obis: str) -> None:
        """Say once per profile that each look reads the whole buffer, and how big it is."""
        if obis in self._whole_noted:
            return
        self._whole_noted.add(obis)
        layout = reader.layout()
        size = ", ".join(f"{count} {what}" for count, what in (
            (layout.entries_in_use, "entries in use"), (layout.profile_entries, "entries at most"))
            if count is not None) or "size unknown"
        log.warning("%s: profile %s: the meter offers no selective access on this "
                    "association (conformance bit 21), so each look at the profile reads its "
                    "whole buffer (%s) in one GET, however few rows are new; on a slow line "
                    "that takes minutes each time: give the profile a long interval, or use a "
                    "client (SAP) whose association grants selective access", self.facts_key,
                    obis, size)

    @staticmethod
    def _batches(reader: ProfileReader, rows: list[ProfileRow]) -> list[list[ProfileRow]]:
        """``rows`` (oldest first) cut into the reader's chunks (calendar days)."""
        if not rows:
            return []
        stamps = [row.ts for row in rows]
        batches = []
        for low, high in reader.chunks(stamps[0], stamps[-1] + RESOLUTION):
            batch = rows[bisect.bisect_left(stamps, low):bisect.bisect_left(stamps, high)]
            if batch:
                batches.append(batch)
        return batches

    @staticmethod
    def depth(profile: ProfileConfig, reader: ProfileReader) -> dt.timedelta:
        """How far back to read: the configured ``backfill``, else what the meter keeps
        (entries × capture period), else a day."""
        if profile.backfill is not None:
            return dt.timedelta(seconds=profile.backfill)
        return reader.layout().depth or dt.timedelta(days=1)

    def _log_report(self, reader: ProfileReader, obis: str) -> None:
        report = reader.report
        if report is None:
            return
        for line in report.lines():
            log.warning("%s: profile %s: %s", self.facts_key, obis, line,
                        extra={"meter": self.facts_key, "report": report.as_json()})


__all__ = ["PUBLISHED_FACT", "ProfileFeed", "ProfileRow", "Publish", "Replay", "RowShape", "aware"]
