"""Screenshots of what a user sees: the discovery card, the meter's device page, the
agent's device page and the Energy configuration with the meter's energy sensor.

Not a test (pytest does not collect it): a tool for reviewing the integration in a
browser, with the same real programs as the end-to-end test (Mosquitto, the meter
simulator, the agent, `hass`), on 127.0.0.1 only, plus Home Assistant's frontend
(package `home-assistant-frontend` in the venv) and headless Chromium (`chromium`):

    .venv-ha/bin/python -m pip install home-assistant-frontend==20250411.0
    .venv-ha/bin/python tests/ha/screenshots.py OUTDIR

Each page is opened through the frontend's own login callback (an authorization code
from the login flow), so no token is stored anywhere.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from e2e_support import (
    HOST,
    HomeAssistantApi,
    Service,
    free_port,
    listening_port,
    port_open,
    python_tool,
    wait_for,
    write_agent_config,
    write_mosquitto_config,
)

INTEGRATION = Path(__file__).resolve().parents[2] / "custom_components" / "dlms_edge"
AGENT_ID = "pi-kitchen"
USER, NAME = "owner", "Owner"
WINDOW = "1366,900"


def write_config(config_dir: Path, port: int) -> None:
    (config_dir / "custom_components").mkdir(parents=True)
    (config_dir / "custom_components" / INTEGRATION.name).symlink_to(INTEGRATION)
    (config_dir / "configuration.yaml").write_text(
        f"""\
homeassistant:
  name: Home
  latitude: 48.2
  longitude: 16.37
  elevation: 0
  unit_system: metric
  time_zone: Europe/Vienna
  country: AT
  currency: EUR
http:
  server_host: {HOST}
  server_port: {port}
frontend:
api:
config:
onboarding:
energy:
recorder:
history:
logger:
  default: warning
"""
    )


def onboard(api: HomeAssistantApi, password: str) -> None:
    client_id = f"{api.base_url}/"
    result = api.call(
        "POST",
        "/api/onboarding/users",
        {
            "client_id": client_id,
            "name": NAME,
            "username": USER,
            "password": password,
            "language": "en",
        },
    )
    tokens = api.call(
        "POST",
        "/auth/token",
        form={
            "grant_type": "authorization_code",
            "code": result["auth_code"],
            "client_id": client_id,
        },
    )
    api.token = tokens["access_token"]
    api.call("POST", "/api/onboarding/core_config", {})
    api.call("POST", "/api/onboarding/analytics", {})
    api.call(
        "POST", "/api/onboarding/integration", {"client_id": client_id, "redirect_uri": client_id}
    )


def login_url(api: HomeAssistantApi, password: str, path: str) -> str:
    """`path` opened through the frontend's auth callback with a fresh code."""
    client_id = f"{api.base_url}/"
    flow = api.call(
        "POST",
        "/auth/login_flow",
        {"client_id": client_id, "handler": ["homeassistant", None], "redirect_uri": client_id},
    )
    done = api.call(
        "POST",
        f"/auth/login_flow/{flow['flow_id']}",
        {"client_id": client_id, "username": USER, "password": password},
    )
    state = base64.b64encode(
        json.dumps({"hassUrl": api.base_url, "clientId": client_id}).encode()
    ).decode()
    return f"{api.base_url}{path}?auth_callback=1&code={done['result']}&state={state}"


def shoot(url: str, out: Path, profile: Path) -> None:
    shutil.rmtree(profile, ignore_errors=True)
    subprocess.run(
        [
            shutil.which("chromium") or "chromium",
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            f"--window-size={WINDOW}",
            "--virtual-time-budget=20000",
            f"--screenshot={out}",
            url,
        ],
        check=True,
        timeout=120,
        capture_output=True,
    )
    print(f"wrote {out}")


async def ws(api: HomeAssistantApi, command: dict[str, Any]) -> Any:
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(f"{api.base_url}/api/websocket") as socket,
    ):
        await socket.receive_json()
        await socket.send_json({"type": "auth", "access_token": api.token})
        await socket.receive_json()
        await socket.send_json({"id": 1, **command})
        reply = await socket.receive_json(timeout=20)
        assert reply["success"], reply
        return reply["result"]


