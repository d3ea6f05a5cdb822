"""DLMS Edge: smart meters read by a dlms-edge agent, seen through MQTT."""

from __future__ import annotations

from homeassistant.components import mqtt
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ConfigEntryNotReady
from homeassistant.helpers import device_registry as dr

from .const import DOMAIN
from .coordinator import DlmsEdgeConfigEntry, DlmsEdgeMeter
from .entity import agent_identifier
from .issues import async_delete_health_issue

PLATFORMS: list[Platform] = [Platform.BINARY_SENSOR, Platform.SENSOR]


async def async_setup_entry(hass: HomeAssistant, entry: DlmsEdgeConfigEntry) -> bool:
    """Subscribe to the meter's topics and create its entities."""
    if not await mqtt.async_wait_for_mqtt_client(hass):
        raise ConfigEntryNotReady(translation_domain=DOMAIN, translation_key="mqtt_not_available")
    meter = DlmsEdgeMeter(hass, entry)
    _async_register_agent_device(hass, entry, meter)
    entry.runtime_data = meter
    await meter.async_start()
    entry.async_on_unload(meter.async_stop)
    # Options, reconfiguration and a new `info` all change the entry: rebuild from it.
    entry.async_on_unload(entry.add_update_listener(_async_reload_entry))
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    return True


async def async_unload_entry(hass: HomeAssistant, entry: DlmsEdgeConfigEntry) -> bool:
    """Unload platforms; the subscriptions go with `async_on_unload`."""
    unloaded = await hass.config_entries.async_unload_platforms(entry, PLATFORMS)
    if unloaded:
        async_delete_health_issue(hass, entry)
    return unloaded


async def async_remove_entry(hass: HomeAssistant, entry: DlmsEdgeConfigEntry) -> None:
    """Leave no repair issue behind for a removed meter."""
    async_delete_health_issue(hass, entry)


async def async_remove_config_entry_device(
    hass: HomeAssistant, entry: DlmsEdgeConfigEntry, device: dr.DeviceEntry
) -> bool:
    """Allow deleting devices this entry no longer feeds (an agent the meter left)."""
    meter = entry.runtime_data
    current = {(DOMAIN, meter.info.unique_id), (DOMAIN, agent_identifier(meter.agent))}
    return not device.identifiers & current


async def _async_reload_entry(hass: HomeAssistant, entry: DlmsEdgeConfigEntry) -> None:
    hass.config_entries.async_schedule_reload(entry.entry_id)


def _async_register_agent_device(
    hass: HomeAssistant, entry: DlmsEdgeConfigEntry, meter: DlmsEdgeMeter
) -> None:
    """Create the agent's device (the meter's via_device); unlink agents the meter left."""
    registry = dr.async_get(hass)
    agent = registry.async_get_or_create(
        config_entry_id=entry.entry_id,
        identifiers={(DOMAIN, agent_identifier(meter.agent))},
        name=meter.agent,
        manufacturer="dlms-edge",
        model="dlms-edge agent",
        sw_version=meter.info.agent_version,
    )
    for device in dr.async_entries_for_config_entry(registry, entry.entry_id):
        stale_agent = device.id != agent.id and any(
            domain == DOMAIN and ident.startswith(agent_identifier(""))
            for domain, ident in device.identifiers
        )
        if stale_agent:
            registry.async_update_device(device.id, remove_config_entry_id=entry.entry_id)
