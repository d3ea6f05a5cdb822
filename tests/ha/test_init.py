"""Set-up, unload, removal, repair issues, the problem sensor, meters that come and go,
and the MQTT connection."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any
from unittest.mock import patch

import pytest
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import STATE_OFF, STATE_ON, STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers import issue_registry as ir
from homeassistant.util import dt as dt_util
from payloads import (
    AGENT,
    BASE,
    INFO,
    PREFIX,
    SERIAL,
    SYSTEM_TITLE,
    health_payload,
    info_payload,
    value_payload,
)
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    MockMqttReasonCode,
    async_fire_time_changed,
)
from registry import device_of, domain_devices

from custom_components.dlms_edge.const import AGENT_OFFLINE_ISSUE_SECONDS, DOMAIN, HEALTH_CODES
from custom_components.dlms_edge.issues import (
    agent_offline_issue_id,
    health_issue_id,
    meter_removed_issue_id,
)

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
    issue_id = health_issue_id(loaded_entry, SERIAL)
    await fire(f"{BASE}/health", health_payload())
    assert issues.async_get_issue(DOMAIN, issue_id) is None
    assert hass.states.get(PROBLEM).state == STATE_OFF

    await fire(f"{BASE}/health", health_payload("problem", code, "tag mismatch"))
    issue = issues.async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.translation_key == code
    assert issue.translation_placeholders["message"] == "tag mismatch"
    assert issue.translation_placeholders["meter"] == "Sagemcom T-210D"
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
    issue = ir.async_get(hass).async_get_issue(DOMAIN, health_issue_id(loaded_entry, SERIAL))
    assert issue is not None
    assert (issue.translation_key, issue.severity) == (code, severity)
    assert issue.translation_placeholders["message"] == message
    assert hass.states.get(PROBLEM).state == STATE_ON


async def test_unknown_health_code_uses_generic_issue(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, fire: Any
) -> None:
    await fire(f"{BASE}/health", health_payload("problem", "battery_low", "replace it"))
    issue = ir.async_get(hass).async_get_issue(DOMAIN, health_issue_id(loaded_entry, SERIAL))
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
    issue_id = health_issue_id(loaded_entry, SERIAL)
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
    assert not domain_devices(hass)


KFM1 = f"{PREFIX}/{AGENT}/KFM1"
POWER = "sensor.sagemcom_t_210d_power_import"
CONNECTIVITY = "binary_sensor.pi_kitchen_agent_status"


def kaifa(**changes: Any) -> str:
    """The info of a Kaifa MA309 with meter id KFM1 on the same agent."""
    kaifa_ma309 = {
        "meter": "KFM1",
        "serial": "KFM1",
        "system_title": None,
        "manufacturer": "Kaifa",
        "model": "MA309",
    }
    return info_payload(**(kaifa_ma309 | changes))


async def test_meters_are_devices_of_one_agent_entry(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, fire: Any
) -> None:
    """A second meter of the agent appears by itself, under the same agent device."""
    await fire(f"{KFM1}/1.0.1.7.0.255", value_payload(7, "W"))  # before its info
    await fire(f"{KFM1}/availability", "online")
    await fire(f"{KFM1}/info", kaifa())
    devices = domain_devices(hass)
    agents = [d for d in devices if (DOMAIN, f"agent:{AGENT}") in d.identifiers]
    assert len(agents) == 1
    meters = {d.name: d for d in devices if d not in agents}
    assert set(meters) == {"Sagemcom T-210D", "Kaifa MA309"}
    assert all(d.via_device_id == agents[0].id for d in meters.values())
    assert (meters["Kaifa MA309"].model, meters["Kaifa MA309"].serial_number) == ("MA309", "KFM1")
    # Stored, so the entities exist at the next start before the broker replays.
    assert set(loaded_entry.data["meters"]) == {SERIAL, "KFM1"}
    # The value that came before the info is shown.
    assert hass.states.get("sensor.kaifa_ma309_power_import").state == "7"
    await fire(f"{BASE}/1.0.1.7.0.255", value_payload(8, "W"))
    assert hass.states.get(POWER).state == "8"


async def test_same_make_and_model_get_distinct_names(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, fire: Any
) -> None:
    await fire(
        f"{PREFIX}/{AGENT}/1SAG2/info",
        info_payload(meter="1SAG2", serial="1SAG2", system_title="5341477df129c271"),
    )
    names = sorted(d.name for d in domain_devices(hass) if d.model == "T-210D")
    assert names == ["Sagemcom T-210D", "Sagemcom T-210D 1SAG2"]
    assert er.async_get(hass).async_get_entity_id("sensor", DOMAIN, "1SAG2_1.0.1.7.0.255") == (
        "sensor.sagemcom_t_210d_1sag2_power_import"
    )


async def test_cleared_meter_is_offered_for_removal(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, fire: Any, hass_client: Any
) -> None:
    """The agent clears a meter's retained topics: a repair removes its device."""
    from homeassistant.setup import async_setup_component

    assert await async_setup_component(hass, "repairs", {})
    await fire(f"{KFM1}/info", kaifa())
    await fire(f"{KFM1}/availability", "online")
    await fire(f"{KFM1}/1.0.1.7.0.255", value_payload(7, "W"))
    kaifa_power = "sensor.kaifa_ma309_power_import"
    assert hass.states.get(kaifa_power).state == "7"

    for leaf in ("info", "availability", "health", "1.0.1.7.0.255"):
        await fire(f"{KFM1}/{leaf}", "", retain=True)
    assert hass.states.get(kaifa_power).state == STATE_UNAVAILABLE
    issue_id = meter_removed_issue_id(loaded_entry, "KFM1")
    issue = ir.async_get(hass).async_get_issue(DOMAIN, issue_id)
    assert issue is not None and issue.is_fixable
    assert issue.translation_placeholders["meter"] == "Kaifa MA309"
    # The other meter is untouched.
    await fire(f"{BASE}/1.0.1.7.0.255", value_payload(8, "W"))
    assert hass.states.get(POWER).state == "8"

    # The user's path: Settings → Repairs → the issue → Submit.
    client = await hass_client()
    response = await client.post(
        "/api/repairs/issues/fix", json={"handler": DOMAIN, "issue_id": issue_id}
    )
    assert response.status == 200
    flow = await response.json()
    assert flow["step_id"] == "confirm"
    assert flow["description_placeholders"]["meter"] == "Kaifa MA309"
    response = await client.post(f"/api/repairs/issues/fix/{flow['flow_id']}", json={})
    assert response.status == 200
    assert (await response.json())["type"] == "create_entry"
    await hass.async_block_till_done()
    assert device_of(hass, loaded_entry, "KFM1") is None
    assert er.async_get(hass).async_get_entity_id("sensor", DOMAIN, "KFM1_1.0.1.7.0.255") is None
    assert list(loaded_entry.data["meters"]) == [SERIAL]
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None
    assert device_of(hass, loaded_entry, SERIAL) is not None


