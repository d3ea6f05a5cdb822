"""The T-210D as a dlms-edge agent publishes it (docs/mqtt-contract.md), for the tests."""

from __future__ import annotations

import copy
import json
from typing import Any

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
