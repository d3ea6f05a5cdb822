"""A broker without persistence comes back empty: the agent publishes each meter's retained
documents (info, health, availability, discovery) again on every reconnection, so a
subscriber that arrives afterwards finds the meter before its next poll."""

from __future__ import annotations

import pytest
from daemon_harness import WAIT, Subscriber, make_agent, tcp_meter, wait_until, write_config

pytestmark = [pytest.mark.mosquitto, pytest.mark.timeout(60)]

ENERGY = "1.0.1.8.0.255"


def retained_topics(broker, topic_filter: str) -> set[str]:
    watcher = Subscriber(broker.host, broker.port, [topic_filter])
    wait_until(lambda: False, 1.0)  # retained messages arrive right after SUBACK
    watcher.close()
    return {m.topic for m in watcher.messages if m.retain and m.payload}


def test_retained_documents_come_back_after_a_broker_restart(tmp_path, mosquitto) -> None:
    server, _, port = tcp_meter(seed=3)
    config = write_config(tmp_path, mosquitto, f"""\
        - id: m1
          transport: {{tcp: "127.0.0.1:{port}"}}
          poll: [{{name: slow, interval: 3600, objects: [{ENERGY}]}}]
        """)
    config.write_text(config.read_text().replace("keepalive: 5}",
                                                 "keepalive: 5, discovery: true}"))
    agent = make_agent(config).start()
    try:
        documents = {"dlms/pi/m1/info", "dlms/pi/m1/health", "dlms/pi/m1/availability",
                     "homeassistant/sensor/dlms_edge_pi_m1/1_0_1_8_0_255/config"}
        assert wait_until(lambda: documents <= retained_topics(mosquitto, "#"), WAIT)
        mosquitto.restart()  # no persistence: every retained message is gone
        assert wait_until(lambda: agent.publisher.connected, WAIT)
        # The hourly poll is far off: only the reconnection can bring them back.
        assert wait_until(lambda: documents <= retained_topics(mosquitto, "#"), WAIT)
        assert f"dlms/pi/m1/{ENERGY}" not in retained_topics(mosquitto, "#")
    finally:
        agent.stop()
        server.stop()
