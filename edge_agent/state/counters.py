"""Persistent invocation counters: never send the same IC twice under one key.

A meter rejects an APDU whose invocation counter is not above the last it accepted, and
re-using a GCM IV with the same key breaks the cipher (NIST SP 800-38D 8.3). So every IC
handed out must be greater than every IC handed out before, across crashes and processes.

How: the file of each (meter, key) holds a high-water mark ``reserved_until``; all values
below it may have been used. A process reserves a block [mark, mark + block) by writing the
new mark durably (temp file, fsync, rename, fsync of the directory) *before* it hands out
any value of the block. After ``kill -9`` at any instant the file holds either the old or
the new mark, and the next process starts at that mark: above everything handed out.

Processes are serialized with ``fcntl.flock`` on a lock file per counter. A process keeps
handing out values from its block only while the file's mark is still the end of its own
block; if another process reserved after it, it reserves anew above that, so the values
stay increasing across processes, not only unique.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Self
from urllib.parse import quote

from edge_agent.dlms.errors import CounterError

MAX_INVOCATION_COUNTER = 0xFFFFFFFF
FIRST_VALUE = 1
_FORMAT_VERSION = 1
_DIR_MODE = 0o700
_FILE_MODE = 0o600


@dataclass(slots=True)
class _Block:
    next_value: int
    end: int  # exclusive; equals the file's reserved_until while the block is current


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes, mode: int = _FILE_MODE) -> None:
    """Write ``data`` so that ``path`` holds either the old or the new content, durably."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def ensure_private_dir(path: Path) -> Path:
    path.mkdir(mode=_DIR_MODE, parents=True, exist_ok=True)
    os.chmod(path, _DIR_MODE)
    return path


