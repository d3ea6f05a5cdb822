"""MQTT subscriptions of one agent and its meters, and the latest state they carried.

The agent pushes; nothing is polled. One `DlmsEdgeAgent` per config entry subscribes to
`<prefix>/<agent>/status` and `<prefix>/<agent>/+/+`, follows the meters the agent
announces (a new `info` adds a meter, an empty retained `info` says it is gone), keeps
the latest value of each object, and calls back the entities that depend on what
changed. Home Assistant's own MQTT connection counts too: without it nothing is current.

Each meter's `clock` (retained) and `event` messages (one per event of its logs, not
retained) arrive on the same subscription. Events are judged against what the
integration has seen (`EventMarkStore`, kept in Home Assistant's storage): a duplicate
is dropped, every other event is fired on the bus as `dlms_edge_meter_event` (the
logbook shows it at the meter's time), and only an event from after the integration
began watching the meter (its first clock or event message) reaches the meter's event
entity (docs/home-assistant.md).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Mapping
from typing import Any

from homeassistant.components import mqtt
from homeassistant.config_entries import ConfigEntry
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.event import async_call_later
from homeassistant.util import dt as dt_util

from .const import (
    AGENT_OFFLINE_ISSUE_SECONDS,
    CONF_AGENT,
    CONF_INFO,
    CONF_METERS,
    CONF_NAME,
    CONF_PREFIX,
    DOMAIN,
    EVENT_METER_EVENT,
    STATUS_OFFLINE,
    STATUS_ONLINE,
)
from .event_marks import EventMarkStore, event_mark_store
from .issues import (
    async_delete_agent_offline_issue,
    async_delete_meter_removed_issue,
    async_raise_agent_offline_issue,
    async_raise_meter_removed_issue,
    async_update_health_issue,
)
from .models import (
    OBIS_PATTERN,
    ClockReading,
    Health,
    InvalidPayload,
    MeterEvent,
    MeterInfo,
    MeterTopic,
    Reading,
    Verdict,
    parse_discovery,
)

_LOGGER = logging.getLogger(__name__)

type DlmsEdgeConfigEntry = ConfigEntry[DlmsEdgeAgent]
type ReadingListener = Callable[[Reading | None], None]
type MeterListener = Callable[[DlmsEdgeMeter], None]
type EventListener = Callable[[MeterEvent], None]
type Payload = str | bytes | bytearray

_STATUS_VALUES = {STATUS_ONLINE: True, STATUS_OFFLINE: False}
# Messages of a meter whose `info` has not arrived yet (the broker replays retained
# topics in no particular order): kept per meter id until it does, at most this many.
_PENDING_PER_METER = 64
# Device ID 2 (Blue Book 4.4.4, 0.0.96.1.1.255): where meters such as the T-210D name
# their type when the agent's info has no model.
MODEL_OBIS = "0.0.96.1.1.255"
_MODEL_MAX_LENGTH = 32
# The broker replays every retained `info` right after subscribing. A stored meter whose
# info has not come this long after the agent was seen online was cleared while Home
# Assistant was not listening (docs/mqtt-contract.md, a meter that leaves the config).
ABSENT_METER_SECONDS = 120
# New events that arrived while no event entity listened (the entity is being added
# after the meter's first clock or event message), handed to it when it is added.
_UNCLAIMED_EVENTS = 16
# Unique id suffix of a meter's event entity (event.py), for the logbook's link to it.
EVENTS_KEY = "events"


def _parse_status(payload: Payload) -> bool:
    try:
        return _STATUS_VALUES[payload if isinstance(payload, str) else payload.decode()]
    except (KeyError, UnicodeDecodeError):
        raise InvalidPayload(f"expected 'online' or 'offline', got {payload!r:.40}") from None


def meter_name(info: MeterInfo, taken: set[str]) -> str:
    """Device name of a new meter: its title, with the meter id when another has it."""
    return info.title if info.title not in taken else f"{info.title} {info.meter}"


class DlmsEdgeMeter:
    """Latest state of one meter of the agent."""

    def __init__(self, agent: DlmsEdgeAgent, key: str, info: MeterInfo, name: str) -> None:
        self.agent = agent
        # Identity for devices and unique ids: the meter's unique_id when it first
        # appeared, kept when a serial number arrives later (docs/home-assistant.md).
        self.key = key
        self.info = info
        self.name = name
        self.meter_online = False
        self.gone = False
        self.health: Health | None = None
        self.readings: dict[str, Reading] = {}
        # The type the meter reports in Device ID 2, for a device model the info lacks.
        self.reported_model: str | None = None
        # The latest `clock` message (None: none yet, or cleared by the agent).
        self.clock: ClockReading | None = None
        # What the agent is seen reading of this meter ("clock", "event": a message of
        # that leaf arrived). Each one seen first adds its entities: the drift sensor with
        # the clock, the event entity with either.
        self.reads: set[str] = set()
        self.last_event: MeterEvent | None = None
        self.event_counts: Counter[Verdict] = Counter()
        self.unclaimed_events: deque[MeterEvent] = deque(maxlen=_UNCLAIMED_EVENTS)
        self._reading_listeners: defaultdict[str, list[ReadingListener]] = defaultdict(list)
        self._status_listeners: list[CALLBACK_TYPE] = []
        self._clock_listeners: list[CALLBACK_TYPE] = []
        self._event_listeners: list[EventListener] = []

    @property
    def base_topic(self) -> str:
        return f"{self.agent.prefix}/{self.agent.agent}/{self.info.meter}"

    @property
    def model(self) -> str | None:
        return self.info.model or self.reported_model

    @property
    def available(self) -> bool:
        """Values are current only while HA's broker link, the agent and the meter are up."""
        return self.agent.online and self.meter_online and not self.gone

    @callback
    def async_add_status_listener(self, listener: CALLBACK_TYPE) -> CALLBACK_TYPE:
        """Call `listener` when availability or health changes; return the remover."""
        self._status_listeners.append(listener)
        return lambda: self._status_listeners.remove(listener)

    @callback
    def async_add_reading_listener(self, obis: str, listener: ReadingListener) -> CALLBACK_TYPE:
        """Call `listener` with each new reading of `obis` (None: cleared); return the remover.

        A listener raises InvalidPayload when it cannot use the reading (a text for a
        numeric sensor); the message is then reported like any malformed payload.
        """
        self._reading_listeners[obis].append(listener)
        return lambda: self._reading_listeners[obis].remove(listener)

    @callback
    def async_add_clock_listener(self, listener: CALLBACK_TYPE) -> CALLBACK_TYPE:
        """Call `listener` when a clock message arrives or is cleared; return the remover."""
        self._clock_listeners.append(listener)
        return lambda: self._clock_listeners.remove(listener)

    @callback
    def async_add_event_listener(self, listener: EventListener) -> CALLBACK_TYPE:
        """Call `listener` with each new event (Verdict.NEW); return the remover."""
        self._event_listeners.append(listener)
        return lambda: self._event_listeners.remove(listener)

    @callback
    def notify_status(self) -> None:
        for listener in list(self._status_listeners):
            listener()

    def handle(self, leaf: str, payload: Payload) -> None:
        """A message on `<base_topic>/<leaf>` (not `info`); raise InvalidPayload."""
        if leaf == "availability":
            online = bool(payload) and _parse_status(payload)
            if online != self.meter_online:
                self.meter_online = online
                self.agent.log_transition(f"Meter {self.name} of agent {self.agent.agent}", online)
                self.notify_status()
        elif leaf == "health":
            health = Health.from_payload(payload) if payload else None
            if health != self.health:
                self.health = health
                async_update_health_issue(self.agent.hass, self.agent.entry, self, health)
                self.notify_status()
        elif leaf == "clock":
            self._on_clock(payload)
        elif leaf == "event":
            self._on_event(payload)
        elif OBIS_PATTERN.match(leaf):
            self._on_reading(leaf, payload)
        # `state` repeats the per-object topics; other leaves are for newer
        # integrations. Neither is an error.

    def _on_reading(self, obis: str, payload: Payload) -> None:
        if not payload:  # the agent cleared the value: nothing current to show
            self.readings.pop(obis, None)
            for listener in list(self._reading_listeners.get(obis, ())):
                listener(None)
            return
        reading = Reading.from_payload(payload)
        announced = next((obj for obj in self.info.objects if obj.obis == obis), None)
        if announced and reading.unit and announced.unit and reading.unit != announced.unit:
            # A scaler/unit change without a new info: showing it would mix units.
            raise InvalidPayload(
                f"unit {reading.unit!r} differs from {announced.unit!r} announced in info"
            )
        for listener in list(self._reading_listeners.get(obis, ())):
            listener(reading)
        self.readings[obis] = reading
        if obis == MODEL_OBIS and self._take_model(reading.value):
            self.agent.meter_changed(self)

    def _on_clock(self, payload: Payload) -> None:
        # An empty retained payload: the agent cleared the meter (it left the config).
        self.clock = ClockReading.from_payload(payload) if payload else None
        if self.clock is not None:
            # The agent reads this meter: its events are watched from now on (the first
            # clock of an agent installed or upgraded after Home Assistant comes with
            # its first read of the logs, whose day of backfill is history).
            self.agent.event_marks.meter(self.agent.entry.entry_id, self.key)
            self._note_read("clock")
        for listener in list(self._clock_listeners):
            listener()

    def _on_event(self, payload: Payload) -> None:
        if not payload:  # events are not retained: an empty message clears nothing
            return
        event = MeterEvent.from_payload(payload)
        verdict = self.agent.event_marks.judge(self.agent.entry.entry_id, self.key, event)
        self.event_counts[verdict] += 1
        self._note_read("event")
        if verdict is Verdict.DUPLICATE:
            _LOGGER.debug(
                "Meter %s: event %s of %s at %s seen before; ignored",
                self.name,
                event.name,
                event.log,
                event.ts.isoformat(),
            )
            return
        self.last_event = event
        self.agent.fire_meter_event(self, event, verdict)
        if verdict is not Verdict.NEW:
            return
        if not self._event_listeners:
            self.unclaimed_events.append(event)
        for listener in list(self._event_listeners):
            listener(event)

    def _note_read(self, leaf: str) -> None:
        if leaf not in self.reads:
            self.reads.add(leaf)
            self.agent.meter_changed(self)

    def _take_model(self, value: object) -> bool:
        """Remember a printable Device ID 2 as the model; True when it changed."""
        if not isinstance(value, str) or not 0 < len(value) <= _MODEL_MAX_LENGTH:
            return False
        if not value.isprintable() or value == self.reported_model:
            return False
        self.reported_model = value
        return not self.info.model


