"""A meter (or a serial-to-Ethernet converter) that connects to a push listener and sends.

Shared by the ``listen`` tests: the listener under test starts in the test's thread or
process, so the sender connects from its own thread, retrying while the port is refused.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterable


def pieces(data: bytes, size: int) -> list[bytes]:
    """``data`` cut into ``size``-byte pieces, as a converter hands on a serial stream."""
    return [data[start:start + size] for start in range(0, len(data), size)]


def send_when_listening(port: int, chunks: Iterable[bytes], *, pause: float = 0.02,
                        linger: float = 0.5, patience: float = 5.0) -> threading.Thread:
    """Connect to 127.0.0.1:``port`` once it listens (within ``patience`` seconds), send
    ``chunks`` ``pause`` seconds apart, keep the connection ``linger`` seconds, close."""
    chunks = list(chunks)

    def run() -> None:
        deadline = time.monotonic() + patience
        while True:
            try:
                connection = socket.create_connection(("127.0.0.1", port), timeout=5)
                break
            except ConnectionRefusedError:
                if time.monotonic() > deadline:
                    return
                time.sleep(0.02)
        with connection:
            for chunk in chunks:
                connection.sendall(chunk)
                time.sleep(pause)
            time.sleep(linger)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread
