"""Devices of an agent entry: the agent, and each meter linked to it (via_device_id).

Written against the registry API that Home Assistant 2025.4 and today's release share:
devices are created and looked up per config entry, and the meter's link to its agent
is set by device id, so no identifier lookup across config entries is needed.
"""

from __future__ import annotations

import inspect
from typing import Any

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import device_registry as dr

from .const import DOMAIN
from .coordinator import DlmsEdgeAgent, DlmsEdgeConfigEntry, DlmsEdgeMeter

# Since devices belong to one config entry, moving one takes `new_config_entry_id`;
# releases before that took the pair add/remove_config_entry_id.
_MOVE_BY_NEW_ENTRY = (
    "new_config_entry_id" in inspect.signature(dr.DeviceRegistry.async_update_device).parameters
)


def agent_identifier(agent: str) -> str:
    """Device identifier of an agent; ':' never occurs in a meter serial or system title."""
    return f"agent:{agent}"


@callback
def find_device(
    registry: dr.DeviceRegistry, entry_id: str, identifier: str
) -> dr.DeviceEntry | None:
    """The entry's device with the identifier (DOMAIN, identifier)."""
    return next(
        (
            device
            for device in dr.async_entries_for_config_entry(registry, entry_id)
            if (DOMAIN, identifier) in device.identifiers
        ),
        None,
    )


@callback
def move_device(
    registry: dr.DeviceRegistry, device: dr.DeviceEntry, source: str, target: str
) -> None:
    """Give a device of entry `source` to entry `target`, keeping its id."""
    if _MOVE_BY_NEW_ENTRY:
        # Keyword built at run time: the oldest supported release lacks it.
        move: dict[str, Any] = {"new_config_entry_id": target}
        registry.async_update_device(device.id, **move)
    else:
        registry.async_update_device(
            device.id, add_config_entry_id=target, remove_config_entry_id=source
        )


@callback
def async_register_agent_device(
    hass: HomeAssistant, entry: ConfigEntry, agent: DlmsEdgeAgent, agent_version: str | None
) -> dr.DeviceEntry:
    return dr.async_get(hass).async_get_or_create(
        config_entry_id=entry.entry_id,
        identifiers={(DOMAIN, agent_identifier(agent.agent))},
        name=agent.agent,
        manufacturer="dlms-edge",
        model="dlms-edge agent",
        sw_version=agent_version,
    )


@callback
def async_register_meter_device(
    hass: HomeAssistant, entry: ConfigEntry, meter: DlmsEdgeMeter
) -> dr.DeviceEntry:
    """Create or update the meter's device from its latest info, linked to the agent."""
    registry = dr.async_get(hass)
    info = meter.info
    agent = async_register_agent_device(hass, entry, meter.agent, info.agent_version)
    device = registry.async_get_or_create(
        config_entry_id=entry.entry_id,
        identifiers={(DOMAIN, meter.key)},
        name=meter.name,
        manufacturer=info.manufacturer,
        model=meter.model,
        serial_number=info.serial,
        sw_version=info.firmware,
    )
    if device.via_device_id != agent.id:
        device = registry.async_update_device(device.id, via_device_id=agent.id) or device
    return device


@callback
def async_remove_meter(hass: HomeAssistant, entry: DlmsEdgeConfigEntry, key: str) -> None:
    """Remove a meter's device (its entities go with it) and forget the meter."""
    registry = dr.async_get(hass)
    if (device := find_device(registry, entry.entry_id, key)) is not None:
        registry.async_remove_device(device.id)
    entry.runtime_data.async_forget_meter(key)
