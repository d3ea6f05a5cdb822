"""The one-command demo: simulated meter + MQTT broker + agent, and a watcher of the topics.

    with Demo(DemoOptions(mqtt_port=1883)) as demo:    # starts all three, in this order
        demo.values.rows()                             # what the broker delivered so far

Each piece is the real thing: the simulator serves the wrapper on a free 127.0.0.1 port,
the broker is Mosquitto when installed (else the embedded amqtt broker of the ``demo``
extra), the agent is :class:`edge_agent.agent.daemon.Agent` with a generated config, and
the live values come back through an MQTT subscription -- what a user sees with
``mosquitto_sub`` is what the table shows. Everything stops in reverse order, each step
even when one before it failed; Mosquitto runs in its own process group and gets SIGTERM
from the kernel should the demo die without stopping it (:mod:`edge_agent.children`).

The default profile ``t210d`` is the field case this project is built around (README,
"Try it against the simulator"): the simulated Sagemcom
T-210D wants suite 1, authenticated encryption and HLS-5, and refuses an unsigned pass 3.
The agent reads it as the management client (SAP 1) with ``pass3_signing: auto``, keys
from a keys directory the simulator creates in the demo's temporary directory; it learns
the refusal, re-associates with a general-signing pass 3 and keeps that fact in its
state dir, where :meth:`Demo.pass3_signing_learned` reads it back. ``generic`` is the
plain meter read by the public client, without security.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Self

import yaml

from edge_agent import children
from edge_agent.dlms.errors import ConfigError, TransportError

log = logging.getLogger(__name__)

BROKERS = ("auto", "mosquitto", "amqtt")
PROFILES = ("t210d", "generic")  # the first is the default
BROKER_ENV = "DLMS_EDGE_DEMO_BROKER"  # force a broker without the option (CI, tests)
HOST = "127.0.0.1"
START_TIMEOUT = 10.0  # seconds for a broker to accept connections
# The whole stop (agent, watcher, broker, meter) within this many seconds, however slow each
# part is: one deadline shared by the steps, not a time-out per step that could add up.
STOP_TIMEOUT = 10.0
# amqtt on its default plugins: an empty plugins section refuses anonymous clients.
_AMQTT_PLUGINS = {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}}


def mosquitto_binary() -> str | None:
    """``mosquitto`` on PATH, or in /usr/sbin where Debian puts it (often not on PATH)."""
    for candidate in (shutil.which("mosquitto"), "/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def port_is_free(port: int, host: str = HOST) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as brokers bind
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = HOST) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def _wait_listening(port: int, alive: Any, what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if not alive():
            raise TransportError(f"{what} stopped while starting")
        try:
            socket.create_connection((HOST, port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise TransportError(f"{what} does not accept connections on {HOST}:{port} after {START_TIMEOUT:g} s")


class MosquittoBroker:
    kind = "mosquitto"

    def __init__(self, binary: str, port: int, workdir: Path) -> None:
        self.port = port
        config = workdir / "mosquitto.conf"
        self.log_file = workdir / "mosquitto.log"
        # As root Mosquitto would switch to its own user, and the kernel clears the
        # parent-death signal on any change of credentials: a killed demo would leave the
        # broker behind. "user root" keeps them (it listens on 127.0.0.1 only, for the demo's
        # lifetime); for any other user the setting has no effect.
        keep_user = "user root\n" if os.geteuid() == 0 else ""
        config.write_text(f"listener {port} {HOST}\nallow_anonymous true\npersistence false\n"
                          f"log_dest file {self.log_file}\n{keep_user}", encoding="utf-8")
        # Own process group (Ctrl-C reaches the demo only, which stops the agent first) and
        # SIGTERM from the kernel if the demo dies without stopping it. Its stderr (errors
        # before the log file is open) goes to a file: a pipe nobody reads could fill up.
        with open(workdir / "mosquitto.stderr", "wb") as errors:
            self.process = children.spawn([binary, "-c", str(config)], stdin=subprocess.DEVNULL,
                                          stdout=subprocess.DEVNULL, stderr=errors)
        try:
            _wait_listening(port, lambda: self.process.poll() is None, f"mosquitto ({binary})")
        except TransportError as error:
            self.stop()
            tail = "".join(path.read_text(encoding="utf-8", errors="replace")[-500:]
                           for path in (workdir / "mosquitto.stderr", self.log_file) if path.exists())
            raise TransportError(f"{error}: {tail.strip() or 'no log'}") from None

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self, timeout: float = 5.0) -> None:
        children.stop(self.process, timeout=max(0.5, timeout))


class _SnapshotDict(dict):  # type: ignore[type-arg]
    """amqtt's subscription table, iterated as a snapshot.

    amqtt iterates ``Broker._subscriptions`` across ``await``s (publishing retained messages
    to a client that just connected) while another client subscribes: "dictionary changed
    size during iteration" then ends the connecting client's session half-way -- CONNACK
    sent, but its SUBSCRIBEs never answered and its messages never handled, and a traceback
    on the demo's output. Iterating a copy is what those loops mean.
    """

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(list(super().keys()))

    def keys(self):  # type: ignore[no-untyped-def]
        return list(super().keys())

    def values(self):  # type: ignore[no-untyped-def]
        return list(super().values())

    def items(self):  # type: ignore[no-untyped-def]
        return list(super().items())


def _broker_loop_error(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """Errors inside the embedded broker are its own: one line in the debug log, never a
    traceback over the live table."""
    log.debug("amqtt: %s: %r", context.get("message"), context.get("exception"))


class AmqttBroker:
    """amqtt (asyncio) on its own event loop in a daemon thread."""

    kind = "amqtt"

    def __init__(self, port: int) -> None:
        try:
            from amqtt.broker import Broker
        except ImportError:
            raise ConfigError("no MQTT broker: install Mosquitto (apt install mosquitto) or the "
                              "embedded one (pip install 'dlms-edge[demo]', as scripts/demo does)") from None
        self.port = port
        # Its per-connection INFO/WARNING lines would scroll through the live table.
        logging.getLogger("amqtt").setLevel(max(logging.ERROR, logging.getLogger("amqtt").getEffectiveLevel()))
        self.loop = asyncio.new_event_loop()
        self.loop.set_exception_handler(_broker_loop_error)
        self._failed: BaseException | None = None
        config = {"listeners": {"default": {"type": "tcp", "bind": f"{HOST}:{port}"}},
                  "plugins": _AMQTT_PLUGINS}
        self.broker = None
        started = threading.Event()

        def serve() -> None:
            asyncio.set_event_loop(self.loop)
            try:
                self.broker = Broker(config, loop=self.loop)
                if isinstance(getattr(self.broker, "_subscriptions", None), dict):
                    self.broker._subscriptions = _SnapshotDict(self.broker._subscriptions)
                self.loop.run_until_complete(self.broker.start())
            except BaseException as error:  # noqa: BLE001 - reported to the starting thread
                self._failed = error
                started.set()
                return
            started.set()
            self.loop.run_forever()

        self.thread = threading.Thread(target=serve, name="amqtt-broker", daemon=True)
        self.thread.start()
        started.wait(START_TIMEOUT)
        # broker.start() returns once its listeners are bound: no probe connection needed
        # (amqtt logs an error for a connection that sends nothing).
        if self._failed is not None or not started.is_set():
            raise TransportError(f"the amqtt broker did not start on {HOST}:{port}: "
                                 f"{self._failed or 'no answer within the start time-out'}")

    def stop(self, timeout: float = 5.0) -> None:
        """Shut down within ``timeout`` seconds in all: the graceful shutdown gets most of
        it, what is left stops the loop (the thread is a daemon: it cannot hold the exit)."""
        deadline = time.monotonic() + max(0.5, timeout)
        if self.broker is not None and self.loop.is_running():
            try:
                asyncio.run_coroutine_threadsafe(self.broker.shutdown(), self.loop).result(
                    max(0.1, (deadline - time.monotonic()) * 0.8))
            except Exception as error:  # noqa: BLE001 - stopping goes on
                log.debug("amqtt shutdown: %s", error)
            self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(max(0.1, deadline - time.monotonic()))


def start_broker(kind: str, port: int, workdir: Path) -> MosquittoBroker | AmqttBroker:
    if kind not in BROKERS:
        raise ConfigError(f"broker {kind!r}: expected one of {', '.join(BROKERS)}")
    binary = mosquitto_binary()
    if kind == "mosquitto" and binary is None:
        raise ConfigError("mosquitto is not installed (apt install mosquitto); or use --broker amqtt")
    if kind in ("auto", "mosquitto") and binary is not None:
        return MosquittoBroker(binary, port, workdir)
    return AmqttBroker(port)


# --- what the broker delivers ---------------------------------------------------------------


@dataclass(slots=True)
class LiveValue:
    meter: str
    obis: str
    name: str
    value: Any
    unit: str | None
    ts: dt.datetime | None
    updates: int = 1
    changes: int = 0  # how often the value differed from the one before


@dataclass(slots=True)
class LiveValues:
    """The agent's topics as a subscriber sees them (``dlms/<agent>/#``)."""

    prefix: str
    agent: str
    status: str | None = None
    info: dict[str, dict[str, Any]] = field(default_factory=dict)
    values: dict[tuple[str, str], LiveValue] = field(default_factory=dict)
    messages: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    _SKIP = frozenset({"availability", "health", "state", "replay"})
    # Documents that are not one value: what the table shows of each.
    _SHOWN: ClassVar[dict[str, Callable[[dict[str, Any]], dict[str, Any]]]] = {
        "clock": lambda body: {"ts": body.get("ts"), "name": "Meter clock drift (meter - agent)",
                               "value": body.get("drift"), "unit": "s"},
        "event": lambda body: {"ts": body.get("ts"), "name": "Latest event",
                               "value": body.get("text") or body.get("name")},
    }

    def receive(self, topic: str, payload: bytes) -> None:
        levels = topic.split("/")
        if levels[:2] != [self.prefix, self.agent]:
            return
        with self.lock:
            self.messages += 1
            if levels[2:] == ["status"]:
                self.status = payload.decode("utf-8", "replace")
            elif len(levels) == 4 and levels[3] == "info":
                self.info[levels[2]] = _json(payload)
            elif len(levels) == 4 and levels[3] in self._SHOWN:
                self._value(levels[2], levels[3], self._SHOWN[levels[3]](_json(payload)))
            elif len(levels) == 4 and levels[3] not in self._SKIP:
                self._value(levels[2], levels[3], _json(payload))

    def _value(self, meter: str, obis: str, body: dict[str, Any]) -> None:
        ts = None
        if isinstance(body.get("ts"), str):
            try:
                ts = dt.datetime.fromisoformat(body["ts"])  # 3.11 reads the trailing Z
            except ValueError:
                ts = None
        old = self.values.get((meter, obis))
        new = LiveValue(meter, obis, str(body.get("name") or obis), body.get("value"), body.get("unit"), ts)
        if old is not None:
            new.updates = old.updates + 1
            new.changes = old.changes + (old.value != new.value)
        self.values[(meter, obis)] = new

    def rows(self) -> list[LiveValue]:
        with self.lock:
            return sorted(self.values.values(), key=lambda v: (v.meter, _obis_key(v.obis)))


