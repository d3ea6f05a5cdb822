"""Registry look-ups for the tests, through API common to Home Assistant 2025.4 and today.

Today's `device_registry.async_get_device` is deprecated (identifiers are unique per
config entry only) and 2025.4 lacks its replacements; listing an entry's devices works
on both.
"""

from __future__ import annotations

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr

from custom_components.dlms_edge.const import DOMAIN


def device_of(hass: HomeAssistant, entry: ConfigEntry, identifier: str) -> dr.DeviceEntry | None:
    """The entry's device with the identifier (DOMAIN, identifier)."""
    return next(
        (
            device
            for device in dr.async_entries_for_config_entry(dr.async_get(hass), entry.entry_id)
            if (DOMAIN, identifier) in device.identifiers
        ),
        None,
    )


def domain_devices(hass: HomeAssistant) -> list[dr.DeviceEntry]:
    """Every device of this integration, whichever entry owns it."""
    return [
        device
        for entry in hass.config_entries.async_entries(DOMAIN)
        for device in dr.async_entries_for_config_entry(dr.async_get(hass), entry.entry_id)
    ]
