"""An event entity per meter: the events of the meter's event logs (the `event` topic).

Event types are the names of the agent's event table (const.EVENT_TYPES: power down,
terminal cover removed, under voltage L1, ...), `long_power_failure` for a power failure
log without codes and `unknown` for manufacturer-specific codes (and for names newer
than this integration).

The entity triggers once for each event that happened while the integration watched the
meter, also when it arrives late (after an outage of the agent). Events from before --
the agent's first read of a log reaches back a day -- and events seen before (QoS 1
redelivery, an agent that lost its state reads them again) do not trigger it: they would
flood automations. Every event not seen before goes to the logbook (coordinator.py,
logbook.py). docs/home-assistant.md explains the choice.

The entity is added once the agent is seen reading the meter's clock or event logs (a
`clock` or `event` message), and at once at later starts.
"""

from __future__ import annotations

from typing import Any

from homeassistant.components.event import EventEntity, EventEntityDescription
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .const import EVENT_TYPES
from .coordinator import EVENTS_KEY, DlmsEdgeConfigEntry, DlmsEdgeMeter
from .entity import DlmsEdgeEntity, MeterEntities, async_add_meter_entities, registered
from .models import MeterEvent

PARALLEL_UPDATES = 0

EVENTS_DESCRIPTION = EventEntityDescription(
    key=EVENTS_KEY,
    translation_key=EVENTS_KEY,
    event_types=list(EVENT_TYPES),
)


def event_attributes(event: MeterEvent) -> dict[str, Any]:
    """The attributes an event gives the entity (besides its `event_type`)."""
    return {
        "code": event.code,
        "log": event.log,
        "meter_time": event.ts.isoformat(),
        "text": event.text,
        "clock_status": None if event.status is None else list(event.status),
        "raw": event.raw,
    }


async def async_setup_entry(
    hass: HomeAssistant,
    entry: DlmsEdgeConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    def _entities(meter: DlmsEdgeMeter) -> MeterEntities:
        if meter.reads or registered(hass, Platform.EVENT, meter, EVENTS_KEY):
            yield EVENTS_KEY, lambda: DlmsEdgeEventEntity(meter, EVENTS_DESCRIPTION)

    async_add_meter_entities(entry, async_add_entities, _entities)


class DlmsEdgeEventEntity(DlmsEdgeEntity, EventEntity):
    """The latest new event of the meter's logs; its last one is restored at start."""

    async def async_added_to_hass(self) -> None:
        await super().async_added_to_hass()
        self.async_on_remove(self.meter.async_add_event_listener(self._handle_event))
        # The first event, which made the meter's entity appear, came before it listened.
        while self.meter.unclaimed_events:
            self._handle_event(self.meter.unclaimed_events.popleft())

    @callback
    def _handle_event(self, event: MeterEvent) -> None:
        self._trigger_event(event.event_type, event_attributes(event))
        self.async_write_ha_state()
