"""Logbook entries for the meters' events (the `dlms_edge_meter_event` bus event).

Each event the integration has not seen before is fired with the meter's time stamp as
its time (coordinator.py), so the logbook lists it where it happened: "Sagemcom T-210D
logged "Terminal cover removed" (fraud detection log)". The entry belongs to the meter's
device and, when it has one, to the meter's event entity.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from homeassistant.components.logbook.const import (
    LOGBOOK_ENTRY_ENTITY_ID,
    LOGBOOK_ENTRY_MESSAGE,
    LOGBOOK_ENTRY_NAME,
)
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.helpers import device_registry as dr

from .const import DOMAIN, EVENT_LOG_NAMES, EVENT_METER_EVENT

# Names and texts come from the broker: bounded, as the contract's payload is.
_MAX_TEXT = 255


def log_name(log: Any) -> str:
    """How the logbook names an event log: by its OBIS value groups C.D.E."""
    if not isinstance(log, str):
        return "event log"
    groups = log.split(".")
    return EVENT_LOG_NAMES.get(".".join(groups[2:5]), f"event log {log[:40]}")


def describe_message(data: Mapping[str, Any]) -> str:
    """The logbook message of one event's data."""
    text = data.get("text")
    if not isinstance(text, str) or not text:
        text = f"event {data.get('name')!s:.64}"
    message = f'logged "{text[:_MAX_TEXT]}" ({log_name(data.get("log"))})'
    if isinstance(status := data.get("clock_status"), list) and {
        "invalid_value",
        "doubtful_value",
    }.intersection(map(str, status)):
        message += ", time stamp flagged unreliable by the meter"
    return message


@callback
def async_describe_events(
    hass: HomeAssistant,
    async_describe_event: Callable[[str, str, Callable[[Event], dict[str, str]]], None],
) -> None:
    """Teach the logbook to show a meter event."""

    @callback
    def async_describe_meter_event(event: Event) -> dict[str, str]:
        data = event.data
        name = "Meter"
        if isinstance(device_id := data.get("device_id"), str) and (
            device := dr.async_get(hass).async_get(device_id)
        ):
            name = device.name_by_user or device.name or name
        described = {LOGBOOK_ENTRY_NAME: name, LOGBOOK_ENTRY_MESSAGE: describe_message(data)}
        if isinstance(entity_id := data.get("entity_id"), str):
            described[LOGBOOK_ENTRY_ENTITY_ID] = entity_id
        return described

    async_describe_event(DOMAIN, EVENT_METER_EVENT, async_describe_meter_event)
