"""Child processes that never outlive their parent, and parents that stop cleanly on signals.

What ``dlms-edge demo`` (its Mosquitto broker), ``dlms-edge simulate`` and the tests start
must end with them, whichever way they end:

* stopped by SIGTERM (systemd, ``timeout``, a CI runner), SIGINT (Ctrl-C) or SIGHUP (the
  terminal closed): the parent turns each into the same orderly stop
  (:func:`stop_on_signals`), which ends its children (:func:`stop`);
* killed outright (SIGKILL, OOM killer, a crash): nothing runs in the parent any more, so
  each child asks the kernel for a signal when its parent dies -- ``prctl(PR_SET_PDEATHSIG)``
  on Linux, set between fork and exec (:func:`spawn`);
* a child runs in its own process group, so that Ctrl-C in a terminal reaches the parent
  only, and the parent stops the children in its own order (the agent publishes ``offline``
  before the broker goes). :func:`stop` signals the whole group, grandchildren included.

Caveat of PR_SET_PDEATHSIG: the signal comes when the *thread* that started the child ends,
not the process. Start long-lived children from the main thread (the demo does).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from types import FrameType
from typing import Any

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def _load_prctl() -> Callable[..., int] | None:
    """libc's prctl, resolved once in the parent: between fork and exec only the call runs."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    return prctl  # type: ignore[no-any-return]


_PRCTL = _load_prctl()


def parent_death_signal_supported() -> bool:
    return _PRCTL is not None


def _die_with(parent: int, death_signal: int) -> Callable[[], None]:
    def preexec() -> None:  # in the child, after fork, before exec: keep it minimal
        if _PRCTL is not None:
            _PRCTL(PR_SET_PDEATHSIG, death_signal, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os.kill(os.getpid(), death_signal)

    return preexec


def spawn(args: Sequence[str], *, death_signal: int = signal.SIGTERM,
          **popen: Any) -> subprocess.Popen[Any]:
    """``subprocess.Popen(args, **popen)`` in its own process group, sent ``death_signal``
    when this process (the thread calling this) dies."""
    popen.setdefault("process_group", 0)
    # preexec_fn is unsafe with threads when it takes locks in the child; this one only
    # calls prctl (resolved beforehand), getppid and kill.
    return subprocess.Popen(args, preexec_fn=_die_with(os.getpid(), death_signal), **popen)  # noqa: PLW1509


def stop(process: subprocess.Popen[Any], timeout: float = 5.0) -> int:
    """SIGTERM to the child's process group, SIGKILL after ``timeout``; its exit status."""
    if process.poll() is None:
        _signal_group(process, signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning("pid %d did not stop within %g s of SIGTERM: killed", process.pid, timeout)
            _signal_group(process, signal.SIGKILL)
            process.wait()
    return process.returncode


def _signal_group(process: subprocess.Popen[Any], signum: int) -> None:
    try:
        if os.getpgid(process.pid) == process.pid:  # its own group: grandchildren too
            os.killpg(process.pid, signum)
        else:
            process.send_signal(signum)
    except ProcessLookupError:
        pass  # gone meanwhile


@contextlib.contextmanager
def stop_on_signals(signals: Sequence[int] = STOP_SIGNALS) -> Iterator[list[int]]:
    """Within the block, the first of ``signals`` raises KeyboardInterrupt in the main
    thread (as Ctrl-C does); a second one is ignored so that the clean-up it starts runs to
    the end instead of being cut short, a third ends the process at once (its children then
    end by the parent-death signal). Yields the list of signals received. The previous
    handlers come back after the block."""
    received: list[int] = []

    def handler(signum: int, frame: FrameType | None) -> None:
        if len(received) >= 2:  # a third: the user insists; children go by parent death
            os._exit(128 + signum)
        if received:
            received.append(signum)
            log.warning("signal %d while stopping: ignored (a third one ends at once)", signum)
            return
        received.append(signum)
        raise KeyboardInterrupt

    previous = {signum: signal.signal(signum, handler) for signum in signals}
    try:
        yield received
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


__all__ = ["PR_SET_PDEATHSIG", "STOP_SIGNALS", "parent_death_signal_supported", "spawn", "stop",
           "stop_on_signals"]
