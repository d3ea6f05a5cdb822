"""Received invocation counters kept in the state dir: replays stay rejected after a restart."""

from __future__ import annotations

import json
import logging
import stat
import tempfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.dlms.errors import CounterError, ReplayError
from edge_agent.state import receive_counters
from edge_agent.state.counters import MAX_INVOCATION_COUNTER
from edge_agent.state.receive_counters import DEFAULT_FLUSH_INTERVAL, PersistentReceiveGuard

TITLE = bytes.fromhex("5341475905E1B4C2")
OTHER = bytes.fromhex("4D4D4D0000BC614E")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def on_disk(guard: PersistentReceiveGuard) -> dict[tuple[str, str], int]:
    record = json.loads(guard.path.read_text())
    return {(e["system_title"], e["key_id"]): e["invocation_counter"] for e in record["counters"]}


def test_marks_survive_a_restart_and_replays_stay_rejected(tmp_path) -> None:
    with PersistentReceiveGuard(tmp_path, "t210d") as guard:
        guard.accept(TITLE, "ek", 41)
        guard.accept(TITLE, "ek", 42)
        guard.accept(OTHER, "broadcast_ek", 7)
    again = PersistentReceiveGuard(tmp_path, "t210d")
    assert again.last(TITLE, "ek") == 42 and again.last(OTHER, "broadcast_ek") == 7
    assert again.last(TITLE, "broadcast_ek") is None  # each key has its own counter
    with pytest.raises(ReplayError, match="42 from 5341475905E1B4C2 .* last accepted 42"):
        again.check(TITLE, "ek", 42)
    with pytest.raises(ReplayError):
        again.accept(TITLE, "ek", 12)
    again.accept(TITLE, "ek", 43)
    assert again.last(TITLE, "ek") == 43


