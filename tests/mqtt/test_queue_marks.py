"""Marks of the offline queue: notes committed in the transaction of their messages."""

from __future__ import annotations

import sqlite3

import pytest

from edge_agent.mqtt.queue import OfflineQueue


def test_a_mark_is_stored_with_its_messages_and_survives_a_reopen(tmp_path) -> None:
    queue = OfflineQueue(tmp_path / "q.sqlite3")
    assert queue.mark("profile:t") is None
    queue.append_many([("t", b"1", 1, False), ("t", b"2", 1, False)], {"profile:t": "A"})
    queue.append_many([("t", b"3", 1, False)], {"profile:t": "B"})
    queue.close()
    queue = OfflineQueue(tmp_path / "q.sqlite3")
    assert queue.mark("profile:t") == "B"
    # The mark outlives its messages (acknowledged and deleted): it says what was queued.
    queue.delete([m.id for m in queue.peek(10)])
    assert len(queue) == 0 and queue.mark("profile:t") == "B"
    queue.close()


def test_a_failed_append_keeps_neither_the_messages_nor_the_mark(tmp_path) -> None:
    queue = OfflineQueue(tmp_path / "q.sqlite3")
    queue.append_many([("t", b"1", 1, False)], {"profile:t": "A"})
    # The messages are inserted, then the mark fails (a value SQLite cannot bind): the
    # transaction is rolled back as a whole.
    with pytest.raises(sqlite3.Error):
        queue.append_many([("t", b"2", 1, False)], {"profile:t": ["B"]})
    assert queue.mark("profile:t") == "A"
    assert [m.payload for m in queue.peek(10)] == [b"1"]
    queue.close()
