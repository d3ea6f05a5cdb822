"""Base entities: a meter's entities on the meter device, the agent's on the agent device."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from homeassistant.const import Platform
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.entity import Entity, EntityDescription
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .const import DOMAIN
from .coordinator import DlmsEdgeAgent, DlmsEdgeConfigEntry, DlmsEdgeMeter
from .devices import agent_identifier

# A meter's entities as a platform names them: the key (the unique id's suffix, its
# description's key) and what builds the entity, called once per key.
type MeterEntities = Iterable[tuple[str, Callable[[], Entity]]]


@callback
def async_add_meter_entities(
    entry: DlmsEdgeConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
    entities_of: Callable[[DlmsEdgeMeter], MeterEntities],
) -> None:
    """Add each meter's entities now and whenever the agent announces or changes a meter
    (a new meter, new objects in its info, its first clock or event); each key once."""
    agent = entry.runtime_data
    added: set[tuple[str, str]] = set()

    @callback
    def _add_meter(meter: DlmsEdgeMeter) -> None:
        new: list[Entity] = []
        for key, build in entities_of(meter):
            if (meter.key, key) not in added:
                added.add((meter.key, key))
                new.append(build())
        if new:
            async_add_entities(new)

    for meter in agent.meters.values():
        _add_meter(meter)
    entry.async_on_unload(agent.async_add_meter_listener(_add_meter))


@callback
def registered(hass: HomeAssistant, platform: Platform, meter: DlmsEdgeMeter, key: str) -> bool:
    """Whether the meter's entity `key` exists from an earlier start (its registry entry):
    then it is added at set-up, before the message that first made it appear comes again."""
    unique_id = f"{meter.key}_{key}"
    return er.async_get(hass).async_get_entity_id(platform, DOMAIN, unique_id) is not None


class DlmsEdgeEntity(Entity):
    """An entity of one meter, updated by MQTT pushes.

    The device exists before the entity (devices.py registers it with its link to the
    agent); the entity names it by identifier only.
    """

    _attr_has_entity_name = True
    _attr_should_poll = False

    def __init__(self, meter: DlmsEdgeMeter, description: EntityDescription) -> None:
        self.meter = meter
        self.entity_description = description
        self._attr_unique_id = f"{meter.key}_{description.key}"
        self._attr_device_info = DeviceInfo(identifiers={(DOMAIN, meter.key)})

    async def async_added_to_hass(self) -> None:
        await super().async_added_to_hass()
        self.async_on_remove(self.meter.async_add_status_listener(self._handle_status))

    @callback
    def _handle_status(self) -> None:
        self.async_write_ha_state()

    @property
    def available(self) -> bool:
        return self.meter.available


class DlmsEdgeAgentEntity(Entity):
    """An entity of the agent itself."""

    _attr_has_entity_name = True
    _attr_should_poll = False

    def __init__(self, agent: DlmsEdgeAgent, description: EntityDescription) -> None:
        self.agent = agent
        self.entity_description = description
        self._attr_unique_id = f"{agent_identifier(agent.agent)}_{description.key}"
        self._attr_device_info = DeviceInfo(identifiers={(DOMAIN, agent_identifier(agent.agent))})

    async def async_added_to_hass(self) -> None:
        await super().async_added_to_hass()
        self.async_on_remove(self.agent.async_add_status_listener(self._handle_status))

    @callback
    def _handle_status(self) -> None:
        self.async_write_ha_state()
