"""Upgrade from version 1 (one entry per meter) to 2 (one entry per agent).

The registries are filled as the previous release left them: per meter an entry, its
device linked to the agent's device, its entities with ids derived from the device
name, one renamed by the user. After the upgrade the same devices and entities (same
registry ids, entity ids, names and unique ids, so the same statistics, which the
recorder keys by entity id) belong to one entry per agent.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from homeassistant.components.recorder import get_instance
from homeassistant.components.recorder.models import StatisticMeanType, StatisticMetaData
from homeassistant.components.recorder.statistics import (
    async_import_statistics,
    get_last_statistics,
)
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
from payloads import AGENT, BASE, PREFIX, SERIAL, info_payload, value_payload
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.recorder.common import (
    async_wait_recording_done,
)
from registry import domain_devices

from custom_components.dlms_edge.const import DOMAIN
from custom_components.dlms_edge.models import MeterInfo


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(recorder_mock: Any, enable_custom_integrations: None) -> None:
    """A real recorder (started before custom integrations, as the harness requires)."""


def _import_energy_statistics(hass: HomeAssistant, statistic_id: str) -> None:
    """Two hours of long-term statistics, as the recorder keeps them for an energy sensor."""
    metadata: dict[str, Any] = {
        "has_sum": True,
        "mean_type": StatisticMeanType.NONE,
        "name": None,
        "source": "recorder",
        "statistic_id": statistic_id,
        "unit_of_measurement": "kWh",
    }
    if "unit_class" in StatisticMetaData.__annotations__:  # newer releases
        metadata["unit_class"] = "energy"
    hour = dt_util.utcnow().replace(minute=0, second=0, microsecond=0)
    async_import_statistics(
        hass,
        StatisticMetaData(**metadata),
        [
            {"start": hour - timedelta(hours=2), "state": 1.0, "sum": 1.0},
            {"start": hour - timedelta(hours=1), "state": 2.5, "sum": 2.5},
        ],
    )


def _v1_entry(hass: HomeAssistant, payload: str, options: dict[str, Any] | None = None) -> Any:
    """A version 1 entry with the devices and entities the previous release created."""
    info = MeterInfo.from_payload(payload)
    entry = MockConfigEntry(
        domain=DOMAIN,
        version=1,
        title=f"{info.title} {info.unique_id}",
        unique_id=info.unique_id,
        data={"prefix": PREFIX, "agent": info.agent, "meter": info.meter, "info": info.as_dict()},
        options=options or {},
    )
    entry.add_to_hass(hass)
    devices, entities = dr.async_get(hass), er.async_get(hass)
    agent = devices.async_get_or_create(
        config_entry_id=entry.entry_id,
        identifiers={(DOMAIN, f"agent:{info.agent}")},
        name=info.agent,
        manufacturer="dlms-edge",
        model="dlms-edge agent",
    )
    meter = devices.async_get_or_create(
        config_entry_id=entry.entry_id,
        identifiers={(DOMAIN, info.unique_id)},
        name=info.title,
        manufacturer=info.manufacturer,
        model=info.model,
        serial_number=info.serial,
    )
    devices.async_update_device(meter.id, via_device_id=agent.id)
    object_id = info.title.lower().replace(" ", "_").replace("-", "_")
    for obis, suffix, unit in (
        ("1.0.1.8.0.255", "energy_import", "kWh"),  # Wh shown in kWh: stored at creation
        ("1.0.1.7.0.255", "power_import", None),
    ):
        entities.async_get_or_create(
            "sensor",
            DOMAIN,
            f"{info.unique_id}_{obis}",
            config_entry=entry,
            device_id=meter.id,
            suggested_object_id=f"{object_id}_{suffix}",
            get_initial_options=lambda unit=unit: (
                {"sensor.private": {"suggested_unit_of_measurement": unit}} if unit else None
            ),
        )
    entities.async_get_or_create(
        "binary_sensor",
        DOMAIN,
        f"{info.unique_id}_problem",
        config_entry=entry,
        device_id=meter.id,
        suggested_object_id=f"{object_id}_problem",
    )
    return entry


async def test_meters_of_one_agent_merge_into_one_entry(
    hass: HomeAssistant, mqtt_broker: Any, fire: Any
) -> None:
    kitchen_t210 = _v1_entry(hass, info_payload())
    kitchen_kaifa = _v1_entry(
        hass,
        info_payload(
            meter="KFM1", serial="KFM1", system_title=None, manufacturer="Kaifa", model="MA309"
        ),
        options={"excluded_objects": ["1.0.32.7.0.255"]},
    )
    cellar = _v1_entry(
        hass,
        info_payload(
            agent="pi-cellar",
            meter="L1",
            serial="L1",
            system_title=None,
            manufacturer="Landis+Gyr",
            model="E450",
        ),
    )
    entities = er.async_get(hass)
    entities.async_update_entity(
        "sensor.sagemcom_t_210d_energy_import", name="Grid import", new_entity_id="sensor.grid"
    )
    before = {
        entry.unique_id: (entry.id, entry.entity_id, entry.name, entry.device_id)
        for entry in entities.entities.values()
    }
    meter_device_ids = {
        ident: device.id
        for device in domain_devices(hass)
        for _domain, ident in device.identifiers
        if not ident.startswith("agent:")
    }
    assert len(before) == 9 and len(meter_device_ids) == 3
    _import_energy_statistics(hass, "sensor.grid")
    await async_wait_recording_done(hass)

    assert await async_setup_component(hass, DOMAIN, {})
    await hass.async_block_till_done()

    entries = {entry.unique_id: entry for entry in hass.config_entries.async_entries(DOMAIN)}
    assert set(entries) == {AGENT, "pi-cellar"}
    kitchen = entries[AGENT]
    assert kitchen.entry_id in (kitchen_t210.entry_id, kitchen_kaifa.entry_id)
    assert entries["pi-cellar"].entry_id == cellar.entry_id
    assert all(entry.version == 2 for entry in entries.values())
    assert all(entry.state is ConfigEntryState.LOADED for entry in entries.values())
    assert kitchen.title == AGENT
    assert set(kitchen.data["meters"]) == {SERIAL, "KFM1"}
    assert kitchen.options == {"excluded_objects": {"KFM1": ["1.0.32.7.0.255"]}}

    after = {
        entry.unique_id: (entry.id, entry.entity_id, entry.name, entry.device_id)
        for entry in entities.entities.values()
        if not entry.unique_id.startswith("agent:")
    }
    # Every entity as before (new ones may join: the objects the meters announce).
    assert {uid: after[uid] for uid in before} == before
    assert after[f"{SERIAL}_1.0.1.8.0.255"][1:3] == ("sensor.grid", "Grid import")
    owners = {entry.unique_id: entry.config_entry_id for entry in entities.entities.values()}
    assert owners[f"{SERIAL}_1.0.1.8.0.255"] == owners["KFM1_1.0.1.8.0.255"] == kitchen.entry_id
    assert owners["L1_1.0.1.8.0.255"] == cellar.entry_id

    devices = domain_devices(hass)
    agents = [d for d in devices if any(i.startswith("agent:") for _d, i in d.identifiers)]
    assert sorted(d.name for d in agents) == ["pi-cellar", AGENT]  # no duplicate agent
    for device in devices:
        for _domain, ident in device.identifiers:
            if ident in meter_device_ids:
                assert device.id == meter_device_ids[ident]  # same device, same id
    by_id = {d.id: d for d in devices}
    kitchen_agent = next(d for d in agents if d.name == AGENT)
    assert by_id[meter_device_ids["KFM1"]].via_device_id == kitchen_agent.id
    assert by_id[meter_device_ids[SERIAL]].via_device_id == kitchen_agent.id

    # The statistics are the entity's still: same statistic id, same sums.
    await async_wait_recording_done(hass)
    last = await get_instance(hass).async_add_executor_job(
        get_last_statistics, hass, 1, "sensor.grid", False, {"sum"}
    )
    assert last["sensor.grid"][0]["sum"] == 2.5

    # And the migrated entities work.
    await fire(f"{PREFIX}/{AGENT}/status", "online")
    await fire(f"{BASE}/availability", "online")
    await fire(f"{BASE}/1.0.1.8.0.255", value_payload(2000, "Wh"))
    assert hass.states.get("sensor.grid").state == "2.0"
