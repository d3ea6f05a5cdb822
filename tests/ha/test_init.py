"""Set-up, unload, removal, repair issues and the problem sensor."""

from __future__ import annotations

from typing import Any
from unittest.mock import patch

import pytest
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import STATE_OFF, STATE_ON, STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import issue_registry as ir
from payloads import AGENT, BASE, METER, PREFIX, SERIAL, health_payload, info_payload
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.dlms_edge.const import DOMAIN, HEALTH_CODES
from custom_components.dlms_edge.issues import health_issue_id

PROBLEM = "binary_sensor.sagemcom_t_210d_problem"


async def test_unload_unsubscribes(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, mqtt_broker: Any, fire: Any
) -> None:
    await fire(f"{BASE}/1.0.1.7.0.255", '{"value": 10, "unit": "W"}')
    assert hass.states.get("sensor.sagemcom_t_210d_power_import").state == "10"
    mqtt_broker.async_subscribe.reset_mock()

    assert await hass.config_entries.async_unload(loaded_entry.entry_id)
    await hass.async_block_till_done()
    assert loaded_entry.state is ConfigEntryState.NOT_LOADED
    assert hass.states.get("sensor.sagemcom_t_210d_power_import").state == STATE_UNAVAILABLE
    # Nothing of ours listens any more: a message changes nothing and raises nothing.
    await fire(f"{BASE}/1.0.1.7.0.255", '{"value": 20, "unit": "W"}')
    assert hass.states.get("sensor.sagemcom_t_210d_power_import").state == STATE_UNAVAILABLE
    mqtt_data = hass.data["mqtt"]
    assert not [
        s
        for s in mqtt_data.client.subscriptions
        if s.topic.startswith(f"{PREFIX}/") and "+/+" not in s.topic
    ]


async def test_setup_retries_without_mqtt(
    hass: HomeAssistant, config_entry: MockConfigEntry
) -> None:
    config_entry.add_to_hass(hass)
    with patch("homeassistant.components.mqtt.async_wait_for_mqtt_client", return_value=False):
        await hass.config_entries.async_setup(config_entry.entry_id)
    assert config_entry.state is ConfigEntryState.SETUP_RETRY


@pytest.mark.parametrize("code", sorted(HEALTH_CODES))
async def test_health_problem_raises_and_clears_repair(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, fire: Any, code: str
) -> None:
    issues = ir.async_get(hass)
    issue_id = health_issue_id(loaded_entry)
    await fire(f"{BASE}/health", health_payload())
    assert issues.async_get_issue(DOMAIN, issue_id) is None
    assert hass.states.get(PROBLEM).state == STATE_OFF

    await fire(f"{BASE}/health", health_payload("problem", code, "tag mismatch"))
    issue = issues.async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.translation_key == code
    assert issue.translation_placeholders["message"] == "tag mismatch"
    assert issue.translation_placeholders["meter"] == loaded_entry.title
    assert not issue.is_fixable
    assert hass.states.get(PROBLEM).state == STATE_ON

    await fire(f"{BASE}/health", health_payload())
    assert issues.async_get_issue(DOMAIN, issue_id) is None
    assert hass.states.get(PROBLEM).state == STATE_OFF


async def test_health_code_change_replaces_issue(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, fire: Any
) -> None:
    issues = ir.async_get(hass)
    await fire(f"{BASE}/health", health_payload("problem", "unreachable", "no answer"))
    await fire(f"{BASE}/health", health_payload("problem", "wrong_key", "tag mismatch"))
    ours = [i for (domain, _), i in issues.issues.items() if domain == DOMAIN]
    assert [i.translation_key for i in ours] == ["wrong_key"]


@pytest.mark.parametrize(
    ("code", "severity", "message"),
    [
        ("bad_data", ir.IssueSeverity.WARNING, "data-notification: truncated"),
        ("access_denied", ir.IssueSeverity.ERROR, "read-write-denied: use a client SAP"),
    ],
)
async def test_codes_added_later_have_their_own_issue(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    fire: Any,
    code: str,
    severity: ir.IssueSeverity,
    message: str,
) -> None:
    """bad_data and access_denied joined the contract later: not the generic issue."""
    await fire(f"{BASE}/health", health_payload("problem", code, message))
    issue = ir.async_get(hass).async_get_issue(DOMAIN, health_issue_id(loaded_entry))
    assert issue is not None
    assert (issue.translation_key, issue.severity) == (code, severity)
    assert issue.translation_placeholders["message"] == message
    assert hass.states.get(PROBLEM).state == STATE_ON


async def test_unknown_health_code_uses_generic_issue(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, fire: Any
) -> None:
    await fire(f"{BASE}/health", health_payload("problem", "battery_low", "replace it"))
    issue = ir.async_get(hass).async_get_issue(DOMAIN, health_issue_id(loaded_entry))
    assert issue.translation_key == "other_problem"
    assert issue.translation_placeholders["code"] == "battery_low"


