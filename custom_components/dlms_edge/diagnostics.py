"""Diagnostics: what the integration knows about a meter, without identifying data."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from homeassistant.components.diagnostics import REDACTED, async_redact_data
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr

from .coordinator import DlmsEdgeConfigEntry

# Identity of the meter (serial, system title, the meter id that defaults to the
# serial, the title built from them) and anything that could hold key material.
TO_REDACT = {
    "serial",
    "serial_number",
    "system_title",
    "meter",
    "unique_id",
    "title",
    "identifiers",
    "key",
    "keys",
    "ek",
    "ak",
    "kek",
    "password",
    "secret",
    "username",
}

# Objects whose value identifies the meter: COSEM logical device name (0.0.42.0.0.255,
# Blue Book 4.4.4) and the device ID numbers 1..10 (0.0.96.1.0.255 .. 0.0.96.1.9.255).
_IDENTIFYING_OBIS_PREFIXES = ("0.0.42.0.0.", "0.0.96.1.")


def _readings(entry: DlmsEdgeConfigEntry) -> dict[str, Any]:
    return {
        obis: asdict(reading)
        | ({"value": REDACTED} if obis.startswith(_IDENTIFYING_OBIS_PREFIXES) else {})
        for obis, reading in entry.runtime_data.readings.items()
    }


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: DlmsEdgeConfigEntry
) -> dict[str, Any]:
    meter = entry.runtime_data
    return {
        "entry": async_redact_data(
            {"title": entry.title, "data": dict(entry.data), "options": dict(entry.options)},
            TO_REDACT,
        ),
        "state": {
            "agent_online": meter.agent_online,
            "meter_online": meter.meter_online,
            "health": asdict(meter.health) if meter.health else None,
            "readings": _readings(entry),
            # Only the last topic level: the others carry the meter id.
            "malformed_topics": sorted(topic.rpartition("/")[2] for topic in meter.malformed),
        },
    }


async def async_get_device_diagnostics(
    hass: HomeAssistant, entry: DlmsEdgeConfigEntry, device: dr.DeviceEntry
) -> dict[str, Any]:
    device_data = {
        "name": device.name,
        "manufacturer": device.manufacturer,
        "model": device.model,
        "sw_version": device.sw_version,
        "serial_number": device.serial_number,
        "identifiers": sorted(map(list, device.identifiers)),
    }
    return await async_get_config_entry_diagnostics(hass, entry) | {
        # Without manufacturer and model the device name is built from the meter id.
        "device": async_redact_data(device_data, TO_REDACT | {"name"})
    }
