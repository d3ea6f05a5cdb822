"""Offline queue: order, persistence, bound and drop policy, thread safety."""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

import pytest

from edge_agent.dlms.errors import ConfigError
from edge_agent.mqtt.queue import OfflineQueue


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "mqtt-queue.sqlite3"


def test_fifo_peek_delete(path: Path) -> None:
    q = OfflineQueue(path)
    ids = [q.append(f"t/{i}", b"%d" % i, 1, i % 2 == 0) for i in range(5)]
    assert ids == sorted(ids) and len(set(ids)) == 5
    batch = q.peek(3)
    assert [m.topic for m in batch] == ["t/0", "t/1", "t/2"]
    assert [m.retain for m in batch] == [True, False, True]
    assert q.peek(10, after=ids[2])[0].payload == b"3"
    q.delete([ids[0], ids[2], 999_999])  # unknown ids are ignored
    assert [m.topic for m in q.peek(10)] == ["t/1", "t/3", "t/4"]
    assert len(q) == 3 and q.size_bytes == 3 * (3 + 1)
    q.close()


def test_a_failed_delete_counts_nothing_and_its_retry_counts_once(path: Path) -> None:
    # The publisher keeps acknowledged ids whose delete failed and deletes them again:
    # a delete rolled back half-way must leave the count and size as they were.
    q = OfflineQueue(path)
    ids = q.append_many([("t", b"x", 1, False)] * 800)
    with sqlite3.connect(path) as other:  # the second chunk of 500 fails
        other.execute(f"CREATE TRIGGER refuse BEFORE DELETE ON message WHEN OLD.id = {ids[700]}"
                      " BEGIN SELECT RAISE(ABORT, 'disk trouble'); END")
    with pytest.raises(sqlite3.DatabaseError, match="disk trouble"):
        q.delete(ids)
    assert len(q) == 800 and q.size_bytes == 800 * 2 and len(q.peek(1000)) == 800
    with sqlite3.connect(path) as other:
        other.execute("DROP TRIGGER refuse")
    q.delete(ids[:600])
    assert len(q) == 200 and q.size_bytes == 200 * 2 and len(q.peek(1000)) == 200
    q.close()


def test_wal_and_survives_restart(path: Path) -> None:
    q = OfflineQueue(path)
    first = q.append_many([("a", b"1", 1, True), ("b", b"2", 1, False)])
    q.delete([first[1]])
    q.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    q = OfflineQueue(path)
    assert [(m.topic, m.payload) for m in q.peek()] == [("a", b"1")]
    assert len(q) == 1 and q.size_bytes == 2
    # AUTOINCREMENT: a deleted newest id is never handed out again, so order holds.
    assert q.append("c", b"3") > first[1]
    q.close()


def test_drop_policy_keeps_newest_retained_state(path: Path, caplog) -> None:
    q = OfflineQueue(path, max_messages=5)
    q.append("m/state", b"old", 1, True)        # superseded below: droppable
    q.append("m/profile", b"row1", 1, False)    # not retained: droppable
    q.append("m/avail", b"online", 1, True)     # newest of its topic: kept
    q.append("m/state", b"new", 1, True)
    q.append("m/profile", b"row2", 1, False)
    with caplog.at_level(logging.WARNING, logger="edge_agent.mqtt.queue"):
        q.append("m/x", b"1", 1, True)
        q.append("m/x", b"2", 1, True)
    assert [(m.topic, m.payload) for m in q.peek()] == [
        ("m/avail", b"online"), ("m/state", b"new"), ("m/profile", b"row2"),
        ("m/x", b"1"), ("m/x", b"2")]
    assert q.dropped_total == 2
    # One line for the first drop; the second falls in the rate-limit window.
    lines = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(lines) == 1 and "dropped the 1 oldest" in lines[0].getMessage()
    with caplog.at_level(logging.WARNING, logger="edge_agent.mqtt.queue"):
        q.close()  # reports the drops not yet logged
    assert "dropped the 1 oldest message(s) since the last report, 2 in total" in caplog.text


def test_drop_oldest_when_everything_is_current_state(path: Path) -> None:
    q = OfflineQueue(path, max_messages=3)
    for topic in ("a", "b", "c", "d"):
        q.append(topic, b"v", 1, True)
    assert [m.topic for m in q.peek()] == ["b", "c", "d"]


def test_byte_bound(path: Path) -> None:
    q = OfflineQueue(path, max_messages=1000, max_bytes=100)
    for _ in range(10):
        q.append("t", bytes(20), 1, False)  # 21 bytes each
    assert q.size_bytes <= 100 and len(q) == 4
    assert q.dropped_total == 6


def test_bad_bounds_and_unwritable_dir(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="positive"):
        OfflineQueue(tmp_path / "q", max_messages=0)
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(ConfigError, match="state_dir"):
        OfflineQueue(blocker / "q.sqlite3")


def test_threads_append_while_consumer_deletes(path: Path) -> None:
    q = OfflineQueue(path)
    producers, per_thread = 4, 250
    consumed: list[bytes] = []
    done = threading.Event()

    def produce(n: int) -> None:
        for i in range(per_thread):
            q.append(f"p/{n}", b"%d:%d" % (n, i), 1, True)

    def consume() -> None:
        last = 0
        while not (done.is_set() and len(q) == 0):
            batch = q.peek(50, after=last)
            if batch:
                last = batch[-1].id
                consumed.extend(m.payload for m in batch)
                q.delete([m.id for m in batch])

    threads = [threading.Thread(target=produce, args=(n,)) for n in range(producers)]
    consumer = threading.Thread(target=consume)
    consumer.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    done.set()
    consumer.join(timeout=10)
    assert not consumer.is_alive()
    assert len(consumed) == producers * per_thread == len(set(consumed))
    for n in range(producers):  # each producer's messages stay in its order
        mine = [int(p.split(b":")[1]) for p in consumed if p.startswith(b"%d:" % n)]
        assert mine == list(range(per_thread))
    assert len(q) == 0 and q.size_bytes == 0
