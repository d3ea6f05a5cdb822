"""Finding how a meter answers: link, line speed, server address, client SAPs, objects.

    plan = ScanPlan.for_tcp(("192.168.1.50", 4059))
    report = Scanner(plan, state_dir=tmp).run()
    for meter in report.found: meter.connection, meter.clients, meter.objects

Two phases, each trying an association without security (what any client may try):

1. **where**: for each link (TCP: the IEC 62056-47 wrapper, then HDLC; serial: HDLC), line
   speed (serial: IEC 62056-21 mode E optical sign-on, then 9600, 19200, 115200 baud) and
   server address (logical/physical), an AARQ from the first client SAP (16, the public
   client, DLMS UA 1000-2 / IEC 62056-46 8.4.2.1). Silence means "not here"; any AARE,
   accepted or not, means a meter listens at this address.
2. **who**: at that address, every client SAP. The AARE's diagnostic tells a lot: an
   accepted association, ``authentication-mechanism-name-required`` (this client needs
   LLS/HLS), ``application-context-name-not-supported`` (it needs ciphering), or
   ``no-reason-given`` (no such client).

With the first client that associates, the object list (Association LN attribute 2) and
the identity objects are read. By default the scan stops at the first address that
answers; ``exhaustive`` tries every candidate (several meters on one RS-485 bus).
"""

from __future__ import annotations

import enum
import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from edge_agent.client.client import Malformed, MeterClient
from edge_agent.client.connection import ConnectionSettings
from edge_agent.client.link import Tap, _no_tap
from edge_agent.client.values import plain
from edge_agent.dlms import errors
from edge_agent.dlms.apdu.results import DataAccessResult
from edge_agent.dlms.association.client import ClientSettings
from edge_agent.dlms.cosem.interface_classes import ObjectListEntry
from edge_agent.dlms.cosem.obis import Obis

log = logging.getLogger(__name__)

# 16 public client (every meter has it), 1 management, 32 and 48: reader and installer
# roles that several vendors (IDIS, Landis+Gyr, Kaifa) assign.
CLIENT_SAPS = (16, 1, 32, 48)
# (logical, physical): logical 1 is the management logical device every meter has; the
# physical address 16 is the T-210D's and most point-to-point meters' (reference trace),
# 17.. are usual on RS-485 buses, 1 on some optical heads.
SERVER_ADDRESSES = ((1, 16), (1, 17), (1, 1), (1, 18), (1, 19))
# (baud, optical sign-on): mode E starts at 300 baud and agrees the speed (up to the
# given one); direct HDLC lines run at a fixed speed.
SERIAL_SPEEDS = ((19200, True), (9600, False), (19200, False), (115200, False))
TCP_LINKS = ("wrapper", "hdlc")

# Identity objects read after the object list when present (Blue Book 7.3.4 / 7.5).
IDENTITY = {
    "serial": Obis(0, 0, 96, 1, 0, 255),
    "logical_device_name": Obis(0, 0, 42, 0, 0, 255),
    "firmware": Obis(1, 0, 0, 2, 0, 255),
}


class Outcome(enum.Enum):
    ACCEPTED = "accepted"  # association established
    REFUSED = "refused"  # the meter answered and refused (AARE diagnostic, exception)
    SILENT = "no answer"
    GARBLED = "garbled"  # bytes came that do not decode: wrong speed or parity
    FAILED = "failed"  # the meter answered, then something else went wrong

    @property
    def answered(self) -> bool:
        return self in (Outcome.ACCEPTED, Outcome.REFUSED, Outcome.FAILED)


# Most specific first: the first matching class decides.
_OUTCOME_OF: tuple[tuple[type[errors.DlmsError], Outcome], ...] = (
    (errors.NoResponseError, Outcome.SILENT),
    (errors.DecodeError, Outcome.GARBLED),
    (errors.AssociationError, Outcome.REFUSED),
    (errors.ServiceError, Outcome.REFUSED),
    (errors.SecurityError, Outcome.REFUSED),
    (errors.DlmsError, Outcome.FAILED),
)


