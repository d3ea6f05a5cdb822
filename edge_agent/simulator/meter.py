"""One simulated meter put together: object model + request handler + association
(server session) + keys, as a :class:`Station` the server can put on a link.

Profiles:

* ``generic``: public client SAP 16 (no security), management client (SAP 1 by default)
  with an LLS password (``00000000``), or with the security given in the options;
* ``t210d``: as a Sagemcom T-210D: public client SAP 16, management client with suite 1,
  authenticated encryption and HLS-5 (GMAC), and the field quirk: an unsigned HLS pass 3
  is refused with ExceptionResponse(service-not-allowed, operation-not-possible); only a
  pass 3 wrapped in general-signing by a client whose certificate the meter knows passes.

The meter's own invocation counter (responses, f(CtoS) of HLS-5, pushes) never repeats
under one key, across restarts too: with a state dir (``state_dir``, else the keys dir) it
comes from the client's persisted-ahead, fsync'd store (:mod:`edge_agent.state.counters`),
one counter per meter system title and key. Without either it only lives in memory.

Responses are cut into GET datablocks at the smaller of the client's max-receive-pdu-size
and the meter's own PDU size (``max_receive_pdu_size``, default per meter model), as a
meter with one PDU buffer does.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import itertools
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

from edge_agent.dlms.association.server import (
    AssociationFacts,
    ClientAccess,
    CounterLog,
    ServerSession,
    ServerSettings,
)
from edge_agent.dlms.association.settings import CIPHERING_OVERHEAD, CONTEXTS
from edge_agent.dlms.errors import ConfigError
from edge_agent.dlms.secret import Secret
from edge_agent.dlms.security import Form
from edge_agent.keystore import KeyMaterial, KeysDir
from edge_agent.simulator import meter_models
from edge_agent.simulator.event_log import EventPace
from edge_agent.simulator.handler import RequestHandler
from edge_agent.simulator.model import Meter
from edge_agent.simulator.objects import AssociationContext
from edge_agent.simulator.security_setup_server import attach_security_setup, policy_of, security_of
from edge_agent.simulator.server import Station
from edge_agent.state.counters import InvocationCounterStore

log = logging.getLogger(__name__)

# Publicly known test keys of the Green Book examples: the generic profile's default when
# ciphering is asked for without a keys directory (never for a real installation).
EXAMPLE_EK = bytes.fromhex("000102030405060708090a0b0c0d0e0f")
EXAMPLE_AK = bytes.fromhex("d0d1d2d3d4d5d6d7d8d9dadbdcdddedf")


@dataclass(frozen=True, slots=True)
class SimulatorOptions:
    profile: str = "generic"
    seed: int = 1
    logical: int = 1
    physical: int = 16
    management_sap: int = 1
    security: str | None = None  # management client policy; None: the profile's
    authentication: str | None = None  # management client mechanism; None: the profile's
    suite: int | None = None
    password: str | None = None  # LLS (generic management client)
    keys_dir: str | None = None
    signed_pass3: bool | None = None  # None: the profile's (t210d: required)
    max_receive_pdu_size: int | None = None  # None: the meter model's (meter_models.MAX_PDU_SIZE)
    counter_log: str | None = None  # append every received client invocation counter here
    state_dir: str | None = None  # the meter's own invocation counters; None: the keys dir
    events_every: float = 0.0  # seconds between head-end events in the event log; 0: none

    def pdu_size(self) -> int:
        size = self.max_receive_pdu_size
        if size is None:
            return meter_models.MAX_PDU_SIZE[self.profile]
        if not MIN_PDU_SIZE <= size <= 0xFFFF:
            raise ConfigError(f"max PDU size must be {MIN_PDU_SIZE}..65535, got {size}")
        return size

    def resolved(self) -> tuple[str, str, int, bool]:
        """(security, authentication, suite, signed pass 3 required) for the management client."""
        t210d = self.profile == "t210d"
        security = self.security or ("authenc" if t210d else "none")
        authentication = self.authentication or ("hls-gmac" if t210d else "low")
        suite = self.suite if self.suite is not None else (1 if t210d else 0)
        signed = self.signed_pass3 if self.signed_pass3 is not None else t210d
        return security, authentication, suite, signed


# Below this a ciphered GET datablock with its headers leaves no room for data.
MIN_PDU_SIZE = 64


class MeterInvocationCounters:
    """The meter's own invocation counters: one per (system title, key), never repeating.

    With ``state_dir`` they are the persisted-ahead counters of the client
    (:class:`~edge_agent.state.counters.InvocationCounterStore`, ``<dir>/counters``), so a
    restarted simulator continues above every value it ever used; without, in memory.
    Keys are told apart by a one-way fingerprint (the file name never reveals a key).
    """

    def __init__(self, system_title: bytes, state_dir: str | None) -> None:
        self.meter_id = f"simulator-{system_title.hex().upper()}"
        self.state_dir = state_dir
        self.store: InvocationCounterStore | None = None  # opened at the first value
        self._memory: dict[str, itertools.count[int]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def key_id(key: Secret | None) -> str:
        if key is None:
            return "no-key"
        digest = hashlib.sha256(b"dlms-edge simulator counter\x00" + key.reveal()).hexdigest()
        return f"key-{digest[:16]}"

    def next(self, key: Secret | None) -> int:
        key_id = self.key_id(key)
        with self._lock:
            if self.state_dir is None:
                return next(self._memory.setdefault(key_id, itertools.count(1)))
            if self.store is None:
                self.store = InvocationCounterStore(self.state_dir)
            store = self.store
        return store.next(self.meter_id, key_id)  # the store locks (and fsyncs) itself

    def close(self) -> None:
        with self._lock:
            store, self.store = self.store, None
        if store is not None:
            store.close()


class _MeterCounterLog(CounterLog):
    """The meter's record of client invocation counters. The highest one accepted is what
    the meter publishes as its frame counter (0.0.43.1.0.255, readable by the public
    client), so that a client with a fresh state dir learns where to continue.

    With ``path``, every counter is also appended to that file:
    ``<system title hex> <counter> <where> accepted|REFUSED`` per line.
    """

    def __init__(self, meter: Meter, path: str | None = None) -> None:
        super().__init__()
        self._meter = meter
        self._file: TextIO | None = open(path, "a", encoding="ascii") if path else None  # noqa: SIM115
        self._lock = threading.Lock()

    def record(self, system_title: bytes, invocation_counter: int, where: str, accepted: bool = True) -> None:
        super().record(system_title, invocation_counter, where, accepted)
        with self._lock:
            if accepted:
                self._meter.invocation_counter = max(self._meter.invocation_counter, invocation_counter)
            if self._file is not None:
                self._file.write(
                    f"{bytes(system_title).hex()} {invocation_counter} {where.replace(' ', '_')}"
                    f" {'accepted' if accepted else 'REFUSED'}\n"
                )
                self._file.flush()


class SimulatedMeterStation:
    """A simulated meter ready to serve: ``station`` goes to :class:`MeterServer`."""

    def __init__(self, options: SimulatorOptions, clock: Callable[[], dt.datetime] | None = None) -> None:
        self.options = options
        self.clock = clock or (lambda: dt.datetime.now(dt.UTC))
        security, authentication, suite, signed = options.resolved()
        password = Secret(options.password.encode(), "LLS password") if options.password else None
        self.model = meter_models.build(
            options.profile, options.seed, self.clock, management_sap=options.management_sap, password=password
        )
        if options.events_every:
            self.model.meter.event_pace = EventPace.starting(self.clock(), options.events_every)
        self.handler = RequestHandler(self.model)
        self.pdu_size = options.pdu_size()
        self.keys = self._keys(security, authentication, suite, signed)
        state_dir = options.state_dir or options.keys_dir
        self.invocation_counters = MeterInvocationCounters(self.model.system_title, state_dir)
        self.counters = _MeterCounterLog(self.model.meter, options.counter_log)
        self.client_public_keys: dict[bytes, object] = {}
        if self.keys.client_certificate is not None and self.keys.client_system_title:
            self.client_public_keys[self.keys.client_system_title] = self.keys.client_certificate
        management_password = self.model.roles[options.management_sap].password
        self.settings = ServerSettings(
            system_title=self.model.system_title,
            clients={
                16: ClientAccess(16, conformance=meter_models.SERVER_CONFORMANCE),
                options.management_sap: ClientAccess(
                    options.management_sap,
                    security=security,
                    authentication=authentication,
                    password=management_password if authentication == "low" else None,
                    conformance=meter_models.SERVER_CONFORMANCE,
                    require_signed_pass3=signed,
                ),
            },
            suite=suite,
            ek=self.keys.ek,
            ak=self.keys.ak,
            signing_key=self.keys.meter_signing_key,
            client_public_keys=self.client_public_keys,
            max_receive_pdu_size=self.pdu_size,
        )
        # Class 64 with this installation's keys: certificates imported by a client join
        # client_public_keys at once; keys changed by key_transfer and the policy set by
        # security_activate apply from the next association on. Its security_policy is the
        # management client's, the one the association layer enforces.
        self.security_setup = attach_security_setup(
            self.model, self.keys, self.client_public_keys, suite=suite, policy=policy_of(security)
        )
        self._lock = threading.RLock()  # one request at a time on the meter model

    def _keys(self, security: str, authentication: str, suite: int, signed: bool) -> KeyMaterial:
        needs_keys = security != "none" or authentication.startswith("hls")
        if self.options.keys_dir:
            directory = KeysDir(self.options.keys_dir)
            created = directory.ensure_simulator_keys(self.model.system_title, suite=suite or 1)
            if created:
                log.info("created in %s: %s", directory.path, ", ".join(created))
            return directory.load()
        if signed or authentication == "hls-ecdsa":
            raise ConfigError(
                f"the {self.options.profile} simulator needs key pairs and certificates: give --keys-dir DIR"
                " (created when missing, and used by 'dlms-edge read --keys-dir DIR')"
            )
        if needs_keys:
            if suite == 2:
                raise ConfigError("suite 2 needs 32-byte keys: give --keys-dir DIR")
            return KeyMaterial(ek=Secret(EXAMPLE_EK, "EK"), ak=Secret(EXAMPLE_AK, "AK"))
        return KeyMaterial()

    def next_invocation_counter(self, key: Secret | None = None) -> int:
        """The meter's own counter under ``key`` (default: its EK now): responses, HLS
        f(CtoS) and pushes under one key share it; never repeated, across restarts too."""
        return self.invocation_counters.next(key if key is not None else self.security_setup.state.ek)

    def settings_now(self) -> ServerSettings:
        """The settings a new association gets: the keys held now, and the management
        client's security as Security setup's security_policy says (security_activate)."""
        settings = self.security_setup.settings_now(self.settings)
        sap = self.options.management_sap
        security = security_of(self.security_setup.state.security_policy)
        access = settings.clients[sap]
        if access.security == security:
            return settings
        clients = dict(settings.clients)
        clients[sap] = dataclasses.replace(access, security=security)
        return dataclasses.replace(settings, clients=clients)

    def _make_context(self, facts: AssociationFacts) -> AssociationContext:
        # One PDU buffer: no response longer than the meter's own PDU size either.
        ciphered = facts.context_id == int(CONTEXTS[True])
        own = self.pdu_size - (CIPHERING_OVERHEAD[Form.GENERAL_GLO] if ciphered else 0)
        return AssociationContext(
            client_sap=facts.client_sap,
            view=self.model.view_for(facts.client_sap),
            conformance=facts.conformance,
            max_pdu_size=min(facts.max_pdu_size, own),
            server_sap=self.options.logical,
            server_max_receive_pdu_size=facts.server_max_receive_pdu_size,
            mechanism_id=facts.mechanism_id,
            context_id=facts.context_id,
            dlms_version=facts.dlms_version,
            authenticated=facts.authenticated,
            session=facts.session,
        )

    def responder(self, client_sap: int) -> _Responder:
        settings = self.settings_now()
        ek = settings.ek
        session = ServerSession(
            settings,
            client_sap,
            handler=self.handler.handle,
            make_context=self._make_context,
            next_invocation_counter=lambda: self.next_invocation_counter(ek),
            next_challenge=lambda: os.urandom(16),
            counters=self.counters,
        )
        return _Responder(session, self._lock)

    @property
    def station(self) -> Station:
        return Station(self.options.logical, self.options.physical, self.responder)

    def describe(self) -> str:
        security, authentication, suite, signed = self.options.resolved()
        management = f"management client SAP {self.options.management_sap}: {security}, {authentication}"
        if security != "none":
            management += f", suite {suite}"
        if signed:
            management += ", signed pass 3 required"
        return (
            f"{self.options.profile} meter {self.model.serial} (system title {self.model.system_title.hex()}),"
            f" server {self.options.logical}/{self.options.physical}; public client SAP 16; {management};"
            f" max PDU {self.pdu_size}"
            + (f"; an event every {self.options.events_every:g} s" if self.options.events_every else "")
        )

    def close(self) -> None:
        self.invocation_counters.close()


class _Responder:
    """Serialises one association's requests with the others on the same meter model."""

    def __init__(self, session: ServerSession, lock: threading.RLock) -> None:
        self.session = session
        self._lock = lock

    def respond(self, apdu: bytes) -> bytes | None:
        with self._lock:
            return self.session.receive_apdu(apdu)

