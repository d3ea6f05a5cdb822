"""DLMS Edge: smart meters read by a dlms-edge agent, seen through MQTT.

One config entry per agent; its meters are devices of that entry, added as the agent
announces them and offered for removal when it clears them (docs/home-assistant.md).
"""

from __future__ import annotations

import logging
from typing import Any

from homeassistant.components import mqtt
from homeassistant.config_entries import ConfigEntry, ConfigEntryState
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import ConfigEntryNotReady
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er

from .const import (
    CONF_AGENT,
    CONF_EXCLUDED_OBJECTS,
    CONF_INFO,
    CONF_METERS,
    CONF_NAME,
    CONF_PREFIX,
    DOMAIN,
)
from .coordinator import DlmsEdgeAgent, DlmsEdgeConfigEntry, DlmsEdgeMeter
from .devices import (
    agent_identifier,
    async_register_agent_device,
    async_register_meter_device,
    find_device,
    move_device,
)
from .event_marks import event_mark_store
from .issues import async_delete_entry_issues
from .models import InvalidPayload, MeterInfo
from .statistics import async_setup_statistics

_LOGGER = logging.getLogger(__name__)

PLATFORMS: list[Platform] = [Platform.BINARY_SENSOR, Platform.EVENT, Platform.SENSOR]


async def async_setup_entry(hass: HomeAssistant, entry: DlmsEdgeConfigEntry) -> bool:
    """Subscribe to the agent's topics and create devices and entities of its meters."""
    if not await mqtt.async_wait_for_mqtt_client(hass):
        raise ConfigEntryNotReady(translation_domain=DOMAIN, translation_key="mqtt_not_available")
    agent = DlmsEdgeAgent(hass, entry)
    entry.runtime_data = agent
    versions = [meter.info.agent_version for meter in agent.meters.values()]
    async_register_agent_device(hass, entry, agent, next(filter(None, versions), None))

    @callback
    def _register(meter: DlmsEdgeMeter) -> None:
        async_register_meter_device(hass, entry, meter)

    for meter in agent.meters.values():
        _register(meter)
    # Registered before the platforms' listeners: a new meter's device exists before
    # its entities name it.
    entry.async_on_unload(agent.async_add_meter_listener(_register))
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    # Hourly statistics from the meters' load profiles (docs/home-assistant.md). Their
    # subscription goes out before the agent's: when a meter's retained info arrives,
    # the profile rows asked for then are already listened to.
    entry.async_on_unload(await async_setup_statistics(hass, agent))
    await agent.async_start()
    entry.async_on_unload(agent.async_stop)
    # Options choose the entities and the prefix the topics: rebuild on their change.
    # Other data changes (new meters and infos) are applied in place by the agent.
    built_from = (dict(entry.options), entry.data[CONF_PREFIX])

    async def _async_options_updated(hass: HomeAssistant, entry: DlmsEdgeConfigEntry) -> None:
        if (dict(entry.options), entry.data[CONF_PREFIX]) != built_from:
            hass.config_entries.async_schedule_reload(entry.entry_id)

    entry.async_on_unload(entry.add_update_listener(_async_options_updated))
    return True


async def async_unload_entry(hass: HomeAssistant, entry: DlmsEdgeConfigEntry) -> bool:
    """Unload platforms; the subscriptions go with `async_on_unload`."""
    unloaded = await hass.config_entries.async_unload_platforms(entry, PLATFORMS)
    if unloaded:
        async_delete_entry_issues(hass, entry)
    return unloaded


async def async_remove_entry(hass: HomeAssistant, entry: DlmsEdgeConfigEntry) -> None:
    """Leave no repair issue and no stored event marks behind for a removed agent."""
    async_delete_entry_issues(hass, entry)
    await event_mark_store(hass).async_forget_entry(entry.entry_id)


async def async_remove_config_entry_device(
    hass: HomeAssistant, entry: DlmsEdgeConfigEntry, device: dr.DeviceEntry
) -> bool:
    """Allow deleting a meter the agent no longer publishes; never the agent itself.

    A meter still published would come straight back with its next `info`.
    """
    agent = entry.runtime_data
    if (DOMAIN, agent_identifier(agent.agent)) in device.identifiers:
        return False
    for key, meter in list(agent.meters.items()):
        if (DOMAIN, key) in device.identifiers:
            if not meter.gone:
                return False
            agent.async_forget_meter(key)
    return True


