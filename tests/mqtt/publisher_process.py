"""A publisher in its own process, for the Last Will and restart tests.

    python publisher_process.py PORT STATE_DIR FIRST COUNT MODE

publishes readings FIRST..FIRST+COUNT-1 on dlms/proc/m1/1.0.1.8.0.255, prints
``queued`` and then, by MODE: ``hang`` (wait to be killed), ``close`` (flush up to
10 s, publish offline, exit), ``exit`` (give up after 0.3 s, leaving the queue).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from edge_agent.mqtt.payloads import value_payload
from edge_agent.mqtt.publisher import Publisher
from edge_agent.mqtt.queue import OfflineQueue
from edge_agent.mqtt.settings import MqttSettings

OBIS = "1.0.1.8.0.255"


def main() -> None:
    port, state_dir, first, count, mode = sys.argv[1:6]
    settings = MqttSettings(host="127.0.0.1", port=int(port), reconnect_min=0.1,
                            reconnect_max=0.5, keepalive=5)
    publisher = Publisher(settings, "proc", OfflineQueue.in_state_dir(Path(state_dir)))
    publisher.start()
    topic = publisher.topics.value("m1", OBIS)
    for seq in range(int(first), int(first) + int(count)):
        publisher.publish(topic, value_payload(seq, "Wh", time.time(), OBIS, "energy"))
    print("queued", flush=True)
    if mode == "hang":
        print("ready" if publisher.wait_idle(10.0) else "not-delivered", flush=True)
        time.sleep(30)
    print("closed", publisher.close(timeout=10.0 if mode == "close" else 0.3), flush=True)


if __name__ == "__main__":
    main()