def describe_connection(connection: ConnectionSettings) -> str:
    """Short form for one line of the scan log."""
    if connection.serial is not None:
        speed = f"optical sign-on (up to {connection.baud})" if connection.optical else f"{connection.baud} baud"
        where = f"HDLC {speed}"
    else:
        where = "HDLC over TCP" if connection.uses_hdlc else "wrapper"
    server = (f"{connection.server_logical}/{connection.server_physical}" if connection.uses_hdlc
              else str(connection.server_logical))
    return f"{where}, client {connection.client_sap} -> server {server}"


@dataclass(frozen=True, slots=True)
class Attempt:
    connection: ConnectionSettings
    outcome: Outcome
    detail: str
    seconds: float

    def describe(self) -> str:
        text = f"{describe_connection(self.connection)}: {self.outcome.value}"
        return f"{text} ({self.detail})" if self.detail else text

    def as_json(self) -> dict[str, Any]:
        c = self.connection
        return {"link": "hdlc" if c.uses_hdlc else "wrapper", "baud": c.baud if c.serial else None,
                "optical": c.optical, "client": c.client_sap, "logical": c.server_logical,
                "physical": c.server_physical if c.uses_hdlc else None,
                "outcome": self.outcome.value, "detail": self.detail, "seconds": round(self.seconds, 3)}


@dataclass(frozen=True, slots=True)
class MeterFound:
    """One address that answered: how each client fared, and what the first accepted one saw."""

    connection: ConnectionSettings  # with the client SAP that associated (else the first tried)
    clients: tuple[Attempt, ...]
    objects: tuple[ObjectListEntry, ...] = ()
    identity: dict[str, str] = field(default_factory=dict)

    @property
    def accepted(self) -> tuple[Attempt, ...]:
        return tuple(a for a in self.clients if a.outcome is Outcome.ACCEPTED)


@dataclass(frozen=True, slots=True)
class ScanReport:
    attempts: tuple[Attempt, ...]
    found: tuple[MeterFound, ...]


@dataclass(frozen=True, slots=True)
class ScanPlan:
    """What to try: a base connection (TCP or serial, time-out) and the candidates."""

    base: ConnectionSettings
    links: tuple[str, ...] = ("hdlc",)
    speeds: tuple[tuple[int, bool], ...] = ((0, False),)  # (baud, optical); 0: the base's
    addresses: tuple[tuple[int, int], ...] = SERVER_ADDRESSES
    clients: tuple[int, ...] = CLIENT_SAPS
    exhaustive: bool = False

    def __post_init__(self) -> None:
        if not (self.links and self.speeds and self.addresses and self.clients):
            raise errors.ConfigError("a scan needs at least one link, speed, server address and client SAP")
        unknown = set(self.links) - set(TCP_LINKS)
        if unknown or (self.base.serial is not None and "wrapper" in self.links):
            raise errors.ConfigError(f"links to scan: {', '.join(TCP_LINKS)} over TCP, hdlc over serial; got {', '.join(self.links)}")

    @classmethod
    def for_tcp(cls, address: tuple[str, int], *, timeout: float = 2.0, **choices: Any) -> ScanPlan:
        base = ConnectionSettings(tcp=address, timeout=timeout, retries=0)
        return cls(base, **{"links": TCP_LINKS, **choices})

    @classmethod
    def for_serial(cls, device: str, *, timeout: float = 1.0, **choices: Any) -> ScanPlan:
        base = ConnectionSettings(serial=device, timeout=timeout, retries=0)
        return cls(base, **{"links": ("hdlc",), "speeds": SERIAL_SPEEDS, **choices})

    def where(self) -> Iterator[ConnectionSettings]:
        """Phase 1 candidates, in order: link, speed, address (the wrapper has no physical
        address: each logical one is tried once)."""
        for link in self.links:
            hdlc = link == "hdlc"
            for baud, optical in self.speeds:
                seen: set[tuple[int, int | None]] = set()
                for logical, physical in self.addresses:
                    key = (logical, physical if hdlc else None)
                    if key in seen:
                        continue
                    seen.add(key)
                    yield replace(self.base, hdlc=hdlc if self.base.tcp else None,
                                  baud=baud or self.base.baud, optical=optical,
                                  server_logical=logical, server_physical=physical,
                                  client_sap=self.clients[0])


