"""Pseudo-terminals for tests and demos: one pty, or two linked ones (a virtual null-modem).

``PtyPair`` gives two device paths; what a program writes to one comes out of the other.
The simulator opens ``path_a``, the client ``path_b``. A relay thread copies bytes between
the two pty masters; we keep both slave ends open so that a program may close and reopen
its path without the master seeing EIO.
"""

from __future__ import annotations

import os
import select
import threading
import tty
from dataclasses import dataclass

from edge_agent.transport.base import TransportBase

__all__ = ["Pty", "PtyPair", "open_pty"]

_CHUNK = 4096


@dataclass(slots=True)
class Pty:
    """One pseudo-terminal in raw mode: talk through ``master_fd``, hand out ``path``."""

    master_fd: int
    slave_fd: int
    path: str

    def close(self) -> None:
        for fd in (self.master_fd, self.slave_fd):
            try:
                os.close(fd)
            except OSError:
                pass


def open_pty() -> Pty:
    master, slave = os.openpty()
    tty.setraw(slave)  # no echo, no line editing, no CR/LF translation: binary frames
    return Pty(master, slave, os.ttyname(slave))


class PtyPair(TransportBase):
    """Two linked ptys (``path_a`` <-> ``path_b``) relayed by a thread until ``close()``."""

    def __init__(self) -> None:
        self._a, self._b = open_pty(), open_pty()
        self.path_a, self.path_b = self._a.path, self._b.path
        self._wake_read, self._wake_write = os.pipe()
        self._stopped = False
        self._thread = threading.Thread(target=self._relay, name="pty-relay", daemon=True)
        self._thread.start()

    def _relay(self) -> None:
        route = {self._a.master_fd: self._b.master_fd, self._b.master_fd: self._a.master_fd}
        while True:
            readable, _, _ = select.select([*route, self._wake_read], [], [])
            if self._wake_read in readable:
                return
            for source in readable:
                try:
                    data = os.read(source, _CHUNK)
                except OSError:  # EIO: no slave open on that side right now
                    continue
                view = memoryview(data)
                while view:
                    view = view[os.write(route[source], view) :]

    def close(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        os.write(self._wake_write, b"x")
        self._thread.join(timeout=5)
        for fd in (self._wake_read, self._wake_write):
            os.close(fd)
        self._a.close()
        self._b.close()
