"""Pushed meter data, sans-IO: bytes from a serial line or socket in, readable events out.

``PushDecoder(format, ek=..., ak=...)``; ``feed(bytes) -> list[PushMessage | PushRejected]``.
Each telegram goes through four steps, one table entry per link format:

1. framing: ``mbus`` wired M-Bus long frames (EN 13757-2; the Austrian T-210D customer
   interface, 2400 8E1), ``hdlc`` UI or I frames (IEC 62056-46; the LLC header stripped,
   segmented frames joined), ``wrapper`` (IEC 62056-47 over TCP), ``dsmr`` back-to-back
   general-glo-ciphering APDUs (T-210D-r P1 port, 115200 8N1);
2. reassembly, one :class:`~edge_agent.dlms.push.reassembly.Reassembler` for every link
   framing: M-Bus segments (EN 13757-3 CI 00..1F), HDLC segmentation with or without the
   LLC header, general-block-transfer (Green Book 9.3.10, as Landis+Gyr E450 pushes);
   garbage is skipped, damaged and cut-off frames are reported;
3. deciphering (Green Book 9.2.7.2): general-glo-ciphering with SC 0x20 (encryption only,
   no tag: a wrong EK shows only as plaintext that does not decode) or 0x30; the
   invocation counter must be above the last accepted one, else the telegram is dropped;
4. content: a DataNotification (Green Book 9.5) whose body :mod:`push_body` reads, an
   EventNotificationRequest, or a DSMR P1 text telegram (:mod:`dsmr`).

Problems never escape ``feed``: a telegram that fails becomes a :class:`PushRejected`
with a code the agent publishes as meter health (``wrong_key``, ``counter_out_of_step``,
``decode_error``), so one bad telegram cannot stop a listener.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Protocol

from edge_agent.dlms.apdu import DataNotification, EventNotificationRequest, decode_apdu
from edge_agent.dlms.cosem.obis import Obis
from edge_agent.dlms.errors import (
    AuthenticationError,
    DecodeError,
    DlmsError,
    MissingKeyError,
    ReplayError,
    SecurityError,
)
from edge_agent.dlms.push.body import PushContent, PushItem, PushObject, decode_body
from edge_agent.dlms.push.ciphered_stream import GeneralGloCipheringSplitter
from edge_agent.dlms.push.dsmr import DsmrTelegram, looks_like_telegram
from edge_agent.dlms.push.notification_quirks import standard_data_notification
from edge_agent.dlms.push.reassembly import ControlFrame, Reassembler, Skipped, Telegram
from edge_agent.dlms.push.security_header import peek_security_header
from edge_agent.dlms.secret import Secret
from edge_agent.dlms.security import CipherKeys, ReceiveCounterGuard, SecurityControl, unprotect
from edge_agent.dlms.security.ciphering import ReceiveCounterGuardLike
from edge_agent.dlms.security.tags import is_ciphered

__all__ = [
    "FORMATS",
    "LAYOUT_DSMR",
    "LAYOUT_EVENT",
    "PushDecoder",
    "PushEvent",
    "PushMessage",
    "PushRejected",
    "problem_code",
]

log = logging.getLogger(__name__)

LAYOUT_DSMR: Final = "dsmr-p1"
LAYOUT_EVENT: Final = "event-notification"

# Problem codes of the MQTT health contract (DESIGN.md, docs/mqtt-contract.md); the first
# matching class decides.
_PROBLEM_CODES: Final[tuple[tuple[type[DlmsError], str], ...]] = (
    (ReplayError, "counter_out_of_step"),
    (MissingKeyError, "wrong_key"),
    (AuthenticationError, "wrong_key"),
    (SecurityError, "wrong_key"),
    (DlmsError, "decode_error"),
)


def problem_code(error: DlmsError) -> str:
    return next(code for kind, code in _PROBLEM_CODES if isinstance(error, kind))


@dataclass(frozen=True, slots=True)
class PushMessage:
    """One telegram, deciphered and checked. ``wire`` is its bytes as received (capture).

    ``meter_id``: the configured id, else the meter number the push carried, else the
    DSMR equipment identifier, else the sender's system title (hex).
    """

    meter_id: str | None
    items: tuple[PushItem, ...]
    timestamp: datetime | None  # the meter's time of the values (aware when it says so)
    meter_number: str | None
    system_title: bytes | None
    invocation_counter: int | None
    security: SecurityControl | None  # None: the push came in clear
    layout: str
    plaintext: bytes
    wire: bytes


@dataclass(frozen=True, slots=True)
class PushRejected:
    """A telegram that yielded nothing; ``code`` is the health code, ``error`` the reason."""

    code: str
    error: DlmsError
    wire: bytes

    @property
    def message(self) -> str:
        return str(self.error)


PushEvent = PushMessage | PushRejected


# --- step 1 and 2: framing and reassembly ------------------------------------------------------


class _Framer(Protocol):
    def feed(self, data: bytes) -> list[tuple[bytes, bytes] | PushRejected]:
        """(APDU, wire bytes) per complete telegram, or a rejection."""


class _LinkFramer:
    """HDLC, M-Bus and wrapper frames through the one :class:`Reassembler`: segments,
    general-block-transfer, garbage and cut-off frames handled alike for every framing."""

    __slots__ = ("_reassembler",)

    def __init__(self, framing: str) -> None:
        self._reassembler = Reassembler((framing,))

    def feed(self, data: bytes) -> list[tuple[bytes, bytes] | PushRejected]:
        out: list[tuple[bytes, bytes] | PushRejected] = []
        for event in self._reassembler.feed(data):
            if isinstance(event, Telegram):
                out.append((event.apdu, event.wire))
            elif isinstance(event, Skipped):
                log.debug("push stream: %s", event.message)
            elif isinstance(event, ControlFrame):
                continue  # link management (SNRM, RR, ...): nothing pushed
            else:  # damaged or cut short: rejected with its bytes, for the capture file
                error = DecodeError(event.message)
                out.append(PushRejected(problem_code(error), error, event.raw))
        return out


class _CipheredStreamFramer:
    __slots__ = ("_splitter",)

    def __init__(self) -> None:
        self._splitter = GeneralGloCipheringSplitter()

    def feed(self, data: bytes) -> list[tuple[bytes, bytes] | PushRejected]:
        return [(apdu, apdu) for apdu in self._splitter.feed(data)]


FORMATS: Final[dict[str, Callable[[], _Framer]]] = {
    "mbus": lambda: _LinkFramer("mbus"),
    "hdlc": lambda: _LinkFramer("hdlc"),
    "wrapper": lambda: _LinkFramer("wrapper"),
    "dsmr": _CipheredStreamFramer,
}


# --- step 3 and 4: deciphering and content --------------------------------------------------


Envelope = DsmrTelegram | DataNotification | EventNotificationRequest


def _envelope(plaintext: bytes) -> Envelope:
    """The plain push: the step where a wrong key (garbage plaintext) shows."""
    if looks_like_telegram(plaintext):
        return DsmrTelegram.decode(plaintext)
    standard, note = standard_data_notification(plaintext)
    if note is not None:
        log.info("push: %s", note)
    apdu = decode_apdu(standard)
    if isinstance(apdu, DataNotification | EventNotificationRequest):
        return apdu
    raise DecodeError(
        f"pushed {type(apdu).__name__} is not a data-notification (0x0F), an "
        "event-notification-request (0xC2) or a DSMR P1 telegram: nothing to read from it")


def _point_in_time(apdu: DataNotification | EventNotificationRequest) -> datetime | None:
    try:
        stamp = apdu.timestamp
        return stamp.to_datetime() if stamp is not None else None
    except DecodeError:  # a pattern, not a point in time: the body may have one
        return None


def _content(envelope: Envelope, objects: tuple[PushObject, ...] | None) -> PushContent:
    if isinstance(envelope, DsmrTelegram):
        return PushContent(envelope.items, envelope.timestamp, envelope.equipment_id,
                           LAYOUT_DSMR)
    if isinstance(envelope, EventNotificationRequest):
        descriptor = envelope.descriptor
        item = PushItem.of(Obis.from_bytes(descriptor.instance_id), envelope.attribute_value,
                           None, descriptor.class_id)
        return PushContent((item,), _point_in_time(envelope), None, LAYOUT_EVENT)
    content = decode_body(envelope.notification_body, objects)
    return PushContent(content.items, _point_in_time(envelope) or content.timestamp,
                       content.meter_number, content.layout)


class PushDecoder:
    """The receiving end of one meter's pushes (see the module docstring).

    ``ek``/``ak``: the meter's global unicast encryption and authentication keys
    (suite 0/1: 16 bytes); ``system_title``: the meter's, for glo- APDUs that do not carry
    it; ``meter_id``: the configured name; ``objects``: the push object list of IDIS-style
    pushes; ``guard``: receive counters (pass a persisted one to survive restarts).
    """

    __slots__ = ("_framer", "format", "guard", "keys", "meter_id", "objects", "system_title")

    def __init__(
        self,
        format: str,
        ek: Secret | None = None,
        ak: Secret | None = None,
        system_title: bytes | None = None,
        meter_id: str | None = None,
        *,
        objects: tuple[PushObject, ...] | None = None,
        guard: ReceiveCounterGuardLike | None = None,
    ) -> None:
        try:
            self._framer = FORMATS[format]()
        except KeyError:
            raise DecodeError(f"push format {format!r}: expected one of "
                              f"{', '.join(FORMATS)}") from None
        self.format = format
        self.keys = CipherKeys(ek=ek, ak=ak)
        self.system_title = system_title
        self.meter_id = meter_id
        self.objects = objects
        self.guard = guard if guard is not None else ReceiveCounterGuard()

    def feed(self, data: bytes) -> list[PushEvent]:
        events: list[PushEvent] = []
        for found in self._framer.feed(data):
            if isinstance(found, PushRejected):
                events.append(found)
                continue
            apdu, wire = found
            try:
                events.append(self._telegram(apdu, wire))
            except DlmsError as error:
                events.append(PushRejected(problem_code(error), error, wire))
        return events

    def _telegram(self, apdu: bytes, wire: bytes) -> PushMessage:
        if not apdu:
            raise DecodeError("empty push telegram (a frame without an APDU)")
        if not is_ciphered(apdu[0]):
            content = _content(_envelope(apdu), self.objects)
            return self._message(content, apdu, wire, None, None, None)
        try:
            opened = unprotect(apdu, self.keys, self.system_title)
        except MissingKeyError as error:
            seen = peek_security_header(apdu)
            if seen is None:
                raise
            raise MissingKeyError(f"{seen.describe()}: {error}") from None
        sender, counter = opened.system_title, opened.invocation_counter
        # Checked before the plaintext is used, recorded only once it decoded: with
        # encryption only (no tag) a wrong key or a forged frame must not move the counter.
        self.guard.check(sender, opened.key_id, counter)
        try:
            envelope = _envelope(opened.plaintext)
        except DecodeError as error:
            if opened.sc.authentication:
                raise
            raise AuthenticationError(
                f"{opened.tag_name} with {opened.sc.describe()} deciphered to something that is "
                f"not a push ({error}); encryption-only frames carry no tag, so this is how a "
                "wrong encryption key (EK) shows: check the key the grid operator gave") from None
        self.guard.accept(sender, opened.key_id, counter)
        return self._message(_content(envelope, self.objects), opened.plaintext, wire, sender,
                             counter, opened.sc)

    def _message(self, content: PushContent, plaintext: bytes, wire: bytes,
                 system_title: bytes | None, counter: int | None,
                 sc: SecurityControl | None) -> PushMessage:
        meter_id = (self.meter_id or content.meter_number
                    or (system_title.hex().upper() if system_title else None))
        return PushMessage(meter_id, content.items, content.timestamp, content.meter_number,
                           system_title, counter, sc, content.layout, plaintext, wire)
