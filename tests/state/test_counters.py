"""Invocation counters survive crashes and processes without ever repeating."""

import json
import os
import random
import signal
import stat
import subprocess
import sys
import textwrap
import time

import pytest

from edge_agent.dlms.errors import CounterError
from edge_agent.state.counters import MAX_INVOCATION_COUNTER, InvocationCounterStore


def test_values_increase_and_persist_ahead_in_blocks(tmp_path):
    store = InvocationCounterStore(tmp_path, block_size=10)
    values = [store.next("meter-1", "ek") for _ in range(25)]
    assert values == list(range(1, 26))
    record = json.loads((tmp_path / "counters" / "meter-1@ek.json").read_text())
    assert (
        record["reserved_until"] == 31
    )  # the third block is on disk before 21..25 were handed out
    store.close()
    # a new process (or a crash) continues above the reserved mark, never below
    assert InvocationCounterStore(tmp_path, block_size=10).next("meter-1", "ek") == 31


def test_counters_are_separate_per_meter_and_key(tmp_path):
    store = InvocationCounterStore(tmp_path)
    assert [
        store.next("a", "ek"),
        store.next("a", "dedicated:1"),
        store.next("b", "ek"),
        store.next("a", "ek"),
    ] == [1, 1, 1, 2]
    assert store.peek("a", "ek") == 3


def test_set_at_least(tmp_path):
    store = InvocationCounterStore(tmp_path, block_size=10)
    store.next("m", "ek")
    store.set_at_least("m", "ek", 5)
    assert store.next("m", "ek") == 5
    store.set_at_least("m", "ek", 3)  # never goes back
    assert store.next("m", "ek") == 6
    store.set_at_least("m", "ek", 1000)
    assert store.next("m", "ek") == 1000
    assert InvocationCounterStore(tmp_path).next("m", "ek") == 1010


def test_exhaustion_is_an_error_not_a_wrap(tmp_path):
    store = InvocationCounterStore(tmp_path, block_size=10)
    store.set_at_least("m", "ek", MAX_INVOCATION_COUNTER)
    assert store.next("m", "ek") == MAX_INVOCATION_COUNTER
    with pytest.raises(CounterError, match="exhausted"):
        store.next("m", "ek")
    with pytest.raises(CounterError, match="exhausted"):
        InvocationCounterStore(tmp_path).next("m", "ek")


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"{",
        b"[]",
        b'{"version": 1, "meter_id": "m", "key_id": "ek"}',
        b'{"version": 1, "meter_id": "m", "key_id": "ek", "reserved_until": "12"}',
        b'{"version": 1, "meter_id": "m", "key_id": "ek", "reserved_until": -1}',
        b'{"version": 1, "meter_id": "other", "key_id": "ek", "reserved_until": 12}',
    ],
)
def test_corrupt_file_never_restarts_at_zero(tmp_path, content):
    store = InvocationCounterStore(tmp_path)
    store.next("m", "ek")
    (tmp_path / "counters" / "m@ek.json").write_bytes(content)
    with pytest.raises(CounterError, match="damaged"):
        InvocationCounterStore(tmp_path).next("m", "ek")


def test_private_permissions_and_odd_ids(tmp_path):
    store = InvocationCounterStore(tmp_path)
    store.next("../../etc/passwd", "ek/x")
    directory = tmp_path / "counters"
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    files = list(directory.iterdir())
    assert files and all(f.parent == directory for f in files)
    for f in files:
        assert stat.S_IMODE(f.stat().st_mode) == 0o600
    assert not list(directory.glob("*.tmp"))


_CHILD = textwrap.dedent(
    """
    import sys
    from edge_agent.state.counters import InvocationCounterStore
    store = InvocationCounterStore(sys.argv[1], block_size=int(sys.argv[2]))
    while True:
        value = store.next("meter", "ek")
        sys.stdout.write(f"{value}\\n")
        sys.stdout.flush()
    """
)


def _spawn(state_dir, block_size):
    return subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(state_dir), str(block_size)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )


def _complete_values(output: bytes) -> list[int]:
    lines = output.split(b"\n")
    return [int(line) for line in lines[:-1]]  # the last piece may be cut by the kill


def _first_line(child) -> bytes:
    """Block until the child handed out its first counter (it may start slowly on a
    loaded machine), so that every kill lands while it is handing out counters."""
    return child.stdout.readline()


def test_kill_9_never_reuses_a_counter(tmp_path):
    rng = random.Random(4)
    printed: list[int] = []
    for _ in range(20):
        child = _spawn(tmp_path, rng.choice([1, 3, 7, 50]))
        first = _first_line(child)
        time.sleep(rng.uniform(0.02, 0.2))
        os.kill(child.pid, signal.SIGKILL)
        output, _ = child.communicate(timeout=30)
        printed += _complete_values(first + output)
    assert len(printed) > 100, "children should have handed out counters before being killed"
    assert len(printed) == len(set(printed)), "a counter was handed out twice"
    assert InvocationCounterStore(tmp_path).next("meter", "ek") > max(printed)


def test_concurrent_processes_hand_out_increasing_values(tmp_path):
    children = [_spawn(tmp_path, 5) for _ in range(3)]
    firsts = [_first_line(child) for child in children]  # all three are handing out now
    time.sleep(0.2)
    for child in children:
        os.kill(child.pid, signal.SIGKILL)
    outputs = [_complete_values(first + child.communicate(timeout=30)[0])
               for first, child in zip(firsts, children, strict=True)]
    merged = [v for out in outputs for v in out]
    assert len(merged) == len(set(merged))
    for out in outputs:
        assert out == sorted(out)
    assert InvocationCounterStore(tmp_path).next("meter", "ek") > max(merged)
