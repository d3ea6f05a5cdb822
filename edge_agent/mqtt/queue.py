"""Durable offline queue: every message goes through here on its way to the broker.

One SQLite file in the state dir (``mqtt-queue.sqlite3``). Rows get increasing ids
(``AUTOINCREMENT``: ids are never reused, even after the newest rows were deleted, so
the order survives restarts), the publisher sends them in id order and deletes a row
when the broker acknowledged it (PUBACK).

Durability: WAL journal with ``synchronous=NORMAL``. In WAL mode NORMAL never corrupts
the database and loses nothing when the *process* dies (SIGKILL, crash, OOM): a commit
is in the WAL file as soon as ``commit()`` returns. Only an OS crash or power cut may
roll back the last transactions before the next checkpoint. FULL would add an fsync to
every reading; on a Raspberry Pi SD card that is milliseconds per message and card
wear, for protection against a power cut that also stops the meter readings being
queued. The price is documented: after a power cut the newest few readings may be
missing, and rows deleted just before it (already acknowledged) may be sent again.

Bound and drop policy (``max_messages`` rows, ``max_bytes`` of topic + payload): when
an append goes past a bound, the oldest rows are dropped first, except that the newest
retained message of each topic is kept while anything else can go. Those rows are the
current state a subscriber sees (the value of each OBIS, availability, info, health),
so after a long outage the broker still ends up with the latest state; what is lost is
the oldest history. Only when every row is the newest retained message of its topic
does the oldest of them go. Drops are logged at WARNING: at once for the first drop,
then at most one line per ``DROP_LOG_INTERVAL`` seconds with the count since the last
line, and a final line from :meth:`close`.

Marks: a producer may store small ``key -> value`` notes in the same transaction as its
messages (``append_many(..., marks=...)``), such as the time of the newest load-profile row
queued: the note and the messages are committed together or not at all, so after a crash
the producer resumes exactly after what was queued (no gap, no duplicate).

Thread safety: one connection guarded by a lock; producers append from any thread while
the publisher thread peeks and deletes.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from edge_agent.dlms.errors import ConfigError

log = logging.getLogger(__name__)

QUEUE_FILE = "mqtt-queue.sqlite3"
DEFAULT_MAX_MESSAGES = 200_000
DEFAULT_MAX_BYTES = 64 * 1024 * 1024
DROP_LOG_INTERVAL = 60.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS message (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    topic   TEXT    NOT NULL,
    payload BLOB    NOT NULL,
    qos     INTEGER NOT NULL,
    retain  INTEGER NOT NULL,
    size    INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS message_topic ON message (topic, retain, id);
CREATE TABLE IF NOT EXISTS mark (
    key     TEXT    PRIMARY KEY,
    value   TEXT    NOT NULL
);
"""

# Rows that may be dropped first: all but the newest retained row of each topic.
_DROPPABLE = """
SELECT id, size FROM message AS m
WHERE m.id > ? AND NOT (m.retain AND m.id = (SELECT MAX(id) FROM message
                                WHERE topic = m.topic AND retain = 1))
ORDER BY id LIMIT ?
"""
_OLDEST = "SELECT id, size FROM message WHERE id > ? ORDER BY id LIMIT ?"
_EVICT_BATCH = 256


@dataclass(frozen=True, slots=True)
class QueuedMessage:
    id: int
    topic: str
    payload: bytes
    qos: int
    retain: bool