class InvocationCounterStore:
    """``store.next("t210d-1", "ek")`` -> a fresh IC for that meter and key.

    ``key_id`` names the key the IC is used with ("ek", "broadcast_ek", "dedicated_ek",
    or any label, e.g. one per dedicated key): each has its own counter.
    """

    def __init__(self, state_dir: str | os.PathLike[str], block_size: int = 100) -> None:
        if not 1 <= block_size <= 1_000_000:
            raise CounterError(f"block size must be 1..1000000, got {block_size}")
        self._dir = ensure_private_dir(Path(state_dir) / "counters")
        self._block_size = block_size
        self._blocks: dict[tuple[str, str], _Block] = {}
        self._lock_fds: dict[tuple[str, str], int] = {}
        self._mutex = threading.Lock()

    # --- public API ---------------------------------------------------------------------

    def next(self, meter_id: str, key_id: str = "ek") -> int:
        """Return an IC greater than every IC this store ever returned for (meter, key)."""
        with self._locked(meter_id, key_id):
            mark = self._read_mark(meter_id, key_id)
            block = self._blocks.get((meter_id, key_id))
            if block is None or block.end != mark or block.next_value >= block.end:
                block = self._reserve(meter_id, key_id, mark)
            value = block.next_value
            block.next_value += 1
            return value

    def set_at_least(self, meter_id: str, key_id: str, value: int) -> None:
        """Make the next IC at least ``value`` (e.g. the meter's frame counter + 1)."""
        if not 0 <= value <= MAX_INVOCATION_COUNTER:
            raise CounterError(f"invocation counter {value} outside 0..2**32-1")
        with self._locked(meter_id, key_id):
            mark = self._read_mark(meter_id, key_id)
            block = self._blocks.get((meter_id, key_id))
            current = block is not None and block.end == mark and block.next_value < block.end
            if current and value < block.end:
                block.next_value = max(block.next_value, value)
                return
            if not current and mark >= value:
                return
            self._reserve(meter_id, key_id, max(mark, value))

    def peek(self, meter_id: str, key_id: str = "ek") -> int:
        """The lowest value ``next`` can return now (for diagnostics; not a reservation)."""
        with self._locked(meter_id, key_id):
            mark = self._read_mark(meter_id, key_id)
            block = self._blocks.get((meter_id, key_id))
            if block is not None and block.end == mark and block.next_value < block.end:
                return block.next_value
            return mark

    def close(self) -> None:
        with self._mutex:
            for fd in self._lock_fds.values():
                os.close(fd)
            self._lock_fds.clear()
            self._blocks.clear()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<InvocationCounterStore {self._dir}>"

    # --- internals ----------------------------------------------------------------------

    def _path(self, meter_id: str, key_id: str) -> Path:
        if not meter_id or not key_id:
            raise CounterError("meter id and key id must not be empty")
        return self._dir / f"{quote(meter_id, safe='')}@{quote(key_id, safe='')}.json"

    def _locked(self, meter_id: str, key_id: str) -> _FileLock:
        return _FileLock(self, meter_id, key_id)

    def _lock_fd(self, meter_id: str, key_id: str) -> int:
        fd = self._lock_fds.get((meter_id, key_id))
        if fd is None:
            lock_path = self._path(meter_id, key_id).with_suffix(".lock")
            try:
                fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, _FILE_MODE)
            except OSError as exc:
                raise CounterError(
                    f"cannot open the counter lock {lock_path}: {exc.strerror}"
                ) from None
            self._lock_fds[(meter_id, key_id)] = fd
        return fd

    def _read_mark(self, meter_id: str, key_id: str) -> int:
        path = self._path(meter_id, key_id)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return FIRST_VALUE
        except OSError as exc:
            raise CounterError(
                f"invocation counter file {path} cannot be read: {exc.strerror}"
            ) from None
        try:
            data = json.loads(raw)
            mark = data["reserved_until"]
            ok = (
                data.get("version") == _FORMAT_VERSION
                and data.get("meter_id") == meter_id
                and data.get("key_id") == key_id
                and isinstance(mark, int)
                and not isinstance(mark, bool)
                and 0 <= mark <= MAX_INVOCATION_COUNTER + 1
            )
        except (ValueError, TypeError, KeyError, AttributeError):
            ok = False
        if not ok:
            raise CounterError(
                f"invocation counter file {path} is damaged: refusing to guess a counter (a reused "
                "counter breaks the encryption). Read the meter's frame counter with the public "
                "client and set it (dlms-edge read ... --client 16), or restore the file"
            )
        return mark

    def _reserve(self, meter_id: str, key_id: str, start: int) -> _Block:
        if start > MAX_INVOCATION_COUNTER:
            raise CounterError(
                f"invocation counters of meter {meter_id!r}, key {key_id!r} are exhausted (2**32 "
                "values used): the key must be changed (Security setup key_transfer) before "
                "anything more can be sent with it"
            )
        end = min(start + self._block_size, MAX_INVOCATION_COUNTER + 1)
        record = {
            "version": _FORMAT_VERSION,
            "meter_id": meter_id,
            "key_id": key_id,
            "reserved_until": end,
        }
        try:
            atomic_write(self._path(meter_id, key_id), json.dumps(record).encode())
        except OSError as exc:
            raise CounterError(
                f"cannot persist the invocation counter of {meter_id!r}/{key_id!r}: {exc.strerror}; "
                "nothing is sent without a durable counter"
            ) from None
        block = _Block(start, end)
        self._blocks[(meter_id, key_id)] = block
        return block


class _FileLock:
    """Thread mutex + flock of one counter's lock file, as a context manager."""

    __slots__ = ("_fd", "_key_id", "_meter_id", "_store")

    def __init__(self, store: InvocationCounterStore, meter_id: str, key_id: str) -> None:
        self._store = store
        self._meter_id = meter_id
        self._key_id = key_id
        self._fd = -1

    def __enter__(self) -> None:
        self._store._mutex.acquire()
        try:
            self._fd = self._store._lock_fd(self._meter_id, self._key_id)
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        except BaseException:
            self._store._mutex.release()
            raise

    def __exit__(self, *exc: object) -> None:
        try:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._store._mutex.release()
