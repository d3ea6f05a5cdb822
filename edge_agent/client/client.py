"""The blocking meter client: a :class:`ClientSession` driven over a link.

    with MeterClient(connection, settings, meter_id="kitchen", state_dir=state) as meter:
        for reading in meter.read([Obis.parse("1.0.1.8.0.255")]):
            print(reading.obis, reading.value, reading.unit)

What it adds to the sans-IO session: transports and links, invocation counters persisted
in the state dir, the `pass3_signing: auto` retry (remembered per meter), object classes
and scalers learned once and cached, GET with-list batching, readable errors.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Self

from edge_agent.client.connection import ConnectionSettings, open_link, open_transport
from edge_agent.client.lenient import split_trailing
from edge_agent.client.link import Link, Tap, _no_tap
from edge_agent.client.refusals import key_refusal, refusal_of_aarq
from edge_agent.client.values import (
    SCALED_CLASSES,
    VALUE_ATTRIBUTE,
    Reading,
    to_reading,
    usual_class,
)
from edge_agent.dlms import apdu as x
from edge_agent.dlms.apdu.conformance import Conformance
from edge_agent.dlms.apdu.results import DataAccessResult
from edge_agent.dlms.association.client import ClientSession, ClientSettings, Pass3SigningRequired
from edge_agent.dlms.association.events import (
    ActionResult,
    Associated,
    GetResult,
    SendApdu,
    SetResult,
)
from edge_agent.dlms.association.settings import Authentication, Pass3Signing
from edge_agent.dlms.cosem.interface_classes import ObjectListEntry, parse_object_list
from edge_agent.dlms.cosem.obis import Obis
from edge_agent.dlms.cosem.units import ScalerUnit
from edge_agent.dlms.errors import (
    AssociationError,
    AssociationRefusal,
    ConfigError,
    DecodeError,
    DlmsError,
    FrameError,
    MalformedAnswerError,
    NoResponseError,
    ProtocolError,
    ServiceError,
    StaleAnswerError,
    TransportError,
)
from edge_agent.state import default_state_dir, facts
from edge_agent.state.counters import InvocationCounterStore
from edge_agent.state.facts import FactStore
from edge_agent.transport.base import Transport

log = logging.getLogger(__name__)

ASSOCIATION = Obis(0, 0, 40, 0, 0, 255)
# The meter's frame counter of the management client's key, readable by the public client
# (Sagemcom, Landis+Gyr, Kaifa use 0.0.43.1.0.255; installations differ, so it is a setting).
FRAME_COUNTER = Obis(0, 0, 43, 1, 0, 255)
PUBLIC_CLIENT_SAP = 16
WITH_LIST_LIMIT = 32  # attributes per GET-Request-With-List: meters cap the list length
_REQUEST_OVERHEAD = 40  # GET-Request-With-List header + glo-/general-ciphering header and tag
_NO_SIGNING_KEY = (
    "--pass3-signing auto would sign it, but there is no client signing key: put client.key.pem"
    " (whose certificate the meter knows) in --keys-dir"
)
# A guessed class the meter contradicts: learn the object list and ask again.
_WRONG_GUESS = frozenset({DataAccessResult.OBJECT_CLASS_INCONSISTENT, DataAccessResult.OBJECT_UNDEFINED})
# Failures after which the link carries nothing more: no release (RLRQ, DISC) is tried.
_LINK_FAILURES = (NoResponseError, TransportError, ProtocolError, FrameError)


@dataclass(frozen=True, slots=True)
class Malformed:
    """An attribute whose answer did not decode (in a list of values from ``get_many``)."""

    error: MalformedAnswerError

    @property
    def raw(self) -> bytes:
        return self.error.raw


@dataclass(frozen=True, slots=True)
class ReadFailure:
    """An object of a read that gave no value: ``error`` is the standard's name of the
    refusal (``object-undefined``...) or ``malformed``; ``raw`` the answer that did not
    decode."""

    obis: Obis
    error: str
    message: str
    raw: bytes | None = None

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"value": None, "unit": None, "error": self.error, "message": self.message}
        if self.raw is not None:
            out["raw"] = self.raw.hex()
        return out


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def counter_identity(settings: ClientSettings) -> tuple[str, str]:
    """(owner, key id) of the invocation counter: GCM forbids reusing an IV (client system
    title ‖ IC) under one key, so the counter belongs to that pair, whatever the meter.
    The key appears only as a truncated SHA-256 fingerprint."""
    title = (settings.system_title or b"\0" * 8).hex()
    fingerprint = hashlib.sha256(settings.ek.reveal()).hexdigest()[:16] if settings.ek else "nokey"
    return title, f"ek-{fingerprint}"


class MeterClient:
    def __init__(
        self,
        connection: ConnectionSettings,
        settings: ClientSettings,
        *,
        meter_id: str,
        state_dir: str | os.PathLike[str] | None = None,
        pass3_signing: Pass3Signing | str = Pass3Signing.AUTO,
        tap: Tap = _no_tap,
        clock: Callable[[], dt.datetime] = _utcnow,
        challenge: Callable[[int], bytes] = os.urandom,
        frame_counter: Obis | None = FRAME_COUNTER,
        public_client_sap: int = PUBLIC_CLIENT_SAP,
        transport: Transport | None = None,
    ) -> None:
        """``transport``: an open transport owned by the caller (the shared serial port of
        an RS-485 bus); the client runs its link over it and never closes it. Without it,
        the client opens one from ``connection`` for each association and closes it."""
        signing = Pass3Signing.parse(pass3_signing, "pass3_signing")
        self.connection = connection
        self.settings = settings
        self.meter_id = meter_id
        self.pass3_signing = signing
        self.tap = tap
        self.clock = clock
        self._challenge = challenge
        self.frame_counter = frame_counter
        self.public_client_sap = public_client_sap
        self._state_dir = state_dir
        state = Path(state_dir) if state_dir is not None else default_state_dir()
        self.counters = InvocationCounterStore(state)
        self.facts = FactStore(state)
        self._counter_owner, self._counter_key = counter_identity(settings)
        self._external_transport = transport
        self.transport: Transport | None = None
        self.link: Link | None = None
        self.session: ClientSession | None = None
        self.associated: Associated | None = None
        self.exchanges = 0  # request/response round trips since association (for --verbose)
        self.failures: list[ReadFailure] = []  # of the last read(): objects that gave no value
        self._objects: list[ObjectListEntry] = []

    # --- connection ---------------------------------------------------------------------------

    def __enter__(self) -> Self:
        self.connect()
        return self

    def __exit__(self, exc_type: object, exc: BaseException | None, traceback: object) -> None:
        # A dead or confused link carries no release: RLRQ and DISC would only wait out time-outs.
        self.close(release=not isinstance(exc, _LINK_FAILURES))

    def _open_link(self) -> None:
        self.transport = (self._external_transport if self._external_transport is not None
                          else open_transport(self.connection))
        try:
            link = open_link(self.connection, self.transport, self.tap)
            link.open()
        except BaseException:
            # No link came up (no UA to our SNRM, or DM): there is nothing to disconnect,
            # and a DISC would only cost another round of time-outs (and, on a bus, hold
            # the line for them). Close the transport only.
            self._close_transport()
            raise
        self.link = link

    def _close_transport(self) -> None:
        """Disconnect the link (DISC on HDLC) if one is up, then close our own transport."""
        if self.link is not None:
            self.link.close()
            self.link = None
        if self.transport is not None and self.transport is not self._external_transport:
            self.transport.close()
        self.transport = None

    def _next_invocation_counter(self) -> int:
        return self.counters.next(self._counter_owner, self._counter_key)

    def _uses_invocation_counters(self) -> bool:
        return self.settings.ciphered_context or self.settings.authentication is Authentication.HLS_GMAC

    def synchronise_invocation_counter(self) -> int | None:
        """Read the meter's frame counter with the public client (no security) and continue
        above it; returns the counter read, None when the meter has none to read.

        Needed on first use of a key (a fresh state dir against a meter that has seen higher
        counters) and after the meter refused our counter; the store never goes down.
        """
        if self.frame_counter is None:
            return None
        public = MeterClient(
            replace(self.connection, client_sap=self.public_client_sap),
            ClientSettings(),
            meter_id=self.meter_id,
            state_dir=self._state_dir,
            pass3_signing=Pass3Signing.NEVER,
            tap=self.tap,
            frame_counter=None,
            transport=self._external_transport,  # a bus meter answers on the same line
        )
        try:
            with public:
                value = public.get(self.frame_counter, 1, 2)
        except (ServiceError, AssociationError) as error:
            log.info("frame counter %s not readable by the public client: %s", self.frame_counter.dotted, error)
            return None
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            log.info("frame counter %s holds %r, not a counter: ignored", self.frame_counter.dotted, value)
            return None
        self.counters.set_at_least(self._counter_owner, self._counter_key, int(value) + 1)
        log.debug("meter frame counter %d: next invocation counter at least %d", value, value + 1)
        return int(value)

    def connect(self) -> Associated:
        """Open the link and associate.

        With ciphering, a key never used from this state dir first learns the meter's frame
        counter; a refusal that a stale counter explains is retried once above the meter's
        counter. With pass3_signing auto, an unsigned pass 3 refused is retried signed once.
        A refusal that with our keys can only mean wrong keys, however the meter words it,
        is an AuthenticationError (:mod:`edge_agent.client.refusals`).
        """
        try:
            return self._connect()
        except DlmsError as error:
            refined = key_refusal(error, self.settings)
            if refined is error:
                raise
            raise refined from None

    def _connect(self) -> Associated:
        synchronised = False
        if self._uses_invocation_counters() and self.counters.peek(self._counter_owner, self._counter_key) <= 1:
            self.synchronise_invocation_counter()
            synchronised = True
        try:
            return self._connect_signed_or_not()
        except AssociationError as refusal:
            if synchronised or not self._uses_invocation_counters() or not _counter_may_explain(refusal):
                raise
            log.info("association refused (%s): reading the meter's frame counter and retrying once", refusal)
            before = self.counters.peek(self._counter_owner, self._counter_key)
            meter_counter = self.synchronise_invocation_counter()
            if meter_counter is None:
                raise
            if meter_counter + 1 < before:
                raise AssociationError(
                    f"{refusal}; our next invocation counter ({before}) was already above the meter's"
                    f" frame counter ({meter_counter}), so the counter is not the cause",
                    refusal.reason,
                ) from None
            return self._connect_signed_or_not()

    def _connect_signed_or_not(self) -> Associated:
        signed = self.pass3_signing is Pass3Signing.ALWAYS or (
            self.pass3_signing is Pass3Signing.AUTO
            and self.facts.get_fact(self.meter_id, facts.PASS3_SIGNING_REQUIRED, False)
        )
        if signed and self.pass3_signing is Pass3Signing.AUTO and self.settings.signing_key is None:
            raise ConfigError(f"meter {self.meter_id} wants HLS pass 3 signed (learned before). {_NO_SIGNING_KEY}")
        try:
            self._open_link()
            try:
                return self._associate(signed)
            except Pass3SigningRequired as refusal:
                if self.pass3_signing is not Pass3Signing.AUTO:
                    raise  # its message names ServiceNotAllowed and suggests pass3_signing: always
                self.facts.set_fact(self.meter_id, facts.PASS3_SIGNING_REQUIRED, True)
                if self.settings.signing_key is None:
                    raise ConfigError(f"{refusal}. {_NO_SIGNING_KEY}") from None
            log.info("meter %s refused unsigned pass 3; re-associating with general-signing", self.meter_id)
            self._close_transport()
            self._open_link()
            return self._associate(True)
        except BaseException:
            self._close_transport()
            raise

    def _associate(self, signed: bool) -> Associated:
        settings = self.settings
        if settings.authentication.hls:
            settings = replace(settings, pass3_signing=Pass3Signing.ALWAYS if signed else Pass3Signing.NEVER)
        self.session = ClientSession(settings, self._next_invocation_counter, self._challenge(16))
        aarq = self.session.associate()
        self.exchanges += 1
        answer = self.link.request(aarq)
        try:
            event = self.session.receive_apdu(self._complete(answer))
        except (AssociationError, ServiceError) as error:
            refined = refusal_of_aarq(error, answer, self.settings)
            if refined is error:
                raise
            raise refined from None
        if isinstance(event, SendApdu):
            event = self._run(event.apdu)
        if not isinstance(event, Associated):
            raise ServiceError(f"association did not complete: {event!r}")
        self.associated = event
        self.exchanges = 0
        log.debug(
            "associated: conformance %s, server max PDU %d, pass 3 signed: %s",
            event.conformance, event.server_max_receive_pdu_size, event.pass3_signed,
        )
        return event

    def close(self, release: bool = True) -> None:
        """Release the association (RLRQ) and the link (DISC on HDLC); errors on the way
        out are logged. ``release=False`` after a failure that left the link unusable: no
        RLRQ, no DISC (each would only wait out its time-out), only the transport closes."""
        if (release and self.session is not None and self.associated is not None
                and self.link is not None):
            try:
                self._run(self.session.release())
            except Exception as error:  # noqa: BLE001 - closing must not hide the real outcome
                log.debug("release not confirmed: %s", error)
        self.associated = None
        self.session = None
        if not release:
            self.link = None
        self._close_transport()

    # --- exchanges ----------------------------------------------------------------------------

    def _run(self, apdu: bytes) -> Any:
        """Send ``apdu``; follow the session's SendApdu requests; return the final event."""
        assert self.link is not None and self.session is not None, "not connected"
        while True:
            event = self._exchange(apdu)
            if not isinstance(event, SendApdu):
                return event
            apdu = event.apdu

    def _exchange(self, apdu: bytes) -> Any:
        """One request and the session's event for its answer.

        An answer to an earlier request (another invoke-id) is logged and skipped while the
        time-out lasts; bytes after a complete APDU are dropped with a warning; an answer
        that does not decode, or does not fit the request (a with-list answer with another
        number of results), ends its request, not the association: MalformedAnswerError
        with the raw bytes.
        """
        self.exchanges += 1
        deadline = time.monotonic() + self.connection.timeout
        answer = self.link.request(apdu)
        while True:
            try:
                return self.session.receive_apdu(answer)
            except StaleAnswerError as stale:
                log.warning("%s; raw bytes %s", stale, answer.hex())
                answer = self._next_answer(deadline, stale)
            except ProtocolError as error:  # an answer that does not fit its request, which it ended
                raise MalformedAnswerError(f"{error}; raw bytes {answer.hex()}", answer) from None
            except DecodeError as error:
                complete = self._complete(answer)
                if complete != answer:
                    answer = complete
                    continue
                self.session.abandon_request()
                raw = error.raw if isinstance(error, MalformedAnswerError) else answer
                raise MalformedAnswerError(f"{error}; raw bytes {raw.hex()}", raw) from None

    def _complete(self, answer: bytes) -> bytes:
        """``answer`` without the bytes after its complete APDU (a known meter bug), with a
        warning; ``answer`` itself when nothing follows or it is no complete APDU."""
        apdu, extra = split_trailing(answer)
        if extra:
            log.warning("%d byte(s) after a complete APDU dropped (a known meter bug): APDU %s,"
                        " then %s", len(extra), apdu.hex(), extra.hex())
        return apdu

    def _next_answer(self, deadline: float, stale: StaleAnswerError) -> bytes:
        remaining = deadline - time.monotonic()
        answer = self.link.next_answer(remaining) if remaining > 0 else None
        if answer is None:
            raise NoResponseError(
                f"no answer to the request in flight within {self.connection.timeout:g} s, only"
                f" answers to earlier ones (last: {stale})")
        return answer

    @property
    def conformance(self) -> Conformance:
        return self.associated.conformance if self.associated else Conformance(0)

    def get(self, code: Obis, class_id: int, attribute: int, access: x.SelectiveAccess | None = None) -> Any:
        """One attribute; a DataAccessResult becomes a ServiceError naming the object."""
        event = self._run(self.session.get(x.CosemAttributeDescriptor(class_id, bytes(code), attribute), access))
        value = event.value
        if isinstance(value, DataAccessResult):
            raise ServiceError(_refusal(value, code, class_id, attribute), _result_name(value))
        return value

    def get_many(self, items: Sequence[tuple[Obis, int, int]]) -> list[Any]:
        """Many attributes in as few exchanges as the meter allows; failures stay in the
        list as DataAccessResult (refused) or :class:`Malformed` (the answer did not decode:
        a with-list answer that does not decode is asked again one attribute at a time, so
        one bad value costs no other)."""
        descriptors = [x.CosemAttributeDescriptor(c, bytes(o), a) for o, c, a in items]
        if Conformance.MULTIPLE_REFERENCES not in self.conformance:
            return [self._get_one(descriptor) for descriptor in descriptors]
        values: list[Any] = []
        # The request must fit the meter's max receive PDU (Green Book 9.4.6.4): 10 bytes per
        # attribute descriptor with its access-selection flag, plus header and ciphering.
        server_pdu = self.associated.server_max_receive_pdu_size if self.associated else 0
        limit = max(1, min(WITH_LIST_LIMIT, (server_pdu - _REQUEST_OVERHEAD) // 10)) if server_pdu else WITH_LIST_LIMIT
        for start in range(0, len(descriptors), limit):
            chunk = descriptors[start : start + limit]
            if len(chunk) == 1:
                values.append(self._get_one(chunk[0]))
                continue
            try:
                event: GetResult = self._run(self.session.get_with_list(chunk))
            except MalformedAnswerError as error:
                log.warning("the answer to a GET of %d attributes does not decode (%s): asking for"
                            " each alone", len(chunk), error)
                values.extend(self._get_one(descriptor) for descriptor in chunk)
            else:
                values.extend(event.values)
        return values

    def _get_one(self, descriptor: x.CosemAttributeDescriptor) -> Any:
        try:
            return self._run(self.session.get(descriptor)).value
        except MalformedAnswerError as error:
            return Malformed(error)

    def set(self, code: Obis, class_id: int, attribute: int, value: Any) -> None:
        event: SetResult = self._run(self.session.set(x.CosemAttributeDescriptor(class_id, bytes(code), attribute), value))
        result = event.results[0]
        if result != DataAccessResult.SUCCESS:
            raise ServiceError(_refusal(result, code, class_id, attribute), _result_name(result))

    def action(self, code: Obis, class_id: int, method: int, parameters: Any = x.OMITTED) -> Any:
        event: ActionResult = self._run(self.session.action(x.CosemMethodDescriptor(class_id, bytes(code), method), parameters))
        if int(event.result) != 0:
            raise ServiceError(
                f"{event.result.name.lower().replace('_', '-')}: the meter refused method {method} of"
                f" {code.dotted} (class {class_id})",
                event.result.name.lower().replace("_", "-"),
            )
        return event.return_data

    # --- objects, scalers, readings -----------------------------------------------------------

    def object_list(self, refresh: bool = False) -> list[ObjectListEntry]:
        """The association's object list (attribute 2 of 0.0.40.0.0.255), cached per meter."""
        if not refresh and self._objects:
            return self._objects
        entries = parse_object_list(self.get(ASSOCIATION, 15, 2))
        self._objects = entries
        self.facts.set_fact(self.meter_id, facts.CLASSES, {e.logical_name.dotted: e.class_id for e in entries})
        return entries

    def _classes(self) -> dict[str, int]:
        return self.facts.get_fact(self.meter_id, facts.CLASSES, {}) or {}

    def _scalers(self) -> dict[str, list[int]]:
        return self.facts.get_fact(self.meter_id, facts.SCALERS, {}) or {}

    def read(self, codes: Iterable[Obis], *, class_ids: dict[Obis, int] | None = None) -> list[Reading]:
        """Read the value of each object, scaled with its unit.

        Classes come from ``class_ids``, the cached object list, or the usual class of the
        OBIS code; scalers are read once and cached. Everything missing goes into one GET
        with-list together with the values. Objects that give no value (refused, or an
        answer that does not decode) are in ``failures``; when none gave a value, the first
        failure is raised (ServiceError, MalformedAnswerError).
        """
        codes = list(dict.fromkeys(codes))
        known = self._classes()
        classes = {c: (class_ids or {}).get(c) or known.get(c.dotted) or usual_class(c) for c in codes}
        readings, refused = self._read_once(codes, classes)
        if refused and not known and any(result in _WRONG_GUESS for _, result in refused):
            self.object_list()  # learn the real classes, then ask again for those
            known = self._classes()
            retry = [c for c, _ in refused if c.dotted in known]
            refused = [(c, r) for c, r in refused if c.dotted not in known]
            if retry:
                classes.update({c: known[c.dotted] for c in retry})
                more, still = self._read_once(retry, classes)
                readings += more
                refused += still
        self.failures = []
        for code, result in refused:
            if isinstance(result, Malformed):
                message = f"{code.dotted}: the meter's answer does not decode: {result.error}"
                if not readings:
                    raise MalformedAnswerError(message, result.raw)
                self.failures.append(ReadFailure(code, "malformed", message, result.raw))
                continue
            message = _refusal(result, code, classes.get(code, 0), VALUE_ATTRIBUTE.get(classes.get(code, 1), 2))
            if not readings:
                raise ServiceError(message, _result_name(result))
            self.failures.append(ReadFailure(code, _result_name(result), message))
        order = {c: i for i, c in enumerate(codes)}
        return sorted(readings, key=lambda r: order[r.obis])

    def _read_once(
        self, codes: list[Obis], classes: dict[Obis, int]
    ) -> tuple[list[Reading], list[tuple[Obis, DataAccessResult | Malformed]]]:
        scalers = self._scalers()
        items: list[tuple[Obis, int, int]] = []
        for code in codes:
            class_id = classes[code]
            value_attribute, scaler_attribute = SCALED_CLASSES.get(class_id, (VALUE_ATTRIBUTE.get(class_id, 2), None))
            items.append((code, class_id, value_attribute))
            if scaler_attribute is not None and code.dotted not in scalers:
                items.append((code, class_id, scaler_attribute))
        timestamp = self.clock()
        values = self.get_many(items)
        raw: dict[Obis, Any] = {}
        learned: dict[str, list[int]] = {}
        refused: list[tuple[Obis, DataAccessResult | Malformed]] = []
        for (code, class_id, attribute), value in zip(items, values):
            if isinstance(value, (DataAccessResult, Malformed)):
                if code not in dict(refused):
                    refused.append((code, value))
            elif class_id in SCALED_CLASSES and attribute == SCALED_CLASSES[class_id][1]:
                scaler = ScalerUnit.from_axdr(value)
                learned[code.dotted] = [scaler.scaler, scaler.unit]
            else:
                raw[code] = value
        if learned:
            scalers = {**scalers, **learned}
            self.facts.set_fact(self.meter_id, facts.SCALERS, scalers)
        readings = []
        for code, value in raw.items():
            pair = scalers.get(code.dotted)
            scaler_unit = ScalerUnit(*pair) if pair and classes[code] in SCALED_CLASSES else None
            readings.append(to_reading(code, classes[code], value, scaler_unit, timestamp))
        return readings, [(c, r) for c, r in refused if c not in raw]


_COUNTER_MAY_EXPLAIN = frozenset({AssociationRefusal.DECIPHERING_ERROR, AssociationRefusal.PASS3_NOT_ACCEPTED})


def _counter_may_explain(refusal: AssociationError) -> bool:
    """A refusal that a too-low invocation counter causes: the meter could not decipher
    (Green Book 9.3.2: initiate-error deciphering-error) or did not accept pass 3."""
    return refusal.reason in _COUNTER_MAY_EXPLAIN


def _result_name(result: DataAccessResult) -> str:
    return result.name.lower().replace("_", "-")


def _refusal(result: DataAccessResult, code: Obis, class_id: int, attribute: int) -> str:
    name = _result_name(result)
    hints = {
        DataAccessResult.OBJECT_UNDEFINED: f"the meter has no object {code.dotted} (class {class_id}) in this association",
        DataAccessResult.READ_WRITE_DENIED: f"this client may not access {code.dotted} attribute {attribute}: use a client SAP with more rights",
        DataAccessResult.OBJECT_CLASS_INCONSISTENT: f"{code.dotted} is not of class {class_id}",
        DataAccessResult.OBJECT_UNAVAILABLE: f"{code.dotted} attribute {attribute} is not available",
    }
    return f"{name}: {hints.get(result, f'{code.dotted} attribute {attribute} of class {class_id}')}"


__all__ = ["MeterClient", "counter_identity", "default_state_dir"]
