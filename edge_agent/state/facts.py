"""Facts learned about each meter, kept between runs (never keys or passwords).

One JSON object per meter in ``<state_dir>/facts/<meter>.json`` (0600, directory 0700),
e.g. ``{"pass3_signing_required": true, "scalers": {...}, "object_list": [...]}``.
Updates are read-modify-write under ``fcntl.flock`` and land atomically (temp file,
fsync, rename), so a crash leaves the old or the new facts, never half a file.

Reads are served from memory while the file is the one last read or written (same inode,
size and modification time): a poll asks for the meter's classes and scalers without
opening the file, and a change made through another store (another process, or another
part of the agent with its own store) is seen at the next read, since each update renames
a new file into place. An update always reads the file itself, under the lock: should a
reused inode number, the same size and a coarse clock ever hide a change from a read,
that read is stale, but no update is lost.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

from edge_agent.dlms.errors import ConfigError
from edge_agent.dlms.secret import Secret
from edge_agent.state.counters import atomic_write, ensure_private_dir

# --- the facts' names: every reader and writer uses these -------------------------------

#: True once the meter refused an unsigned HLS pass 3: sign it from then on
#: (``pass3_signing: auto``).
PASS3_SIGNING_REQUIRED = "pass3_signing_required"
#: Dotted OBIS -> interface class id, from the association's object list.
CLASSES = "classes"
#: Dotted OBIS -> ``[scaler, unit]`` of each scaled object read (Blue Book 4.3.2).
SCALERS = "scalers"
#: The meter's serial number, read once: the id of a meter configured without one.
SERIAL = "serial"
#: Profile OBIS -> capture time (ISO 8601) of the last load-profile row published.
PROFILES_PUBLISHED = "profiles_published"

# Name parts that mean key material: such facts are refused, whatever their value.
_SECRET_WORDS = frozenset(
    {"key", "keys", "ek", "ak", "kek", "password", "passwd", "secret", "lls", "private"}
)


def _check_storable(name: str, value: Any) -> None:
    words = {part for part in name.lower().replace("-", "_").split("_") if part}
    if words & _SECRET_WORDS:
        raise ConfigError(
            f"fact {name!r} looks like key material: keys and passwords are never stored as facts"
        )
    _check_value(name, value)


def _check_value(name: str, value: Any) -> None:
    if isinstance(value, (Secret, bytes, bytearray, memoryview)):
        raise ConfigError(
            f"fact {name!r}: binary values and secrets are not stored (store hex of public data)"
        )
    if isinstance(value, Mapping):
        for inner in value.values():
            _check_value(name, inner)
    elif isinstance(value, (list, tuple)):
        for inner in value:
            _check_value(name, inner)


class FactStore:
    """``facts.set("t210d-1", pass3_signing_required=True)``; ``facts.get("t210d-1")``."""

    def __init__(self, state_dir: str | os.PathLike[str]) -> None:
        self._dir = ensure_private_dir(Path(state_dir) / "facts")
        self._mutex = threading.Lock()
        # path -> (the file's identity when read or written, its facts); never handed out
        self._cache: dict[Path, tuple[tuple[int, int, int], dict[str, Any]]] = {}

    def _path(self, meter_id: str) -> Path:
        if not meter_id:
            raise ConfigError("meter id must not be empty")
        return self._dir / f"{quote(meter_id, safe='')}.json"

    def _read(self, path: Path) -> dict[str, Any]:
        """The facts in ``path``, read from the file and remembered with its identity (the
        result is the cached dict: do not mutate)."""
        try:
            with path.open("rb") as file:
                identity = _identity(os.fstat(file.fileno()))
                data = json.loads(file.read())
        except FileNotFoundError:
            self._cache.pop(path, None)
            return {}
        except ValueError:
            # Facts are a cache of what can be learned again from the meter: a damaged file
            # counts as empty and is replaced by the next update.
            return {}
        data = data if isinstance(data, dict) else {}
        self._cache[path] = (identity, data)
        return data

    def get(self, meter_id: str) -> dict[str, Any]:
        """The meter's facts: a new dict; its values are shared, so read them only."""
        path = self._path(meter_id)
        try:
            identity = _identity(path.stat())
        except FileNotFoundError:
            self._cache.pop(path, None)
            return {}
        cached = self._cache.get(path)
        if cached is not None and cached[0] == identity:
            return dict(cached[1])
        with self._mutex:
            return dict(self._read(path))

    def get_fact(self, meter_id: str, name: str, default: Any = None) -> Any:
        return self.get(meter_id).get(name, default)

    def set_fact(self, meter_id: str, name: str, value: Any) -> dict[str, Any]:
        """``facts.set_fact(meter, PASS3_SIGNING_REQUIRED, True)``; returns the new full set."""
        return self.set(meter_id, **{name: value})

    def set(self, meter_id: str, **facts: Any) -> dict[str, Any]:
        """Merge ``facts`` into the meter's facts; returns the new full set."""
        for name, value in facts.items():
            _check_storable(name, value)
        return self._update(meter_id, lambda current: {**current, **facts})

    def forget(self, meter_id: str, *names: str) -> dict[str, Any]:
        """Drop the named facts, or all of the meter's facts when no name is given."""
        drop = set(names)
        return self._update(
            meter_id, lambda current: {k: v for k, v in current.items() if drop and k not in drop}
        )

    def _update(self, meter_id: str, change) -> dict[str, Any]:
        path = self._path(meter_id)
        with self._mutex:
            fd = os.open(path.with_suffix(".lock"), os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                new = change(self._read(path))
                try:
                    payload = json.dumps(new, sort_keys=True, indent=1).encode()
                except (TypeError, ValueError) as exc:
                    raise ConfigError(
                        f"facts of {meter_id!r} are not JSON-serializable: {exc}"
                    ) from None
                atomic_write(path, payload)
                # What a read of the file gives (lists, string keys), shared with no caller.
                self._cache[path] = (_identity(path.stat()), json.loads(payload))
                return new
            finally:
                os.close(fd)

    def __repr__(self) -> str:
        return f"<FactStore {self._dir}>"


def _identity(status: os.stat_result) -> tuple[int, int, int]:
    """What tells one version of the file from another (module docstring)."""
    return status.st_ino, status.st_size, status.st_mtime_ns
