"""The real processes of the end-to-end test, on 127.0.0.1 only.

``Service`` runs one program in its own session (process group) with stdout and stderr in
a log file; ``stop()`` ends the whole group (TERM, then KILL after a grace period) and
the kernel kills it anyway if pytest dies first (``setpriv --pdeathsig``).
``HomeAssistantApi`` drives Home Assistant's REST API (onboarding, config flows, states)
with the standard library, and reads the entity registry over the WebSocket API.
Configuration writers produce the temporary Mosquitto, agent and Home Assistant configs.
"""

from __future__ import annotations

import asyncio
import getpass
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp

HOST = "127.0.0.1"
STOP_GRACE = 15.0
_SETPRIV = shutil.which("setpriv")
_LISTENING = re.compile(r"listening on [0-9.]+:(\d+)")


class E2EError(AssertionError):
    """A step of the end-to-end run did not happen in time or answered wrongly."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def port_open(port: int) -> bool:
    try:
        socket.create_connection((HOST, port), timeout=0.5).close()
    except OSError:
        return False
    return True


def child_environment() -> dict[str, str]:
    env = dict(os.environ)
    for name in ("DLMS_EK", "DLMS_AK", "DLMS_PASSWORD"):  # a developer's keys stay out
        env.pop(name, None)
    env["PYTHONUNBUFFERED"] = "1"
    return env


class Service:
    """One background program; ``log_tail()`` for diagnostics."""

    def __init__(
        self, name: str, argv: list[str], log_path: Path, env: dict[str, str] | None = None
    ) -> None:
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self.env = env or {}  # added to the environment of the next start
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Service:
        # The parent-death signal belongs to the thread that starts the child: the test's.
        guard = [_SETPRIV, "--pdeathsig", "KILL", "--"] if _SETPRIV else []
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [*guard, *self.argv],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=child_environment() | self.env,
                start_new_session=True,
            )
        return self

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def check_running(self) -> None:
        if not self.running:
            code = None if self.process is None else self.process.returncode
            raise E2EError(f"{self.name} exited with {code}:\n{self.log_tail()}")

    def stop(self, grace: float = STOP_GRACE) -> None:
        """TERM the process group, KILL it after `grace` seconds; leaves nothing behind."""
        process, self.process = self.process, None
        if process is None:
            return
        _signal_group(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
        # Also reaches children that outlived the leader.
        _signal_group(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    def log_tail(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


def _signal_group(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        pass


def wait_for[T](
    what: str,
    probe: Callable[[], T | None],
    timeout: float,
    services: tuple[Service, ...] = (),
    interval: float = 0.5,
) -> T:
    """Call `probe` until it returns a value other than None; fail early if a service died."""
    deadline = time.monotonic() + timeout
    while True:
        for service in services:
            service.check_running()
        if (value := probe()) is not None:
            return value
        if time.monotonic() > deadline:
            raise E2EError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def listening_port(service: Service) -> int | None:
    """The port `dlms-edge simulate --tcp 127.0.0.1:0` printed, once it did."""
    match = _LISTENING.search(service.log_tail(20))
    return int(match.group(1)) if match else None


# --- configuration files ----------------------------------------------------------------


def write_mosquitto_config(workdir: Path, port: int) -> Path:
    lines = [
        # As root, Mosquitto drops to the "mosquitto" user unless told to keep this one.
        f"user {getpass.getuser()}" if os.geteuid() == 0 else "",
        f"listener {port} {HOST}",
        "allow_anonymous true",
        "persistence false",
        "log_dest stderr",
        "log_type error",
        "log_type warning",
        "log_type notice",
        "log_type information",
    ]
    path = workdir / "mosquitto.conf"
    path.write_text("\n".join(lines) + "\n")
    return path


def write_agent_config(
    workdir: Path,
    broker_port: int,
    meter_port: int,
    agent_id: str,
    interval: float,
    *,
    objects: str = "all",
    profile: tuple[str, str] | None = None,
) -> Path:
    """The simulator's public client (SAP 16, no security): `objects` read every
    `interval` s and, with `profile` = (OBIS, backfill), that load profile's rows."""
    state_dir = workdir / "agent-state"
    state_dir.mkdir(exist_ok=True)
    text = f"""\
agent: {{id: {agent_id}}}
state_dir: {state_dir}
logging: {{level: DEBUG}}
mqtt: {{host: {HOST}, port: {broker_port}, prefix: dlms}}
meters:
  - transport: {{tcp: "{HOST}:{meter_port}"}}
    link: wrapper
    addresses: {{client: 16, logical: 1}}
    timeout: 5s
    poll:
      - {{name: all, interval: {interval:g}, objects: {objects}}}
"""
    if profile is not None:
        obis, backfill = profile
        text += f"""\
    profiles:
      - {{obis: {obis}, interval: 15m, backfill: {backfill}}}
"""
    path = workdir / "agent.yaml"
    path.write_text(text)
    return path


