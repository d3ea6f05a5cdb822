"""The T-210D as a dlms-edge agent publishes it (docs/mqtt-contract.md), for the tests."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from edge_agent.dlms.cosem import event_codes
from edge_agent.mqtt import payloads as agent_payloads

PREFIX = "dlms"
AGENT = "pi-kitchen"
METER = "1SAG67929081"
SERIAL = "1SAG67929081"
SYSTEM_TITLE = "5341477df129c270"
BASE = f"{PREFIX}/{AGENT}/{METER}"

# The info a Sagemcom T-210D publishes through the agent (docs/mqtt-contract.md),
# plus one object the sensor table does not know (a generic sensor).
INFO: dict[str, Any] = {
    "agent": AGENT,
    "meter": METER,
    "serial": SERIAL,
    "manufacturer": "Sagemcom",
    "model": "T-210D",
    "firmware": "1.2.3",
    "system_title": SYSTEM_TITLE,
    "agent_version": "0.1.0",
    "objects": [
        {
            "obis": "1.0.1.8.0.255",
            "name": "Active energy import (+A)",
            "class_id": 3,
            "unit": "Wh",
            "device_class": "energy",
            "state_class": "total_increasing",
        },
        {
            "obis": "1.0.2.8.0.255",
            "name": "Active energy export (-A)",
            "class_id": 3,
            "unit": "Wh",
            "device_class": "energy",
            "state_class": "total_increasing",
        },
        {
            "obis": "1.0.1.8.1.255",
            "name": "Active energy import tariff 1",
            "class_id": 3,
            "unit": "Wh",
            "device_class": "energy",
            "state_class": "total_increasing",
        },
        {
            "obis": "1.0.3.8.0.255",
            "name": "Reactive energy import (+R)",
            "class_id": 3,
            "unit": "varh",
            "device_class": "reactive_energy",
            "state_class": "total_increasing",
        },
        {
            "obis": "1.0.1.7.0.255",
            "name": "Active power import (+P)",
            "class_id": 3,
            "unit": "W",
            "device_class": "power",
            "state_class": "measurement",
        },
        {
            "obis": "1.0.3.7.0.255",
            "name": "Reactive power import (+Q)",
            "class_id": 3,
            "unit": "var",
            "device_class": "reactive_power",
            "state_class": "measurement",
        },
        {
            "obis": "1.0.9.7.0.255",
            "name": "Apparent power import",
            "class_id": 3,
            "unit": "VA",
            "device_class": "apparent_power",
            "state_class": "measurement",
        },
        {
            "obis": "1.0.32.7.0.255",
            "name": "Voltage L1",
            "class_id": 3,
            "unit": "V",
            "device_class": "voltage",
            "state_class": "measurement",
        },
        {
            "obis": "1.0.31.7.0.255",
            "name": "Current L1",
            "class_id": 3,
            "unit": "A",
            "device_class": "current",
            "state_class": "measurement",
        },
        {
            "obis": "1.0.13.7.0.255",
            "name": "Power factor",
            "class_id": 3,
            "unit": None,
            "device_class": "power_factor",
            "state_class": "measurement",
        },
        {
            "obis": "1.0.14.7.0.255",
            "name": "Frequency",
            "class_id": 3,
            "unit": "Hz",
            "device_class": "frequency",
            "state_class": "measurement",
        },
        {
            "obis": "0.0.96.1.0.255",
            "name": "Device ID 1",
            "class_id": 1,
            "unit": None,
            "device_class": None,
            "state_class": None,
        },
        {
            "obis": "0.0.1.0.0.255",
            "name": "Clock",
            "class_id": 8,
            "unit": None,
            "device_class": "timestamp",
            "state_class": None,
        },
    ],
}


def info_payload(**changes: Any) -> str:
    """The T-210D info as JSON, with top-level keys replaced by `changes`."""
    return json.dumps(copy.deepcopy(INFO) | changes)


def value_payload(value: Any, unit: str | None = None, obis: str = "") -> str:
    return json.dumps(
        {"value": value, "unit": unit, "ts": "2026-11-25T01:00:00Z", "obis": obis, "name": ""}
    )


def health_payload(state: str = "ok", code: str | None = None, message: str = "") -> str:
    return json.dumps(
        {"state": state, "code": code, "message": message, "since": "2026-11-25T01:00:00Z"}
    )


# --- clock, events and peak demand, as the agent writes them -------------------------------
# Built with the agent's own encoders (edge_agent.mqtt.payloads) and event table, exactly
# as edge_agent/agent/clock_and_events.py calls them.

STANDARD_LOG = "0.0.99.98.0.255"
FRAUD_LOG = "0.0.99.98.1.255"
POWER_FAILURE_LOG = "1.0.99.97.0.255"
CLOCK_OBIS = "0.0.1.0.0.255"
MAX_DEMAND = "1.0.1.6.0.255"

# The meter's maximum demand register (class 4) as `info` lists it, and the figure the
# agent computes from the load profile when the meter has none (class 7).
MAX_DEMAND_REGISTER: dict[str, Any] = {
    "obis": MAX_DEMAND,
    "name": "Maximum demand import (+A), current billing period",
    "class_id": 4,
    "unit": "W",
    "device_class": "power",
    "state_class": "measurement",
}
MAX_DEMAND_COMPUTED: dict[str, Any] = MAX_DEMAND_REGISTER | {
    "name": "Maximum demand import (+A), from the load profile",
    "class_id": 7,
}


def clock_payload(
    drift: float | None = 17.0,
    *,
    agent_time: datetime | None = None,
    status: list[str] | None = None,
    sync: dict[str, Any] | None = None,
) -> bytes:
    """The retained `clock` message: by default the contract's example (Vienna, winter
    time, 17 s ahead, clock_sync shifted it)."""
    agent_time = agent_time or datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
    meter_time = None if drift is None else agent_time + timedelta(seconds=drift)
    local = None if meter_time is None else (meter_time + timedelta(hours=1)).replace(tzinfo=None)
    return agent_payloads.clock_payload(
        agent_time=agent_time,
        meter_time=meter_time,
        meter_local_time=None if local is None else local.isoformat(),
        drift=drift,
        deviation=-60,
        status=[] if status is None else status,
        status_raw=0,
        time_zone=-60,
        daylight_saving={
            "enabled": True,
            "active": False,
            "deviation": 60,
            "begin": "****-03-254 02:00:00.00",
            "end": "****-10-254 03:00:00.00",
        },
        clock_base="internal_crystal",
        sync=sync
        if sync is not None
        else {"enabled": True, "result": "shifted", "step": -17, "message": "shift_time by -17 s"},
    )


def event_payload(
    ts: datetime,
    code: int | None,
    log: str = STANDARD_LOG,
    status: list[str] | None = None,
    raw: dict[str, Any] | None = None,
) -> bytes:
    """One `event` message: name and text from the agent's table (`long_power_failure`
    for a power failure log row without a code)."""
    kind = event_codes.LONG_POWER_FAILURE if code is None else event_codes.event_code(code)
    columns: dict[str, Any] = {CLOCK_OBIS: ts}
    if code is not None:
        columns[f"0.0.96.11.{log.split('.')[4]}.255"] = code
    return agent_payloads.event_payload(
        ts=ts,
        log=log,
        code=code,
        name=kind.name,
        text=kind.text,
        status=[] if status is None else status,
        raw=columns | (raw or {}),
    )
