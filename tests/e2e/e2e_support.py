"""Helpers of the end-to-end tests: the real CLI as subprocesses, on 127.0.0.1 only.

``Simulator`` starts ``dlms-edge simulate`` on a free port (``--tcp 127.0.0.1:0``; the
simulator prints the port it got on stderr) or on a serial path, and stops it by its pid.
``dlms_edge(...)`` runs one CLI command with a time-out and returns the finished process.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Self

from edge_agent import children

PYTHON = sys.executable
CLI = [PYTHON, "-m", "edge_agent"]
START_TIMEOUT = 10.0
COMMAND_TIMEOUT = 20.0
_LISTENING = re.compile(r"listening on ([0-9.]+):(\d+)")
_SERVING = re.compile(r"serving HDLC on ")

T210D_MANAGEMENT = [
    "--client", "1", "--suite", "1", "--security", "authenc", "--auth", "hls-gmac",
]


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    for name in ("DLMS_EK", "DLMS_AK", "DLMS_PASSWORD"):  # a developer's keys must not leak in
        env.pop(name, None)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def dlms_edge(
    *args: str, timeout: float = COMMAND_TIMEOUT, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=timeout,
        env={**_environment(), **(env or {})}, check=False,
    )


class Simulator:
    """``dlms-edge simulate ARGS`` in the background; ``address`` once it listens."""

    def __init__(self, *args: str, tcp: bool = True) -> None:
        where = ["--tcp", "127.0.0.1:0"] if tcp else []
        # Own process group, and SIGTERM from the kernel should the test process die.
        self.process = children.spawn(
            [*CLI, "simulate", *where, *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=_environment(),
        )
        self.lines: list[str] = []
        self._ready = threading.Event()
        self.port: int | None = None
        self._reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._reader.start()
        if not self._ready.wait(START_TIMEOUT) or self.process.poll() is not None:
            output = self.stderr
            self.stop()
            raise RuntimeError(f"simulator did not start: {output}")

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line)
            if match := _LISTENING.search(line):
                self.port = int(match.group(2))
                self._ready.set()
            elif _SERVING.search(line):
                self._ready.set()
        self._ready.set()  # exited

    @property
    def tcp(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def stderr(self) -> str:
        return "".join(self.lines)

    def stop(self) -> str:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self._reader.join(5)
        return self.stderr

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def wait_for(predicate, timeout: float = 5.0, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def counter_log(path: Path) -> list[tuple[str, int, str, str]]:
    """The simulator's ``--counter-log``: (system title, invocation counter, where, verdict)."""
    entries = []
    for line in path.read_text(encoding="ascii").splitlines():
        title, counter, where, verdict = line.split()
        entries.append((title, int(counter), where, verdict))
    return entries