async def test_meter_back_closes_the_removal_issue(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, fire: Any
) -> None:
    await fire(f"{BASE}/info", "", retain=True)
    issue_id = meter_removed_issue_id(loaded_entry, SERIAL)
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is not None
    await fire(f"{BASE}/info", info_payload())
    await fire(f"{BASE}/availability", "online")
    await fire(f"{BASE}/1.0.1.7.0.255", value_payload(9, "W"))
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None
    assert hass.states.get(POWER).state == "9"


async def test_device_removal_only_for_meters_that_left(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, fire: Any
) -> None:
    from custom_components.dlms_edge import async_remove_config_entry_device

    meter = device_of(hass, loaded_entry, SERIAL)
    agent = device_of(hass, loaded_entry, f"agent:{AGENT}")
    assert not await async_remove_config_entry_device(hass, loaded_entry, meter)
    assert not await async_remove_config_entry_device(hass, loaded_entry, agent)
    await fire(f"{BASE}/info", "", retain=True)
    assert await async_remove_config_entry_device(hass, loaded_entry, meter)
    assert loaded_entry.data["meters"] == {}


async def test_serial_arriving_later_keeps_the_meter(
    hass: HomeAssistant, mqtt_broker: Any, fire: Any
) -> None:
    """Keyed by system title until the serial is known; then updated, not duplicated."""
    from custom_components.dlms_edge.coordinator import entry_data
    from custom_components.dlms_edge.models import MeterInfo

    info = MeterInfo.from_payload(info_payload(serial=None))
    entry = MockConfigEntry(
        domain=DOMAIN,
        version=2,
        unique_id=AGENT,
        title=AGENT,
        data=entry_data(PREFIX, AGENT, [info]),
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    registry = er.async_get(hass)
    before = {
        e.unique_id: e.entity_id
        for e in er.async_entries_for_config_entry(registry, entry.entry_id)
    }
    assert f"{SYSTEM_TITLE}_1.0.1.7.0.255" in before

    await fire(f"{BASE}/info", info_payload())
    after = {
        e.unique_id: e.entity_id
        for e in er.async_entries_for_config_entry(registry, entry.entry_id)
    }
    assert after == before
    device = device_of(hass, entry, SYSTEM_TITLE)
    assert device is not None and device.serial_number == SERIAL
    assert len(domain_devices(hass)) == 2  # the agent and this meter
    assert list(entry.data["meters"]) == [SYSTEM_TITLE]
    assert entry.data["meters"][SYSTEM_TITLE]["info"]["serial"] == SERIAL


async def test_shorter_info_keeps_renamed_entities(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, fire: Any
) -> None:
    """An object missing from one info keeps its registry entry, name and id."""
    registry = er.async_get(hass)
    voltage = registry.async_get_entity_id("sensor", DOMAIN, f"{SERIAL}_1.0.32.7.0.255")
    registry.async_update_entity(voltage, name="Grid voltage", new_entity_id="sensor.grid_voltage")
    shorter = [o for o in INFO["objects"] if o["obis"] != "1.0.32.7.0.255"]
    await fire(f"{BASE}/info", info_payload(objects=shorter))
    await hass.config_entries.async_reload(loaded_entry.entry_id)
    await hass.async_block_till_done()
    kept = registry.async_get("sensor.grid_voltage")
    assert kept is not None and kept.name == "Grid voltage"
    assert kept.unique_id == f"{SERIAL}_1.0.32.7.0.255"
    await fire(f"{BASE}/info", info_payload())
    assert registry.async_get_entity_id("sensor", DOMAIN, f"{SERIAL}_1.0.32.7.0.255") == (
        "sensor.grid_voltage"
    )


async def test_another_meter_under_the_same_id(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, fire: Any
) -> None:
    """A meter swapped behind the same meter id: a new device; the old one left."""
    await fire(
        f"{BASE}/info",
        info_payload(serial="1SAG99", system_title="5341477df1290000", model="T-210D-r"),
    )
    assert device_of(hass, loaded_entry, "1SAG99") is not None
    assert device_of(hass, loaded_entry, SERIAL) is not None
    issue = ir.async_get(hass).async_get_issue(DOMAIN, meter_removed_issue_id(loaded_entry, SERIAL))
    assert issue is not None
    await fire(f"{BASE}/1.0.1.7.0.255", value_payload(3, "W"))
    await fire(f"{BASE}/availability", "online")
    assert hass.states.get("sensor.sagemcom_t_210d_r_power_import").state == "3"
    assert hass.states.get(POWER).state == STATE_UNAVAILABLE


async def test_broker_connection_loss_makes_entities_unavailable(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    mqtt_client_mock: Any,
    fire: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await fire(f"{BASE}/1.0.1.7.0.255", value_payload(10, "W"))
    await fire(f"{BASE}/health", health_payload())
    assert hass.states.get(POWER).state == "10"
    assert hass.states.get(CONNECTIVITY).state == STATE_ON
    caplog.set_level(logging.INFO, logger="custom_components.dlms_edge")
    caplog.clear()

    mqtt_client_mock.on_disconnect(None, None, 0, MockMqttReasonCode())
    await hass.async_block_till_done()
    for entity_id in (POWER, PROBLEM, CONNECTIVITY):
        assert hass.states.get(entity_id).state == STATE_UNAVAILABLE, entity_id
    mqtt_client_mock.on_disconnect(None, None, 0, MockMqttReasonCode())
    await hass.async_block_till_done()
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("custom_components")]
    assert ours == [
        "The MQTT connection of Home Assistant is offline; its entities are unavailable"
    ]

    mqtt_client_mock.on_connect(None, None, 0, MockMqttReasonCode())
    await hass.async_block_till_done()
    assert hass.states.get(POWER).state == STATE_UNAVAILABLE  # nothing replayed yet
    # The broker replays the retained state to the renewed subscriptions.
    await fire(f"{PREFIX}/{AGENT}/status", "online", retain=True)
    await fire(f"{BASE}/availability", "online", retain=True)
    await fire(f"{BASE}/1.0.1.7.0.255", value_payload(11, "W"), retain=True)
    assert hass.states.get(POWER).state == "11"
    assert hass.states.get(CONNECTIVITY).state == STATE_ON
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("custom_components")]
    assert ours[-1] == "The MQTT connection of Home Assistant is back online"
    assert len(ours) == 2


