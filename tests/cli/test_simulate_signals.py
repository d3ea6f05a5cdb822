"""``dlms-edge simulate`` ends on SIGTERM, SIGINT and SIGHUP, and a child started with
:func:`edge_agent.children.spawn` ends when its parent is killed outright (SIGKILL)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edge_agent import children

pytestmark = [pytest.mark.timeout(60),
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux process semantics")]

CLI = [sys.executable, "-m", "edge_agent"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def wait_listening(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listens on {port}")


def gone(pid: int) -> bool:
    """Exited (a zombie waiting for a reaper counts as gone: it runs nothing, holds no port)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")


def wait_gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if gone(pid):
            return True
        time.sleep(0.05)
    return gone(pid)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP],
                         ids=lambda s: signal.Signals(s).name)
def test_simulate_stops_on_each_stop_signal(signum: int, tmp_path: Path) -> None:
    port = free_port()
    process = children.spawn([*CLI, "simulate", "--tcp", f"127.0.0.1:{port}", "--state-dir", str(tmp_path)],
                             stderr=subprocess.PIPE, text=True)
    try:
        wait_listening(port)
        with socket.create_connection(("127.0.0.1", port)):  # a client still connected
            process.send_signal(signum)
            _, err = process.communicate(timeout=10)
    finally:
        children.stop(process)
    assert process.returncode == 0, err
    assert "Traceback" not in err
    assert port_is_free(port)


PARENT = """
import sys, time
from edge_agent import children
child = children.spawn(sys.argv[1:])
print(child.pid, flush=True)
time.sleep(120)
"""


def test_a_child_ends_when_its_parent_is_killed(tmp_path: Path) -> None:
    port = free_port()
    parent = subprocess.Popen([sys.executable, "-c", PARENT, *CLI, "simulate", "--tcp", f"127.0.0.1:{port}",
                               "--state-dir", str(tmp_path)],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        wait_listening(port)
        assert os.getpgid(child) == child, "the child runs in its own process group"
        parent.kill()  # SIGKILL: nothing of the parent runs any more
        parent.wait(10)
        assert wait_gone(child), "the child outlived its killed parent"
        assert port_is_free(port)
    finally:
        if parent.poll() is None:
            parent.kill()


def test_stop_ends_the_whole_process_group(tmp_path: Path) -> None:
    script = tmp_path / "tree.sh"
    script.write_text("sleep 300 &\necho $!\nwait\n")
    process = children.spawn(["sh", str(script)], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    grandchild = int(process.stdout.readline())
    children.stop(process, timeout=5)
    assert wait_gone(grandchild, 5), "the grandchild in the group got the SIGTERM too"


def test_stop_on_signals_turns_sigterm_into_an_orderly_stop() -> None:
    code = """
import os, signal, time
from edge_agent.children import stop_on_signals
with stop_on_signals() as received:
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)
    except KeyboardInterrupt:
        os.kill(os.getpid(), signal.SIGHUP)  # a second signal during clean-up: ignored
        time.sleep(0.2)
        print("cleaned up after", [signal.Signals(s).name for s in received])
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=20,
                            check=False)
    assert result.returncode == 0, result.stderr
    assert "cleaned up after ['SIGTERM', 'SIGHUP']" in result.stdout


def test_parent_death_signal_is_available_on_linux() -> None:
    assert children.parent_death_signal_supported()
