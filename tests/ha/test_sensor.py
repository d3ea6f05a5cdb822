"""Sensors: states, units and Energy-dashboard attributes from MQTT messages."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from homeassistant.components.sensor import ATTR_STATE_CLASS, SensorDeviceClass, SensorStateClass
from homeassistant.const import (
    ATTR_DEVICE_CLASS,
    ATTR_UNIT_OF_MEASUREMENT,
    STATE_UNAVAILABLE,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from payloads import (
    AGENT,
    BASE,
    INFO,
    MAX_DEMAND,
    MAX_DEMAND_COMPUTED,
    MAX_DEMAND_REGISTER,
    PREFIX,
    SERIAL,
    clock_payload,
    info_payload,
    value_payload,
)
from pytest_homeassistant_custom_component.common import MockConfigEntry
from registry import device_of

from custom_components.dlms_edge.const import DOMAIN

HAS_REACTIVE_ENERGY = hasattr(SensorDeviceClass, "REACTIVE_ENERGY")
ENERGY_IMPORT = "sensor.sagemcom_t_210d_energy_import"
POWER_IMPORT = "sensor.sagemcom_t_210d_power_import"


def entity_id(hass: HomeAssistant, obis: str) -> str:
    found = er.async_get(hass).async_get_entity_id("sensor", DOMAIN, f"{SERIAL}_{obis}")
    assert found is not None, obis
    return found


@pytest.mark.parametrize(
    ("obis", "value", "unit", "expected_entity", "state", "ha_unit", "device_class", "state_class"),
    [
        (
            "1.0.1.8.0.255",
            1234567,
            "Wh",
            ENERGY_IMPORT,
            "1234.567",
            "kWh",
            "energy",
            "total_increasing",
        ),
        (
            "1.0.2.8.0.255",
            5000,
            "Wh",
            "sensor.sagemcom_t_210d_energy_export",
            "5.0",
            "kWh",
            "energy",
            "total_increasing",
        ),
        (
            "1.0.1.8.1.255",
            1000,
            "Wh",
            "sensor.sagemcom_t_210d_energy_import_tariff_1",
            "1.0",
            "kWh",
            "energy",
            "total_increasing",
        ),
        # Where Home Assistant has the reactive_energy class it converts to kvarh.
        (
            "1.0.3.8.0.255",
            42,
            "varh",
            "sensor.sagemcom_t_210d_reactive_energy_import",
            *(
                ("0.042", "kvarh", "reactive_energy")
                if HAS_REACTIVE_ENERGY
                else ("42", "varh", None)
            ),
            "total_increasing",
        ),
        ("1.0.1.7.0.255", 1520, "W", POWER_IMPORT, "1520", "W", "power", "measurement"),
        (
            "1.0.3.7.0.255",
            80,
            "var",
            "sensor.sagemcom_t_210d_reactive_power_import",
            "80",
            "var",
            "reactive_power",
            "measurement",
        ),
        (
            "1.0.9.7.0.255",
            1600,
            "VA",
            "sensor.sagemcom_t_210d_apparent_power_import",
            "1600",
            "VA",
            "apparent_power",
            "measurement",
        ),
        (
            "1.0.32.7.0.255",
            231.4,
            "V",
            "sensor.sagemcom_t_210d_voltage_l1",
            "231.4",
            "V",
            "voltage",
            "measurement",
        ),
        (
            "1.0.31.7.0.255",
            6.57,
            "A",
            "sensor.sagemcom_t_210d_current_l1",
            "6.57",
            "A",
            "current",
            "measurement",
        ),
        (
            "1.0.13.7.0.255",
            0.98,
            None,
            "sensor.sagemcom_t_210d_power_factor",
            "0.98",
            None,
            "power_factor",
            "measurement",
        ),
        (
            "1.0.14.7.0.255",
            49.98,
            "Hz",
            "sensor.sagemcom_t_210d_frequency",
            "49.98",
            "Hz",
            "frequency",
            "measurement",
        ),
    ],
)
async def test_states_units_and_classes(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    fire: Any,
    obis: str,
    value: float,
    unit: str | None,
    expected_entity: str,
    state: str,
    ha_unit: str | None,
    device_class: str | None,
    state_class: str,
) -> None:
    assert entity_id(hass, obis) == expected_entity
    await fire(f"{BASE}/{obis}", value_payload(value, unit, obis))
    current = hass.states.get(expected_entity)
    assert current is not None
    assert current.state == state
    assert current.attributes.get(ATTR_UNIT_OF_MEASUREMENT) == ha_unit
    assert current.attributes.get(ATTR_DEVICE_CLASS) == device_class
    assert current.attributes.get(ATTR_STATE_CLASS) == state_class


async def test_energy_sensors_fit_the_energy_dashboard(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, fire: Any
) -> None:
    """The Energy dashboard lists sensors of class energy that are total(_increasing)."""
    for obis in ("1.0.1.8.0.255", "1.0.2.8.0.255"):
        await fire(f"{BASE}/{obis}", value_payload(1000, "Wh", obis))
        state = hass.states.get(entity_id(hass, obis))
        assert state.attributes[ATTR_DEVICE_CLASS] == SensorDeviceClass.ENERGY
        assert state.attributes[ATTR_STATE_CLASS] == SensorStateClass.TOTAL_INCREASING
        assert state.attributes[ATTR_UNIT_OF_MEASUREMENT] in ("Wh", "kWh")


async def test_device_and_via_agent(hass: HomeAssistant, loaded_entry: MockConfigEntry) -> None:
    meter = device_of(hass, loaded_entry, SERIAL)
    agent = device_of(hass, loaded_entry, f"agent:{AGENT}")
    assert meter is not None and agent is not None
    assert (meter.manufacturer, meter.model, meter.serial_number, meter.sw_version) == (
        "Sagemcom",
        "T-210D",
        SERIAL,
        "1.2.3",
    )
    assert meter.via_device_id == agent.id
    assert agent.sw_version == "0.1.0"


async def test_unknown_obis_is_generic_and_disabled(
    hass: HomeAssistant, loaded_entry: MockConfigEntry
) -> None:
    registry = er.async_get(hass)
    device_id = registry.async_get(entity_id(hass, "0.0.96.1.0.255"))
    assert device_id.disabled_by is er.RegistryEntryDisabler.INTEGRATION
    assert device_id.original_name == "Device ID 1"
    clock = registry.async_get(entity_id(hass, "0.0.1.0.0.255"))
    assert clock.disabled_by is er.RegistryEntryDisabler.INTEGRATION
    assert clock.original_device_class == SensorDeviceClass.TIMESTAMP
    # Known codes are enabled and named by translation.
    energy = registry.async_get(ENERGY_IMPORT)
    assert energy.disabled_by is None
    assert energy.translation_key == "energy_import"


async def test_generic_sensors_once_enabled(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, fire: Any
) -> None:
    registry = er.async_get(hass)
    for obis in ("0.0.96.1.0.255", "0.0.1.0.0.255"):
        registry.async_update_entity(entity_id(hass, obis), disabled_by=None)
    await hass.config_entries.async_reload(loaded_entry.entry_id)
    await hass.async_block_till_done()
    await fire(f"{PREFIX}/{AGENT}/status", "online")
    await fire(f"{BASE}/availability", "online")
    await fire(f"{BASE}/0.0.96.1.0.255", value_payload("1SAG67929081"))
    await fire(f"{BASE}/0.0.1.0.0.255", value_payload("2026-11-25T01:00:00Z"))
    assert hass.states.get(entity_id(hass, "0.0.96.1.0.255")).state == "1SAG67929081"
    assert hass.states.get(entity_id(hass, "0.0.1.0.0.255")).state == "2026-11-25T01:00:00+00:00"
    # Structures render as compact JSON text; a clock without deviation is local time.
    await fire(f"{BASE}/0.0.96.1.0.255", value_payload([1, "a"]))
    assert hass.states.get(entity_id(hass, "0.0.96.1.0.255")).state == '[1,"a"]'
    await hass.config.async_set_time_zone("Europe/Vienna")
    await fire(f"{BASE}/0.0.1.0.0.255", value_payload("2026-11-25T02:00:00"))
    assert hass.states.get(entity_id(hass, "0.0.1.0.0.255")).state == "2026-11-25T01:00:00+00:00"


async def test_availability_needs_agent_meter_and_value(
    hass: HomeAssistant, mqtt_broker: Any, config_entry: MockConfigEntry, fire: Any
) -> None:
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    topic = f"{BASE}/1.0.1.7.0.255"

    assert hass.states.get(POWER_IMPORT).state == STATE_UNAVAILABLE
    await fire(topic, value_payload(100, "W"))
    assert hass.states.get(POWER_IMPORT).state == STATE_UNAVAILABLE  # agent status unknown
    await fire(f"{PREFIX}/{AGENT}/status", "online")
    assert hass.states.get(POWER_IMPORT).state == STATE_UNAVAILABLE  # meter unknown
    await fire(f"{BASE}/availability", "online")
    assert hass.states.get(POWER_IMPORT).state == "100"
    await fire(f"{BASE}/availability", "offline")
    assert hass.states.get(POWER_IMPORT).state == STATE_UNAVAILABLE
    await fire(f"{BASE}/availability", "online")
    assert hass.states.get(POWER_IMPORT).state == "100"
    # Last Will of the agent.
    await fire(f"{PREFIX}/{AGENT}/status", "offline")
    assert hass.states.get(POWER_IMPORT).state == STATE_UNAVAILABLE
    await fire(f"{PREFIX}/{AGENT}/status", "online")
    # A sensor without any value stays unavailable while everything is online.
    assert hass.states.get("sensor.sagemcom_t_210d_frequency").state == STATE_UNAVAILABLE


@pytest.mark.parametrize(
    ("topic_leaf", "payload"),
    [
        ("1.0.1.7.0.255", "not json"),
        ("1.0.1.7.0.255", "[1, 2]"),
        ("1.0.1.7.0.255", '{"unit": "W"}'),
        ("1.0.1.7.0.255", '{"value": {"nested": 1}}'),
        ("1.0.1.7.0.255", '{"value": "fast"}'),
        ("1.0.1.7.0.255", '{"value": 5, "unit": "kW"}'),
        ("1.0.1.7.0.255", b"\xff\xfe"),
    ],
)
async def test_malformed_value_is_ignored_and_logged_once(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    fire: Any,
    caplog: pytest.LogCaptureFixture,
    topic_leaf: str,
    payload: str | bytes,
) -> None:
    topic = f"{BASE}/{topic_leaf}"
    await fire(topic, value_payload(100, "W"))
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="custom_components.dlms_edge"):
        for _ in range(5):
            await fire(topic, payload)
        assert hass.states.get(POWER_IMPORT).state == "100"
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1
        assert topic in warnings[0].getMessage()
        await fire(topic, value_payload(200, "W"))
        assert hass.states.get(POWER_IMPORT).state == "200"
        assert any("Valid messages again" in r.getMessage() for r in caplog.records)
        # After recovery, the next malformed message is reported again, once.
        caplog.clear()
        await fire(topic, payload)
        await fire(topic, payload)
        assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1


@pytest.mark.parametrize(
    ("topic", "payload"),
    [
        (f"{BASE}/availability", "maybe"),
        (f"{PREFIX}/{AGENT}/status", "1"),
        (f"{BASE}/health", '{"state": "broken"}'),
        (f"{BASE}/info", '{"agent": "pi-kitchen"}'),
    ],
)
async def test_malformed_control_messages_change_nothing(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    fire: Any,
    caplog: pytest.LogCaptureFixture,
    topic: str,
    payload: str,
) -> None:
    await fire(f"{BASE}/1.0.1.7.0.255", value_payload(100, "W"))
    await fire(topic, payload)
    await fire(topic, payload)
    assert hass.states.get(POWER_IMPORT).state == "100"
    assert loaded_entry.state.recoverable  # still loaded, not reloaded into an error
    assert caplog.text.count(f"Ignoring malformed message on {topic}") == 1


async def test_state_and_profile_topics_are_not_values(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, fire: Any, caplog: pytest.LogCaptureFixture
) -> None:
    await fire(f"{BASE}/state", '{"ts": "2026-11-25T01:00:00Z", "values": {}}')
    await fire(f"{BASE}/profile/1.0.99.1.0.255", '{"ts": "x", "values": {}}', retain=False)
    assert "malformed" not in caplog.text


async def test_new_info_adds_sensors_and_updates_device(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, fire: Any
) -> None:
    objects = INFO["objects"] + [
        {
            "obis": "1.0.52.7.0.255",
            "name": "Voltage L2",
            "class_id": 3,
            "unit": "V",
            "device_class": "voltage",
            "state_class": "measurement",
        }
    ]
    await fire(f"{BASE}/info", info_payload(objects=objects, firmware="1.2.4"))
    await hass.async_block_till_done()
    assert er.async_get(hass).async_get_entity_id("sensor", DOMAIN, f"{SERIAL}_1.0.52.7.0.255")
    device = device_of(hass, loaded_entry, SERIAL)
    assert device.sw_version == "1.2.4"
    # The same info again (retained replay after the reload) does not reload again.
    entry = hass.config_entries.async_get_entry(loaded_entry.entry_id)
    data_before = entry.data
    await fire(f"{BASE}/info", info_payload(objects=objects, firmware="1.2.4"))
    assert entry.data is data_before


async def test_info_with_energy_as_measurement_drops_the_state_class(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, fire: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A generic object whose classes Home Assistant refuses together: class kept, pair not."""
    gas = {
        "obis": "7.0.3.0.0.255",
        "name": "Gas volume",
        "class_id": 4,
        "unit": "kWh",
        "device_class": "energy",
        "state_class": "measurement",
    }
    caplog.set_level(logging.INFO, logger="custom_components.dlms_edge")
    await fire(f"{BASE}/info", info_payload(objects=[*INFO["objects"], gas]))
    entry = er.async_get(hass).async_get(entity_id(hass, "7.0.3.0.0.255"))
    assert entry.original_device_class == SensorDeviceClass.ENERGY
    assert (entry.capabilities or {}).get(ATTR_STATE_CLASS) is None
    assert "state class measurement is not allowed with device class energy" in caplog.text


