"""Fixtures for the DLMS Edge integration tests (pytest-homeassistant-custom-component)."""

from __future__ import annotations

import copy
import logging
from collections.abc import AsyncGenerator, Callable, Iterator
from typing import Any
from unittest.mock import Mock

import pytest
from homeassistant.core import HomeAssistant
from payloads import AGENT, BASE, INFO, PREFIX
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_mqtt_message,
)

from custom_components.dlms_edge.const import DOMAIN
from custom_components.dlms_edge.coordinator import entry_data
from custom_components.dlms_edge.models import MeterInfo


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> None:
    """Let Home Assistant load custom_components/dlms_edge from the repository root."""


@pytest.fixture
def quiet_recorder(recorder_mock: Any, enable_custom_integrations: None) -> Iterator[None]:
    """The recorder, then `hass` with our integration: a module that needs the recorder
    overrides `auto_enable_custom_integrations` with this (the harness wants
    `recorder_mock` before `hass`). The harness logs every SQL statement and recorder
    task; the recorder's thread would print them past the capture of the test."""
    loggers = [
        logging.getLogger(name)
        for name in ("sqlalchemy.engine", "homeassistant.components.recorder")
    ]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    yield
    for logger, level in zip(loggers, levels, strict=True):
        logger.setLevel(level)


@pytest.fixture(autouse=True)
def no_deprecated_usage(caplog: pytest.LogCaptureFixture) -> Any:
    """Fail on Home Assistant's reports of deprecated or wrong API use by this integration.

    Home Assistant's frame helper (`report_usage`) logs "Detected that custom integration
    'dlms_edge' ..." for deprecated calls, or raises for code it cannot attribute (our
    tests); both fail the test, in set-up, call and teardown.
    """
    yield
    reports = [
        record.getMessage()
        for when in ("setup", "call", "teardown")
        for record in caplog.get_records(when)
        if "custom integration 'dlms_edge'" in record.getMessage()
        or ("dlms_edge" in record.getMessage() and "deprecated" in record.getMessage().lower())
    ]
    assert not reports


@pytest.fixture
async def mqtt_broker(mqtt_mock: Any, mqtt_client_mock: Any) -> AsyncGenerator[Any]:
    """Home Assistant's MQTT set up against the mocked paho client."""
    yield mqtt_mock
    # The mocked client never reports its socket closed, which would leave MQTT's
    # one-second housekeeping timer behind and fail the lingering-timer check.
    mqtt_client_mock.on_socket_close(mqtt_client_mock, None, Mock(fileno=Mock(return_value=-1)))


@pytest.fixture
def config_entry() -> MockConfigEntry:
    """The agent's entry (version 2) as the config flow creates it, with the T-210D."""
    info = MeterInfo.from_dict(copy.deepcopy(INFO))
    return MockConfigEntry(
        domain=DOMAIN,
        version=2,
        title=AGENT,
        unique_id=AGENT,
        data=entry_data(PREFIX, AGENT, [info]),
    )


@pytest.fixture
def fire(hass: HomeAssistant) -> Callable[..., Any]:
    """Deliver a message as the broker would, and let Home Assistant process it.

    Live messages carry retain=False; Home Assistant delivers a retained message only
    once per subscription and topic (the replay after subscribing).
    """

    async def _fire(topic: str, payload: str | bytes, retain: bool = False) -> None:
        async_fire_mqtt_message(hass, topic, payload, qos=1, retain=retain)
        await hass.async_block_till_done()

    return _fire


@pytest.fixture
async def loaded_entry(
    hass: HomeAssistant, mqtt_broker: Any, config_entry: MockConfigEntry, fire: Callable[..., Any]
) -> MockConfigEntry:
    """The agent's entry set up, with the agent and its T-210D online."""
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    await fire(f"{PREFIX}/{AGENT}/status", "online")
    await fire(f"{BASE}/availability", "online")
    return config_entry