async def test_problem_sensor_survives_meter_offline(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, fire: Any
) -> None:
    await fire(f"{BASE}/health", health_payload("problem", "unreachable", "no answer"))
    await fire(f"{BASE}/availability", "offline")
    assert hass.states.get(PROBLEM).state == STATE_ON
    await fire(f"{PREFIX}/{AGENT}/status", "offline")
    assert hass.states.get(PROBLEM).state == STATE_UNAVAILABLE


async def test_unload_and_remove_drop_the_issue(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, fire: Any
) -> None:
    issues = ir.async_get(hass)
    issue_id = health_issue_id(loaded_entry)
    await fire(f"{BASE}/health", health_payload("problem", "wrong_key", "tag mismatch"))
    assert await hass.config_entries.async_unload(loaded_entry.entry_id)
    assert issues.async_get_issue(DOMAIN, issue_id) is None

    assert await hass.config_entries.async_setup(loaded_entry.entry_id)
    await hass.async_block_till_done()
    await fire(f"{BASE}/health", health_payload("problem", "wrong_key", "tag mismatch"))
    assert issues.async_get_issue(DOMAIN, issue_id) is not None
    assert await hass.config_entries.async_remove(loaded_entry.entry_id)
    await hass.async_block_till_done()
    assert issues.async_get_issue(DOMAIN, issue_id) is None
    assert dr.async_get(hass).async_get_device(identifiers={(DOMAIN, SERIAL)}) is None


async def test_meter_moving_agents_unlinks_old_agent_device(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, fire: Any
) -> None:
    registry = dr.async_get(hass)
    old_agent = registry.async_get_device(identifiers={(DOMAIN, f"agent:{AGENT}")})
    hass.config_entries.async_update_entry(
        loaded_entry,
        data={
            **loaded_entry.data,
            "agent": "pi-cellar",
            "info": loaded_entry.data["info"] | {"agent": "pi-cellar"},
        },
    )
    await hass.async_block_till_done()
    assert registry.async_get(old_agent.id) is None  # no config entry left: removed
    new_agent = registry.async_get_device(identifiers={(DOMAIN, "agent:pi-cellar")})
    meter = registry.async_get_device(identifiers={(DOMAIN, SERIAL)})
    assert meter.via_device_id == new_agent.id


async def test_device_removal_only_for_stale_devices(
    hass: HomeAssistant, loaded_entry: MockConfigEntry
) -> None:
    from custom_components.dlms_edge import async_remove_config_entry_device

    registry = dr.async_get(hass)
    meter = registry.async_get_device(identifiers={(DOMAIN, SERIAL)})
    agent = registry.async_get_device(identifiers={(DOMAIN, f"agent:{AGENT}")})
    stale = registry.async_get_or_create(
        config_entry_id=loaded_entry.entry_id, identifiers={(DOMAIN, "agent:gone")}
    )
    assert not await async_remove_config_entry_device(hass, loaded_entry, meter)
    assert not await async_remove_config_entry_device(hass, loaded_entry, agent)
    assert await async_remove_config_entry_device(hass, loaded_entry, stale)


async def test_two_meters_share_the_agent_device(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, fire: Any
) -> None:
    from custom_components.dlms_edge.coordinator import entry_data
    from custom_components.dlms_edge.models import MeterInfo

    second_info = MeterInfo.from_payload(
        info_payload(meter="KFM1", serial="KFM1", system_title=None, model="MA309")
    )
    second = MockConfigEntry(
        domain=DOMAIN, unique_id="KFM1", title="Kaifa", data=entry_data(PREFIX, second_info)
    )
    second.add_to_hass(hass)
    assert await hass.config_entries.async_setup(second.entry_id)
    await hass.async_block_till_done()
    registry = dr.async_get(hass)
    agent = registry.async_get_device(identifiers={(DOMAIN, f"agent:{AGENT}")})
    assert agent.config_entries == {loaded_entry.entry_id, second.entry_id}
    # The broker replays the agent's retained status to the new subscription.
    await fire(f"{PREFIX}/{AGENT}/status", "online", retain=True)
    await fire(f"{PREFIX}/{AGENT}/KFM1/availability", "online")
    await fire(f"{PREFIX}/{AGENT}/KFM1/1.0.1.7.0.255", '{"value": 7, "unit": "W"}')
    await fire(f"{BASE}/1.0.1.7.0.255", '{"value": 8, "unit": "W"}')
    assert hass.states.get("sensor.sagemcom_ma309_power_import").state == "7"
    assert hass.states.get("sensor.sagemcom_t_210d_power_import").state == "8"
    assert METER != "KFM1"
