"""MQTT subscriptions of one meter and the latest state they carried.

The agent pushes; nothing is polled. One `DlmsEdgeMeter` per config entry subscribes to
`<prefix>/<agent>/status` and `<prefix>/<agent>/<meter>/+`, keeps the latest value of each
object, and calls back the entities that depend on what changed.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable

from homeassistant.components import mqtt
from homeassistant.config_entries import ConfigEntry
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback

from .const import CONF_AGENT, CONF_INFO, CONF_METER, CONF_PREFIX, STATUS_OFFLINE, STATUS_ONLINE
from .issues import async_update_health_issue
from .models import (
    OBIS_PATTERN,
    Health,
    InvalidPayload,
    MeterInfo,
    MeterObject,
    Reading,
    parse_discovery,
)

_LOGGER = logging.getLogger(__name__)

type DlmsEdgeConfigEntry = ConfigEntry[DlmsEdgeMeter]
type ReadingListener = Callable[[Reading], None]

_STATUS_VALUES = {STATUS_ONLINE: True, STATUS_OFFLINE: False}


def _parse_status(payload: str | bytes | bytearray) -> bool:
    try:
        return _STATUS_VALUES[payload if isinstance(payload, str) else payload.decode()]
    except (KeyError, UnicodeDecodeError):
        raise InvalidPayload(f"expected 'online' or 'offline', got {payload!r:.40}") from None


class DlmsEdgeMeter:
    """Subscriptions and latest state of one meter (the config entry's runtime data)."""

    def __init__(self, hass: HomeAssistant, entry: DlmsEdgeConfigEntry) -> None:
        self.hass = hass
        self.entry = entry
        self.prefix: str = entry.data[CONF_PREFIX]
        self.agent: str = entry.data[CONF_AGENT]
        self.meter: str = entry.data[CONF_METER]
        self.info = MeterInfo.from_dict(entry.data[CONF_INFO])
        self.objects: dict[str, MeterObject] = {obj.obis: obj for obj in self.info.objects}
        self.agent_online = False
        self.meter_online = False
        self.health: Health | None = None
        self.readings: dict[str, Reading] = {}
        # topic -> reason of the last malformed message, until a valid one arrives.
        self.malformed: dict[str, str] = {}
        self._reading_listeners: defaultdict[str, list[ReadingListener]] = defaultdict(list)
        self._status_listeners: list[CALLBACK_TYPE] = []
        self._unsubscribe: list[CALLBACK_TYPE] = []
        self._handlers: dict[str, Callable[[str, str | bytes | bytearray], None]] = {
            "info": self._on_info,
            "availability": self._on_availability,
            "health": self._on_health,
        }

    @property
    def base_topic(self) -> str:
        return f"{self.prefix}/{self.agent}/{self.meter}"

    @property
    def available(self) -> bool:
        """Values are current only while both the agent and the meter are online."""
        return self.agent_online and self.meter_online

    async def async_start(self) -> None:
        """Subscribe; the broker replays the retained state right away.

        Payloads arrive as bytes (`encoding=None`): decoding errors are then ours to
        report, once per topic, instead of a warning per message from MQTT.
        """
        self._unsubscribe = [
            await mqtt.async_subscribe(
                self.hass,
                f"{self.prefix}/{self.agent}/status",
                self._on_agent_status,
                qos=1,
                encoding=None,
            ),
            # `+` matches one level: info, availability, health, state and each OBIS
            # code, but not the non-retained `profile/<obis>` rows.
            await mqtt.async_subscribe(
                self.hass, f"{self.base_topic}/+", self._on_meter_message, qos=1, encoding=None
            ),
        ]

    @callback
    def async_stop(self) -> None:
        while self._unsubscribe:
            self._unsubscribe.pop()()

    @callback
    def async_add_status_listener(self, listener: CALLBACK_TYPE) -> CALLBACK_TYPE:
        """Call `listener` when availability or health changes; return the remover."""
        self._status_listeners.append(listener)
        return lambda: self._status_listeners.remove(listener)

    @callback
    def async_add_reading_listener(self, obis: str, listener: ReadingListener) -> CALLBACK_TYPE:
        """Call `listener` with each new reading of `obis`; return the remover.

        A listener raises InvalidPayload when it cannot use the reading (a text for a
        numeric sensor); the message is then reported like any malformed payload.
        """
        self._reading_listeners[obis].append(listener)
        return lambda: self._reading_listeners[obis].remove(listener)

    @callback
    def report_malformed(self, topic: str, reason: str) -> None:
        """Log a malformed message once per topic until the topic recovers."""
        if topic not in self.malformed:
            _LOGGER.warning(
                "Ignoring malformed message on %s: %s (further ones on this topic are "
                "ignored silently until a valid message arrives)",
                topic,
                reason,
            )
        self.malformed[topic] = reason

    @callback
    def _report_valid(self, topic: str) -> None:
        if self.malformed.pop(topic, None) is not None:
            _LOGGER.info("Valid messages again on %s", topic)

    @callback
    def _notify_status(self) -> None:
        for listener in list(self._status_listeners):
            listener()

    @callback
    def _on_agent_status(self, msg: mqtt.ReceiveMessage) -> None:
        try:
            online = _parse_status(msg.payload)
        except InvalidPayload as err:
            self.report_malformed(msg.topic, str(err))
            return
        self._report_valid(msg.topic)
        if online != self.agent_online:
            self.agent_online = online
            self._notify_status()

    @callback
    def _on_meter_message(self, msg: mqtt.ReceiveMessage) -> None:
        leaf = msg.topic.rpartition("/")[2]
        handler = self._handlers.get(leaf)
        if handler is None:
            if not OBIS_PATTERN.match(leaf):
                # `state` repeats the per-object topics; other leaves are for newer
                # integrations. Neither is an error.
                return
            handler = self._on_reading
        try:
            handler(leaf, msg.payload)
        except InvalidPayload as err:
            self.report_malformed(msg.topic, str(err))
            return
        self._report_valid(msg.topic)

    def _on_info(self, _leaf: str, payload: str | bytes | bytearray) -> None:
        _prefix, info = parse_discovery(f"{self.base_topic}/info", payload)
        if info.unique_id != self.info.unique_id:
            raise InvalidPayload(
                "it announces another meter than this config entry; reconfigure the entry "
                "or give each meter its own id in the agent configuration"
            )
        if info != self.info:
            # New firmware, objects or agent version: store it, the update listener
            # reloads the entry so that devices and entities follow.
            _LOGGER.debug("Meter %s announced new info; reloading", self.meter)
            self.hass.config_entries.async_update_entry(
                self.entry, data={**self.entry.data, CONF_INFO: info.as_dict()}
            )

    def _on_availability(self, _leaf: str, payload: str | bytes | bytearray) -> None:
        online = _parse_status(payload)
        if online != self.meter_online:
            self.meter_online = online
            self._notify_status()

    def _on_health(self, _leaf: str, payload: str | bytes | bytearray) -> None:
        health = Health.from_payload(payload)
        if health != self.health:
            self.health = health
            async_update_health_issue(self.hass, self.entry, health)
            self._notify_status()

    def _on_reading(self, obis: str, payload: str | bytes | bytearray) -> None:
        reading = Reading.from_payload(payload)
        announced = self.objects.get(obis)
        if announced and reading.unit and announced.unit and reading.unit != announced.unit:
            # A scaler/unit change without a new info: showing it would mix units.
            raise InvalidPayload(
                f"unit {reading.unit!r} differs from {announced.unit!r} announced in info"
            )
        for listener in list(self._reading_listeners.get(obis, ())):
            listener(reading)
        self.readings[obis] = reading


async def async_scan_meters(
    hass: HomeAssistant, prefix: str, seconds: float
) -> dict[str, MeterInfo]:
    """Listen `seconds` for retained `<prefix>/+/+/info`; return valid infos by unique id."""
    found: dict[str, MeterInfo] = {}

    @callback
    def _on_info(msg: mqtt.ReceiveMessage) -> None:
        try:
            _prefix, info = parse_discovery(msg.topic, msg.payload)
        except InvalidPayload as err:
            _LOGGER.debug("Skipping %s while scanning: %s", msg.topic, err)
            return
        found[info.unique_id] = info

    unsubscribe = await mqtt.async_subscribe(
        hass, f"{prefix}/+/+/info", _on_info, qos=1, encoding=None
    )
    try:
        await asyncio.sleep(seconds)
    finally:
        unsubscribe()
    return found


def entry_data(prefix: str, info: MeterInfo) -> dict[str, object]:
    """Config entry data for a meter seen under `prefix`."""
    return {
        CONF_PREFIX: prefix,
        CONF_AGENT: info.agent,
        CONF_METER: info.meter,
        CONF_INFO: info.as_dict(),
    }
