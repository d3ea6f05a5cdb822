"""Base entity: one device per meter, linked to the agent that reads it."""

from __future__ import annotations

from homeassistant.core import callback
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.entity import Entity

from .const import DOMAIN
from .coordinator import DlmsEdgeMeter


def agent_identifier(agent: str) -> str:
    """Device identifier of an agent; ':' never occurs in a meter serial or system title."""
    return f"agent:{agent}"


class DlmsEdgeEntity(Entity):
    """An entity of one meter, updated by MQTT pushes."""

    _attr_has_entity_name = True
    _attr_should_poll = False

    def __init__(self, meter: DlmsEdgeMeter, key: str) -> None:
        self.meter = meter
        info = meter.info
        self._attr_unique_id = f"{info.unique_id}_{key}"
        self._attr_device_info = DeviceInfo(
            identifiers={(DOMAIN, info.unique_id)},
            name=info.title,
            manufacturer=info.manufacturer,
            model=info.model,
            serial_number=info.serial,
            sw_version=info.firmware,
            via_device=(DOMAIN, agent_identifier(info.agent)),
        )

    async def async_added_to_hass(self) -> None:
        await super().async_added_to_hass()
        self.async_on_remove(self.meter.async_add_status_listener(self._handle_status))

    @callback
    def _handle_status(self) -> None:
        self.async_write_ha_state()

    @property
    def available(self) -> bool:
        return self.meter.available