def test_file_layout_and_permissions(tmp_path) -> None:
    guard = PersistentReceiveGuard(tmp_path, "meter/1 ä")
    guard.accept(TITLE, "ek", 5)
    assert guard.path.parent == tmp_path / "receive_counters"
    assert guard.path.name == "meter%2F1%20%C3%A4.json"  # any id gives one safe file name
    assert stat.S_IMODE(guard.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(guard.path.parent.stat().st_mode) == 0o700
    record = json.loads(guard.path.read_text())
    assert record == {
        "version": 1,
        "meter_id": "meter/1 ä",
        "counters": [{"system_title": "5341475905E1B4C2", "key_id": "ek", "invocation_counter": 5}],
    }


def test_writes_at_most_every_interval_and_on_close(tmp_path, monkeypatch) -> None:
    writes: list[bytes] = []
    real_write = receive_counters.atomic_write
    monkeypatch.setattr(
        receive_counters,
        "atomic_write",
        lambda path, data, mode: (writes.append(data), real_write(path, data, mode)),
    )
    clock = Clock()
    guard = PersistentReceiveGuard(tmp_path, "p1", flush_interval=30.0, clock=clock)
    assert guard.flush_interval == DEFAULT_FLUSH_INTERVAL == 30.0
    guard.accept(TITLE, "ek", 1)  # the first change is written at once
    assert len(writes) == 1 and on_disk(guard) == {(TITLE.hex().upper(), "ek"): 1}
    for counter in range(2, 12):  # a telegram a second: no write within the interval
        clock.now += 1.0
        guard.accept(TITLE, "ek", counter)
    assert len(writes) == 1 and on_disk(guard)[(TITLE.hex().upper(), "ek")] == 1
    assert not guard.maybe_flush()
    clock.now += 20.0  # 30 s after the last write
    assert guard.maybe_flush()
    assert len(writes) == 2 and on_disk(guard)[(TITLE.hex().upper(), "ek")] == 11
    clock.now += 100.0
    assert not guard.maybe_flush() and len(writes) == 2  # nothing changed: no write
    guard.accept(TITLE, "ek", 12)  # due again: written with the telegram
    clock.now += 1.0
    guard.accept(TITLE, "ek", 13)
    assert len(writes) == 3
    guard.close()  # a clean stop loses nothing
    assert len(writes) == 4 and on_disk(guard)[(TITLE.hex().upper(), "ek")] == 13
    guard.close()
    assert len(writes) == 4


def test_a_crash_loses_at_most_the_last_interval(tmp_path) -> None:
    clock = Clock()
    guard = PersistentReceiveGuard(tmp_path, "p1", clock=clock)
    guard.accept(TITLE, "ek", 100)
    clock.now += 5.0
    guard.accept(TITLE, "ek", 101)  # not yet on disk: a crash now forgets it
    restarted = PersistentReceiveGuard(tmp_path, "p1")
    restarted.check(TITLE, "ek", 101)  # the documented trade-off: accepted once more
    with pytest.raises(ReplayError):
        restarted.check(TITLE, "ek", 100)  # anything older than the interval stays rejected


def test_two_processes_merge_to_the_higher_mark(tmp_path) -> None:
    first = PersistentReceiveGuard(tmp_path, "shared", flush_interval=0)
    second = PersistentReceiveGuard(tmp_path, "shared", flush_interval=0)
    second.accept(TITLE, "ek", 20)
    first.accept(TITLE, "ek", 10)  # must not lower the 20 on disk
    first.accept(OTHER, "ek", 3)
    assert on_disk(first) == {(TITLE.hex().upper(), "ek"): 20, (OTHER.hex().upper(), "ek"): 3}
    assert first.last(TITLE, "ek") == 20  # and the merged mark is in force in memory
    with pytest.raises(ReplayError):
        first.check(TITLE, "ek", 15)


def test_a_failing_write_is_logged_and_retried(tmp_path, monkeypatch, caplog) -> None:
    real_write = receive_counters.atomic_write

    def full_disk(path, data, mode):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(receive_counters, "atomic_write", full_disk)
    clock = Clock()
    guard = PersistentReceiveGuard(tmp_path, "p1", clock=clock)
    with caplog.at_level(logging.WARNING):
        guard.accept(TITLE, "ek", 9)  # the telegram is still accepted
    assert "No space left on device" in caplog.text and "retrying" in caplog.text
    assert guard.last(TITLE, "ek") == 9 and not guard.path.exists()
    monkeypatch.setattr(receive_counters, "atomic_write", real_write)
    clock.now += 30.0
    assert guard.maybe_flush()
    assert PersistentReceiveGuard(tmp_path, "p1").last(TITLE, "ek") == 9


def record(**entry: object) -> bytes:
    good = {"system_title": "00", "key_id": "ek", "invocation_counter": 1}
    return json.dumps({"version": 1, "meter_id": "p1", "counters": [good | entry]}).encode()


@pytest.mark.parametrize(
    "content",
    [
        b"{not json",
        b"[]",
        b'{"version": 2, "meter_id": "p1", "counters": []}',
        b'{"version": 1, "meter_id": "other", "counters": []}',
        b'{"version": 1, "meter_id": "p1"}',
        b'{"version": 1, "meter_id": "p1", "counters": [7]}',
        record(system_title="zz"),
        record(system_title=None),
        record(invocation_counter=-1),
        record(invocation_counter=True),
        record(invocation_counter=MAX_INVOCATION_COUNTER + 1),
        record(invocation_counter="1"),
        record(key_id=""),
    ],
)
def test_a_damaged_file_is_refused_with_the_fix(tmp_path, content: bytes) -> None:
    directory = tmp_path / "receive_counters"
    directory.mkdir()
    (directory / "p1.json").write_bytes(content)
    with pytest.raises(CounterError, match="p1.json is damaged.*Delete it to start over"):
        PersistentReceiveGuard(tmp_path, "p1")


def test_bad_arguments(tmp_path) -> None:
    with pytest.raises(CounterError, match="meter id"):
        PersistentReceiveGuard(tmp_path, "")
    with pytest.raises(CounterError, match="flush interval"):
        PersistentReceiveGuard(tmp_path, "p1", flush_interval=-1)


marks = st.dictionaries(
    st.tuples(
        st.binary(min_size=1, max_size=16),
        st.sampled_from(["ek", "broadcast_ek", "dedicated_ek", "key-2"]),
    ),
    st.integers(0, MAX_INVOCATION_COUNTER),
    max_size=8,
)


@settings(max_examples=40, deadline=None)
@given(marks, st.text(min_size=1, max_size=12))
def test_round_trip_of_any_marks(recorded: dict[tuple[bytes, str], int], meter_id: str) -> None:
    with tempfile.TemporaryDirectory() as state_dir:
        with PersistentReceiveGuard(state_dir, meter_id) as guard:
            for (title, key_id), counter in recorded.items():
                guard.accept(title, key_id, counter)
        loaded = PersistentReceiveGuard(state_dir, meter_id)
        assert {entry: loaded.last(*entry) for entry in recorded} == recorded