class DlmsEdgeAgent:
    """Subscriptions and meters of one agent (the config entry's runtime data)."""

    def __init__(self, hass: HomeAssistant, entry: DlmsEdgeConfigEntry) -> None:
        self.hass = hass
        self.entry = entry
        self.prefix: str = entry.data[CONF_PREFIX]
        self.agent: str = entry.data[CONF_AGENT]
        self.meters: dict[str, DlmsEdgeMeter] = {
            key: DlmsEdgeMeter(self, key, MeterInfo.from_dict(stored[CONF_INFO]), stored[CONF_NAME])
            for key, stored in entry.data[CONF_METERS].items()
        }
        self.broker_connected = False
        self.agent_online = False
        # topic -> reason of the last malformed message, until a valid one arrives.
        self.malformed: dict[str, str] = {}
        self._pending: defaultdict[str, dict[str, Payload]] = defaultdict(dict)
        self._meter_listeners: list[MeterListener] = []
        self._status_listeners: list[CALLBACK_TYPE] = []
        self._unsubscribe: list[CALLBACK_TYPE] = []
        self._offline_timer: CALLBACK_TYPE | None = None
        self._absence_timer: CALLBACK_TYPE | None = None
        # Meters whose info arrived since the (re)subscription.
        self._announced: set[str] = set()
        # Events seen per meter, shared by the agents' entries (loaded in async_start).
        self.event_marks: EventMarkStore = event_mark_store(hass)
        self._refused: set[str] = set()
        self._logged_down: set[str] = set()

    @property
    def status_topic(self) -> str:
        return f"{self.prefix}/{self.agent}/status"

    @property
    def online(self) -> bool:
        """The agent's status is known and online through a live broker connection."""
        return self.broker_connected and self.agent_online

    def announced(self, meter: DlmsEdgeMeter) -> bool:
        """Whether the meter's info arrived since the (re)subscription: the agent has it."""
        return meter.key in self._announced and not meter.gone

    def meter_by_id(self, meter_id: str) -> DlmsEdgeMeter | None:
        """The meter currently published under the topic level `meter_id`."""
        return next(
            (m for m in self.meters.values() if m.info.meter == meter_id and not m.gone), None
        )

    async def async_start(self) -> None:
        """Subscribe; the broker replays the retained state right away.

        Payloads arrive as bytes (`encoding=None`): decoding errors are then ours to
        report, once per topic, instead of a warning per message from MQTT.
        """
        # Events arrive only after subscribing: know what was seen before they do.
        await self.event_marks.async_load()
        self.event_marks.retain(self.entry.entry_id, set(self.meters))
        self.broker_connected = mqtt.is_connected(self.hass)
        self._unsubscribe = [
            mqtt.async_subscribe_connection_status(self.hass, self._on_connection),
            await mqtt.async_subscribe(
                self.hass, self.status_topic, self._on_agent_status, qos=1, encoding=None
            ),
            # `+/+` matches info, availability, health, state, clock, event and each OBIS
            # code of every meter, but not the non-retained `profile/<obis>` rows.
            await mqtt.async_subscribe(
                self.hass,
                f"{self.prefix}/{self.agent}/+/+",
                self._on_meter_message,
                qos=1,
                encoding=None,
            ),
        ]

    @callback
    def async_stop(self) -> None:
        self._cancel_offline_timer()
        self._cancel_absence_timer()
        while self._unsubscribe:
            self._unsubscribe.pop()()

    @callback
    def async_add_meter_listener(self, listener: MeterListener) -> CALLBACK_TYPE:
        """Call `listener` when a meter appears or announces new objects."""
        self._meter_listeners.append(listener)
        return lambda: self._meter_listeners.remove(listener)

    @callback
    def async_add_status_listener(self, listener: CALLBACK_TYPE) -> CALLBACK_TYPE:
        """Call `listener` when the agent's availability changes."""
        self._status_listeners.append(listener)
        return lambda: self._status_listeners.remove(listener)

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
    def log_transition(self, what: str, up: bool) -> None:
        """Log once when something goes down and once when it comes back."""
        if not up and what not in self._logged_down:
            self._logged_down.add(what)
            _LOGGER.info("%s is offline; its entities are unavailable", what)
        elif up and what in self._logged_down:
            self._logged_down.discard(what)
            _LOGGER.info("%s is back online", what)

    @callback
    def fire_meter_event(self, meter: DlmsEdgeMeter, event: MeterEvent, verdict: Verdict) -> None:
        """Fire `dlms_edge_meter_event` for the logbook (logbook.py) and automations.

        The event is fired with the meter's time stamp as its time, so that the logbook
        shows it where it happened, also when it arrives late (the agent reads the logs
        every 15 minutes, and after an outage); never in the future, and at the time it
        arrives when the meter flags its own time stamp invalid or doubtful.
        """
        data: dict[str, Any] = {
            "log": event.log,
            "code": event.code,
            "name": event.name,
            "text": event.text,
            "meter_time": event.ts.isoformat(),
            "clock_status": None if event.status is None else list(event.status),
            "raw": event.raw,
            "history": verdict is Verdict.HISTORY,
        }
        devices = dr.async_get(self.hass)
        device = next(
            (
                device
                for device in dr.async_entries_for_config_entry(devices, self.entry.entry_id)
                if (DOMAIN, meter.key) in device.identifiers
            ),
            None,
        )
        if device is not None:
            data["device_id"] = device.id
        entity_id = er.async_get(self.hass).async_get_entity_id(
            "event", DOMAIN, f"{meter.key}_{EVENTS_KEY}"
        )
        if entity_id is not None:
            data["entity_id"] = entity_id
        fired = min(event.ts, dt_util.utcnow()) if event.time_trusted else dt_util.utcnow()
        self.hass.bus.async_fire(EVENT_METER_EVENT, data, time_fired=fired.timestamp())

    @callback
    def _report_valid(self, topic: str) -> None:
        if self.malformed.pop(topic, None) is not None:
            _LOGGER.info("Valid messages again on %s", topic)

    @callback
    def _notify_all(self) -> None:
        for listener in list(self._status_listeners):
            listener()
        for meter in self.meters.values():
            meter.notify_status()

    @callback
    def _on_connection(self, connected: bool) -> None:
        """Home Assistant's MQTT connection went down or came back."""
        if connected == self.broker_connected:
            return
        self.broker_connected = connected
        self.log_transition("The MQTT connection of Home Assistant", connected)
        if not connected:
            # Nothing is known until the broker replays the retained state after the
            # reconnect (Home Assistant subscribes again, the broker sends it all).
            self._cancel_offline_timer()
            self._cancel_absence_timer()
            self._announced.clear()
            self.agent_online = False
            for meter in self.meters.values():
                meter.meter_online = False
        self._notify_all()

    @callback
    def _on_agent_status(self, msg: mqtt.ReceiveMessage) -> None:
        try:
            online = _parse_status(msg.payload) if msg.payload else False
        except InvalidPayload as err:
            self.report_malformed(msg.topic, str(err))
            return
        self._report_valid(msg.topic)
        self._track_offline(online)
        if online and self.broker_connected and self._absence_timer is None:
            self._absence_timer = async_call_later(
                self.hass, ABSENT_METER_SECONDS, self._on_absence_check
            )
        if online != self.agent_online:
            self.agent_online = online
            self.log_transition(f"Agent {self.agent}", online)
            self._notify_all()

    @callback
    def _track_offline(self, online: bool) -> None:
        """Raise a repair issue when the agent stays offline; drop it when it returns."""
        if online:
            self._cancel_offline_timer()
            async_delete_agent_offline_issue(self.hass, self.entry)
        elif self._offline_timer is None:
            self._offline_timer = async_call_later(
                self.hass, AGENT_OFFLINE_ISSUE_SECONDS, self._on_offline_too_long
            )

    @callback
    def _on_offline_too_long(self, _now: Any) -> None:
        self._offline_timer = None
        if self.broker_connected and not self.agent_online:
            async_raise_agent_offline_issue(self.hass, self.entry, AGENT_OFFLINE_ISSUE_SECONDS)

    @callback
    def _on_absence_check(self, _now: Any) -> None:
        self._absence_timer = None
        if not self.online:
            return
        for meter in list(self.meters.values()):
            if meter.key not in self._announced:
                self._meter_gone(meter, "its retained info is gone")

    @callback
    def _cancel_absence_timer(self) -> None:
        if self._absence_timer is not None:
            self._absence_timer()
            self._absence_timer = None

    @callback
    def _cancel_offline_timer(self) -> None:
        if self._offline_timer is not None:
            self._offline_timer()
            self._offline_timer = None

    @callback
    def _on_meter_message(self, msg: mqtt.ReceiveMessage) -> None:
        try:
            parts = MeterTopic.parse(msg.topic)
        except InvalidPayload:
            return
        try:
            if parts.leaf == "info":
                self._on_info(parts.meter, msg.topic, msg.payload)
            elif (meter := self.meter_by_id(parts.meter)) is not None:
                meter.handle(parts.leaf, msg.payload)
            elif msg.payload and len(pending := self._pending[parts.meter]) < _PENDING_PER_METER:
                pending[parts.leaf] = msg.payload
        except InvalidPayload as err:
            self.report_malformed(msg.topic, str(err))
            return
        self._report_valid(msg.topic)

    def _on_info(self, meter_id: str, topic: str, payload: Payload) -> None:
        current = self.meter_by_id(meter_id)
        if not payload:
            # The agent cleared the meter's retained topics: it left the agent's config.
            self._pending.pop(meter_id, None)
            if current is not None:
                self._meter_gone(current, "its retained info was cleared")
            return
        _prefix, info = parse_discovery(topic, payload)
        if current is not None and not current.info.same_meter(info):
            # Another physical meter under the same id: the old one is gone.
            self._meter_gone(current, f"meter id {meter_id} now announces another meter")
            current = None
        if current is None:
            current = next((m for m in self.meters.values() if m.info.same_meter(info)), None)
        if current is None:
            self._add_meter(info)
            return
        self._announced.add(current.key)
        if current.gone:
            current.gone = False
            async_delete_meter_removed_issue(self.hass, self.entry, current.key)
            _LOGGER.info("Meter %s of agent %s is announced again", current.name, self.agent)
        if info != current.info:
            # New firmware, serial, objects or meter id. Objects missing from this info
            # keep their entities: one association may not see all of them.
            _LOGGER.debug("Meter %s announced new info", current.name)
            current.info = info
            self._store_meters()
        self._replay_pending(current)
        for listener in list(self._meter_listeners):
            listener(current)
        current.notify_status()

    @callback
    def meter_changed(self, meter: DlmsEdgeMeter) -> None:
        """Let devices and platforms follow a change of the meter."""
        for listener in list(self._meter_listeners):
            listener(meter)

    def _add_meter(self, info: MeterInfo) -> None:
        owner = next(
            (
                entry
                for entry in self.hass.config_entries.async_entries(DOMAIN)
                if entry.entry_id != self.entry.entry_id
                and info.unique_id in entry.data.get(CONF_METERS, {})
            ),
            None,
        )
        if owner is not None:
            # Unique ids are the meter's identity: one entry may show it at a time.
            if info.unique_id not in self._refused:
                self._refused.add(info.unique_id)
                _LOGGER.warning(
                    "Agent %s announces meter %s, which agent %s already shows; run "
                    "`dlms-edge forget %s` on agent %s (or delete that meter there) to "
                    "show it here",
                    self.agent,
                    info.title,
                    owner.title,
                    info.meter,
                    owner.title,
                )
            return
        taken = {meter.name for meter in self.meters.values()}
        key = info.unique_id
        if key in self.meters:  # a meter that left and came back with another identity
            key = f"{key}_{info.meter}"
        meter = DlmsEdgeMeter(self, key, info, meter_name(info, taken))
        self.meters[key] = meter
        self._announced.add(key)
        self._store_meters()
        _LOGGER.info("Agent %s announces meter %s", self.agent, meter.name)
        self._replay_pending(meter)
        for listener in list(self._meter_listeners):
            listener(meter)

    def _replay_pending(self, meter: DlmsEdgeMeter) -> None:
        for leaf, payload in self._pending.pop(meter.info.meter, {}).items():
            try:
                meter.handle(leaf, payload)
            except InvalidPayload as err:
                self.report_malformed(f"{meter.base_topic}/{leaf}", str(err))

    def _meter_gone(self, meter: DlmsEdgeMeter, why: str) -> None:
        if meter.gone:
            return
        meter.gone = True
        meter.meter_online = False
        if meter.health is not None:
            meter.health = None
            async_update_health_issue(self.hass, self.entry, meter, None)
        _LOGGER.info("Meter %s left agent %s (%s)", meter.name, self.agent, why)
        async_raise_meter_removed_issue(self.hass, self.entry, meter.key, meter.name)
        meter.notify_status()

    @callback
    def async_forget_meter(self, key: str) -> None:
        """Drop a meter from the entry (its device was removed)."""
        if self.meters.pop(key, None) is not None:
            self._store_meters()
        self.event_marks.forget(self.entry.entry_id, key)
        async_delete_meter_removed_issue(self.hass, self.entry, key)

    def _store_meters(self) -> None:
        self.hass.config_entries.async_update_entry(
            self.entry, data={**self.entry.data, CONF_METERS: stored_meters(self.meters)}
        )