class OfflineQueue:
    """Ordered, bounded, persistent FIFO of MQTT messages (see module docstring)."""

    def __init__(self, path: str | Path, *, max_messages: int = DEFAULT_MAX_MESSAGES,
                 max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        if max_messages < 1 or max_bytes < 1:
            raise ConfigError(f"offline queue bounds must be positive, got "
                              f"max_messages={max_messages} max_bytes={max_bytes}")
        self.path = Path(path)
        self.max_messages = max_messages
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False,
                                       isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            self._count, self._bytes = self._db.execute(
                "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM message").fetchone()
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError(f"cannot open the offline queue {self.path}: {exc}; check that "
                              "the state_dir exists and is writable by this user") from None
        self.dropped_total = 0
        self._dropped_unlogged = 0
        self._last_drop_log = -DROP_LOG_INTERVAL

    @classmethod
    def in_state_dir(cls, state_dir: str | Path, **bounds: int) -> OfflineQueue:
        return cls(Path(state_dir) / QUEUE_FILE, **bounds)

    # --- producers ---------------------------------------------------------------------

    def append(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> int:
        """Store one message; return its id (increasing)."""
        return self.append_many(((topic, payload, qos, retain),))[0]

    def append_many(self, messages: Iterable[tuple[str, bytes, int, bool]],
                    marks: Mapping[str, str] | None = None) -> list[int]:
        """Store several messages in one transaction (one poll's values), with ``marks``
        (module docstring) in the same transaction."""
        rows = [(topic, bytes(payload), qos, int(retain), len(topic) + len(payload))
                for topic, payload, qos, retain in messages]
        ids = []
        with self._lock:
            cursor = self._db.cursor()
            cursor.execute("BEGIN IMMEDIATE")
            try:
                for row in rows:
                    cursor.execute("INSERT INTO message (topic, payload, qos, retain, size) "
                                   "VALUES (?, ?, ?, ?, ?)", row)
                    ids.append(cursor.lastrowid)
                for key, value in (marks or {}).items():
                    cursor.execute("INSERT OR REPLACE INTO mark (key, value) VALUES (?, ?)",
                                   (key, value))
                self._count += len(rows)
                self._bytes += sum(row[4] for row in rows)
                if self._count > self.max_messages or self._bytes > self.max_bytes:
                    self._evict(cursor)
                cursor.execute("COMMIT")
            except BaseException:
                cursor.execute("ROLLBACK")
                self._count, self._bytes = cursor.execute(
                    "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM message").fetchone()
                raise
        return ids

    def mark(self, key: str) -> str | None:
        """The value stored under ``key`` with :meth:`append_many`, if any."""
        with self._lock:
            row = self._db.execute("SELECT value FROM mark WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    # --- the publisher -----------------------------------------------------------------

    def peek(self, limit: int = 100, after: int = 0) -> list[QueuedMessage]:
        """Up to ``limit`` messages with id > ``after``, oldest first; nothing removed."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, topic, payload, qos, retain FROM message WHERE id > ? "
                "ORDER BY id LIMIT ?", (after, limit)).fetchall()
        return [QueuedMessage(id, topic, bytes(payload), qos, bool(retain))
                for id, topic, payload, qos, retain in rows]

    def delete(self, ids: Sequence[int]) -> None:
        """Remove delivered messages; ids already gone (dropped) are ignored."""
        if not ids:
            return
        with self._lock:
            cursor = self._db.cursor()
            cursor.execute("BEGIN IMMEDIATE")
            removed = freed = 0
            try:
                for start in range(0, len(ids), 500):
                    chunk = list(ids[start:start + 500])
                    marks = ",".join("?" * len(chunk))
                    count, size = cursor.execute(
                        f"SELECT COUNT(*), COALESCE(SUM(size), 0) FROM message "
                        f"WHERE id IN ({marks})", chunk).fetchone()
                    cursor.execute(f"DELETE FROM message WHERE id IN ({marks})", chunk)
                    removed += count
                    freed += size
                cursor.execute("COMMIT")
            except BaseException:
                cursor.execute("ROLLBACK")
                raise
            # Counted once committed: a failed delete is retried and must not count twice.
            self._count -= removed
            self._bytes -= freed

    # --- health ------------------------------------------------------------------------

    def __len__(self) -> int:
        return self._count

    @property
    def size_bytes(self) -> int:
        return self._bytes

    @property
    def fill(self) -> float:
        """How full the queue is: the larger of its messages and bytes over their bounds
        (0.0 empty, 1.0 at a bound)."""
        return max(self._count / self.max_messages, self._bytes / self.max_bytes)

    def close(self) -> None:
        with self._lock:
            self._log_drops(force=True)
            self._db.close()

    # --- bound -------------------------------------------------------------------------

    def _evict(self, cursor: sqlite3.Cursor) -> None:
        need_rows = self._count - self.max_messages
        need_bytes = self._bytes - self.max_bytes
        victims: list[int] = []
        chosen: set[int] = set()
        freed = 0
        for query in (_DROPPABLE, _OLDEST):
            after = 0
            while len(victims) < need_rows or freed < need_bytes:
                rows = cursor.execute(query, (after, _EVICT_BATCH)).fetchall()
                if not rows:
                    break
                for id_, size in rows:
                    after = id_
                    if id_ in chosen:
                        continue
                    victims.append(id_)
                    chosen.add(id_)
                    freed += size
                    if len(victims) >= need_rows and freed >= need_bytes:
                        break
        for start in range(0, len(victims), 500):
            chunk = victims[start:start + 500]
            cursor.execute(f"DELETE FROM message WHERE id IN ({','.join('?' * len(chunk))})",
                           chunk)
        self._count -= len(victims)
        self._bytes -= freed
        self.dropped_total += len(victims)
        self._dropped_unlogged += len(victims)
        self._log_drops()

    def _log_drops(self, force: bool = False) -> None:
        now = time.monotonic()
        if not self._dropped_unlogged:
            return
        if not force and now - self._last_drop_log < DROP_LOG_INTERVAL:
            return
        log.warning(
            "offline MQTT queue full (limits %d messages / %d bytes): dropped the %d oldest "
            "message(s) since the last report, %d in total; the newest retained state of "
            "each topic is kept. Raise mqtt.queue limits or fix the broker connection.",
            self.max_messages, self.max_bytes, self._dropped_unlogged, self.dropped_total)
        self._dropped_unlogged = 0
        self._last_drop_log = now