async def test_agent_offline_logged_once_and_repaired_after_a_while(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    fire: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="custom_components.dlms_edge")
    issue_id = agent_offline_issue_id(loaded_entry)
    await fire(f"{PREFIX}/{AGENT}/status", "offline")
    await fire(f"{PREFIX}/{AGENT}/status", "offline")
    assert hass.states.get(CONNECTIVITY).state == STATE_OFF
    assert hass.states.get(POWER).state == STATE_UNAVAILABLE
    assert caplog.text.count(f"Agent {AGENT} is offline") == 1
    async_fire_time_changed(
        hass, dt_util.utcnow() + timedelta(seconds=AGENT_OFFLINE_ISSUE_SECONDS - 60)
    )
    await hass.async_block_till_done()
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None  # a restart is short
    async_fire_time_changed(
        hass, dt_util.utcnow() + timedelta(seconds=AGENT_OFFLINE_ISSUE_SECONDS + 1)
    )
    await hass.async_block_till_done()
    issue = ir.async_get(hass).async_get_issue(DOMAIN, issue_id)
    assert issue is not None and issue.translation_placeholders["agent"] == AGENT

    await fire(f"{PREFIX}/{AGENT}/status", "online")
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None
    assert hass.states.get(CONNECTIVITY).state == STATE_ON
    assert caplog.text.count(f"Agent {AGENT} is back online") == 1