async def test_a_refused_pair_is_logged_once_per_set_up(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, fire: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """The agent announces its info again (a restart of it, a reconnection of Home
    Assistant) and the meter's clock arrives: the sensors exist, nothing is said again."""
    gas = {
        "obis": "7.0.3.0.0.255",
        "class_id": 3,
        "unit": "kWh",
        "device_class": "energy",
        "state_class": "measurement",
    }
    caplog.set_level(logging.INFO, logger="custom_components.dlms_edge")
    for _ in range(3):
        await fire(f"{BASE}/info", info_payload(objects=[*INFO["objects"], gas]))
    await fire(f"{BASE}/clock", clock_payload())
    assert caplog.text.count("state class measurement is not allowed") == 1


async def test_unnamed_abstract_objects_get_names(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, fire: Any
) -> None:
    """Disabled diagnostic sensors are named, not called after their OBIS code."""
    unnamed = [
        {"obis": "0.0.96.1.1.255", "class_id": 1},
        {"obis": "0.0.42.0.0.255", "class_id": 1},
        {"obis": "0.0.96.50.0.255", "class_id": 1},
    ]
    await fire(f"{BASE}/info", info_payload(objects=[*INFO["objects"], *unnamed]))
    assert entity_id(hass, "0.0.96.1.1.255") == "sensor.sagemcom_t_210d_device_id_2"
    assert entity_id(hass, "0.0.42.0.0.255") == "sensor.sagemcom_t_210d_logical_device_name"
    assert entity_id(hass, "0.0.96.50.0.255") == "sensor.sagemcom_t_210d_obis_0_0_96_50_0_255"


async def test_model_from_device_id_2_when_info_has_none(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, fire: Any
) -> None:
    """The T-210D names its type in Device ID 2; the device shows it as model."""
    device_id_2 = {"obis": "0.0.96.1.1.255", "name": None, "class_id": 1}
    await fire(f"{BASE}/info", info_payload(model=None, objects=[*INFO["objects"], device_id_2]))
    assert device_of(hass, loaded_entry, SERIAL).model is None
    await fire(f"{BASE}/0.0.96.1.1.255", value_payload("T-210D"))
    assert device_of(hass, loaded_entry, SERIAL).model == "T-210D"
    await fire(f"{BASE}/0.0.96.1.1.255", value_payload("\x01\x02 binary"))
    assert device_of(hass, loaded_entry, SERIAL).model == "T-210D"
    # A model in the info wins.
    await fire(f"{BASE}/info", info_payload(model="T-210D-r"))
    assert device_of(hass, loaded_entry, SERIAL).model == "T-210D-r"


PEAK_IMPORT = "sensor.sagemcom_t_210d_peak_demand_import"


def captured_payload(value: float, ts: str, unit: str = "W", name: str = "") -> str:
    """A captured value as the agent publishes it: `ts` is the capture time."""
    return json.dumps({"value": value, "unit": unit, "ts": ts, "obis": MAX_DEMAND, "name": name})


@pytest.mark.parametrize("announced", [MAX_DEMAND_REGISTER, MAX_DEMAND_COMPUTED])
async def test_peak_demand_with_its_capture_time(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, fire: Any, announced: dict[str, Any]
) -> None:
    """The meter's maximum demand register (class 4) and the agent's figure from the load
    profile (class 7) both show as the enabled sensor Peak demand import, in kW, with
    when the peak happened, on the meter's device page."""
    await fire(f"{BASE}/info", info_payload(objects=[*INFO["objects"], announced]))
    await hass.async_block_till_done()
    assert entity_id(hass, MAX_DEMAND) == PEAK_IMPORT
    registry_entry = er.async_get(hass).async_get(PEAK_IMPORT)
    assert registry_entry.disabled_by is None
    assert registry_entry.entity_category is None
    assert registry_entry.translation_key == "max_demand_import"
    assert registry_entry.device_id == device_of(hass, loaded_entry, SERIAL).id
    await fire(
        f"{BASE}/{MAX_DEMAND}",
        captured_payload(4321.5, "2026-11-12T17:45:00Z", name=announced["name"]),
    )
    state = hass.states.get(PEAK_IMPORT)
    assert state.state == "4.3215"
    assert state.attributes[ATTR_UNIT_OF_MEASUREMENT] == "kW"
    assert state.attributes[ATTR_DEVICE_CLASS] == SensorDeviceClass.POWER
    assert state.attributes[ATTR_STATE_CLASS] == SensorStateClass.MEASUREMENT
    assert state.attributes["capture_time"] == "2026-11-12T17:45:00+00:00"
    assert registry_entry.options["sensor"]["suggested_display_precision"] == 2
    # A new, larger peak: a new value and capture time.
    await fire(f"{BASE}/{MAX_DEMAND}", captured_payload(5000.0, "2026-11-20T08:15:00+01:00"))
    state = hass.states.get(PEAK_IMPORT)
    assert (state.state, state.attributes["capture_time"]) == ("5.0", "2026-11-20T07:15:00+00:00")


async def test_peak_demand_per_tariff_and_export(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, fire: Any
) -> None:
    objects = [
        MAX_DEMAND_REGISTER | {"obis": "1.0.1.6.2.255", "name": "Max demand import T2"},
        MAX_DEMAND_REGISTER | {"obis": "1.0.2.6.0.255", "name": "Max demand export"},
    ]
    await fire(f"{BASE}/info", info_payload(objects=[*INFO["objects"], *objects]))
    await hass.async_block_till_done()
    assert entity_id(hass, "1.0.1.6.2.255") == "sensor.sagemcom_t_210d_peak_demand_import_tariff_2"
    assert entity_id(hass, "1.0.2.6.0.255") == "sensor.sagemcom_t_210d_peak_demand_export"


async def test_peak_demand_with_a_broken_capture_time_is_malformed(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, fire: Any, caplog: pytest.LogCaptureFixture
) -> None:
    await fire(f"{BASE}/info", info_payload(objects=[*INFO["objects"], MAX_DEMAND_REGISTER]))
    await hass.async_block_till_done()
    await fire(f"{BASE}/{MAX_DEMAND}", captured_payload(4000, "2026-11-12T17:45:00Z"))
    for ts in ("yesterday", "2026-11-12T17:45:00"):
        await fire(f"{BASE}/{MAX_DEMAND}", captured_payload(9999, ts))
        state = hass.states.get(PEAK_IMPORT)
        assert (state.state, state.attributes["capture_time"]) == (
            "4.0",
            "2026-11-12T17:45:00+00:00",
        )
    assert caplog.text.count(f"Ignoring malformed message on {BASE}/{MAX_DEMAND}") == 1


async def test_ordinary_registers_have_no_capture_time(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, fire: Any
) -> None:
    await fire(f"{BASE}/1.0.1.7.0.255", value_payload(100, "W"))
    assert "capture_time" not in hass.states.get(POWER_IMPORT).attributes
