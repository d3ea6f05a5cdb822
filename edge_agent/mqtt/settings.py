"""Broker connection settings, built by edge_agent.agent.config or by hand (demo, tests)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from edge_agent.dlms.secret import Secret
from edge_agent.mqtt.queue import DEFAULT_MAX_BYTES, DEFAULT_MAX_MESSAGES

PROTOCOLS = ("3.1.1", "5")


class SecretSource(Protocol):
    """Something that yields a Secret when asked (a file or an environment variable)."""

    def resolve(self) -> Secret: ...


@dataclass(frozen=True, slots=True)
class TlsSettings:
    """TLS towards the broker. ``ca`` None means the system's trusted CAs.

    ``insecure`` skips the host name check (never the chain check); for brokers reached
    by an address their certificate does not name. Off by default.
    """

    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None
    insecure: bool = False


@dataclass(frozen=True, slots=True)
class MqttSettings:
    host: str = "localhost"
    port: int = 1883
    tls: TlsSettings | None = None
    username: str | None = None
    password: SecretSource | Secret | None = None
    prefix: str = "dlms"
    protocol: str = "3.1.1"
    keepalive: int = 60
    client_id: str | None = None  # default dlms-edge-<agent>
    discovery: bool = False
    discovery_prefix: str = "homeassistant"
    queue_max_messages: int = DEFAULT_MAX_MESSAGES
    queue_max_bytes: int = DEFAULT_MAX_BYTES
    reconnect_min: float = 1.0
    reconnect_max: float = 60.0

    def password_secret(self) -> Secret | None:
        if self.password is None or isinstance(self.password, Secret):
            return self.password
        return self.password.resolve()
