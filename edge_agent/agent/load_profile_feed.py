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

import datetime as dt
import logging
import threading
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
        return ProfileRow(aware(raw["timestamp"]), values,
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
        replayed, more = 0, self.replaying(profile.obis)
        while more:
            count, more = self._replay_chunk(reader, shape, profile.obis, oldest, publish)
            replayed += count
            if max_chunks is not None:
                return count, True  # the rest, and new rows, in the next turns
        start = oldest if last is None or last < oldest else last
        if last is not None and last < oldest:
            log.warning("%s: profile %s was last published up to %s, before the backfill "
                        "depth (%s); rows before %s are not read", self.facts_key,
                        profile.obis, last.isoformat(), depth, oldest.isoformat())
        if start >= now:
            return replayed, False
        chunks = reader.chunks(start, now)
        count, sent = replayed, 0
        for low, high in chunks:
            # A chunk without new rows (the rest of a day already sent, a meter without
            # power) does not count: the next turn would ask for it again.
            if max_chunks is not None and sent >= max_chunks:
                return count, True
            rows = sorted((shape.row(raw) for raw in reader.rows(low, high)),
                          key=lambda row: row.ts)
            self._log_report(reader, profile.obis)
            if last is not None:  # the range is inclusive of the last row: not again
                rows = [row for row in rows if row.ts > last]
            if not rows:
                continue
            publish(profile.obis, rows)
            sent += 1
            last = rows[-1].ts
            self._mark(profile.obis, last)
            count += len(rows)
            log.info("%s: %d row(s) of profile %s published, up to %s", self.facts_key,
                     len(rows), profile.obis, last.isoformat())
        return count, False

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
