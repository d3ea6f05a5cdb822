"""Config flow: MQTT discovery, user scan, duplicates, reconfigure, options."""

from __future__ import annotations

import asyncio
from typing import Any
from unittest.mock import patch

import pytest
from homeassistant.config_entries import SOURCE_MQTT, SOURCE_USER
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.service_info.mqtt import MqttServiceInfo
from payloads import AGENT, INFO, METER, PREFIX, SERIAL, info_payload
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_mqtt_message,
)

from custom_components.dlms_edge.const import (
    CONF_AGENT,
    CONF_EXCLUDED_OBJECTS,
    CONF_METER,
    CONF_OBJECTS,
    CONF_PREFIX,
    DOMAIN,
)

INFO_TOPIC = f"{PREFIX}/{AGENT}/{METER}/info"


def discovery(payload: str | bytes, topic: str = INFO_TOPIC) -> MqttServiceInfo:
    return MqttServiceInfo(
        topic=topic,
        payload=payload,
        qos=1,
        retain=True,
        subscribed_topic="dlms/+/+/info",
        timestamp=0.0,
    )


@pytest.fixture(autouse=True)
def fast_scan() -> Any:
    """The scan listens this long; the tests publish while it listens."""
    with patch("custom_components.dlms_edge.config_flow.SCAN_SECONDS", 0.05):
        yield


async def configure_while_publishing(
    hass: HomeAssistant,
    flow_id: str,
    user_input: dict[str, Any],
    messages: list[tuple[str, str]],
    configure: Any = None,
) -> Any:
    """Submit a step that scans, and publish retained `messages` while it listens."""
    configure = configure or hass.config_entries.flow.async_configure
    task = asyncio.ensure_future(configure(flow_id, user_input))
    for _ in range(20):  # let the flow reach its subscription
        await asyncio.sleep(0)
    for topic, payload in messages:
        async_fire_mqtt_message(hass, topic, payload, qos=1, retain=True)
    return await task


async def test_discovery_creates_entry(hass: HomeAssistant, mqtt_broker: Any) -> None:
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_MQTT}, data=discovery(info_payload())
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "discovery_confirm"
    assert result["description_placeholders"]["name"] == "Sagemcom T-210D"

    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == f"Sagemcom T-210D {SERIAL}"
    assert result["result"].unique_id == SERIAL
    data = result["data"]
    assert (data[CONF_PREFIX], data[CONF_AGENT], data[CONF_METER]) == (PREFIX, AGENT, METER)
    assert data["info"]["objects"][0]["obis"] == "1.0.1.8.0.255"
    await hass.async_block_till_done()
    assert hass.states.get("sensor.sagemcom_t_210d_energy_import") is not None


async def test_discovery_unique_id_falls_back_to_system_title(
    hass: HomeAssistant, mqtt_broker: Any
) -> None:
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_MQTT}, data=discovery(info_payload(serial=None))
    )
    assert result["type"] is FlowResultType.FORM
    flow = hass.config_entries.flow.async_get(result["flow_id"])
    assert flow["context"]["unique_id"] == INFO["system_title"]


@pytest.mark.parametrize(
    ("payload", "topic"),
    [
        ("", INFO_TOPIC),
        ("not json", INFO_TOPIC),
        ("[]", INFO_TOPIC),
        (info_payload(serial=None, system_title=None), INFO_TOPIC),
        (info_payload(system_title="nothex"), INFO_TOPIC),
        (info_payload(objects=[{"obis": "1.0.1.8.0"}]), INFO_TOPIC),
        (info_payload(objects=[{"obis": "1.0.1.8.0.256"}]), INFO_TOPIC),
        (info_payload(agent="another-pi"), INFO_TOPIC),
        (info_payload(), f"{PREFIX}/{AGENT}/{METER}/state"),
        (b"\xff\xfe", INFO_TOPIC),
    ],
)
async def test_discovery_aborts_on_invalid_info(
    hass: HomeAssistant, mqtt_broker: Any, payload: str | bytes, topic: str
) -> None:
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_MQTT}, data=discovery(payload, topic)
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "invalid_discovery_info"


async def test_discovery_of_configured_meter_aborts(
    hass: HomeAssistant, loaded_entry: MockConfigEntry
) -> None:
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_MQTT}, data=discovery(info_payload())
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


async def test_discovery_follows_meter_to_another_agent(
    hass: HomeAssistant, loaded_entry: MockConfigEntry
) -> None:
    topic = f"{PREFIX}/pi-cellar/{METER}/info"
    result = await hass.config_entries.flow.async_init(
        DOMAIN,
        context={"source": SOURCE_MQTT},
        data=discovery(info_payload(agent="pi-cellar"), topic),
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    await hass.async_block_till_done()
    assert loaded_entry.data[CONF_AGENT] == "pi-cellar"
    assert loaded_entry.runtime_data.agent == "pi-cellar"  # reloaded


async def test_discovery_twice_in_parallel(hass: HomeAssistant, mqtt_broker: Any) -> None:
    first = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_MQTT}, data=discovery(info_payload())
    )
    second = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_MQTT}, data=discovery(info_payload())
    )
    assert first["type"] is FlowResultType.FORM
    assert second["type"] is FlowResultType.ABORT
    assert second["reason"] == "already_in_progress"