def main(out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="dlms-edge-shots-"))
    services: list[Service] = []
    try:
        ha_port, broker_port = free_port(), free_port()
        write_config(work / "ha", ha_port)
        hass = Service(
            "hass",
            [sys.executable, "-m", "homeassistant", "--config", str(work / "ha"), "--skip-pip"],
            work / "hass.log",
        ).start()
        services.append(hass)
        broker = Service(
            "mosquitto",
            ["/usr/sbin/mosquitto", "-c", str(write_mosquitto_config(work, broker_port))],
            work / "mosquitto.log",
        ).start()
        services.append(broker)
        simulator = Service(
            "simulator",
            [python_tool("dlms-edge"), "simulate", "--tcp", f"{HOST}:0"],
            work / "simulator.log",
        ).start()
        services.append(simulator)
        wait_for("Mosquitto", lambda: port_open(broker_port) or None, 20, (broker,))
        meter_port = wait_for("the simulator", lambda: listening_port(simulator), 20, (simulator,))
        agent = Service(
            "agent",
            [
                python_tool("dlms-edge"),
                "run",
                "--config",
                str(write_agent_config(work, broker_port, meter_port, AGENT_ID, 5)),
            ],
            work / "agent.log",
        ).start()
        services.append(agent)

        api = HomeAssistantApi(ha_port)
        wait_for("Home Assistant", lambda: api.probe("/api/onboarding"), 180, (hass,))
        password = secrets.token_hex(12)
        onboard(api, password)
        wait_for(
            "Home Assistant running",
            lambda: (api.probe("/api/config") or {}).get("state") == "RUNNING" or None,
            180,
            (hass,),
        )
        flow = api.start_flow("mqtt")
        user_input: dict[str, Any] = {"broker": HOST, "port": broker_port}
        if "other_settings" in {field["name"] for field in flow["data_schema"]}:
            user_input["other_settings"] = {"set_client_cert": False, "set_ca_cert": "off"}
        api.flow_step(flow["flow_id"], user_input)

        def discovered() -> dict[str, Any] | None:
            flows = asyncio.run(ws(api, {"type": "config_entries/flow/progress"}))
            return next((f for f in flows if f["handler"] == "dlms_edge"), None)

        found = wait_for("the agent to be discovered", discovered, 90, (hass, agent))
        # The first load of the frontend fills caches and shows a blank page.
        shoot(login_url(api, password, "/profile"), work / "warm-up.png", work / "chromium")
        shoot(
            login_url(api, password, "/config/integrations/dashboard"),
            out_dir / "discovery-card.png",
            work / "chromium",
        )
        api.flow_step(found["flow_id"], {})
        time.sleep(15)  # a poll or two of the agent
        devices = asyncio.run(ws(api, {"type": "config/device_registry/list"}))
        ours = [d for d in devices if any(i[0] == "dlms_edge" for i in d["identifiers"])]
        meter = next(d for d in ours if d["model"] != "dlms-edge agent")
        agent_device = next(d for d in ours if d["model"] == "dlms-edge agent")
        shoot(
            login_url(api, password, f"/config/devices/device/{meter['id']}"),
            out_dir / "meter-device.png",
            work / "chromium",
        )
        shoot(
            login_url(api, password, f"/config/devices/device/{agent_device['id']}"),
            out_dir / "agent-device.png",
            work / "chromium",
        )
        entities = asyncio.run(ws(api, {"type": "config/entity_registry/list"}))
        by_unique = {
            e["unique_id"]: e["entity_id"] for e in entities if e["platform"] == "dlms_edge"
        }
        energy = next(v for k, v in by_unique.items() if k.endswith("_1.0.1.8.0.255"))
        asyncio.run(
            ws(
                api,
                {
                    "type": "energy/save_prefs",
                    "energy_sources": [
                        {
                            "type": "grid",
                            "flow_from": [
                                {
                                    "stat_energy_from": energy,
                                    "stat_cost": None,
                                    "entity_energy_price": None,
                                    "number_energy_price": None,
                                }
                            ],
                            "flow_to": [],
                            "cost_adjustment_day": 0,
                        }
                    ],
                    "device_consumption": [],
                },
            )
        )
        shoot(
            login_url(api, password, "/config/energy"),
            out_dir / "energy-config.png",
            work / "chromium",
        )
    finally:
        for service in reversed(services):
            service.stop()
        for name in ("hass.log", "agent.log"):
            if (work / name).exists():
                print(f"--- {name} (warnings) ---")
                for line in (work / name).read_text(errors="replace").splitlines():
                    if "dlms_edge" in line and ("WARNING" in line or "ERROR" in line):
                        print(line)


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "screenshots"))
