"""Events the association state machines hand to their caller (h11 style).

A session consumes one whole APDU at a time (the link layer has already reassembled
HDLC segments or wrapper frames) and answers with exactly one event. The events are
small immutable values; they carry decoded data, never key material.

Client side (:class:`edge_agent.dlms.association.client.ClientSession`):

- :class:`SendApdu` -- the session needs one more exchange to finish what the caller
  asked for (HLS pass 3, GET-Request-Next of a block transfer, the next SET/ACTION block).
  Send ``apdu`` and feed the answer back; the caller never builds these itself.
- :class:`Associated`, :class:`Released` -- the association changed state.
- :class:`GetResult`, :class:`SetResult`, :class:`ActionResult` -- a confirmed service
  completed; per-attribute failures are ``DataAccessResult`` / ``ActionResult`` members of
  :mod:`edge_agent.dlms.apdu.results` in the results.
- :class:`Notification` -- an unsolicited DataNotification / EventNotificationRequest.

Whole-request failures (AARE rejected, ExceptionResponse, ConfirmedServiceError, bad
tag, replayed counter) are raised as :mod:`edge_agent.dlms.errors` exceptions instead.
"""

from __future__ import annotations

from dataclasses import dataclass

from edge_agent.dlms.apdu.base import Data
from edge_agent.dlms.apdu.conformance import Conformance
from edge_agent.dlms.apdu.notification import DataNotification, EventNotificationRequest
from edge_agent.dlms.apdu.results import ActionResult as ActionResultCode
from edge_agent.dlms.apdu.results import DataAccessResult
from edge_agent.dlms.association.settings import Authentication
from edge_agent.dlms.system_title import SystemTitle


@dataclass(frozen=True, slots=True)
class SendApdu:
    """Send ``apdu`` to the peer now and feed its answer back to the session."""

    apdu: bytes
    purpose: str


@dataclass(frozen=True, slots=True)
class Associated:
    """The application association is established (after pass 4 for HLS)."""

    conformance: Conformance
    server_max_receive_pdu_size: int
    negotiated_dlms_version: int
    server_system_title: SystemTitle | None
    authentication: Authentication
    pass3_signed: bool


@dataclass(frozen=True, slots=True)
class Released:
    """The association was released (RLRE received, or the meter answered RLRQ)."""

    reason: str | None


@dataclass(frozen=True, slots=True)
class GetResult:
    """The answer to one GET: one value per requested attribute, in request order.

    A value is the decoded A-XDR data, or a ``DataAccessResult`` saying why the meter could
    not give it (with-list answers). ``blocks`` counts the
    GET-Response-With-Datablock APDUs that were reassembled (0 without block transfer).
    """

    invoke_id: int
    values: tuple[Data | DataAccessResult, ...]
    blocks: int = 0

    @property
    def value(self) -> Data | DataAccessResult:
        """The single value of a GET-Request-Normal."""
        return self.values[0]


@dataclass(frozen=True, slots=True)
class SetResult:
    """The answer to one SET: one ``DataAccessResult`` per attribute (``success`` or why not)."""

    invoke_id: int
    results: tuple[DataAccessResult, ...]


@dataclass(frozen=True, slots=True)
class ActionResult:
    """The answer to one ACTION: its ``ActionResult`` and the optional return parameters.

    ``return_data`` is the decoded Data, a ``DataAccessResult``, or ``None`` when absent.
    """

    invoke_id: int
    result: ActionResultCode
    return_data: Data | DataAccessResult | None = None


@dataclass(frozen=True, slots=True)
class Notification:
    """An unsolicited DataNotification or EventNotificationRequest, already unprotected.

    ``apdu`` is the decoded APDU object of the xDLMS module; ``ciphered`` tells whether it
    came protected (and passed the tag and replay checks).
    """

    apdu: DataNotification | EventNotificationRequest
    ciphered: bool


#: Everything :meth:`ClientSession.receive_apdu` returns.
ClientEvent = SendApdu | Associated | Released | GetResult | SetResult | ActionResult | Notification
