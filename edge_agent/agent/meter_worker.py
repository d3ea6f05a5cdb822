"""What one poll of one meter does.

A :class:`MeterWorker` owns the association with one meter and keeps it open between
polls (an HDLC connection plus an application association costs several round trips,
and on HLS meters an invocation counter or two). One poll:

1. associate if there is no association (keys are read from their files or environment
   variables now, so a fixed key file is picked up without a restart);
2. the first time: read the association's object list (attribute 2 of 0.0.40.0.0.255,
   Blue Book 4.4.3) -- it decides what ``objects: all`` means and which classes to use --
   and the identity objects (serial 0.0.96.1.0.255, logical device name 0.0.42.0.0.255,
   firmware 1.0.0.2.0.255) for the ``info`` document;
3. read the due groups' objects in one GET-with-list batch and hand the readings to the
   :class:`Sink` (the agent), which publishes values, state, info and health;
4. for each due load profile (config ``profiles:``, scheduled like a poll group; without
   it the standard load profile 1.0.99.1.0.255, which a meter that has no such object
   drops with one info line), hand the rows newer than the last published one to the
   sink (:mod:`.load_profile_feed`).

When a reused association fails with a link error (the meter dropped the HDLC connection
after its inactivity time-out, or closed the TCP stream), the worker associates again and
retries once within the same poll. Any other failure is reported to the sink with a
health code from :data:`HEALTH_CODES_BY_ERROR` and the poll returns False, so the lane
backs off.

The settings come from the config through :mod:`edge_agent.agent.meter_settings`; meters
on one RS-485 bus share one serial port (:class:`edge_agent.agent.serial_line.SharedLine`).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol, TypeVar

from edge_agent.agent.clock_and_events import ClockAndEvents
from edge_agent.agent.config_model import (
    MeterConfig,
    PollGroup,
    ProfileConfig,
)
from edge_agent.agent.load_profile_feed import ProfileFeed, ProfileRow
from edge_agent.agent.meter_settings import (
    client_settings,
    connection_settings,
    facts_key,
    frame_counter,
)
from edge_agent.agent.peak_demand import stamp_capture_times
from edge_agent.agent.scheduler import BackOff, Group
from edge_agent.agent.serial_line import SharedLine
from edge_agent.client.client import MeterClient
from edge_agent.client.link import HdlcLink, Tap, _no_tap
from edge_agent.client.profile_report import zone_named
from edge_agent.client.values import SCALED_CLASSES, VALUE_ATTRIBUTE, Reading
from edge_agent.dlms.association.client import Pass3SigningRequired
from edge_agent.dlms.cosem.interface_classes import ObjectListEntry
from edge_agent.dlms.cosem.obis import Obis
from edge_agent.dlms.errors import (
    AssociationError,
    AuthenticationError,
    ConfigError,
    CounterError,
    DecodeError,
    DlmsError,
    MissingKeyError,
    NoResponseError,
    ProtocolError,
    ReplayError,
    SecurityError,
    ServiceError,
    SignatureError,
    TransportError,
)
from edge_agent.dlms.link.hdlc.frame import DEFAULT_MAX_INFO_LENGTH, HdlcParameters
from edge_agent.mqtt.payloads import ReplayRequest
from edge_agent.mqtt.topics import check_id
from edge_agent.state.facts import SERIAL, FactStore

log = logging.getLogger(__name__)
T = TypeVar("T")

# The contract's health codes by error class; the first match decides, so subclasses
# come before their bases (Pass3SigningRequired is an ExceptionResponseError).
HEALTH_CODES_BY_ERROR: tuple[tuple[type[BaseException], str], ...] = (
    (Pass3SigningRequired, "signature_rejected"),
    (SignatureError, "signature_rejected"),
    (AuthenticationError, "wrong_key"),
    (ReplayError, "counter_out_of_step"),
    (CounterError, "counter_out_of_step"),
    (MissingKeyError, "config_error"),
    (ConfigError, "config_error"),
    (AssociationError, "association_refused"),
    (NoResponseError, "unreachable"),
    (TransportError, "unreachable"),
    (SecurityError, "wrong_key"),
    (ServiceError, "access_denied"),  # associated, but the association does not grant it
    (DecodeError, "bad_data"),  # answers arrive but do not decode
    (DlmsError, "unreachable"),  # garbled line: wrong baud rate or address
)
# Errors after which a reused association is re-established once within the same poll.
_LINK_ERRORS = (NoResponseError, TransportError, ProtocolError, DecodeError)

# Classes whose value is published: Data, Register, Extended and Demand register, Clock
# (Blue Book 4.3.1-4.3.4, 4.5.1). Profiles go to profile topics, not here.
VALUE_CLASSES = frozenset({1, 3, 4, 5, 8})
PROFILE_BUFFER = 2  # profile generic attribute 2 (Blue Book 4.3.6)
# Data-Access-Results (xDLMS, Green Book) of a meter that has no such object.
ABSENT = frozenset({"object-undefined", "object-unavailable", "object-class-inconsistent"})
SERIAL_NUMBER = Obis(0, 0, 96, 1, 0, 255)
LOGICAL_DEVICE_NAME = Obis(0, 0, 42, 0, 0, 255)
FIRMWARE = Obis(1, 0, 0, 2, 0, 255)
# FLAG ids (the first three characters of the COSEM logical device name, Blue Book
# 4.1.8.2, assigned by the DLMS UA) of makers our users have; others are shown as the id.
MANUFACTURERS = {"SAG": "Sagemcom", "LGZ": "Landis+Gyr", "KFM": "Kaifa",
                 "ISK": "Iskraemeco", "KAM": "Kamstrup", "EMH": "EMH metering",
                 "ZPA": "ZPA Smart Energy", "DLE": "dlms-edge simulator"}


def health_code(error: BaseException) -> str:
    """The contract's health code for a failed poll."""
    return next((code for kind, code in HEALTH_CODES_BY_ERROR if isinstance(error, kind)),
                "unreachable")


