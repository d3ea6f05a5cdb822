"""Logbook entries of the meters' events, read back as the frontend does
(`logbook/get_events` over the websocket API) from the recorder's database."""

from __future__ import annotations

import importlib.util
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
from payloads import (
    AGENT,
    BASE,
    FRAUD_LOG,
    POWER_FAILURE_LOG,
    PREFIX,
    SERIAL,
    event_payload,
    info_payload,
)
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.recorder.common import (
    async_wait_recording_done,
)
from pytest_homeassistant_custom_component.typing import WebSocketGenerator
from registry import device_of

from custom_components.dlms_edge.const import DOMAIN, EVENT_METER_EVENT
from custom_components.dlms_edge.logbook import describe_message, log_name

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
UNRELIABLE = (
    'logged "Clock invalid" (standard event log), time stamp flagged unreliable by the meter'
)
MINUTE = timedelta(minutes=1)
EVENTS = "event.sagemcom_t_210d_events"


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(quiet_recorder: None) -> None:
    """The recorder before `hass` (conftest.quiet_recorder)."""


async def setup_logbook(hass: HomeAssistant) -> None:
    """The logbook; today's test harness lacks the frontend's package (hass_frontend),
    which the logbook depends on only to register its panel: counted as set up then."""
    if importlib.util.find_spec("hass_frontend") is None:
        hass.config.components.add("frontend")
    assert await async_setup_component(hass, "logbook", {})


async def _entries(
    hass: HomeAssistant, client: Any, start: datetime, end: datetime, **query: Any
) -> list[dict[str, Any]]:
    await async_wait_recording_done(hass)
    await client.send_json_auto_id(
        {
            "type": "logbook/get_events",
            "start_time": start.isoformat(),
            "end_time": end.isoformat(),
            **query,
        }
    )
    response = await client.receive_json()
    assert response["success"], response
    return [entry for entry in response["result"] if entry.get("domain") == DOMAIN]


async def test_meter_events_in_the_logbook_at_the_meters_time(
    hass: HomeAssistant,
    hass_ws_client: WebSocketGenerator,
    mqtt_broker: Any,
    freezer: FrozenDateTimeFactory,
    config_entry: MockConfigEntry,
    fire: Any,
) -> None:
    await setup_logbook(hass)
    client = await hass_ws_client()  # signed in before time moves back to T0
    freezer.move_to(T0)
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    await fire(f"{PREFIX}/{AGENT}/status", "online", retain=True)
    await fire(f"{BASE}/info", info_payload(), retain=True)
    await fire(f"{BASE}/availability", "online", retain=True)

    # The agent's first read: yesterday's events (history), then, later, a new one.
    power_down, power_up = T0 - timedelta(hours=20), T0 - timedelta(hours=19)
    await fire(f"{BASE}/event", event_payload(power_down, 1))
    await fire(f"{BASE}/event", event_payload(power_up, 2))
    await fire(
        f"{BASE}/event",
        event_payload(power_up, None, POWER_FAILURE_LOG, raw={"0.0.96.7.19.255": 3600}),
    )
    freezer.tick(10 * MINUTE)
    removed = T0 + 4 * MINUTE
    await fire(f"{BASE}/event", event_payload(removed, 40, FRAUD_LOG))
    await fire(f"{BASE}/event", event_payload(removed, 40, FRAUD_LOG))  # QoS 1 repeat
    await fire(
        f"{BASE}/event",
        event_payload(datetime(2000, 1, 1, tzinfo=UTC), 6, status=["invalid_value"]),
    )
    await hass.async_block_till_done()

    device = device_of(hass, config_entry, SERIAL)
    window = (T0 - timedelta(days=2), T0 + timedelta(hours=2))
    entries = await _entries(hass, client, *window, device_ids=[device.id])
    assert [(entry["when"], entry["message"]) for entry in entries] == [
        (power_down.timestamp(), 'logged "Power down" (standard event log)'),
        (power_up.timestamp(), 'logged "Power up" (standard event log)'),
        (power_up.timestamp(), 'logged "Long power failure" (power failure log)'),
        (removed.timestamp(), 'logged "Terminal cover removed" (fraud detection log)'),
        (
            (T0 + 10 * MINUTE).timestamp(),
            UNRELIABLE,
        ),
    ]
    for entry in entries:
        assert entry["name"] == "Sagemcom T-210D"
        assert entry["entity_id"] == EVENTS
    # The event entity's own logbook lists them too.
    assert len(await _entries(hass, client, *window, entity_ids=[EVENTS])) == 5


async def test_describe_survives_any_event_data(
    hass: HomeAssistant,
    mqtt_broker: Any,
    hass_ws_client: WebSocketGenerator,
    config_entry: MockConfigEntry,
) -> None:
    """The bus event can be fired by anyone (`event` service, developer tools): the
    logbook describes whatever it carries without failing."""
    await setup_logbook(hass)
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    for data in (
        {},
        {"device_id": "no-such-device", "text": 5, "log": None, "clock_status": "x"},
        {"text": "", "name": "power_down", "log": "1.2", "entity_id": 3},
    ):
        hass.bus.async_fire(EVENT_METER_EVENT, data)
    await hass.async_block_till_done()
    now = datetime.now(UTC)
    entries = await _entries(hass, await hass_ws_client(), now - timedelta(hours=1), now)
    assert [(entry["name"], entry["message"]) for entry in entries] == [
        ("Meter", 'logged "event None" (event log)'),
        ("Meter", 'logged "event None" (event log)'),
        ("Meter", 'logged "event power_down" (event log 1.2)'),
    ]


def test_log_names() -> None:
    assert log_name("0.0.99.98.0.255") == "standard event log"
    assert log_name("0.0.99.98.4.255") == "power quality event log"
    assert log_name("1.0.99.97.0.255") == "power failure log"
    assert log_name("0.0.99.98.9.255") == "event log 0.0.99.98.9.255"
    assert describe_message({"text": "x" * 1000, "log": FRAUD_LOG}).count("x") == 255
