"""Home Assistant MQTT discovery messages built from the info document."""

from __future__ import annotations

import json

from edge_agent.mqtt.discovery import discovery_messages, removal_messages
from edge_agent.mqtt.payloads import MeterInfo, ObjectInfo
from edge_agent.mqtt.topics import Topics

TOPICS = Topics("dlms", "pi.kitchen")
INFO = MeterInfo(
    "pi.kitchen", "t210d", "1SAG67929081", "Sagemcom", "T-210D", "1.2.3", None, "0.1.0",
    (ObjectInfo("1.0.1.8.0.255", "Active energy import (+A)", 3, "Wh", "energy",
                "total_increasing"),
     ObjectInfo("0.0.96.1.0.255", "Serial number", 1, None)))


def test_one_retained_config_per_object() -> None:
    messages = discovery_messages(TOPICS, INFO)
    assert [topic for topic, _ in messages] == [
        "homeassistant/sensor/dlms_edge_pi_kitchen_t210d/1_0_1_8_0_255/config",
        "homeassistant/sensor/dlms_edge_pi_kitchen_t210d/0_0_96_1_0_255/config"]
    energy = json.loads(messages[0][1])
    assert energy == {
        "name": "Active energy import (+A)",
        "unique_id": "dlms_edge_pi_kitchen_t210d_1_0_1_8_0_255",
        "state_topic": "dlms/pi.kitchen/t210d/1.0.1.8.0.255",
        "value_template": "{{ value_json.value }}",
        "json_attributes_topic": "dlms/pi.kitchen/t210d/1.0.1.8.0.255",
        "json_attributes_template": "{{ {'obis': value_json.obis, 'ts': value_json.ts} "
                                    "| tojson }}",
        "unit_of_measurement": "Wh",
        "device_class": "energy",
        "state_class": "total_increasing",
        "availability": [
            {"topic": "dlms/pi.kitchen/status", "payload_available": "online",
             "payload_not_available": "offline"},
            {"topic": "dlms/pi.kitchen/t210d/availability", "payload_available": "online",
             "payload_not_available": "offline"}],
        "availability_mode": "all",
        "device": {"identifiers": ["dlms_edge_pi_kitchen_t210d"],
                   "name": "Sagemcom T-210D t210d", "manufacturer": "Sagemcom",
                   "model": "T-210D", "sw_version": "1.2.3",
                   "serial_number": "1SAG67929081"},
        "origin": {"name": "dlms-edge", "sw_version": "0.1.0"},
        "qos": 1,
    }
    serial = json.loads(messages[1][1])
    for absent in ("unit_of_measurement", "device_class", "state_class"):
        assert absent not in serial


def test_custom_prefix_and_removal() -> None:
    (topic, _), = discovery_messages(TOPICS, MeterInfo(
        "pi", "m", None, None, None, None, None, "0.1.0",
        (ObjectInfo("1.0.1.8.0.255", None, 3, "Wh"),)), "ha")
    assert topic.startswith("ha/sensor/")
    assert removal_messages(TOPICS, "t210d", ["1.0.1.8.0.255"]) == [
        ("homeassistant/sensor/dlms_edge_pi_kitchen_t210d/1_0_1_8_0_255/config", b"")]


def test_published_retained_through_the_publisher(mosquitto, subscribe, tmp_path) -> None:
    from edge_agent.mqtt.publisher import Publisher
    from edge_agent.mqtt.queue import OfflineQueue
    from edge_agent.mqtt.settings import MqttSettings

    publisher = Publisher(MqttSettings(host="127.0.0.1", port=mosquitto.port),
                          "pi.kitchen", OfflineQueue.in_state_dir(tmp_path)).start()
    try:
        messages = discovery_messages(TOPICS, INFO)
        publisher.publish_many((topic, payload, 1, True) for topic, payload in messages)
        assert publisher.wait_idle(10)
    finally:
        publisher.close(timeout=5)
    late = subscribe(["homeassistant/#"])
    assert late.wait_for(lambda ms: len(ms) >= 2)
    assert sorted((m.topic, m.payload, m.retain) for m in late.messages) == sorted(
        (topic, payload, True) for topic, payload in messages)
