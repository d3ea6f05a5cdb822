"""Crash safety of the durable queue: a publisher process killed with SIGKILL again and
again while it sends leaves the SQLite queue intact (integrity check after every kill),
loses nothing (every message reaches a subscriber, the first copies in order), and repeats
only what was in flight at a kill (QoS 1's window). DLMS_EDGE_SOAK=1 kills more often."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edge_agent.mqtt.payloads import value_payload
from edge_agent.mqtt.publisher import DEFAULT_WINDOW
from edge_agent.mqtt.queue import OfflineQueue

pytestmark = [pytest.mark.mosquitto, pytest.mark.timeout(240)]

HERE = Path(__file__).parent
TOPIC = "dlms/proc/m1/1.0.1.8.0.255"
MESSAGES = 20_000
KILLS = 60 if os.environ.get("DLMS_EDGE_SOAK") == "1" else 10


def start_publisher(broker, state_dir: Path) -> subprocess.Popen[str]:
    """publisher_process.py draining the queue (no new messages), until killed."""
    return subprocess.Popen(
        [sys.executable, str(HERE / "publisher_process.py"), str(broker.port),
         str(state_dir), "0", "0", "hang"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(HERE.parents[1])})


def integrity(queue_file: Path) -> str:
    with sqlite3.connect(queue_file) as db:
        return db.execute("PRAGMA integrity_check").fetchone()[0]


def test_sigkill_while_publishing_loses_nothing(mosquitto, subscribe, tmp_path) -> None:
    queue = OfflineQueue.in_state_dir(tmp_path, max_messages=MESSAGES + 10)
    queue.append_many([(TOPIC, value_payload(seq, "Wh", 1_700_000_000 + seq, "1.0.1.8.0.255",
                                             "energy"), 1, False) for seq in range(MESSAGES)])
    queue_file = queue.path
    queue.close()
    recorder = subscribe([TOPIC])
    rnd = random.Random(9)
    kills = 0
    left = MESSAGES
    while kills < KILLS and left:
        process = start_publisher(mosquitto, tmp_path)
        assert process.stdout.readline().strip() == "queued"
        time.sleep(rnd.uniform(0.02, 0.2))  # mid-stream: the window is full of unacked
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        kills += 1
        assert integrity(queue_file) == "ok"
        reopened = OfflineQueue(queue_file)
        left = len(reopened)
        reopened.close()
    assert kills == KILLS, "the queue drained before every kill: queue more messages"
    for _ in range(10):  # drain what is left; close() waits up to 10 s per run
        final = subprocess.run(
            [sys.executable, str(HERE / "publisher_process.py"), str(mosquitto.port),
             str(tmp_path), "0", "0", "close"], capture_output=True, text=True, timeout=60,
            env={**os.environ, "PYTHONPATH": str(HERE.parents[1])}, check=False)
        if final.stdout.split() == ["queued", "closed", "True"]:
            break
    assert final.stdout.split() == ["queued", "closed", "True"], final.stderr
    # Every message is acknowledged by the broker now; wait until delivery settles.
    assert recorder.wait_for(lambda ms: len(ms) >= MESSAGES, 60)
    settled = -1
    while settled != len(recorder.messages):
        settled = len(recorder.messages)
        time.sleep(0.5)
    values = [json.loads(m.payload)["value"] for m in recorder.messages]
    first_copies = list(dict.fromkeys(values))
    assert first_copies == list(range(MESSAGES))  # nothing lost, in order
    duplicates = len(values) - MESSAGES
    assert duplicates <= kills * DEFAULT_WINDOW, (duplicates, kills)
    assert integrity(queue_file) == "ok" and len(OfflineQueue(queue_file)) == 0