def stored_meters(meters: Mapping[str, DlmsEdgeMeter]) -> dict[str, dict[str, Any]]:
    return {
        key: {CONF_INFO: meter.info.as_dict(), CONF_NAME: meter.name}
        for key, meter in meters.items()
    }


async def async_scan_agents(
    hass: HomeAssistant, prefix: str, seconds: float
) -> dict[str, dict[str, MeterInfo]]:
    """Listen `seconds` for retained `<prefix>/+/+/info`; return valid infos by agent."""
    found: dict[str, dict[str, MeterInfo]] = defaultdict(dict)

    @callback
    def _on_info(msg: mqtt.ReceiveMessage) -> None:
        try:
            _prefix, info = parse_discovery(msg.topic, msg.payload)
        except InvalidPayload as err:
            _LOGGER.debug("Skipping %s while scanning: %s", msg.topic, err)
            return
        found[info.agent][info.unique_id] = info

    unsubscribe = await mqtt.async_subscribe(
        hass, f"{prefix}/+/+/info", _on_info, qos=1, encoding=None
    )
    try:
        await asyncio.sleep(seconds)
    finally:
        unsubscribe()
    return dict(found)


def entry_data(prefix: str, agent: str, infos: list[MeterInfo]) -> dict[str, Any]:
    """Config entry data for an agent seen under `prefix` with these meters."""
    names: set[str] = set()
    meters: dict[str, dict[str, Any]] = {}
    for info in infos:
        name = meter_name(info, names)
        names.add(name)
        meters[info.unique_id] = {CONF_INFO: info.as_dict(), CONF_NAME: name}
    return {CONF_PREFIX: prefix, CONF_AGENT: agent, CONF_METERS: meters}