def _json(payload: bytes) -> dict[str, Any]:
    try:
        body = json.loads(payload)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _obis_key(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split("."))
    except ValueError:
        return (999,)


# --- the whole demo -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DemoOptions:
    mqtt_port: int = 1883
    broker: str = "auto"
    interval: float = 3.0  # seconds between polls
    agent_id: str = "demo"
    prefix: str = "dlms"
    profile: str = PROFILES[0]
    seed: int = 1


@dataclass(frozen=True, slots=True)
class DemoKeys:
    """Where the agent finds its key material: a keys directory (edge_agent/keystore.py)
    and the client system title of the certificate in it."""

    directory: Path
    client_system_title: bytes


def _security(keys: DemoKeys) -> dict[str, Any]:
    """The management client of the T-210D, as in examples/t210d-optical.yaml. KeyRef
    files take hex text, whitespace ignored: the keys directory's ek.hex/ak.hex as they are."""
    from edge_agent.keystore import CLIENT_KEY, METER_CERT, SECRET_FILES

    return {"suite": 1, "policy": "authenc", "auth": "hls-gmac",
            "keys": {name: {"file": str(keys.directory / SECRET_FILES[name][0])} for name in ("ek", "ak")},
            "system_title": keys.client_system_title.hex().upper(),
            "pass3_signing": "auto",
            "signing_key": str(keys.directory / CLIENT_KEY),
            "meter_certificate": str(keys.directory / METER_CERT)}


