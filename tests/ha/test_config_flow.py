"""Config flow (one entry per agent): MQTT discovery, user scan, duplicates, ignore,
reconfigure, options."""

from __future__ import annotations

import asyncio
from typing import Any
from unittest.mock import patch

import pytest
from homeassistant.config_entries import SOURCE_IGNORE, SOURCE_MQTT, SOURCE_USER
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
    CONF_METERS,
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


KAIFA = info_payload(
    agent="pi-cellar",
    meter="KFM1",
    serial="KFM1",
    system_title=None,
    manufacturer="Kaifa",
    model="MA309",
)


async def test_discovery_creates_agent_entry(hass: HomeAssistant, mqtt_broker: Any) -> None:
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_MQTT}, data=discovery(info_payload())
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "discovery_confirm"
    placeholders = result["description_placeholders"]
    assert placeholders["agent"] == AGENT
    assert placeholders["meters"] == f"Sagemcom T-210D ({SERIAL})"

    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    # The title names the agent; the serial is shown once, on the meter's device.
    assert result["title"] == AGENT
    entry = result["result"]
    assert entry.unique_id == AGENT
    assert entry.version == 2
    data = result["data"]
    assert (data[CONF_PREFIX], data[CONF_AGENT]) == (PREFIX, AGENT)
    assert list(data[CONF_METERS]) == [SERIAL]
    await hass.async_block_till_done()
    # What the dialog announced is what was created.
    created = er.async_entries_for_config_entry(er.async_get(hass), entry.entry_id)
    assert len(created) == int(placeholders["entities"])
    enabled = [e for e in created if e.disabled_by is None]
    assert len(enabled) == int(placeholders["enabled"])
    assert len(hass.states.async_all()) == len(enabled)
    assert hass.states.get("sensor.sagemcom_t_210d_energy_import") is not None


async def test_discovery_unique_id_is_the_agent(hass: HomeAssistant, mqtt_broker: Any) -> None:
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_MQTT}, data=discovery(info_payload(serial=None))
    )
    assert result["type"] is FlowResultType.FORM
    flow = hass.config_entries.flow.async_get(result["flow_id"])
    assert flow["context"]["unique_id"] == AGENT
    # The meter without serial is named by its system title.
    assert INFO["system_title"] in result["description_placeholders"]["meters"]


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


async def test_discovery_of_configured_agent_aborts(
    hass: HomeAssistant, loaded_entry: MockConfigEntry
) -> None:
    """Another meter of a configured agent needs no flow: the entry adds it."""
    other = info_payload(meter="KFM1", serial="KFM1", system_title=None)
    result = await hass.config_entries.flow.async_init(
        DOMAIN,
        context={"source": SOURCE_MQTT},
        data=discovery(other, f"{PREFIX}/{AGENT}/KFM1/info"),
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


async def test_discovery_twice_in_parallel(hass: HomeAssistant, mqtt_broker: Any) -> None:
    """Two meters of one agent announced: one flow."""
    first = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_MQTT}, data=discovery(info_payload())
    )
    other = info_payload(meter="KFM1", serial="KFM1", system_title=None)
    second = await hass.config_entries.flow.async_init(
        DOMAIN,
        context={"source": SOURCE_MQTT},
        data=discovery(other, f"{PREFIX}/{AGENT}/KFM1/info"),
    )
    assert first["type"] is FlowResultType.FORM
    assert second["type"] is FlowResultType.ABORT
    assert second["reason"] == "already_in_progress"


