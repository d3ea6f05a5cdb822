"""A problem sensor per meter (its `health` topic) and a connectivity sensor per agent."""

from __future__ import annotations

from homeassistant.components.binary_sensor import (
    BinarySensorDeviceClass,
    BinarySensorEntity,
    BinarySensorEntityDescription,
)
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .coordinator import DlmsEdgeConfigEntry, DlmsEdgeMeter
from .entity import DlmsEdgeAgentEntity, DlmsEdgeEntity, MeterEntities, async_add_meter_entities

PARALLEL_UPDATES = 0

PROBLEM_DESCRIPTION = BinarySensorEntityDescription(
    key="problem",
    device_class=BinarySensorDeviceClass.PROBLEM,
    entity_category=EntityCategory.DIAGNOSTIC,
)
CONNECTIVITY_DESCRIPTION = BinarySensorEntityDescription(
    key="status",
    translation_key="agent_status",
    device_class=BinarySensorDeviceClass.CONNECTIVITY,
    entity_category=EntityCategory.DIAGNOSTIC,
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: DlmsEdgeConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    async_add_entities([DlmsEdgeAgentConnectivity(entry.runtime_data, CONNECTIVITY_DESCRIPTION)])

    def _entities(meter: DlmsEdgeMeter) -> MeterEntities:
        yield PROBLEM_DESCRIPTION.key, lambda: DlmsEdgeProblemSensor(meter, PROBLEM_DESCRIPTION)

    async_add_meter_entities(entry, async_add_entities, _entities)


class DlmsEdgeProblemSensor(DlmsEdgeEntity, BinarySensorEntity):
    """On while the agent reports a problem with the meter (details in Repairs)."""

    @property
    def available(self) -> bool:
        # Health matters most while the meter is offline: only the agent must be up.
        return self.meter.agent.online and self.meter.health is not None

    @property
    def is_on(self) -> bool | None:
        return self.meter.health.problem if self.meter.health else None


class DlmsEdgeAgentConnectivity(DlmsEdgeAgentEntity, BinarySensorEntity):
    """On while the agent is connected to the broker (its retained status and Last Will)."""

    @property
    def available(self) -> bool:
        # Without Home Assistant's own broker connection the agent's state is unknown.
        return self.agent.broker_connected

    @property
    def is_on(self) -> bool:
        return self.agent.agent_online