@dataclass(frozen=True, slots=True)
class MeterIdentity:
    """What the ``info`` document says about the meter itself."""

    serial: str | None = None
    manufacturer: str | None = None
    model: str | None = None
    firmware: str | None = None
    system_title: bytes | None = None


class Sink(Protocol):
    """Where a worker's results go (the agent)."""

    def identify(self, meter_id: str, identity: MeterIdentity) -> None: ...

    def submit(self, meter_id: str, readings: list[Reading]) -> None: ...

    def problem(self, meter_id: str, code: str, message: str) -> None: ...

    def profile_rows(self, meter_id: str, profile: str, rows: list[ProfileRow], *,
                     replay: bool = False) -> None:
        """Queue ``rows`` (oldest first) of the profile ``profile``; returns once queued.
        ``replay``: rows sent again on request, which do not move the profile's mark."""
        ...

    def profile_mark(self, meter_id: str, profile: str) -> dt.datetime | None:
        """The time of the newest row of ``profile`` queued, kept with the rows."""
        ...

    def history_backlog(self) -> str | None:
        """Why profile rows should wait (the durable queue is filling up: the broker is
        away or slower than the meter), else None."""
        ...


# --- the worker ---------------------------------------------------------------------------


class MeterWorker:
    """Polls one meter for the lane that owns it (all calls from that lane's thread)."""

    def __init__(self, meter: MeterConfig, *, state_dir: Path, sink: Sink,
                 line: SharedLine | None = None, tap: Tap = _no_tap,
                 wall_clock: Callable[[], float] = time.time) -> None:
        self.meter = meter
        self.state_dir = state_dir
        self.sink = sink
        self.line = line
        self.tap = tap
        self.where = f"meters[{meter.index}].security"
        self.connection = connection_settings(meter, None if line is None else line.serial)
        self.facts_key = facts_key(meter)
        facts = FactStore(state_dir)
        self.meter_id: str | None = meter.id or facts.get_fact(self.facts_key, SERIAL)
        self.profiles = ProfileFeed(facts, self.facts_key, wall_clock)
        # A meter that sends no deviation: its profiles' time zone, else the host's.
        zone = next((p.timezone for p in meter.profiles if p.timezone), None)
        self.clock_and_events = ClockAndEvents(
            meter.clock, meter.events, facts, self.facts_key, wall_clock, self.label,
            zone_named(zone) if zone else None)
        self._client: MeterClient | None = None
        self._granted: HdlcParameters | None = None  # what the meter's UA granted
        self._view: list[ObjectListEntry] | None = None  # None: not read yet
        self._identity: MeterIdentity | None = None
        self._missing_warned: set[Obis] = set()
        self._behind: set[str] = set()  # profiles with rows left to catch up
        self._history_held = False  # profile reads wait for the queue (:meth:`poll`)

    @property
    def label(self) -> str:
        return self.meter_id or self.meter.label

    @property
    def groups(self) -> tuple[Group, ...]:
        return self.meter.poll + self.meter.profiles + self.clock_and_events.groups

    @property
    def backoff(self) -> BackOff | None:
        """The meter's own back-off (config ``backoff:``); None: the lane's default."""
        settings = self.meter.backoff
        return None if settings is None else BackOff(settings.initial, settings.maximum)

    # --- one poll ---------------------------------------------------------------------

    def poll(self, groups: tuple[Group, ...]) -> bool:
        """Read the due poll groups and profiles of ``groups`` and hand the results to the
        sink; True on success. Failures go to the sink as a health code; nothing is
        raised."""
        values = tuple(g for g in groups if isinstance(g, PollGroup))
        if values:
            ok, readings = self._transact(
                lambda client: stamp_capture_times(client, self._read(client, values)))
            if not ok:
                return False
            if self.meter_id is not None and readings:
                self.sink.submit(self.meter_id, readings)
        # One chunk of profile rows per lane turn (the values above go first): a profile
        # still catching up stays due (:meth:`pending`), so long backfills never starve
        # the live poll groups or the other meters of the lane.
        chunk_read = False
        profiles = [g for g in groups if isinstance(g, ProfileConfig)]
        # History waits while the queue fills (the broker away or slow): the meter keeps
        # its rows, and the queue's room stays for the live values. The profile goes back
        # to its interval and looks again then.
        backlog = self.sink.history_backlog() if profiles else None
        if backlog is not None:
            if not self._history_held:
                log.info("meter %s: load profile rows wait: %s", self.label, backlog,
                         extra={"meter": self.label})
            self._history_held = True
            self._behind.difference_update(p.name for p in profiles)
            profiles = []
        elif profiles and self._history_held:
            self._history_held = False
            log.info("meter %s: load profile rows go on", self.label, extra={"meter": self.label})
        for profile in profiles:
            if chunk_read:
                self._behind.add(profile.name)
                continue
            ok, result = self._transact(lambda client, p=profile: self._collect(client, p))
            if not ok:
                return False
            chunk_read = True
            if result is not None and result[1]:
                self._behind.add(profile.name)
            else:
                self._behind.discard(profile.name)
        for group in (g for g in groups if self.clock_and_events.handles(g)):
            ok, _ = self._transact(lambda client, g=group: self._clock_and_events(client, g))
            if not ok:
                return False
        return True

    def _clock_and_events(self, client: MeterClient, group: Group) -> None:
        """The clock or the event logs (:mod:`.clock_and_events`)."""
        self._prepare(client)
        if self.meter_id is not None:  # no id and no usable serial: logged when identified
            self.clock_and_events.run(client, group, self._view, self.meter_id,
                                      self.sink)  # type: ignore[arg-type]

    def _transact(self, work: Callable[[MeterClient], T]) -> tuple[bool, T | None]:
        """``work`` on the association (made first if there is none): (True, its result),
        or (False, None) after reporting the failure to the sink."""
        for attempt in (1, 2):
            reused = self._client is not None
            try:
                if self._client is None:
                    self._client = self._connect()
                return True, work(self._client)
            except DlmsError as error:
                self._fall_back_to_default_frames(error)
                # A dead link cannot carry a release (RLRQ, DISC): waiting for their
                # answers would cost time-outs; just close. Otherwise release politely.
                self._drop(release=not isinstance(error, _LINK_ERRORS))
                if reused and attempt == 1 and isinstance(error, _LINK_ERRORS):
                    log.info("meter %s: association lost (%s); associating again",
                             self.label, error, extra={"meter": self.label})
                    continue
                self._report(health_code(error), str(error))
                return False, None
            except Exception as error:  # a bug: keep the agent alive, say so loudly
                log.exception("meter %s: unexpected error", self.label,
                              extra={"meter": self.label})
                self._drop(release=False)
                self._report("unreachable", f"unexpected error {type(error).__name__}: "
                                            f"{error} (please report it)")
                return False, None
        return False, None

    def close(self) -> None:
        """Release the association (RLRQ, then DISC on HDLC)."""
        if self._client is not None:
            log.info("meter %s: releasing the association", self.label,
                     extra={"meter": self.label})
        self._drop()

    def _fall_back_to_default_frames(self, error: DlmsError) -> None:
        """After a link with information fields longer than the standard's default ran out
        of retries, propose the default (128 bytes, IEC 62056-46 6.4.4.4.3.2) from then on:
        a frame's chance to cross a noisy line falls with its length (at a bit-error rate of
        1e-3, 98 % of 512-byte frames are damaged, 67 % of 128-byte ones)."""
        granted, self._granted = self._granted, None
        if (not isinstance(error, NoResponseError) or granted is None
                or self.connection.hdlc_parameters is not None
                or max(granted.max_info_transmit, granted.max_info_receive)
                <= DEFAULT_MAX_INFO_LENGTH):
            return
        self.connection = replace(self.connection, hdlc_parameters=HdlcParameters())
        log.warning("meter %s: no answer with %d-byte HDLC frames; proposing the standard's "
                    "%d bytes from now on", self.label, granted.max_info_receive,
                    DEFAULT_MAX_INFO_LENGTH, extra={"meter": self.label})

    def _drop(self, release: bool = True) -> None:
        client, self._client = self._client, None
        self._granted = None
        if client is not None:
            client.close(release=release)

    def _report(self, code: str, message: str) -> None:
        log.warning("meter %s: %s: %s", self.label, code, message,
                    extra={"meter": self.label, "code": code})
        if self.meter_id is not None:
            self.sink.problem(self.meter_id, code, message)

    def _connect(self) -> MeterClient:
        security = self.meter.security
        settings = client_settings(security, self.where)
        pass3 = security.pass3_signing if security.auth.startswith("hls") else "never"
        # On a bus the client's link runs over the shared port, which it never closes.
        client = MeterClient(self.connection, settings, meter_id=self.facts_key,
                             state_dir=self.state_dir, pass3_signing=pass3, tap=self.tap,
                             frame_counter=frame_counter(security), transport=self.line)
        client.connect()
        if isinstance(client.link, HdlcLink):
            self._granted = client.link.connection.parameters
        log.info("meter %s: associated over %s", self.label, self.connection.describe(),
                 extra={"meter": self.label})
        return client

    def _prepare(self, client: MeterClient) -> None:
        """The first time on an association: the object list and the identity."""
        if self._view is None:
            self._view = self._object_list(client)
            self._drop_absent_default_profile()
        if self._identity is None:
            self._identify(client)

    def _drop_absent_default_profile(self) -> None:
        """The default load profile (a config without ``profiles:``) goes, before ``info``
        lists it, where the association view lacks it or may not read its buffer: not
        every meter (or client SAP) has one, and nobody asked for it."""
        if not self._view:
            return  # no view: the first read of the profile tells (:meth:`_collect`)
        view = {entry.logical_name: entry for entry in self._view}
        for profile in [p for p in self.meter.profiles if p.implicit]:
            entry = view.get(Obis.parse(profile.obis))
            if entry is None:
                self._drop_default_profile(profile, "not in the association's object list")
            elif not entry.attribute_readable(PROFILE_BUFFER):
                self._drop_default_profile(profile, "its buffer is not readable in this "
                                                    "association")

    def _drop_default_profile(self, profile: ProfileConfig, why: str) -> None:
        self.meter = replace(self.meter, profiles=tuple(
            p for p in self.meter.profiles if p != profile))
        self._behind.discard(profile.name)
        log.info("meter %s: no load profile %s (%s); the default load profile is not "
                 "published (profiles: in the config names another)", self.label,
                 profile.obis, why, extra={"meter": self.label})

    def _read(self, client: MeterClient, groups: tuple[PollGroup, ...]) -> list[Reading]:
        self._prepare(client)
        codes, classes = self._codes(groups)
        if not codes:
            raise ServiceError(f"nothing to read for poll groups "
                               f"{', '.join(g.name for g in groups)}: the association's "
                               "object list has no such objects; check the client SAP")
        readings = client.read(codes, class_ids=classes)
        # A partial read: the good values are published; each object without one is said.
        for failure in client.failures:
            log.warning("meter %s: %s", self.label, failure.message, extra={"meter": self.label})
        return readings

    def pending(self, group: Group) -> bool:
        """Whether ``group`` is a profile with rows left to catch up (the schedule keeps
        it due)."""
        return group.name in self._behind

    def request_replay(self, request: ReplayRequest) -> ProfileConfig:
        """Note a subscriber's request for rows of a profile again (:mod:`.load_profile_feed`);
        returns the profile, which the lane should serve soon. ConfigError when this
        meter publishes no such profile."""
        profile = next((p for p in self.meter.profiles if p.obis == request.profile), None)
        if profile is None or self.meter_id is None:
            configured = ", ".join(p.obis for p in self.meter.profiles) or "none"
            raise ConfigError(f"profile {request.profile} is not published for this meter "
                              f"(its profiles: {configured})")
        newest = self.sink.profile_mark(self.meter_id, profile.obis) or \
            self.profiles.last(profile.obis)
        replay = self.profiles.request_replay(profile.obis, request.start, newest)
        if replay is not None:
            self._behind.add(profile.name)
            log.info("meter %s: rows of profile %s asked again, after %s up to %s",
                     self.label, profile.obis, "the backfill depth" if request.start is None
                     else request.start.isoformat(), newest.isoformat(),
                     extra={"meter": self.label})
        return profile

    def _collect(self, client: MeterClient, profile: ProfileConfig) -> tuple[int, bool]:
        """Publish the next chunk of new rows of ``profile``: (how many went out, whether
        more are left)."""
        self._prepare(client)
        if profile not in self.meter.profiles:
            return 0, False  # the default profile, dropped on this association's view
        code = Obis.parse(profile.obis)
        if self._view and code not in {entry.logical_name for entry in self._view}:
            if code not in self._missing_warned:
                self._missing_warned.add(code)
                log.warning("meter %s: profile %s is not in the association's object list; "
                            "skipped (check the client SAP)", self.label, profile.obis,
                            extra={"meter": self.label})
            return 0, False
        meter_id = self.meter_id
        if meter_id is None:  # no id and no usable serial: logged when identified
            return 0, False
        def publish(obis: str, rows: list[ProfileRow], *, replay: bool = False) -> None:
            self.sink.profile_rows(meter_id, obis, rows, replay=replay)

        try:
            return self.profiles.collect(
                client, profile, publish, lambda obis: self.sink.profile_mark(meter_id, obis),
                max_chunks=1)
        except ServiceError as error:
            # A meter without an object list: the default profile it does not have is
            # refused at its first read.
            if not profile.implicit or error.reason not in ABSENT:
                raise
            self._drop_default_profile(profile, f"the meter answers {error.reason}")
            return 0, False

    # --- first association: object list and identity --------------------------------------

    def _object_list(self, client: MeterClient) -> list[ObjectListEntry]:
        try:
            entries = client.object_list()
        except ServiceError as error:
            log.warning("meter %s: cannot read the object list (%s); reading the configured "
                        "objects with their usual classes", self.label, error,
                        extra={"meter": self.label})
            return []
        log.info("meter %s: %d objects in the association view", self.label, len(entries),
                 extra={"meter": self.label})
        return entries

    def _identify(self, client: MeterClient) -> None:
        wanted = [SERIAL_NUMBER, LOGICAL_DEVICE_NAME, FIRMWARE]
        if self._view:
            listed = {e.logical_name for e in self._view}
            wanted = [code for code in wanted if code in listed]
        values: dict[Obis, object] = {}
        if wanted:
            try:
                values = {r.obis: r.value for r in client.read(wanted)}
            except ServiceError as error:
                log.info("meter %s: no identity objects (%s)", self.label, error,
                         extra={"meter": self.label})
        name = values.get(LOGICAL_DEVICE_NAME)
        flag = name[:3] if isinstance(name, str) and len(name) >= 3 else None
        title = client.associated.server_system_title if client.associated else None
        identity = MeterIdentity(
            serial=_text(values.get(SERIAL_NUMBER)),
            manufacturer=MANUFACTURERS.get(flag, flag) if flag else None,
            firmware=_text(values.get(FIRMWARE)), system_title=title)
        self._identity = identity
        if self.meter_id is None:
            self.meter_id = self._id_from_serial(identity.serial)
        if self.meter_id is not None:
            self.sink.identify(self.meter_id, identity)

    def _id_from_serial(self, serial: str | None) -> str | None:
        try:
            meter_id = check_id(serial, "meter serial")
        except ConfigError as error:
            log.error("meter %s has no id and its serial number cannot name it (%s); give "
                      "it an id in the config", self.meter.label, error)
            return None
        FactStore(self.state_dir).set_fact(self.facts_key, SERIAL, meter_id)
        log.info("meter %s: serial number %s names it", self.meter.label, meter_id)
        return meter_id

    # --- what a poll reads --------------------------------------------------------------

    def _codes(self, groups: tuple[PollGroup, ...]) -> tuple[list[Obis], dict[Obis, int]]:
        view = {e.logical_name: e for e in self._view or ()}
        codes: list[Obis] = []
        for group in groups:
            if group.objects == "all":
                codes += [code for code, entry in view.items() if _publishable(entry)]
                continue
            for text in group.objects:
                code = Obis.parse(text)
                if view and code not in view:
                    if code not in self._missing_warned:
                        self._missing_warned.add(code)
                        log.warning("meter %s: %s (poll group %s) is not in the "
                                    "association's object list; skipped", self.label,
                                    code.dotted, group.name, extra={"meter": self.label})
                    continue
                codes.append(code)
        unique = list(dict.fromkeys(codes))
        return unique, {code: view[code].class_id for code in unique if code in view}


def _publishable(entry: ObjectListEntry) -> bool:
    if entry.class_id not in VALUE_CLASSES:
        return False
    value_attribute = SCALED_CLASSES.get(entry.class_id,
                                         (VALUE_ATTRIBUTE.get(entry.class_id, 2),))[0]
    return entry.attribute_readable(value_attribute)


def _text(value: object) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


__all__ = ["HEALTH_CODES_BY_ERROR", "MeterIdentity", "MeterWorker", "SharedLine", "Sink",
           "client_settings", "connection_settings", "facts_key", "frame_counter",
           "health_code"]
