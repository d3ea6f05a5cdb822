"""The configuration as the rest of the agent sees it: frozen dataclasses.

Built by :func:`edge_agent.agent.config.load_config`. Key material is not in here:
:class:`KeyRef` says where a key lives and reads it only when asked.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from edge_agent.dlms.errors import ConfigError
from edge_agent.dlms.link.hdlc.frame import HdlcParameters
from edge_agent.dlms.secret import Secret
from edge_agent.mqtt.settings import MqttSettings

# What a meter gets when the config does not say; the same as the client's own defaults
# (edge_agent.client.client.ASSOCIATION and FRAME_COUNTER; a test keeps them equal).
DEFAULT_ASSOCIATION = "0.0.40.0.0.255"
DEFAULT_FRAME_COUNTER = "0.0.43.1.0.255"
DEFAULT_RETRIES = 3
DEFAULT_BACKOFF_INITIAL = 5.0
DEFAULT_BACKOFF_MAXIMUM = 300.0
# The load profile a polled meter publishes when the config has no ``profiles:`` (DSMR 5 /
# IDIS "load profile 1", 1-0:99.1.0: the energy registers every 15 minutes); every 15
# minutes, back as far as the meter keeps rows. ``profiles: []`` turns it off.
DEFAULT_PROFILE = "1.0.99.1.0.255"
DEFAULT_PROFILE_INTERVAL = 900.0


@dataclass(frozen=True, slots=True)
class KeyRef:
    """Where a key lives; ``resolve()`` reads it. Its repr names the place, not the key.

    ``file``: hex text (whitespace ignored) or the raw bytes; ``env``: hex text.
    ``length`` None means any length, read as text (LLS password).
    """

    source: Literal["file", "env"]
    ref: str
    what: str  # key path for messages: meters[0].security.keys.ek
    length: int | None

    def resolve(self) -> Secret:
        if self.source == "env":
            text = os.environ.get(self.ref)
            if text is None:
                raise ConfigError(f"{self.what}: environment variable {self.ref} is not set; "
                                  f"export it, or set it in the service's EnvironmentFile")
            raw = text.encode()
        else:
            try:
                raw = Path(self.ref).read_bytes()
            except OSError as exc:
                raise ConfigError(f"{self.what}: cannot read key file {self.ref}: "
                                  f"{exc.strerror}; check the path and permissions") from None
        if self.length is None:
            return Secret(raw.rstrip(b"\r\n"), self.what)
        return Secret(_key_bytes(raw, self.length, self), self.what)


def _key_bytes(raw: bytes, length: int, ref: KeyRef) -> bytes:
    text = b"".join(raw.split())
    try:
        value = bytes.fromhex(text.decode("ascii").removeprefix("0x"))
    except ValueError:
        if ref.source == "file" and len(raw) == length:
            return raw  # a binary key file
        raise ConfigError(f"{ref.what}: {ref.source} {ref.ref} is neither {2 * length} hex "
                          f"digits nor {length} raw bytes") from None
    if len(value) != length:
        raise ConfigError(f"{ref.what}: {ref.source} {ref.ref} holds {len(value)} bytes, "
                          f"expected {length} ({2 * length} hex digits)")
    return value


@dataclass(frozen=True, slots=True)
class SerialSettings:
    device: str
    baud: int
    parity: Literal["N", "E", "O"]
    bytesize: int
    stopbits: int
    rs485: bool
    optical: bool


@dataclass(frozen=True, slots=True)
class BusConfig:
    """A shared RS-485 line: one transaction at a time across its meters."""

    id: str
    serial: SerialSettings


@dataclass(frozen=True, slots=True)
class TcpTransport:
    host: str
    port: int


@dataclass(frozen=True, slots=True)
class SerialTransport:
    serial: SerialSettings


@dataclass(frozen=True, slots=True)
class BusTransport:
    bus: str


Transport = TcpTransport | SerialTransport | BusTransport


@dataclass(frozen=True, slots=True)
class Addresses:
    """HDLC/wrapper addresses (IEC 62056-46 6.4.2.2; wrapper: client and server wPort)."""

    client: int
    logical: int
    physical: int


@dataclass(frozen=True, slots=True)
class SecurityConfig:
    suite: int
    policy: Literal["none", "auth", "enc", "authenc"]
    auth: Literal["none", "low", "hls-gmac", "hls-ecdsa"]
    ek: KeyRef | None
    ak: KeyRef | None
    password: KeyRef | None
    system_title: bytes | None
    pass3_signing: Literal["never", "always", "auto"]
    signing_key: Path | None
    meter_certificate: Path | None
    association: str = DEFAULT_ASSOCIATION  # OBIS of the Association LN taking pass 3
    frame_counter: str | None = DEFAULT_FRAME_COUNTER  # None: not read


@dataclass(frozen=True, slots=True)
class PollGroup:
    name: str
    interval: float
    objects: Literal["all"] | tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ProfileConfig:
    """A profile generic (load profile) whose new rows are published, one message a row.

    ``interval``: seconds between looks for new rows; ``backfill``: how far back (seconds)
    rows are read after an outage, and by the first look; None: as far as the meter keeps
    rows (entries × capture period, Blue Book 4.3.6 attributes 4 and 7); ``timezone``: the
    meter's IANA zone, which places time stamps without deviation (None: the host's).
    ``implicit``: the default profile of a polled meter whose config names none
    (:data:`DEFAULT_PROFILE`), dropped quietly where the meter has no such object.
    """

    obis: str
    interval: float
    backfill: float | None = None
    timezone: str | None = None
    implicit: bool = False

    @property
    def name(self) -> str:
        """Its key in the lane's schedule, beside the poll group names."""
        return f"profile {self.obis}"


