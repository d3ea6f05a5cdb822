"""Received invocation counters that survive restarts: replays stay rejected.

A receiver must accept an APDU only when its invocation counter is above the last one
accepted from that sender under that key (Green Book 9.2.7.2.3); the sans-IO
:class:`~edge_agent.dlms.security.replay.ReceiveCounterGuard` keeps these high-water marks
in memory. :class:`PersistentReceiveGuard` is that guard plus a file, so a telegram
recorded before an agent restart is still a replay after it.

One file per meter, ``<state_dir>/receive_counters/<meter>.json`` (0600, directory 0700),
one entry per (sender system title, key id)::

    {"version": 1, "meter_id": "t210d",
     "counters": [{"system_title": "5341475905E1B4C2", "key_id": "ek",
                   "invocation_counter": 1234}]}

Trade-off, chosen to spare SD cards: a push meter sends every 1-10 s, and a durable write
(fsync of file and directory) per telegram would wear the card. So a changed mark is
written at most every ``flush_interval`` seconds (default 30) and on :meth:`close`; after a
crash or power cut, a telegram received in the last ``flush_interval`` seconds before it can
be accepted once more (the mark on disk is at most that old, never ahead). A clean stop
loses nothing. Writes are atomic (temp file, fsync, rename), so the file holds the old or
the new marks, never half of them.

Several processes may share a state dir (the agent and ``dlms-edge listen``): a write is a
read-merge-write under ``fcntl.flock``, each mark the higher of file and memory, and the
merged marks are taken into memory too. Marks only rise; after the meter was re-keyed or
reset (its counters start again), delete the meter's file.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final, Self
from urllib.parse import quote

from edge_agent.dlms.errors import CounterError
from edge_agent.dlms.security.replay import ReceiveCounterGuard
from edge_agent.state.counters import MAX_INVOCATION_COUNTER, atomic_write, ensure_private_dir

__all__ = ["DEFAULT_FLUSH_INTERVAL", "PersistentReceiveGuard"]

log = logging.getLogger(__name__)

DEFAULT_FLUSH_INTERVAL: Final = 30.0  # seconds; see the trade-off in the module docstring
_FORMAT_VERSION: Final = 1
_FILE_MODE: Final = 0o600
_SUBDIR: Final = "receive_counters"

Marks = dict[tuple[bytes, str], int]


class PersistentReceiveGuard:
    """A :class:`ReceiveCounterGuard` for one meter whose marks are kept in ``state_dir``.

    Satisfies ``ReceiveCounterGuardLike``: pass it as ``guard=`` to
    :class:`~edge_agent.dlms.push.decoder.PushDecoder`. Call :meth:`maybe_flush` now and then (it
    writes only when a mark changed and ``flush_interval`` passed) and :meth:`close` at the
    end. Raises :class:`CounterError` at construction when the file is damaged.
    """

    def __init__(
        self,
        state_dir: str | os.PathLike[str],
        meter_id: str,
        *,
        flush_interval: float = DEFAULT_FLUSH_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not meter_id:
            raise CounterError("receive counters need a meter id, got an empty one")
        if flush_interval < 0:
            raise CounterError(f"flush interval must be >= 0 seconds, got {flush_interval:g}")
        self.meter_id = meter_id
        self.flush_interval = flush_interval
        directory = ensure_private_dir(Path(state_dir) / _SUBDIR)
        self.path = directory / f"{quote(meter_id, safe='')}.json"
        self._lock_path = self.path.with_suffix(".lock")
        self._clock = clock
        self._mutex = threading.Lock()
        self._guard = ReceiveCounterGuard(self._read())
        self._dirty = False
        self._written_at: float | None = None  # None: nothing written yet, the next write is due

    # --- ReceiveCounterGuardLike ----------------------------------------------------------

    def check(self, system_title: bytes, key_id: str, invocation_counter: int) -> None:
        with self._mutex:
            self._guard.check(system_title, key_id, invocation_counter)

    def accept(self, system_title: bytes, key_id: str, invocation_counter: int) -> None:
        with self._mutex:
            self._guard.accept(system_title, key_id, invocation_counter)
            self._dirty = True
        self.maybe_flush()

    def last(self, system_title: bytes, key_id: str = "ek") -> int | None:
        with self._mutex:
            return self._guard.last(system_title, key_id)

    # --- persistence ----------------------------------------------------------------------

    def maybe_flush(self) -> bool:
        """Write when a mark changed and the last write is ``flush_interval`` old; True if so."""
        with self._mutex:
            due = self._written_at is None or (
                self._clock() - self._written_at >= self.flush_interval
            )
            if not (self._dirty and due):
                return False
        return self.flush()

    def flush(self) -> bool:
        """Write changed marks now (merged with the file's); True when written.

        A failing write is logged and retried at the next flush: the in-memory guard still
        protects this process, and a dead SD card must not stop the readings.
        """
        with self._mutex:
            if not self._dirty:
                return False
            try:
                with self._file_lock():
                    merged = _merge(self._read_for_merge(), self._guard.snapshot())
                    atomic_write(self.path, self._encode(merged), _FILE_MODE)
            except OSError as error:
                log.warning(
                    "receive counters of %s not saved to %s: %s; retrying later",
                    self.meter_id,
                    self.path,
                    error.strerror or error,
                )
                self._written_at = self._clock()
                return False
            self._guard = ReceiveCounterGuard(merged)
            self._dirty = False
            self._written_at = self._clock()
            return True

    def close(self) -> None:
        self.flush()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<PersistentReceiveGuard {self.meter_id} {self.path}>"

    # --- the file -------------------------------------------------------------------------

    @contextmanager
    def _file_lock(self) -> Iterator[None]:
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, _FILE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the flock

    def _encode(self, marks: Marks) -> bytes:
        entries = [
            {"system_title": title.hex().upper(), "key_id": key_id, "invocation_counter": counter}
            for (title, key_id), counter in sorted(marks.items())
        ]
        return json.dumps(
            {"version": _FORMAT_VERSION, "meter_id": self.meter_id, "counters": entries}, indent=1
        ).encode()

    def _read(self) -> Marks:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        except OSError as error:
            raise CounterError(
                f"receive counter file {self.path} cannot be read: {error.strerror}"
            ) from None
        marks = _decode(raw, self.meter_id)
        if marks is None:
            raise CounterError(
                f"receive counter file {self.path} is damaged: refusing to guess which "
                "counters were already accepted. Delete it to start over (a telegram "
                "recorded before can then be accepted once), or restore it"
            )
        return marks

    def _read_for_merge(self) -> Marks:
        try:
            return self._read()
        except CounterError as error:  # damaged since we loaded it: ours replace it
            log.warning("%s; overwriting it with the counters in memory", error)
            return {}


def _decode(raw: bytes, meter_id: str) -> Marks | None:
    """The marks of a file, or None when it is not one this module wrote for ``meter_id``."""
    try:
        data = json.loads(raw)
        if data.get("version") != _FORMAT_VERSION or data.get("meter_id") != meter_id:
            return None
        marks: Marks = {}
        for entry in data["counters"]:
            counter, key_id = entry["invocation_counter"], entry["key_id"]
            if (
                type(counter) is not int
                or not 0 <= counter <= MAX_INVOCATION_COUNTER
                or not isinstance(key_id, str)
                or not key_id
            ):
                return None
            marks[(bytes.fromhex(entry["system_title"]), key_id)] = counter
    except (ValueError, TypeError, KeyError, AttributeError):
        return None
    return marks


def _merge(on_disk: Marks, in_memory: Marks) -> Marks:
    merged = dict(on_disk)
    for entry, counter in in_memory.items():
        merged[entry] = max(counter, merged.get(entry, counter))
    return merged
