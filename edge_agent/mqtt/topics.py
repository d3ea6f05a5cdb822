"""The MQTT topic contract (docs/mqtt-contract.md), in one place.

Every topic the agent publishes is built here, so the contract has exactly one
implementation::

    <prefix>/<agent>/status
    <prefix>/<agent>/<meter>/info | availability | health | state
    <prefix>/<agent>/<meter>/<obis>             OBIS leaf form 1.0.1.8.0.255
    <prefix>/<agent>/<meter>/profile/<obis>
    <prefix>/<agent>/<meter>/clock | event
    <prefix>/<agent>/<meter>/replay             subscribers -> agent (the one it reads)

Ids become topic levels, so they must not contain the MQTT wildcards ``+`` and ``#``
or the level separator ``/`` (MQTT 3.1.1 section 4.7.1), must not be empty, and must
not start with ``$`` (reserved for broker topics such as ``$SYS``, section 4.7.2).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from edge_agent.dlms.errors import ConfigError

# Characters a topic level built from an id may not contain, and why (for the message).
_FORBIDDEN = {"+": "an MQTT wildcard", "#": "an MQTT wildcard", "/": "the topic level separator",
              "\x00": "a NUL character"}

# OBIS in the notations people copy from meter manuals and tools:
#   1.0.1.8.0.255   1-0:1.8.0*255   1-0:1.8.0.255   1-0:1.8.0 (F defaults to 255)
_OBIS_TEXT = re.compile(
    r"^\s*(\d{1,3})[.-](\d{1,3})[.:](\d{1,3})\.(\d{1,3})\.(\d{1,3})(?:[.*&](\d{1,3}))?\s*$")


def check_id(value: object, what: str) -> str:
    """Return ``value`` if it can be one MQTT topic level, else raise ConfigError."""
    if not isinstance(value, str):
        raise ConfigError(f"{what} must be text, got {type(value).__name__} {value!r}")
    if not value:
        raise ConfigError(f"{what} must not be empty")
    for char, why in _FORBIDDEN.items():
        if char in value:
            raise ConfigError(
                f"{what} {value!r} contains {char!r} ({why}); "
                "use letters, digits, '-', '_' or '.'")
    if value.startswith("$"):
        raise ConfigError(f"{what} {value!r} starts with '$', which MQTT reserves for "
                          "broker topics such as $SYS; choose another id")
    if value != value.strip():
        raise ConfigError(f"{what} {value!r} has leading or trailing spaces; remove them")
    return value


def check_prefix(value: object) -> str:
    """A prefix is one or more levels (``dlms``, ``home/meters``), each a valid id."""
    if not isinstance(value, str) or not value:
        raise ConfigError(f"mqtt prefix must be non-empty text, got {value!r}")
    if value.startswith("/") or value.endswith("/"):
        raise ConfigError(f"mqtt prefix {value!r} must not start or end with '/'")
    for level in value.split("/"):
        check_id(level, f"mqtt prefix level {level!r} of {value!r}")
    return value


def obis_leaf(obis: object) -> str:
    """OBIS code in the contract's leaf form ``A.B.C.D.E.F`` (e.g. ``1.0.1.8.0.255``).

    Accepts that text, the IEC 62056-61 notation ``1-0:1.8.0*255`` (``*F`` optional,
    defaulting to 255), 6 bytes as read from a logical_name attribute, or 6 integers.
    """
    if isinstance(obis, str):
        match = _OBIS_TEXT.match(obis)
        if match is None:
            raise ConfigError(
                f"{obis!r} is not an OBIS code; write it as 1.0.1.8.0.255 or 1-0:1.8.0*255")
        groups = [int(g) for g in match.groups(default="255")]
    elif isinstance(obis, (bytes, bytearray, memoryview)):
        groups = list(bytes(obis))
    elif isinstance(obis, Iterable):
        groups = list(obis)
    else:
        raise ConfigError(f"{obis!r} is not an OBIS code (text, 6 bytes or 6 integers)")
    if len(groups) != 6 or not all(isinstance(g, int) and 0 <= g <= 255 for g in groups):
        raise ConfigError(f"OBIS code needs 6 groups of 0..255, got {obis!r}")
    return ".".join(map(str, groups))


@dataclass(frozen=True, slots=True)
class Topics:
    """Topic builder for one agent; ``Topics("dlms", "pi-kitchen").info("t210d")``."""

    prefix: str
    agent: str

    def __post_init__(self) -> None:
        check_prefix(self.prefix)
        check_id(self.agent, "agent id")

    # --- agent level -------------------------------------------------------------------

    @property
    def base(self) -> str:
        return f"{self.prefix}/{self.agent}"

    def status(self) -> str:
        """``online``/``offline``, retained; also the Last Will."""
        return f"{self.prefix}/{self.agent}/status"

    def all_topics(self) -> str:
        """Subscription filter for everything this agent publishes."""
        return f"{self.prefix}/{self.agent}/#"

    # --- meter level -------------------------------------------------------------------

    def meter(self, meter: str) -> str:
        return f"{self.prefix}/{self.agent}/{check_id(meter, 'meter id')}"

    def info(self, meter: str) -> str:
        return f"{self.meter(meter)}/info"

    def availability(self, meter: str) -> str:
        return f"{self.meter(meter)}/availability"

    def health(self, meter: str) -> str:
        return f"{self.meter(meter)}/health"

    def state(self, meter: str) -> str:
        return f"{self.meter(meter)}/state"

    def value(self, meter: str, obis: object) -> str:
        """Per-object topic ``<prefix>/<agent>/<meter>/<obis>``."""
        return f"{self.meter(meter)}/{obis_leaf(obis)}"

    def profile(self, meter: str, obis: object) -> str:
        """Load-profile rows of the profile object ``obis`` (not retained)."""
        return f"{self.meter(meter)}/profile/{obis_leaf(obis)}"

    def clock(self, meter: str) -> str:
        """The meter's clock: time, drift against the agent, status (retained)."""
        return f"{self.meter(meter)}/clock"

    def event(self, meter: str) -> str:
        """One message per event of the meter's event logs (not retained)."""
        return f"{self.meter(meter)}/event"

    def replay(self, meter: str) -> str:
        """Where subscribers ask for a profile's rows again (not retained; read by the
        agent, :class:`~edge_agent.mqtt.payloads.ReplayRequest`)."""
        return f"{self.meter(meter)}/replay"

    def meter_of(self, topic: str, leaf: str) -> str | None:
        """The meter id of ``<base>/<meter>/<leaf>``, None for any other topic."""
        head, _, rest = topic.partition(f"{self.base}/")
        meter, _, tail = rest.partition("/")
        return meter if not head and meter and tail == leaf else None