@dataclass(frozen=True, slots=True)
class ClockSyncConfig:
    """Setting the meter's clock from the agent's (config ``clock_sync``; off when absent).

    The clock is moved only when the drift lies in ``[min_step, max_step]`` seconds, and
    only while the meter's daylight-saving handling matches ``daylight_saving`` (True:
    the meter switches to summer time itself, Blue Book 4.5.1 daylight_savings_enabled).
    """

    max_step: float
    min_step: float = 2.0
    daylight_saving: bool = True


@dataclass(frozen=True, slots=True)
class ClockConfig:
    """Reading the meter's clock every ``interval`` seconds for the ``clock`` topic."""

    interval: float = 3600.0
    sync: ClockSyncConfig | None = None

    @property
    def name(self) -> str:
        """Its key in the lane's schedule, beside the poll group names."""
        return "clock"


@dataclass(frozen=True, slots=True)
class EventsConfig:
    """Reading the meter's event logs every ``interval`` seconds for the ``event`` topic.

    ``logs``: the logs' OBIS codes, None for every event log in the association view;
    ``backfill``: how far back (seconds) the first read of a log reaches.
    """

    interval: float = 900.0
    backfill: float = 86400.0
    logs: tuple[str, ...] | None = None

    @property
    def name(self) -> str:
        return "events"


@dataclass(frozen=True, slots=True)
class PushConfig:
    format: Literal["hdlc", "mbus", "dsmr", "wrapper"]
    port: int | None
    bind: str
    serial: SerialSettings | None
    objects: tuple[str, ...] | None = None
    interval: float | None = None
    system_title: bytes | None = None


@dataclass(frozen=True, slots=True)
class BackOffSettings:
    """Seconds to wait after a failed poll: ``initial``, doubling up to ``maximum``."""

    initial: float = DEFAULT_BACKOFF_INITIAL
    maximum: float = DEFAULT_BACKOFF_MAXIMUM


@dataclass(frozen=True, slots=True)
class MeterConfig:
    index: int
    id: str | None  # None: the serial number read from the meter
    transport: Transport | None  # None: push only
    link: Literal["hdlc", "wrapper"] | None
    addresses: Addresses
    security: SecurityConfig
    poll: tuple[PollGroup, ...]
    push: PushConfig | None
    timeout: float
    retries: int = DEFAULT_RETRIES  # HDLC repetitions after a time-out
    backoff: BackOffSettings | None = None  # None: the agent's default
    profiles: tuple[ProfileConfig, ...] = ()
    clock: ClockConfig | None = ClockConfig()  # None: the clock is not read
    events: EventsConfig | None = EventsConfig()  # None: event logs are not read
    hdlc: HdlcParameters | None = None  # proposed in SNRM; None: the largest (2030, window 7)

    @property
    def label(self) -> str:
        return self.id or f"meters[{self.index}]"


@dataclass(frozen=True, slots=True)
class LoggingConfig:
    level: str
    format: Literal["text", "json"]


@dataclass(frozen=True, slots=True)
class Config:
    source: Path
    agent_id: str
    mqtt: MqttSettings
    state_dir: Path
    logging: LoggingConfig
    buses: tuple[BusConfig, ...]
    meters: tuple[MeterConfig, ...]

    def bus(self, bus_id: str) -> BusConfig:
        return next(bus for bus in self.buses if bus.id == bus_id)
