"""Clearing a meter from the broker: the retained topics it left, from its ``info``.

A meter taken out of the agent's config leaves its retained messages behind (``info``,
``availability``, ``health``, ``state``, ``clock``, one value topic per object, and the Home
Assistant discovery configs when discovery is on), and subscribers would show it forever.
MQTT deletes a retained message when an empty retained message is published on its topic
(MQTT 3.1.1 3.3.1.3, MQTT 5 3.3.1.3). The meter's retained ``info`` lists every object it
published, so the topics to clear follow from it; ``info`` itself is cleared last, so an
interrupted clean-up is finished by the next one.

Used by ``dlms-edge run`` (meters the broker holds that the config no longer has) and by
``dlms-edge forget METER``.
"""

from __future__ import annotations

import json

from edge_agent.mqtt.discovery import removal_messages
from edge_agent.mqtt.topics import Topics

Message = tuple[str, bytes, int, bool]  # topic, payload, QoS, retain
CLEARED = b""


def info_objects(info_payload: bytes) -> list[str]:
    """OBIS codes (dotted) of the objects a retained ``info`` document lists; [] for an
    unreadable document (then only the fixed topics are cleared)."""
    try:
        document = json.loads(info_payload)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return []
    objects = document.get("objects") if isinstance(document, dict) else None
    if not isinstance(objects, list):
        return []
    return [item["obis"] for item in objects
            if isinstance(item, dict) and isinstance(item.get("obis"), str)]


def forget_messages(topics: Topics, meter: str, info_payload: bytes,
                    discovery_prefix: str | None = None) -> list[Message]:
    """Empty retained messages for every retained topic of ``meter``, ``info`` last.

    ``discovery_prefix``: also remove the Home Assistant discovery configs published
    under it (None when the agent does not publish discovery)."""
    obis_codes = info_objects(info_payload)
    topics_to_clear = [topics.value(meter, obis) for obis in obis_codes]
    if discovery_prefix is not None:
        topics_to_clear += [topic for topic, _ in
                            removal_messages(topics, meter, obis_codes, discovery_prefix)]
    topics_to_clear += [topics.state(meter), topics.clock(meter), topics.health(meter),
                        topics.availability(meter), topics.info(meter)]
    return [(topic, CLEARED, 1, True) for topic in dict.fromkeys(topics_to_clear)]


