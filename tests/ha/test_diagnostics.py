"""Diagnostics show state, never the meter's identity or key material."""

from __future__ import annotations

import json
from typing import Any

from homeassistant.components.diagnostics import REDACTED
from homeassistant.core import HomeAssistant
from payloads import AGENT, BASE, METER, SERIAL, SYSTEM_TITLE, health_payload, value_payload
from pytest_homeassistant_custom_component.common import MockConfigEntry
from registry import device_of

from custom_components.dlms_edge.diagnostics import (
    async_get_config_entry_diagnostics,
    async_get_device_diagnostics,
)


async def _populate(fire: Any) -> None:
    await fire(f"{BASE}/1.0.1.8.0.255", value_payload(1234, "Wh"))
    await fire(f"{BASE}/0.0.96.1.0.255", value_payload(SERIAL))
    await fire(f"{BASE}/health", health_payload("problem", "wrong_key", "tag mismatch"))
    await fire(f"{BASE}/1.0.1.7.0.255", "garbage")


async def test_entry_diagnostics_redacted(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, fire: Any
) -> None:
    await _populate(fire)
    diagnostics = await async_get_config_entry_diagnostics(hass, loaded_entry)
    text = json.dumps(diagnostics)
    for secret in (SERIAL, SYSTEM_TITLE, METER):
        assert secret not in text
    data = diagnostics["entry"]["data"]
    assert data["agent"] == AGENT
    [info] = data["meters"]
    assert info["meter"] == REDACTED
    assert info["serial"] == REDACTED
    assert info["system_title"] == REDACTED
    assert info["model"] == "T-210D"
    state = diagnostics["state"]
    assert state["agent_online"] and state["broker_connected"]
    [meter] = state["meters"]
    assert meter["meter_online"] and not meter["gone"]
    assert meter["readings"]["1.0.1.8.0.255"]["value"] == 1234
    assert meter["readings"]["0.0.96.1.0.255"]["value"] == REDACTED
    assert meter["health"]["code"] == "wrong_key"
    assert state["malformed_topics"] == ["1.0.1.7.0.255"]


async def test_device_diagnostics_redacted(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, fire: Any
) -> None:
    await _populate(fire)
    device = device_of(hass, loaded_entry, SERIAL)
    diagnostics = await async_get_device_diagnostics(hass, loaded_entry, device)
    text = json.dumps(diagnostics)
    for secret in (SERIAL, SYSTEM_TITLE, METER):
        assert secret not in text
    assert diagnostics["device"]["model"] == "T-210D"
    assert diagnostics["device"]["serial_number"] == REDACTED
    assert diagnostics["device"]["identifiers"] == REDACTED
    assert diagnostics["meter"]["readings"]["1.0.1.8.0.255"]["value"] == 1234


async def test_key_like_fields_redacted(hass: HomeAssistant) -> None:
    from homeassistant.components.diagnostics import async_redact_data

    from custom_components.dlms_edge.diagnostics import TO_REDACT

    redacted = async_redact_data(
        {"ek": "00" * 16, "nested": {"ak": "11" * 16, "password": "x"}}, TO_REDACT
    )
    assert redacted == {"ek": REDACTED, "nested": {"ak": REDACTED, "password": REDACTED}}
