"""Home Assistant MQTT discovery messages, for users without the dlms_edge integration.

One retained config message per published object, built from the meter's ``info``
document, on ``<discovery_prefix>/sensor/<node_id>/<object_id>/config`` (Home Assistant
MQTT integration, "Discovery messages"). Node and object ids may only contain
``[a-zA-Z0-9_-]``, so agent, meter and OBIS are folded into that alphabet.

The entity reads the contract's per-OBIS topic (``value_template: {{ value_json.value }}``)
and is available only when both the agent (``status``) and the meter
(``availability``) say ``online`` (``availability_mode: all``). Do not enable this and
the integration for the same meter: both would create entities.
"""

from __future__ import annotations

import re

from edge_agent import __version__
from edge_agent.mqtt.payloads import MeterInfo, ObjectInfo, to_json
from edge_agent.mqtt.topics import Topics

DEFAULT_PREFIX = "homeassistant"
_NOT_ID = re.compile(r"[^a-zA-Z0-9_-]")


def _fold(text: str) -> str:
    return _NOT_ID.sub("_", text)


def node_id(topics: Topics, meter: str) -> str:
    return _fold(f"dlms_edge_{topics.agent}_{meter}")


def config_topic(topics: Topics, meter: str, obis: str,
                 discovery_prefix: str = DEFAULT_PREFIX) -> str:
    return f"{discovery_prefix}/sensor/{node_id(topics, meter)}/{_fold(obis)}/config"


def _device(topics: Topics, info: MeterInfo) -> dict[str, object]:
    label = " ".join(part for part in (info.manufacturer, info.model) if part) or "Meter"
    device: dict[str, object] = {
        "identifiers": [node_id(topics, info.meter)],
        "name": f"{label} {info.meter}",
        "manufacturer": info.manufacturer,
        "model": info.model,
        "sw_version": info.firmware,
        "serial_number": info.serial,
    }
    return {key: value for key, value in device.items() if value is not None}


def _sensor(topics: Topics, info: MeterInfo, obj: ObjectInfo,
            device: dict[str, object]) -> dict[str, object]:
    state_topic = topics.value(info.meter, obj.obis)
    config: dict[str, object] = {
        "name": obj.name or obj.obis,
        "unique_id": f"{node_id(topics, info.meter)}_{_fold(obj.obis)}",
        "state_topic": state_topic,
        "value_template": "{{ value_json.value }}",
        "json_attributes_topic": state_topic,
        "json_attributes_template":
            "{{ {'obis': value_json.obis, 'ts': value_json.ts} | tojson }}",
        "availability": [
            {"topic": topics.status(), "payload_available": "online",
             "payload_not_available": "offline"},
            {"topic": topics.availability(info.meter), "payload_available": "online",
             "payload_not_available": "offline"},
        ],
        "availability_mode": "all",
        "device": device,
        "origin": {"name": "dlms-edge", "sw_version": __version__},
        "qos": 1,
    }
    optional = {"unit_of_measurement": obj.unit, "device_class": obj.device_class,
                "state_class": obj.state_class}
    config.update({key: value for key, value in optional.items() if value is not None})
    return config


def discovery_messages(topics: Topics, info: MeterInfo,
                       discovery_prefix: str = DEFAULT_PREFIX) -> list[tuple[str, bytes]]:
    """``(topic, payload)`` of every config message for the meter; publish retained."""
    device = _device(topics, info)
    return [(config_topic(topics, info.meter, obj.obis, discovery_prefix),
             to_json(_sensor(topics, info, obj, device)))
            for obj in info.objects]


def removal_messages(topics: Topics, meter: str, obis_codes: list[str],
                     discovery_prefix: str = DEFAULT_PREFIX) -> list[tuple[str, bytes]]:
    """Empty retained payloads that make Home Assistant delete those entities."""
    return [(config_topic(topics, meter, obis, discovery_prefix), b"") for obis in obis_codes]