def _within(timeout: float, what: str, stop: Callable[[], object]) -> None:
    """Run ``stop`` and wait for it ``timeout`` seconds at most: a part that does not stop in
    time (a store stuck on a busy disk, a client waiting for an acknowledgement) must not
    hold the demo. It goes on in a daemon thread, which ends with the process."""
    thread = threading.Thread(target=stop, name=f"demo-stop {what}", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        log.warning("demo stop: %s did not stop within %.1f s; going on", what, timeout)


def demo_config(options: DemoOptions, meter_port: int, mqtt_port: int, state_dir: Path,
                keys: DemoKeys | None = None) -> str:
    """The agent's config for the demo (the format of edge_agent/agent/config.py): the
    public client without ``keys``, the management client (SAP 1) with suite 1 with them."""
    meter: dict[str, Any] = {"transport": {"tcp": f"{HOST}:{meter_port}"}, "link": "wrapper",
                             "poll": [{"name": "all", "interval": options.interval, "objects": "all"}]}
    if keys is not None:
        meter["addresses"] = {"client": 1}
        meter["security"] = _security(keys)
    config = {"agent": {"id": options.agent_id}, "state_dir": str(state_dir),
              "mqtt": {"host": HOST, "port": mqtt_port, "prefix": options.prefix},
              "logging": {"level": "WARNING"}, "meters": [meter]}
    return yaml.safe_dump(config, sort_keys=False)


class Demo:
    """Start with :meth:`start` (or ``with``); :meth:`stop` is safe to call at any point."""

    def __init__(self, options: DemoOptions) -> None:
        self.options = options
        self.port_note: str | None = None  # set when the asked-for MQTT port was busy
        self._workdir: tempfile.TemporaryDirectory[str] | None = None
        self.server = None
        self.station = None
        self.broker: MosquittoBroker | AmqttBroker | None = None
        self.agent = None
        self.watcher = None
        self.meter_address: tuple[str, int] | None = None
        self.meter_description: str | None = None  # the simulator's own account of itself
        self._facts: tuple[Any, str] | None = None  # (FactStore, the meter's key in it)
        self._mqtt_port: int | None = None
        self._deadline = 0.0  # of the stop under way
        self.broker_kind: str | None = None
        self.values = LiveValues(options.prefix, options.agent_id)

    @property
    def mqtt_port(self) -> int:
        assert self._mqtt_port is not None, "start() first"
        return self._mqtt_port

    def subscribe_command(self) -> str:
        return f"mosquitto_sub -p {self.mqtt_port} -t '{self.options.prefix}/#' -v"

    def start(self) -> Self:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        from edge_agent.agent.config import load_config
        from edge_agent.agent.daemon import Agent
        from edge_agent.agent.meter_settings import facts_key
        from edge_agent.simulator.meter import SimulatedMeterStation, SimulatorOptions
        from edge_agent.simulator.server import MeterServer
        from edge_agent.state.facts import FactStore

        options = self.options
        if options.profile not in PROFILES:
            raise ConfigError(f"profile {options.profile!r}: expected one of {', '.join(PROFILES)}")
        # A part still winding down may write there while it is removed: not an error.
        self._workdir = tempfile.TemporaryDirectory(prefix="dlms-edge-demo-", ignore_cleanup_errors=True)
        workdir = Path(self._workdir.name)
        secured = options.profile == "t210d"
        keys_dir = workdir / "keys" if secured else None
        # With a keys directory the station creates EK, AK, KEK, the client's and the
        # meter's key pairs and certificates there, and trusts the client's certificate.
        station = self.station = SimulatedMeterStation(SimulatorOptions(
            profile=options.profile, seed=options.seed,
            keys_dir=None if keys_dir is None else str(keys_dir),
            events_every=600.0))  # its event log grows while the demo runs
        self.meter_description = station.describe()
        keys = None
        if keys_dir is not None:
            title = station.keys.client_system_title
            assert title is not None, "ensure_simulator_keys makes the client certificate"
            keys = DemoKeys(keys_dir, title)
        self.server = MeterServer([station.station])
        self.meter_address = self.server.start_tcp(HOST, 0)

        port = options.mqtt_port
        if not port_is_free(port):
            port = free_port()
            self.port_note = f"port {options.mqtt_port} is busy; the broker uses port {port} instead"
        self.broker = start_broker(os.environ.get(BROKER_ENV) or options.broker, port, workdir)
        self._mqtt_port = port
        self.broker_kind = self.broker.kind

        self.watcher = self._watch(port)
        config_file = workdir / "agent.yaml"
        state_dir = workdir / "state"
        config_file.write_text(demo_config(options, self.meter_address[1], port, state_dir, keys),
                               encoding="utf-8")
        config = load_config(config_file)
        self._facts = (FactStore(state_dir), facts_key(config.meters[0]))
        self.agent = Agent(config).start()

    def pass3_signing_learned(self) -> bool:
        """True once the agent met the refusal of an unsigned pass 3 and re-associated with
        general-signing: the client records ``pass3_signing_required`` in the state dir's
        facts only on that path (edge_agent/client/client.py, pass3_signing auto)."""
        if self._facts is None:
            return False
        from edge_agent.state.facts import PASS3_SIGNING_REQUIRED

        store, key = self._facts
        return bool(store.get_fact(key, PASS3_SIGNING_REQUIRED, False))

    def _watch(self, port: int):
        import paho.mqtt.client as mqtt

        topic = f"{self.options.prefix}/{self.options.agent_id}/#"
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"dlms-edge-demo-watch-{os.getpid()}")
        client.on_connect = lambda c, userdata, flags, reason, properties: c.subscribe(topic, qos=1)
        client.on_message = lambda c, userdata, message: self.values.receive(message.topic, message.payload)
        client.connect(HOST, port, keepalive=30)
        client.loop_start()
        return client

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Agent first (it publishes offline and flushes), then watcher, broker, meter.

        Every step runs even when one before it failed: a broken agent must not leave the
        broker running. All of it within ``timeout`` seconds: the steps share one deadline
        (the agent may use half of it, the broker what is left), so that slow parts -- a
        loaded machine, a broker that does not acknowledge -- cannot add up their waits."""
        self._deadline = time.monotonic() + timeout
        for step in (self._stop_agent, self._stop_watcher, self._stop_broker, self._stop_meter,
                     self._remove_workdir):
            started = time.monotonic()
            try:
                step()
            except Exception as error:  # noqa: BLE001 - the next steps must still run
                log.warning("demo stop: %s failed: %s", step.__name__.lstrip("_"), error)
            log.info("demo stop: %s took %.2f s", step.__name__.lstrip("_"), time.monotonic() - started)

    def _remaining(self, share: float = 1.0) -> float:
        return max(0.5, (self._deadline - time.monotonic()) * share)

    def _stop_agent(self) -> None:
        agent, self.agent = self.agent, None
        if agent is not None:
            budget = self._remaining(0.5)
            _within(budget + 1.0, "the agent", lambda: agent.stop(timeout=budget))

    def _stop_watcher(self) -> None:
        watcher, self.watcher = self.watcher, None
        if watcher is not None:
            # paho's loop_stop() waits for its network thread without a time limit.
            _within(self._remaining(0.25), "the watcher", lambda: (watcher.disconnect(), watcher.loop_stop()))

    def _stop_broker(self) -> None:
        broker, self.broker = self.broker, None
        if broker is not None:
            broker.stop(timeout=self._remaining())

    def _stop_meter(self) -> None:
        server, self.server = self.server, None
        if server is not None:
            server.stop()
        station, self.station = self.station, None
        if station is not None:
            station.close()

    def _remove_workdir(self) -> None:
        self._facts = None
        workdir, self._workdir = self._workdir, None
        if workdir is not None:
            workdir.cleanup()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()


__all__ = ["BROKERS", "BROKER_ENV", "PROFILES", "Demo", "DemoKeys", "DemoOptions", "LiveValue",
           "LiveValues", "demo_config", "mosquitto_binary", "start_broker"]