def write_home_assistant_config(config_dir: Path, http_port: int, integration: Path) -> None:
    """A minimal configuration: no default_config, so nothing reaches beyond 127.0.0.1.

    Home Assistant always sets up `frontend`; without the `home-assistant-frontend`
    package it fails and Home Assistant starts in recovery mode (no custom integrations,
    cloud set up). A `development_repo` without files lets it load and serve nothing.
    """
    frontend_repo = config_dir / "frontend-repo"
    (frontend_repo / "hass_frontend").mkdir(parents=True)
    (config_dir / "custom_components").mkdir()
    (config_dir / "custom_components" / integration.name).symlink_to(integration)
    text = f"""\
homeassistant:
  name: E2E
  latitude: 48.2
  longitude: 16.37
  elevation: 0
  unit_system: metric
  time_zone: UTC
  country: AT
  currency: EUR
http:
  server_host: {HOST}
  server_port: {http_port}
frontend:
  development_repo: {frontend_repo}
api:
config:
onboarding:
logger:
  default: info
  logs:
    custom_components.dlms_edge: debug
"""
    (config_dir / "configuration.yaml").write_text(text)


# --- Home Assistant API -----------------------------------------------------------------


class HomeAssistantApi:
    """REST calls as the onboarded owner; every call has a time-out."""

    def __init__(self, port: int) -> None:
        self.base_url = f"http://{HOST}:{port}"
        self.token: str | None = None

    def call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        form: dict[str, str] | None = None,
        timeout: float = 30.0,
        expect: tuple[int, ...] = (200, 201),
    ) -> Any:
        headers = {}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        elif form is not None:
            data = urllib.parse.urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(self.base_url + path, data, headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                status, text = response.status, response.read().decode()
        except urllib.error.HTTPError as err:
            status, text = err.code, err.read().decode(errors="replace")
        if status not in expect:
            raise E2EError(f"{method} {path}: expected HTTP {expect}, got {status}: {text}")
        return json.loads(text) if text else None

    def probe(self, path: str) -> Any | None:
        """The JSON at `path`, or None while Home Assistant does not answer yet."""
        try:
            return self.call("GET", path, timeout=5.0)
        except (OSError, E2EError):
            return None

    def onboard(self) -> None:
        """Create the owner (onboarding's first step) and log in with the code it gives."""
        client_id = f"{self.base_url}/"
        user = self.call(
            "POST",
            "/api/onboarding/users",
            {
                "client_id": client_id,
                "name": "E2E",
                "username": "e2e",
                "password": secrets.token_hex(16),
                "language": "en",
            },
        )
        tokens = self.call(
            "POST",
            "/auth/token",
            form={
                "grant_type": "authorization_code",
                "code": user["auth_code"],
                "client_id": client_id,
            },
        )
        self.token = tokens["access_token"]

    def start_flow(self, handler: str) -> dict[str, Any]:
        return self.call(
            "POST",
            "/api/config/config_entries/flow",
            {"handler": handler, "show_advanced_options": False},
        )

    def flow_step(self, flow_id: str, user_input: dict[str, Any]) -> dict[str, Any]:
        return self.call("POST", f"/api/config/config_entries/flow/{flow_id}", user_input)

    def states(self) -> dict[str, dict[str, Any]]:
        return {state["entity_id"]: state for state in self.call("GET", "/api/states")}

    def entity_registry(self, timeout: float = 20.0) -> list[dict[str, Any]]:
        """`config/entity_registry/list` (WebSocket only), on a thread with its own loop."""
        outcome: dict[str, Any] = {}

        def run() -> None:
            try:
                outcome["value"] = asyncio.run(
                    asyncio.wait_for(self._ws_command("config/entity_registry/list"), timeout)
                )
            except (OSError, aiohttp.ClientError, E2EError, ValueError) as err:
                outcome["error"] = err

        worker = threading.Thread(target=run, name="e2e-websocket")
        worker.start()
        worker.join(timeout + 5)
        if "error" in outcome:
            raise E2EError(f"entity registry: {outcome['error']!r}")
        if "value" not in outcome:
            raise E2EError("entity registry: no answer")
        return outcome["value"]

    async def _ws_command(self, command: str) -> Any:
        url = self.base_url.replace("http://", "ws://") + "/api/websocket"
        async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
            if (hello := await ws.receive_json())["type"] != "auth_required":
                raise E2EError(f"websocket: expected auth_required, got {hello}")
            await ws.send_json({"type": "auth", "access_token": self.token})
            if (auth := await ws.receive_json())["type"] != "auth_ok":
                raise E2EError(f"websocket: expected auth_ok, got {auth}")
            await ws.send_json({"id": 1, "type": command})
            reply = await ws.receive_json()
            if not reply.get("success"):
                raise E2EError(f"websocket {command}: {reply}")
            return reply["result"]


def python_tool(name: str) -> str:
    """A console script of the running environment (.venv-ha/bin/NAME)."""
    path = Path(sys.executable).with_name(name)
    if not path.exists():
        raise E2EError(f"{path} is missing; `bash tests/ha/run` installs it (pip install -e .)")
    return str(path)
