"""Base entities: a meter's entities on the meter device, the agent's on the agent device."""

from __future__ import annotations

from homeassistant.core import callback
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.entity import Entity

from .const import DOMAIN
from .coordinator import DlmsEdgeAgent, DlmsEdgeMeter
from .devices import agent_identifier


class DlmsEdgeEntity(Entity):
    """An entity of one meter, updated by MQTT pushes.

    The device exists before the entity (devices.py registers it with its link to the
    agent); the entity names it by identifier only.
    """

    _attr_has_entity_name = True
    _attr_should_poll = False

    def __init__(self, meter: DlmsEdgeMeter, key: str) -> None:
        self.meter = meter
        self._attr_unique_id = f"{meter.key}_{key}"
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

    def __init__(self, agent: DlmsEdgeAgent, key: str) -> None:
        self.agent = agent
        self._attr_unique_id = f"{agent_identifier(agent.agent)}_{key}"
        self._attr_device_info = DeviceInfo(identifiers={(DOMAIN, agent_identifier(agent.agent))})

    async def async_added_to_hass(self) -> None:
        await super().async_added_to_hass()
        self.async_on_remove(self.agent.async_add_status_listener(self._handle_status))

    @callback
    def _handle_status(self) -> None:
        self.async_write_ha_state()