async def test_meter_offline_logged_once(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, fire: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="custom_components.dlms_edge")
    for _ in range(3):
        await fire(f"{BASE}/availability", "offline")
    for _ in range(3):
        await fire(f"{BASE}/availability", "online")
    meter = f"Meter Sagemcom T-210D of agent {AGENT}"
    assert caplog.text.count(f"{meter} is offline; its entities are unavailable") == 1
    assert caplog.text.count(f"{meter} is back online") == 1


async def test_meter_cleared_while_home_assistant_was_away(
    hass: HomeAssistant, mqtt_broker: Any, config_entry: MockConfigEntry, fire: Any
) -> None:
    """No empty info to see: a stored meter whose info the broker no longer replays."""
    from custom_components.dlms_edge.coordinator import ABSENT_METER_SECONDS

    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    # The replay after subscribing: the agent's status and another meter, not ours.
    await fire(f"{PREFIX}/{AGENT}/status", "online", retain=True)
    await fire(f"{KFM1}/info", kaifa(), retain=True)
    issue_id = meter_removed_issue_id(config_entry, SERIAL)
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=ABSENT_METER_SECONDS - 5))
    await hass.async_block_till_done()
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=ABSENT_METER_SECONDS + 1))
    await hass.async_block_till_done()
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is not None
    assert (
        ir.async_get(hass).async_get_issue(DOMAIN, meter_removed_issue_id(config_entry, "KFM1"))
        is None
    )
    # It was only late: its info closes the issue.
    await fire(f"{BASE}/info", info_payload())
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None


async def test_meter_shown_by_another_agent_is_not_duplicated(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, fire: Any, caplog: pytest.LogCaptureFixture
) -> None:
    from custom_components.dlms_edge.coordinator import entry_data
    from custom_components.dlms_edge.models import MeterInfo

    cellar_info = MeterInfo.from_payload(kaifa(agent="pi-cellar"))
    cellar = MockConfigEntry(
        domain=DOMAIN,
        version=2,
        unique_id="pi-cellar",
        title="pi-cellar",
        data=entry_data(PREFIX, "pi-cellar", [cellar_info]),
    )
    cellar.add_to_hass(hass)
    assert await hass.config_entries.async_setup(cellar.entry_id)
    await hass.async_block_till_done()
    # The meter moved to pi-kitchen while pi-cellar still publishes it.
    await fire(f"{KFM1}/info", kaifa())
    await fire(f"{KFM1}/info", kaifa(firmware="2"))
    assert "KFM1" not in loaded_entry.data["meters"]
    assert device_of(hass, loaded_entry, "KFM1") is None
    assert caplog.text.count("which agent pi-cellar already shows") == 1
    assert "does not generate unique IDs" not in caplog.text
