"""A progress bar on stderr for long meter reads (profile, scan); no dependency.

On a terminal the bar redraws in place (carriage return, at most ten times a second);
when stderr is a file or a pipe it writes a plain line at each tenth of the way, so logs
and CI output stay readable. Data goes to stdout, so ``dlms-edge profile ... --csv -``
can be piped while the bar shows.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

_REDRAW_SECONDS = 0.1
_ERASE_LINE = "\r\x1b[K"


class ProgressBar:
    """``update(done)`` as work advances, ``finish()`` once at the end (also on errors)."""

    def __init__(self, total: int, label: str, stream: TextIO | None = None, *, width: int = 28,
                 interactive: bool | None = None, enabled: bool = True) -> None:
        self.total = max(total, 0)
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.interactive = self.stream.isatty() if interactive is None else interactive
        self.enabled = enabled
        self._drawn_at = 0.0
        self._tenth = -1
        self._open = False  # a bar is on the terminal line, not yet ended by a newline

    def _text(self, done: int, detail: str) -> str:
        if self.total:
            filled = self.width * min(done, self.total) // self.total
            bar = "#" * filled + "-" * (self.width - filled)
            text = f"{self.label} [{bar}] {done}/{self.total}"
        else:
            text = f"{self.label} {done}"
        return f"{text} {detail}".rstrip()

    def update(self, done: int, detail: str = "") -> None:
        if not self.enabled:
            return
        if self.interactive:
            now = time.monotonic()
            if now - self._drawn_at < _REDRAW_SECONDS and done < self.total:
                return
            self._drawn_at = now
            self.stream.write(_ERASE_LINE + self._text(done, detail))
            self._open = True
        else:
            tenth = 10 * done // self.total if self.total else done
            if tenth == self._tenth:
                return
            self._tenth = tenth
            self.stream.write(self._text(done, detail) + "\n")
        self.stream.flush()

    def finish(self, detail: str = "") -> None:
        """End the bar: the final state stays on screen, the next output starts on a new line."""
        if not self.enabled:
            return
        if self.interactive:
            self.stream.write(_ERASE_LINE + self._text(self.total, detail) + "\n")
            self._open = False
        elif detail:
            self.stream.write(f"{self.label}: {detail}\n")
        self.stream.flush()

    def abandon(self) -> None:
        """Leave the line clean after an error, so the error message starts at column 0."""
        if self.enabled and self.interactive and self._open:
            self.stream.write("\n")
            self.stream.flush()
            self._open = False


def _size(count: float) -> str:
    for unit in ("B", "kB", "MB"):
        if count < 1000 or unit == "MB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000
    return f"{count:.1f} MB"


def throughput(rows: int, wire_bytes: int, elapsed: float, done: int, total: int) -> str:
    """``"192 rows, 9.9 kB, 1.2 kB/s, ETA 0:07"``: rows and bytes so far, the byte rate,
    and the time left at that pace (from the share of requests done)."""
    parts = [f"{rows} rows", _size(wire_bytes)]
    if elapsed > 0 and wire_bytes:
        parts.append(f"{_size(wire_bytes / elapsed)}/s")
    if 0 < done < total and elapsed > 0:
        left = int(elapsed * (total - done) / done)
        parts.append(f"ETA {left // 60}:{left % 60:02d}")
    return ", ".join(parts)
