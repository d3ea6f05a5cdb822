"""dlms-edge forget: clear a meter's retained topics from the broker (it left the config)."""

from __future__ import annotations

import argparse
import json
import threading
import time

from edge_agent.agent.config import load_config
from edge_agent.dlms.errors import ConfigError, TransportError
from edge_agent.mqtt.forget import Message, forget_messages, info_objects

EXAMPLES = """\
  dlms-edge forget old-meter --config /etc/dlms-edge/config.yaml
  dlms-edge forget 1SAG1100000292 1SAG1100000293 --config config.yaml --json
  (the broker, agent id and prefix come from the config; 'dlms-edge run' clears meters
   that left the config by itself at start-up: forget is for when the agent is gone too)"""

DEFAULT_WAIT = 3.0  # seconds to wait for the meters' retained info after subscribing


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("meters", metavar="METER", nargs="+",
                        help="meter id as in the topics (dlms/<agent>/<METER>/...)")
    parser.add_argument("--config", required=True, metavar="FILE",
                        help="the agent's config file: broker, agent id, topic prefix")
    parser.add_argument("--wait", type=float, default=DEFAULT_WAIT, metavar="SECONDS",
                        help=f"how long to wait for each meter's retained info "
                             f"(default {DEFAULT_WAIT:g})")
    parser.add_argument("--force", action="store_true",
                        help="clear a meter that is still in the config (the agent "
                             "publishes it again at its next poll)")
    parser.add_argument("--json", action="store_true", help="print what was cleared as JSON")


def run(args: argparse.Namespace) -> int:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from edge_agent.mqtt.publisher import authenticate, client_id_for
    from edge_agent.mqtt.topics import Topics

    config = load_config(args.config)
    configured = {m.id for m in config.meters if m.id is not None}
    still = [meter for meter in args.meters if meter in configured]
    if still and not args.force:
        raise ConfigError(
            f"{', '.join(still)} still in {args.config}: remove it from meters: first (the "
            "agent would publish it again at its next poll), or give --force")
    settings = config.mqtt
    topics = Topics(settings.prefix, config.agent_id)
    for meter in args.meters:
        topics.meter(meter)  # ConfigError for an id that cannot be a topic level

    infos: dict[str, bytes] = {}
    arrived = threading.Condition()

    def on_message(client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        with arrived:
            infos[message.topic.split("/")[-2]] = message.payload
            arrived.notify_all()

    client = mqtt.Client(CallbackAPIVersion.VERSION2,
                         client_id=f"{client_id_for(config.agent_id)}-forget",
                         protocol=mqtt.MQTTv5 if settings.protocol == "5" else mqtt.MQTTv311)
    authenticate(client, settings)
    client.on_message = on_message
    try:
        client.connect(settings.host, settings.port, settings.keepalive)
    except OSError as error:
        raise TransportError(f"cannot reach the MQTT broker {settings.host}:{settings.port}: "
                             f"{error.strerror or error}; check mqtt.host/port") from None
    client.loop_start()
    try:
        for meter in args.meters:
            client.subscribe(topics.info(meter), qos=1)
        deadline = time.monotonic() + args.wait
        with arrived:
            arrived.wait_for(lambda: set(infos) >= set(args.meters),
                             timeout=max(0.0, deadline - time.monotonic()))
        client.unsubscribe([topics.info(meter) for meter in args.meters])
        discovery = settings.discovery_prefix if settings.discovery else None
        report = []
        for meter in args.meters:
            info = infos.get(meter, b"")
            messages = forget_messages(topics, meter, info, discovery)
            _publish(client, messages, settings.host, settings.port)
            report.append({"meter": meter, "info_found": bool(info),
                           "objects": len(info_objects(info)),
                           "cleared": [topic for topic, *_ in messages]})
    finally:
        client.disconnect()
        client.loop_stop()
    _print(report, args.json)
    return 0


def _publish(client: object, messages: list[Message], host: str, port: int) -> None:
    import paho.mqtt.client as mqtt

    assert isinstance(client, mqtt.Client)
    for topic, payload, qos, retain in messages:
        info = client.publish(topic, payload, qos=qos, retain=retain)
        try:
            info.wait_for_publish(timeout=10.0)
        except (RuntimeError, ValueError):
            pass
        if not info.is_published():
            raise TransportError(f"the MQTT broker {host}:{port} did not acknowledge "
                                 f"clearing {topic}; run forget again")


def _print(report: list[dict[str, object]], as_json: bool) -> None:
    if as_json:
        print(json.dumps({"meters": report}, indent=2))
        return
    for entry in report:
        cleared = entry["cleared"]
        assert isinstance(cleared, list)
        if entry["info_found"]:
            print(f"meter {entry['meter']}: cleared {len(cleared)} retained topic(s) "
                  f"({entry['objects']} object(s) in its info)")
        else:
            print(f"meter {entry['meter']}: the broker holds no info for it; cleared "
                  f"info, availability, health and state anyway")