async def test_user_flow_scans_and_picks(hass: HomeAssistant, mqtt_broker: Any) -> None:
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "user"
    other = info_payload(
        agent="pi-cellar",
        meter="KFM1",
        serial="KFM1",
        system_title=None,
        manufacturer="Kaifa",
        model="MA309",
    )
    result = await configure_while_publishing(
        hass,
        result["flow_id"],
        {CONF_PREFIX: " dlms/ "},
        [
            (INFO_TOPIC, info_payload()),
            (f"{PREFIX}/pi-cellar/KFM1/info", other),
            (f"{PREFIX}/pi-cellar/BAD/info", "garbage"),
        ],
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "pick_meter"
    options = result["data_schema"].schema[CONF_METER].config["options"]
    assert [option["value"] for option in options] == [SERIAL, "KFM1"]

    result = await hass.config_entries.flow.async_configure(result["flow_id"], {CONF_METER: "KFM1"})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "Kaifa MA309 KFM1"
    assert result["data"][CONF_PREFIX] == PREFIX
    assert result["data"][CONF_AGENT] == "pi-cellar"
    await hass.async_block_till_done()
    # The discovery flow the scan triggered for this meter ended with the entry.
    assert not [
        flow
        for flow in hass.config_entries.flow.async_progress_by_handler(DOMAIN)
        if flow["context"].get("unique_id") == "KFM1"
    ]


async def test_user_flow_custom_prefix(hass: HomeAssistant, mqtt_broker: Any) -> None:
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    result = await configure_while_publishing(
        hass,
        result["flow_id"],
        {CONF_PREFIX: "home/meters"},
        [(f"home/meters/{AGENT}/{METER}/info", info_payload()), (INFO_TOPIC, info_payload())],
    )
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {CONF_METER: SERIAL})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_PREFIX] == "home/meters"
    await hass.async_block_till_done()


async def test_user_flow_nothing_found_then_found(hass: HomeAssistant, mqtt_broker: Any) -> None:
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    result = await configure_while_publishing(hass, result["flow_id"], {CONF_PREFIX: "dlms"}, [])
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "no_meters_found"}
    result = await configure_while_publishing(
        hass, result["flow_id"], {CONF_PREFIX: "dlms"}, [(INFO_TOPIC, info_payload())]
    )
    assert result["step_id"] == "pick_meter"


@pytest.mark.parametrize("prefix", ["", "dlms/#", "a/+/b", "a//b", "/"])
async def test_user_flow_invalid_prefix(hass: HomeAssistant, mqtt_broker: Any, prefix: str) -> None:
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_PREFIX: prefix}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_PREFIX: "invalid_prefix"}


async def test_user_flow_all_configured_aborts(
    hass: HomeAssistant, loaded_entry: MockConfigEntry
) -> None:
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    result = await configure_while_publishing(
        hass, result["flow_id"], {CONF_PREFIX: "dlms"}, [(INFO_TOPIC, info_payload())]
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


async def test_user_flow_without_mqtt(hass: HomeAssistant) -> None:
    with patch("homeassistant.components.mqtt.async_wait_for_mqtt_client", return_value=False):
        result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "mqtt_not_available"


async def test_reconfigure_changes_prefix(
    hass: HomeAssistant, loaded_entry: MockConfigEntry
) -> None:
    result = await loaded_entry.start_reconfigure_flow(hass)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "reconfigure"

    result = await configure_while_publishing(
        hass, result["flow_id"], {CONF_PREFIX: "home/dlms"}, []
    )
    assert result["errors"] == {"base": "meter_not_found"}

    result = await configure_while_publishing(
        hass,
        result["flow_id"],
        {CONF_PREFIX: "home/dlms"},
        [(f"home/dlms/{AGENT}/{METER}/info", info_payload())],
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()
    assert loaded_entry.data[CONF_PREFIX] == "home/dlms"
    assert loaded_entry.runtime_data.base_topic == f"home/dlms/{AGENT}/{METER}"


async def test_reconfigure_ignores_other_meters(
    hass: HomeAssistant, loaded_entry: MockConfigEntry
) -> None:
    result = await loaded_entry.start_reconfigure_flow(hass)
    other = info_payload(meter="KFM1", serial="KFM1", system_title=None)
    result = await configure_while_publishing(
        hass, result["flow_id"], {CONF_PREFIX: "x"}, [(f"x/{AGENT}/KFM1/info", other)]
    )
    assert result["errors"] == {"base": "meter_not_found"}
    assert loaded_entry.data[CONF_PREFIX] == PREFIX


async def test_options_hide_and_restore_objects(
    hass: HomeAssistant, loaded_entry: MockConfigEntry
) -> None:
    registry = er.async_get(hass)
    voltage = registry.async_get_entity_id("sensor", DOMAIN, f"{SERIAL}_1.0.32.7.0.255")
    assert voltage is not None

    result = await hass.config_entries.options.async_init(loaded_entry.entry_id)
    assert result["type"] is FlowResultType.FORM
    announced = [obj["obis"] for obj in INFO["objects"]]
    assert result["data_schema"]({})[CONF_OBJECTS] == announced

    keep = [obis for obis in announced if obis != "1.0.32.7.0.255"]
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_OBJECTS: keep}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert loaded_entry.options == {CONF_EXCLUDED_OBJECTS: ["1.0.32.7.0.255"]}
    await hass.async_block_till_done()
    assert registry.async_get_entity_id("sensor", DOMAIN, f"{SERIAL}_1.0.32.7.0.255") is None
    assert hass.states.get(voltage) is None

    result = await hass.config_entries.options.async_init(loaded_entry.entry_id)
    assert "1.0.32.7.0.255" not in result["data_schema"]({})[CONF_OBJECTS]
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_OBJECTS: announced}
    )
    assert loaded_entry.options == {CONF_EXCLUDED_OBJECTS: []}
    await hass.async_block_till_done()
    assert registry.async_get_entity_id("sensor", DOMAIN, f"{SERIAL}_1.0.32.7.0.255")