async def async_migrate_entry(hass: HomeAssistant, entry: ConfigEntry) -> bool:
    """Version 1 (one entry per meter) to 2 (one entry per agent).

    The first entry of an agent to migrate becomes the agent's entry; the meters of
    the others move into it with their devices and entities (same device ids, entity
    ids, names and unique ids, hence the same statistics), then those entries are
    removed. Nothing here awaits, so entries migrating side by side cannot interleave.
    """
    if entry.version > 2:
        return False  # a downgrade: this version cannot read the newer data
    if entry.version == 2:
        return True
    prefix, agent_id = entry.data[CONF_PREFIX], entry.data[CONF_AGENT]
    try:
        info = MeterInfo.from_dict(entry.data[CONF_INFO])
    except InvalidPayload as err:
        _LOGGER.error("Cannot migrate %s: its stored info is invalid (%s)", entry.title, err)
        return False
    key = entry.unique_id or info.unique_id
    meter = {CONF_INFO: info.as_dict(), CONF_NAME: info.title}
    excluded = list(entry.options.get(CONF_EXCLUDED_OBJECTS, ()))
    target = next(
        (
            other
            for other in hass.config_entries.async_entries(DOMAIN, include_ignore=False)
            if other.version == 2
            and other.entry_id != entry.entry_id
            and (other.data[CONF_PREFIX], other.data[CONF_AGENT]) == (prefix, agent_id)
        ),
        None,
    )
    if target is None:
        hass.config_entries.async_update_entry(
            entry,
            version=2,
            unique_id=agent_id,
            title=agent_id,
            data={CONF_PREFIX: prefix, CONF_AGENT: agent_id, CONF_METERS: {key: meter}},
            options={CONF_EXCLUDED_OBJECTS: {key: excluded}} if excluded else {},
        )
        _LOGGER.info("Migrated meter %s to the entry of agent %s", info.title, agent_id)
        return True
    _async_move_meter(hass, entry, target, key, meter, excluded)
    hass.async_create_task(
        hass.config_entries.async_remove(entry.entry_id), f"dlms_edge remove merged {key}"
    )
    _LOGGER.info("Moved meter %s into the entry of agent %s", info.title, agent_id)
    # Not set up: the entry is being removed, its meter lives on in the agent's entry.
    return False


@callback
def _async_move_meter(
    hass: HomeAssistant,
    source: ConfigEntry,
    target: ConfigEntry,
    key: str,
    meter: dict[str, Any],
    excluded: list[str],
) -> None:
    devices, entities = dr.async_get(hass), er.async_get(hass)
    # Entities first: a device leaving an entry takes that entry's entities with it.
    for entity in er.async_entries_for_config_entry(entities, source.entry_id):
        entities.async_update_entity(entity.entity_id, config_entry_id=target.entry_id)
    if (device := find_device(devices, source.entry_id, key)) is not None:
        move_device(devices, device, source.entry_id, target.entry_id)
        # Link it to the target's agent device now: the source's goes with the source.
        agent = find_device(devices, target.entry_id, agent_identifier(target.data[CONF_AGENT]))
        devices.async_update_device(device.id, via_device_id=agent.id if agent else None)
    options = dict(target.options)
    if excluded:
        options[CONF_EXCLUDED_OBJECTS] = {**options.get(CONF_EXCLUDED_OBJECTS, {}), key: excluded}
    taken = {stored[CONF_NAME] for stored in target.data[CONF_METERS].values()}
    if meter[CONF_NAME] in taken:
        meter = {**meter, CONF_NAME: f"{meter[CONF_NAME]} {meter[CONF_INFO]['meter']}"}
    hass.config_entries.async_update_entry(
        target,
        data={**target.data, CONF_METERS: {**target.data[CONF_METERS], key: meter}},
        options=options,
    )
    if target.state is ConfigEntryState.LOADED:
        # Set up before this meter joined: rebuild with it.
        hass.config_entries.async_schedule_reload(target.entry_id)