class Scanner:
    """Runs a :class:`ScanPlan`; ``on_attempt`` sees each attempt as it ends (live output)."""

    def __init__(self, plan: ScanPlan, *, state_dir: str | os.PathLike[str], tap: Tap = _no_tap,
                 on_attempt: Callable[[Attempt], None] | None = None) -> None:
        self.plan = plan
        self.state_dir = state_dir
        self.tap = tap
        self.on_attempt = on_attempt or (lambda attempt: None)
        self.attempts: list[Attempt] = []

    def run(self) -> ScanReport:
        found: list[MeterFound] = []
        for connection in self.plan.where():
            first, seen = self._try(connection, explore=True)
            if not first.outcome.answered:
                continue
            found.append(self._who(connection, first, seen))
            if not self.plan.exhaustive:
                break
        return ScanReport(tuple(self.attempts), tuple(found))

    def _who(self, connection: ConnectionSettings, first: Attempt,
             seen: tuple[tuple[ObjectListEntry, ...], dict[str, str]] | None) -> MeterFound:
        clients = [first]
        for sap in self.plan.clients[1:]:
            attempt, more = self._try(replace(connection, client_sap=sap), explore=seen is None)
            clients.append(attempt)
            seen = seen or more
        accepted = next((a for a in clients if a.outcome is Outcome.ACCEPTED), first)
        objects, identity = seen or ((), {})
        return MeterFound(accepted.connection, tuple(clients), objects, identity)

    def _try(self, connection: ConnectionSettings, *, explore: bool
             ) -> tuple[Attempt, tuple[tuple[ObjectListEntry, ...], dict[str, str]] | None]:
        """One association attempt; when accepted and ``explore``, read the object list and
        identity on the same association."""
        started = time.monotonic()
        meter = MeterClient(connection, ClientSettings(), meter_id="scan", state_dir=self.state_dir,
                            pass3_signing="never", tap=self.tap)
        seen = None
        try:
            associated = meter.connect()
            detail = (f"max PDU {associated.server_max_receive_pdu_size}; services: "
                      f"{', '.join(associated.conformance.standard_names)}")
            outcome = Outcome.ACCEPTED
            if explore:
                try:
                    seen = self._explore(meter)
                except errors.DlmsError as error:
                    detail += f"; object list not readable: {error}"
        except errors.TransportError:
            raise  # no connection at all (refused, no device): no candidate can do better
        except errors.DlmsError as error:
            outcome = next(o for kind, o in _OUTCOME_OF if isinstance(error, kind))
            detail = str(error)
        finally:
            meter.close()
        attempt = Attempt(connection, outcome, detail, time.monotonic() - started)
        log.debug("scan: %s", attempt.describe())
        self.attempts.append(attempt)
        self.on_attempt(attempt)
        return attempt, seen

    @staticmethod
    def _explore(meter: MeterClient) -> tuple[tuple[ObjectListEntry, ...], dict[str, str]]:
        entries = meter.object_list()
        present = {e.logical_name: e for e in entries}
        wanted = [(key, code) for key, code in IDENTITY.items()
                  if code in present and present[code].attribute_readable(2)]
        identity: dict[str, str] = {}
        if wanted:
            values = meter.get_many([(code, present[code].class_id, 2) for _, code in wanted])
            for (key, _), value in zip(wanted, values):
                if not isinstance(value, (DataAccessResult, Malformed)):
                    identity[key] = str(plain(value))
        return tuple(entries), identity


__all__ = [
    "CLIENT_SAPS", "SERIAL_SPEEDS", "SERVER_ADDRESSES", "Attempt", "MeterFound", "Outcome",
    "ScanPlan", "ScanReport", "Scanner", "describe_connection",
]
