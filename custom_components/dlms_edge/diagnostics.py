"""Diagnostics: what the integration knows about a meter, without identifying data."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from homeassistant.components.diagnostics import REDACTED, async_redact_data
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr

from .const import CONF_EXCLUDED_OBJECTS, CONF_INFO, CONF_METERS, DOMAIN
from .coordinator import DlmsEdgeConfigEntry, DlmsEdgeMeter

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


def _clock_state(meter: DlmsEdgeMeter) -> dict[str, Any] | None:
    if (clock := meter.clock) is None:
        return None
    return {
        "ts": clock.ts.isoformat(),
        "drift": clock.drift,
        "meter_time": clock.meter_time.isoformat() if clock.meter_time else None,
        "deviation": clock.deviation,
        "status": clock.status,
        "time_zone": clock.time_zone,
        "daylight_saving_enabled": clock.daylight_saving_enabled,
        "daylight_saving_active": clock.daylight_saving_active,
        "clock_base": clock.clock_base,
        "sync": asdict(clock.sync),
    }


def _events_state(meter: DlmsEdgeMeter) -> dict[str, Any]:
    """What arrived on the meter's event topic; not the rows' columns (`raw`), which may
    hold other devices' identities (an M-Bus log's)."""
    marks = meter.agent.event_marks.peek(meter.agent.entry.entry_id, meter.key)
    last = meter.last_event
    return {
        "watched_since": marks.since.isoformat() if marks else None,
        "last_seen_per_log": {log: ts.isoformat() for log in marks.logs if (ts := marks.last(log))}
        if marks
        else {},
        "received": {str(verdict): count for verdict, count in meter.event_counts.items()},
        "last": None
        if last is None
        else {"ts": last.ts.isoformat(), "log": last.log, "code": last.code, "name": last.name},
    }


def _meter_state(meter: DlmsEdgeMeter) -> dict[str, Any]:
    return {
        "meter_online": meter.meter_online,
        "gone": meter.gone,
        "health": asdict(meter.health) if meter.health else None,
        "readings": {
            obis: asdict(reading)
            | ({"value": REDACTED} if obis.startswith(_IDENTIFYING_OBIS_PREFIXES) else {})
            for obis, reading in meter.readings.items()
        },
        "clock": _clock_state(meter),
        "events": _events_state(meter),
    }


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: DlmsEdgeConfigEntry
) -> dict[str, Any]:
    agent = entry.runtime_data
    return {
        "entry": async_redact_data(
            {
                # Meters and options are keyed by the meter's identity: listed instead.
                # (without the device name, which may carry the meter id).
                "data": dict(entry.data)
                | {CONF_METERS: [stored[CONF_INFO] for stored in entry.data[CONF_METERS].values()]},
                "options": {
                    CONF_EXCLUDED_OBJECTS: list(
                        entry.options.get(CONF_EXCLUDED_OBJECTS, {}).values()
                    )
                },
            },
            TO_REDACT,
        ),
        "state": {
            "broker_connected": agent.broker_connected,
            "agent_online": agent.agent_online,
            # Meters are keyed by their identity: numbered instead.
            "meters": [_meter_state(meter) for meter in agent.meters.values()],
            # Only the last topic level: the others carry the meter id.
            "malformed_topics": sorted(topic.rpartition("/")[2] for topic in agent.malformed),
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
    meter = next(
        (m for key, m in entry.runtime_data.meters.items() if (DOMAIN, key) in device.identifiers),
        None,
    )
    return await async_get_config_entry_diagnostics(hass, entry) | {
        # Without manufacturer and model the device name is built from the meter id.
        "device": async_redact_data(device_data, TO_REDACT | {"name"}),
        "meter": _meter_state(meter) if meter else None,
    }
