"""A problem sensor per meter, from its retained `health` topic."""

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
from .entity import DlmsEdgeEntity

PARALLEL_UPDATES = 0

PROBLEM_DESCRIPTION = BinarySensorEntityDescription(
    key="problem",
    device_class=BinarySensorDeviceClass.PROBLEM,
    entity_category=EntityCategory.DIAGNOSTIC,
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: DlmsEdgeConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    async_add_entities([DlmsEdgeProblemSensor(entry.runtime_data, PROBLEM_DESCRIPTION)])


class DlmsEdgeProblemSensor(DlmsEdgeEntity, BinarySensorEntity):
    """On while the agent reports a problem with the meter (details in Repairs)."""

    def __init__(self, meter: DlmsEdgeMeter, description: BinarySensorEntityDescription) -> None:
        super().__init__(meter, description.key)
        self.entity_description = description

    @property
    def available(self) -> bool:
        # Health matters most while the meter is offline: only the agent must be up.
        return self.meter.agent_online and self.meter.health is not None

    @property
    def is_on(self) -> bool | None:
        return self.meter.health.problem if self.meter.health else None
