"""End to end: meter simulator → dlms-edge agent → Mosquitto → Home Assistant.

Real programs on 127.0.0.1 only: Mosquitto, `dlms-edge simulate` (generic meter),
`dlms-edge run` (public client, polling every few seconds) and `hass -c <temp config>`
with this repository's integration. The test adds MQTT and then the meter through Home
Assistant's REST config flows, as a user does in the UI, and checks the states of the
energy, power and voltage sensors against the meter. On failure, the teardown prints
the tail of every program's log.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e_support import (
    HOST,
    E2EError,
    HomeAssistantApi,
    Service,
    free_port,
    listening_port,
    port_open,
    python_tool,
    wait_for,
    write_agent_config,
    write_home_assistant_config,
    write_mosquitto_config,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

INTEGRATION = Path(__file__).resolve().parents[2] / "custom_components" / "dlms_edge"
MOSQUITTO = "/usr/sbin/mosquitto"
HASS = "home-assistant"
AGENT_ID = "e2e-agent"
POLL_SECONDS = 5
START_TIMEOUT = 20.0
HA_START_TIMEOUT = 100.0  # two slow cores: imports and bootstrap take up to a minute
METER_SEEN_TIMEOUT = 60.0
SENSORS_TIMEOUT = 60.0

# OBIS -> allowed units, device_class, state_class (docs/home-assistant.md).
EXPECTED = {
    "1.0.1.8.0.255": ({"Wh", "kWh"}, "energy", "total_increasing"),
    "1.0.1.7.0.255": ({"W"}, "power", "measurement"),
    "1.0.32.7.0.255": ({"V"}, "voltage", "measurement"),
}
WH_PER_UNIT = {"Wh": 1.0, "kWh": 1000.0}
# Integrations that discover or call out; default_config would bring them.
NETWORKED = {
    "cloud",
    "default_config",
    "dhcp",
    "ssdp",
    "zeroconf",
    "bluetooth",
    "usb",
    "go2rtc",
    "mobile_app",
    "my",
    "stream",
    "radio_browser",
    "google_translate",
}
# Home Assistant's log records: "<date> <time> LEVEL (thread) [logger] message".
_RECORD = re.compile(
    r"^\S+ \S+ (?P<level>[A-Z]+) \([^)]*\) \[(?P<logger>[^\]]+)\] (?P<message>.*)$"
)


@pytest.fixture
def services() -> Iterator[dict[str, Service]]:
    """Started programs by name; all stopped afterwards, their logs printed (on failure).

    Home Assistant stops first (it would log the broker's disappearance), then the rest
    in the reverse order of their start: the agent before the broker it reports to.
    """
    started: dict[str, Service] = {}
    yield started
    first = [started[HASS]] if HASS in started else []
    for service in first + [s for s in reversed(started.values()) if s.name != HASS]:
        service.stop()
    for name, service in started.items():
        print(f"\n----- {name}: {service.log_path} (tail) -----\n{service.log_tail(120)}")


def _mosquitto_binary() -> str:
    if not Path(MOSQUITTO).exists():
        pytest.fail(f"{MOSQUITTO} is missing (apt-get install mosquitto)")
    return MOSQUITTO


def _start(services: dict[str, Service], service: Service) -> Service:
    services[service.name] = service
    return service.start()


def test_meter_values_reach_home_assistant(
    socket_enabled: None, tmp_path: Path, services: dict[str, Service]
) -> None:
    # Home Assistant takes longest to start: launch it first, the chain meanwhile.
    ha_dir = tmp_path / "ha-config"
    ha_dir.mkdir()
    ha_port = free_port()
    write_home_assistant_config(ha_dir, ha_port, INTEGRATION)
    hass = _start(
        services,
        Service(
            HASS,
            [
                sys.executable,
                "-m",
                "homeassistant",
                "--config",
                str(ha_dir),
                "--skip-pip",
                "--verbose",
            ],
            tmp_path / "home-assistant.out",
        ),
    )

    broker_port = free_port()
    broker = _start(
        services,
        Service(
            "mosquitto",
            [_mosquitto_binary(), "-c", str(write_mosquitto_config(tmp_path, broker_port))],
            tmp_path / "mosquitto.log",
        ),
    )
    simulator = _start(
        services,
        Service(
            "simulator",
            [python_tool("dlms-edge"), "simulate", "--tcp", f"{HOST}:0"],
            tmp_path / "simulator.log",
        ),
    )
    wait_for(
        "Mosquitto to listen", lambda: port_open(broker_port) or None, START_TIMEOUT, (broker,)
    )
    meter_port = wait_for(
        "the simulator to listen", lambda: listening_port(simulator), START_TIMEOUT, (simulator,)
    )
    agent_config = write_agent_config(tmp_path, broker_port, meter_port, AGENT_ID, POLL_SECONDS)
    agent = _start(
        services,
        Service(
            "agent",
            [python_tool("dlms-edge"), "run", "--config", str(agent_config)],
            tmp_path / "agent.log",
        ),
    )
    chain = (broker, simulator, agent, hass)

    api = HomeAssistantApi(ha_port)
    config = _onboarded(api, chain)
    # Recovery mode would skip custom integrations; nothing set up may reach the network.
    assert config["recovery_mode"] is False, config
    assert not NETWORKED & set(config["components"]), config["components"]

    _add_mqtt(api, broker_port)
    entry_id = _add_agent(api, chain)
    sensors = wait_for(
        "numeric sensor states",
        lambda: _sensor_states(api, entry_id),
        SENSORS_TIMEOUT,
        chain,
        interval=1.0,
    )

    for obis, (units, device_class, state_class) in EXPECTED.items():
        attributes = sensors[obis]["attributes"]
        assert attributes.get("unit_of_measurement") in units, (obis, attributes)
        assert attributes.get("device_class") == device_class, (obis, attributes)
        assert attributes.get("state_class") == state_class, (obis, attributes)
    # Scaling survived every hop: the simulator's voltage is 230 V ± 6 (scaler -1).
    assert 200.0 < float(sensors["1.0.32.7.0.255"]["state"]) < 260.0
    assert float(sensors["1.0.1.7.0.255"]["state"]) >= 0.0
    # The energy register only grows: what Home Assistant shows was read a few seconds
    # before the meter is asked again here, and it is the same quantity.
    energy = sensors["1.0.1.8.0.255"]
    shown_wh = float(energy["state"]) * WH_PER_UNIT[energy["attributes"]["unit_of_measurement"]]
    meter_wh = _read_meter(meter_port, "1.0.1.8.0.255")
    # (Half a Wh of slack for a kWh display: 34478.174 * 1000 is not exactly 34478174.)
    assert shown_wh > 0.0 and -0.5 <= meter_wh - shown_wh < 1000.0, (shown_wh, meter_wh)
    assert _integration_problems(hass.log_path.read_text(errors="replace")) == []


def _onboarded(api: HomeAssistantApi, chain: tuple[Service, ...]) -> dict[str, Any]:
    """Wait for Home Assistant's HTTP server, onboard its owner, wait until it is running;
    its ``/api/config``."""
    started_by = time.monotonic() + HA_START_TIMEOUT
    wait_for(
        "Home Assistant's HTTP server",
        lambda: api.probe("/api/onboarding"),
        started_by - time.monotonic(),
        chain,
    )
    api.onboard()
    config: dict[str, Any] = wait_for(
        "Home Assistant to be running",
        lambda: _running_config(api),
        started_by - time.monotonic(),
        chain,
    )
    return config


def _running_config(api: HomeAssistantApi) -> dict[str, Any] | None:
    config = api.probe("/api/config")
    return config if config and config["state"] == "RUNNING" else None


def _add_mqtt(api: HomeAssistantApi, broker_port: int) -> None:
    """Settings → Add integration → MQTT: broker and port; connects before it creates."""
    flow = api.start_flow("mqtt")
    assert (flow["type"], flow["step_id"]) == ("form", "broker"), flow
    user_input: dict[str, Any] = {"broker": HOST, "port": broker_port}
    # Newer releases group the remaining broker options in a section; the UI sends its
    # untouched toggles: no client certificate, no broker certificate check (plain TCP).
    if "other_settings" in {field["name"] for field in flow["data_schema"]}:
        user_input["other_settings"] = {"set_client_cert": False, "set_ca_cert": "off"}
    result = api.flow_step(flow["flow_id"], user_input)
    assert result["type"] == "create_entry", result
    wait_for("the MQTT entry to load", lambda: _entry_loaded(api, "mqtt"), START_TIMEOUT)


def _add_agent(api: HomeAssistantApi, chain: tuple[Service, ...]) -> str:
    """Add integration → DLMS Edge: prefix, then the agent (with its meter). Entry id."""
    flow = api.start_flow("dlms_edge")
    assert (flow["type"], flow["step_id"]) == ("form", "user"), flow

    def meters_listed() -> dict[str, Any] | None:
        # The flow listens a few seconds per try; the agent announces the meter
        # (retained `info`) after its first association.
        result = api.flow_step(flow["flow_id"], {"prefix": "dlms"})
        if result["type"] == "form" and result["step_id"] == "user":
            assert result["errors"] == {"base": "no_meters_found"}, result
            return None
        return result

    picker = wait_for(
        "the meter to be offered", meters_listed, METER_SEEN_TIMEOUT, chain, interval=0.0
    )
    assert (picker["type"], picker["step_id"]) == ("form", "pick_agent"), picker
    (field,) = picker["data_schema"]
    options = field["selector"]["select"]["options"]
    ours = [option for option in options if option["value"] == AGENT_ID]
    assert len(ours) == 1, options
    result = api.flow_step(flow["flow_id"], {field["name"]: AGENT_ID})
    assert result["type"] == "create_entry", result
    assert result["title"] == AGENT_ID, result
    wait_for("the agent entry to load", lambda: _entry_loaded(api, "dlms_edge"), START_TIMEOUT)
    return result["result"]["entry_id"]


def _entry_loaded(api: HomeAssistantApi, domain: str) -> bool | None:
    """True once the domain's only entry is loaded; setup_retry may still turn out well."""
    entries = api.call("GET", f"/api/config/config_entries/entry?domain={domain}")
    states = {entry["state"] for entry in entries}
    if states & {"setup_error", "migration_error", "failed_unload"}:
        raise E2EError(f"{domain} entry did not set up: {entries}")
    return [entry["state"] for entry in entries] == ["loaded"] or None


def _sensor_states(api: HomeAssistantApi, entry_id: str) -> dict[str, dict[str, Any]] | None:
    """The expected sensors' states by OBIS, once all are numeric; else None.

    Unique ids are `<meter identity>_<obis>`; the agent has this one meter.
    """
    by_obis = {
        entry["unique_id"].rpartition("_")[2]: entry["entity_id"]
        for entry in api.entity_registry()
        if entry["config_entry_id"] == entry_id and entry["entity_id"].startswith("sensor.")
    }
    states = api.states()
    found = {}
    for obis in EXPECTED:
        entity_id = by_obis.get(obis)
        state = states.get(entity_id) if entity_id else None
        if state is None or not _is_number(state["state"]):
            return None
        found[obis] = state
    return found


def _is_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def _integration_problems(log: str) -> list[str]:
    """Warnings and errors of the integration, and Home Assistant's reports about it."""
    problems = []
    for line in log.splitlines():
        if (record := _RECORD.match(line)) is None:
            continue
        about_us = "dlms_edge" in record["logger"] or "dlms_edge" in record["message"]
        if (
            about_us
            and record["level"] in ("WARNING", "ERROR", "CRITICAL")
            and ("has not been tested by Home Assistant" not in record["message"])
        ):
            problems.append(line)
    return problems


def _read_meter(port: int, obis: str) -> float:
    """The register as `dlms-edge read` sees it now (a second client of the simulator)."""
    done = subprocess.run(
        [python_tool("dlms-edge"), "read", "--tcp", f"{HOST}:{port}", "--json", obis],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    reading = json.loads(done.stdout)[obis]
    assert reading["unit"] == "Wh", reading
    return float(reading["value"])
