"""A problem sensor per meter (its `health` topic) and a connectivity sensor per agent."""

from __future__ import annotations

from homeassistant.components.binary_sensor import (
    BinarySensorDeviceClass,
    BinarySensorEntity,
    BinarySensorEntityDescription,
)
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .coordinator import DlmsEdgeAgent, DlmsEdgeConfigEntry, DlmsEdgeMeter
from .entity import DlmsEdgeAgentEntity, DlmsEdgeEntity

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
    agent = entry.runtime_data
    added: set[str] = set()

    @callback
    def _add_meter(meter: DlmsEdgeMeter) -> None:
        if meter.key not in added:
            added.add(meter.key)
            async_add_entities([DlmsEdgeProblemSensor(meter, PROBLEM_DESCRIPTION)])

    async_add_entities([DlmsEdgeAgentConnectivity(agent, CONNECTIVITY_DESCRIPTION)])
    for meter in agent.meters.values():
        _add_meter(meter)
    entry.async_on_unload(agent.async_add_meter_listener(_add_meter))


class DlmsEdgeProblemSensor(DlmsEdgeEntity, BinarySensorEntity):
    """On while the agent reports a problem with the meter (details in Repairs)."""

    def __init__(self, meter: DlmsEdgeMeter, description: BinarySensorEntityDescription) -> None:
        super().__init__(meter, description.key)
        self.entity_description = description

    @property
    def available(self) -> bool:
        # Health matters most while the meter is offline: only the agent must be up.
        return self.meter.agent.online and self.meter.health is not None

    @property
    def is_on(self) -> bool | None:
        return self.meter.health.problem if self.meter.health else None


class DlmsEdgeAgentConnectivity(DlmsEdgeAgentEntity, BinarySensorEntity):
    """On while the agent is connected to the broker (its retained status and Last Will)."""

    def __init__(self, agent: DlmsEdgeAgent, description: BinarySensorEntityDescription) -> None:
        super().__init__(agent, description.key)
        self.entity_description = description

    @property
    def available(self) -> bool:
        # Without Home Assistant's own broker connection the agent's state is unknown.
        return self.agent.broker_connected

    @property
    def is_on(self) -> bool:
        return self.agent.agent_online