async def test_ignored_agent_stays_ignored(hass: HomeAssistant, mqtt_broker: Any) -> None:
    """Ignore, as for any discovery: none of the agent's meters brings the flow back."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_MQTT}, data=discovery(info_payload())
    )
    ignore = await hass.config_entries.flow.async_init(
        DOMAIN,
        context={"source": SOURCE_IGNORE},
        data={"unique_id": AGENT, "title": AGENT},
    )
    assert ignore["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert not hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    other = info_payload(meter="KFM1", serial="KFM1", system_title=None)
    for payload, topic in ((info_payload(), INFO_TOPIC), (other, f"{PREFIX}/{AGENT}/KFM1/info")):
        result = await hass.config_entries.flow.async_init(
            DOMAIN, context={"source": SOURCE_MQTT}, data=discovery(payload, topic)
        )
        assert result["type"] is FlowResultType.ABORT
        assert result["reason"] == "already_configured"


async def test_removed_entry_is_offered_again_and_can_be_ignored(
    hass: HomeAssistant, mqtt_broker: Any
) -> None:
    """Deleting the entry while the agent publishes: the flow returns, ignore ends it."""
    async_fire_mqtt_message(hass, INFO_TOPIC, info_payload(), qos=1, retain=True)
    await hass.async_block_till_done()
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert len(flows) == 1
    result = await hass.config_entries.flow.async_configure(flows[0]["flow_id"], {})
    entry = result["result"]
    await hass.async_block_till_done()

    assert await hass.config_entries.async_remove(entry.entry_id)
    await hass.async_block_till_done()
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert [flow["context"]["unique_id"] for flow in flows] == [AGENT]

    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_IGNORE}, data={"unique_id": AGENT, "title": AGENT}
    )
    await hass.async_block_till_done()
    assert not hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    async_fire_mqtt_message(hass, INFO_TOPIC, info_payload(firmware="2"), qos=1, retain=True)
    await hass.async_block_till_done()
    assert not hass.config_entries.flow.async_progress_by_handler(DOMAIN)


async def test_user_flow_scans_and_picks_agent(hass: HomeAssistant, mqtt_broker: Any) -> None:
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "user"
    second_cellar = info_payload(
        agent="pi-cellar",
        meter="KFM2",
        serial="KFM2",
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
            (f"{PREFIX}/pi-cellar/KFM1/info", KAIFA),
            (f"{PREFIX}/pi-cellar/KFM2/info", second_cellar),
            (f"{PREFIX}/pi-cellar/BAD/info", "garbage"),
        ],
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "pick_agent"
    options = result["data_schema"].schema[CONF_AGENT].config["options"]
    assert [option["value"] for option in options] == ["pi-cellar", AGENT]

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_AGENT: "pi-cellar"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "pi-cellar"
    assert result["data"][CONF_PREFIX] == PREFIX
    assert sorted(result["data"][CONF_METERS]) == ["KFM1", "KFM2"]
    # Two meters of one make get distinct device names.
    names = sorted(m["name"] for m in result["data"][CONF_METERS].values())
    assert names == ["Kaifa MA309", "Kaifa MA309 KFM2"]
    await hass.async_block_till_done()
    # The discovery flow the scan triggered for this agent ended with the entry.
    assert not [
        flow
        for flow in hass.config_entries.flow.async_progress_by_handler(DOMAIN)
        if flow["context"].get("unique_id") == "pi-cellar"
    ]


async def test_user_flow_custom_prefix(hass: HomeAssistant, mqtt_broker: Any) -> None:
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    result = await configure_while_publishing(
        hass,
        result["flow_id"],
        {CONF_PREFIX: "home/meters"},
        [(f"home/meters/{AGENT}/{METER}/info", info_payload()), (INFO_TOPIC, info_payload())],
    )
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {CONF_AGENT: AGENT})
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
    assert result["step_id"] == "pick_agent"


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
    assert result["errors"] == {"base": "agent_not_found"}

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
    meter = loaded_entry.runtime_data.meters[SERIAL]
    assert meter.base_topic == f"home/dlms/{AGENT}/{METER}"


async def test_reconfigure_ignores_other_agents(
    hass: HomeAssistant, loaded_entry: MockConfigEntry
) -> None:
    result = await loaded_entry.start_reconfigure_flow(hass)
    result = await configure_while_publishing(
        hass, result["flow_id"], {CONF_PREFIX: "x"}, [("x/pi-cellar/KFM1/info", KAIFA)]
    )
    assert result["errors"] == {"base": "agent_not_found"}
    assert loaded_entry.data[CONF_PREFIX] == PREFIX


async def test_options_hide_and_restore_objects(
    hass: HomeAssistant, loaded_entry: MockConfigEntry
) -> None:
    registry = er.async_get(hass)
    voltage = registry.async_get_entity_id("sensor", DOMAIN, f"{SERIAL}_1.0.32.7.0.255")
    assert voltage is not None

    # One meter: the meter choice is skipped.
    result = await hass.config_entries.options.async_init(loaded_entry.entry_id)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "objects"
    announced = [obj["obis"] for obj in INFO["objects"]]
    assert result["data_schema"]({})[CONF_OBJECTS] == announced

    keep = [obis for obis in announced if obis != "1.0.32.7.0.255"]
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_OBJECTS: keep}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert loaded_entry.options == {CONF_EXCLUDED_OBJECTS: {SERIAL: ["1.0.32.7.0.255"]}}
    await hass.async_block_till_done()
    assert registry.async_get_entity_id("sensor", DOMAIN, f"{SERIAL}_1.0.32.7.0.255") is None
    assert hass.states.get(voltage) is None

    result = await hass.config_entries.options.async_init(loaded_entry.entry_id)
    assert "1.0.32.7.0.255" not in result["data_schema"]({})[CONF_OBJECTS]
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_OBJECTS: announced}
    )
    assert loaded_entry.options == {CONF_EXCLUDED_OBJECTS: {SERIAL: []}}
    await hass.async_block_till_done()
    assert registry.async_get_entity_id("sensor", DOMAIN, f"{SERIAL}_1.0.32.7.0.255")


async def test_options_choose_the_meter_first(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, fire: Any
) -> None:
    await fire(
        f"{PREFIX}/{AGENT}/KFM1/info",
        info_payload(meter="KFM1", serial="KFM1", system_title=None, model="MA309"),
    )
    result = await hass.config_entries.options.async_init(loaded_entry.entry_id)
    assert result["step_id"] == "init"
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_METER: "KFM1"}
    )
    assert result["step_id"] == "objects"
    assert result["description_placeholders"] == {"meter": "Sagemcom MA309"}
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_OBJECTS: ["1.0.1.8.0.255"]}
    )
    excluded = loaded_entry.options[CONF_EXCLUDED_OBJECTS]
    assert list(excluded) == ["KFM1"] and "1.0.1.8.0.255" not in excluded["KFM1"]
    await hass.async_block_till_done()
    registry = er.async_get(hass)
    assert registry.async_get_entity_id("sensor", DOMAIN, "KFM1_1.0.1.8.0.255")
    assert registry.async_get_entity_id("sensor", DOMAIN, "KFM1_1.0.1.7.0.255") is None
    assert registry.async_get_entity_id("sensor", DOMAIN, f"{SERIAL}_1.0.1.7.0.255")


async def test_options_without_meters_abort(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, fire: Any
) -> None:
    from registry import device_of

    from custom_components.dlms_edge import async_remove_config_entry_device

    await fire(f"{PREFIX}/{AGENT}/{METER}/info", "", retain=True)
    assert await async_remove_config_entry_device(
        hass, loaded_entry, device_of(hass, loaded_entry, SERIAL)
    )
    result = await hass.config_entries.options.async_init(loaded_entry.entry_id)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "no_meters"
