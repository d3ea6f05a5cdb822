"""The client side of a DLMS/COSEM application association, sans-IO (h11 style).

Green Book (DLMS UA 1000-2) 9.3 and 9.4: an association is opened with AARQ/AARE, for HLS
completed by passes 3 and 4 (an ACTION on the Association LN object), used for
GET/SET/ACTION, and closed with RLRQ/RLRE. :class:`ClientSession` keeps the state of one
association; it never touches a socket, a clock or a random source:

    session = ClientSession(settings, next_invocation_counter=store.next, challenge=os.urandom(16))
    send(session.associate())
    event = session.receive_apdu(receive())     # SendApdu -> send event.apdu, receive again
    ...                                         # until Associated
    send(session.get(CosemAttributeDescriptor(3, obis, 2)))
    event = session.receive_apdu(receive())     # SendApdu (next block) ... GetResult

Every method that starts a request returns the APDU to send; :meth:`receive_apdu` takes
one whole APDU (the link layer has reassembled it) and returns exactly one event of
:mod:`edge_agent.dlms.association.events`, or raises. Requests the protocol itself needs (HLS pass 3,
GET-Request-Next, the next SET/ACTION block) come back as :class:`SendApdu` events.

Invocation counters: every protected APDU, and the f(StoC) of HLS-5, spends one value of
``next_invocation_counter()``, in the order they are built -- the caller persists them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from typing import Any

from edge_agent.dlms import apdu as x
from edge_agent.dlms.apdu import acse
from edge_agent.dlms.apdu.acse import AARE, AARQ, RLRE, RLRQ, AuthenticationValue, MechanismName
from edge_agent.dlms.apdu.base import INVOKE_ID_MASK
from edge_agent.dlms.apdu.conformance import Conformance
from edge_agent.dlms.apdu.results import ExceptionServiceError, StateError
from edge_agent.dlms.association.events import (
    ActionResult,
    Associated,
    ClientEvent,
    GetResult,
    Notification,
    Released,
    SendApdu,
    SetResult,
)
from edge_agent.dlms.association.pass3 import build_signed_pass3
from edge_agent.dlms.association.settings import (
    CIPHERING_OVERHEAD,
    CONTEXTS,
    HLS_MECHANISMS,
    PLAIN_REFUSALS,
    ClientSettings,
    Pass3Signing,
    hls_reply,
    required,
    spend_invocation_counter,
    verify_hls_reply,
)
from edge_agent.dlms.encoding import axdr
from edge_agent.dlms.errors import (
    AssociationError,
    AssociationRefusal,
    DecodeError,
    DlmsError,
    ExceptionResponseError,
    MalformedAnswerError,
    ProtocolError,
    SecurityError,
    ServiceError,
    SignatureError,
    StaleAnswerError,
)
from edge_agent.dlms.secret import Secret
from edge_agent.dlms.security import CipherKeys, Form, ReceiveCounterGuard, peel, protect
from edge_agent.dlms.security.hls import check_challenge
from edge_agent.dlms.security.signing import PublicKeyOrCertificate
from edge_agent.dlms.security.tags import GENERAL_SIGNING, is_ciphered
from edge_agent.dlms.system_title import SystemTitle

__all__ = ["ClientSession", "ClientSettings", "ClientState", "Pass3SigningRequired"]

# --- errors ---------------------------------------------------------------------------------


class Pass3SigningRequired(ExceptionResponseError):
    """The meter refused an unsigned HLS pass 3: the Sagemcom T-210D behaviour (README, "The
    two commands"), which wants it in general-signing (:mod:`.pass3`)."""

    fix = ("pass3_signing", "always")


# --- the state machine ----------------------------------------------------------------------


class ClientState(Enum):
    IDLE = "idle"  # no association (also after a refusal or abort)
    AWAITING_AARE = "awaiting-aare"
    AWAITING_PASS4 = "awaiting-pass-4"  # HLS pass 3 sent
    ASSOCIATED = "associated"
    AWAITING_RESPONSE = "awaiting-response"
    AWAITING_RLRE = "awaiting-rlre"
    RELEASED = "released"


# Which caller action each state allows (anything else is a ProtocolError naming the state).
_ALLOWED: dict[str, frozenset[ClientState]] = {
    "associate": frozenset({ClientState.IDLE, ClientState.RELEASED}),
    "request": frozenset({ClientState.ASSOCIATED}),
    "release": frozenset({ClientState.ASSOCIATED}),
}


class PendingKind(StrEnum):
    """The confirmed request in flight; it decides which responses may answer it."""

    GET = "get"
    GET_LIST = "get-list"
    SET = "set"
    ACTION = "action"
    PASS3 = "pass3"  # HLS pass 3: an ACTION on the Association LN, answered by pass 4


@dataclass(slots=True)
class _Pending:
    """The confirmed request in flight."""

    kind: PendingKind
    invoke_id_and_priority: int
    descriptor: Any = None
    count: int = 1
    reassembler: x.GetBlockReassembler | None = None
    blocks_to_send: list[Any] = field(default_factory=list)
    last_block_sent: int = 0
    response_blocks: x.BlockAssembler | None = None

    @property
    def invoke_id(self) -> int:
        return x.invoke_id_of(self.invoke_id_and_priority)


class ClientSession:
    """One client association; see the module docstring for the calling pattern."""

    def __init__(
        self,
        settings: ClientSettings,
        next_invocation_counter: Callable[[], int],
        challenge: bytes,
        *,
        guard: ReceiveCounterGuard | None = None,
    ) -> None:
        self.settings = settings
        self._next_ic = next_invocation_counter
        self._ctos = check_challenge(challenge, "client challenge (CtoS)")
        self._sc = settings.security_control
        self._keys = settings.keys
        self._form = Form.GENERAL_GLO if settings.general_glo_ciphering else Form.GLO
        self.guard = guard if guard is not None else ReceiveCounterGuard()
        self.state = ClientState.IDLE
        self._invoke_id = settings.first_invoke_id
        self._pending: _Pending | None = None
        self.server_system_title: SystemTitle | None = None
        self.conformance: Conformance | None = None
        self.server_max_receive_pdu_size = 0
        self.negotiated_dlms_version = 0
        self.pass3_signed = False
        self._stoc = b""

    # --- caller actions ---------------------------------------------------------------------

    def associate(self) -> bytes:
        """The AARQ (Green Book 9.3.2): context, mechanism, CtoS/password, InitiateRequest."""
        self._require("associate")
        s = self.settings
        mechanism = s.mechanism
        initiate = x.InitiateRequest(
            s.conformance, s.max_receive_pdu_size, dedicated_key=s.dedicated_key
        ).encode()
        if s.ciphered_context:
            initiate = self._protect(initiate, Form.GLO)  # glo-initiate-request (0x21)
        value = None
        if mechanism is MechanismName.LOW:
            value = AuthenticationValue(required(s.password, "the LLS password"))
        elif mechanism in HLS_MECHANISMS:
            value = AuthenticationValue(Secret(self._ctos, "CtoS"))
        titled = s.ciphered_context or mechanism in HLS_MECHANISMS
        aarq = AARQ(
            application_context_name=CONTEXTS[s.ciphered_context],
            calling_ap_title=s.system_title if titled else None,
            sender_acse_requirements=mechanism is not None,
            mechanism_name=mechanism,
            calling_authentication_value=value,
            user_information=initiate,
        )
        self.state = ClientState.AWAITING_AARE
        self.pass3_signed = False
        return aarq.encode()

    def get(
        self, descriptor: x.CosemAttributeDescriptor, access: x.SelectiveAccess | None = None
    ) -> bytes:
        """GET-Request-Normal; long answers are reassembled (GET-Request-Next via SendApdu)."""
        self._require("request")
        invoke = self._next_invoke()
        request = x.GetRequestNormal(invoke, descriptor, access)
        return self._start(_Pending(PendingKind.GET, invoke, descriptor), request.encode())

    def get_with_list(
        self, items: Sequence[x.CosemAttributeDescriptor | x.CosemAttributeDescriptorWithSelection]
    ) -> bytes:
        """GET-Request-With-List; only when the meter granted multiple-references."""
        self._require("request")
        if not self.conformance or Conformance.MULTIPLE_REFERENCES not in self.conformance:
            raise ProtocolError(
                "the meter did not grant multiple-references (conformance): send one GET per attribute"
            )
        if not items:
            raise ProtocolError("GET with-list needs at least one attribute")
        listed = tuple(
            item
            if isinstance(item, x.CosemAttributeDescriptorWithSelection)
            else x.CosemAttributeDescriptorWithSelection(item)
            for item in items
        )
        invoke = self._next_invoke(peek=True)
        encoded = x.GetRequestWithList(invoke, listed).encode()
        if len(encoded) > self.max_request_size:
            raise ProtocolError(
                f"GET with-list of {len(listed)} attributes is {len(encoded)} bytes, the meter accepts "
                f"{self.max_request_size}: split the list (max_request_size)"
            )
        self._next_invoke()
        return self._start(_Pending(PendingKind.GET_LIST, invoke, None, len(listed)), encoded)

    def set(
        self,
        descriptor: x.CosemAttributeDescriptor,
        value: Any,
        access: x.SelectiveAccess | None = None,
    ) -> bytes:
        """SET-Request-Normal, or its datablocks when it does not fit the meter's PDU size."""
        self._require("request")
        request = x.SetRequestNormal(self._next_invoke(peek=True), descriptor, value, access)
        blocks = x.split_set_request(request, self.max_request_size)
        return self._start_blocks(PendingKind.SET, descriptor, blocks, Conformance.BLOCK_TRANSFER_WITH_SET_OR_WRITE)

    def action(self, descriptor: x.CosemMethodDescriptor, parameters: Any = x.OMITTED) -> bytes:
        """ACTION-Request-Normal, or its pblocks when the parameters are too long."""
        self._require("request")
        request = x.ActionRequestNormal(self._next_invoke(peek=True), descriptor, parameters)
        blocks = x.split_action_request(request, self.max_request_size)
        return self._start_blocks(PendingKind.ACTION, descriptor, blocks, Conformance.BLOCK_TRANSFER_WITH_ACTION)

    def _start_blocks(
        self, kind: PendingKind, descriptor: Any, blocks: list[Any], needed: Conformance
    ) -> bytes:
        if len(blocks) > 1 and (self.conformance is None or needed not in self.conformance):
            raise ProtocolError(
                f"{kind.upper()} of {descriptor.describe()} needs {len(blocks)} blocks of "
                f"{self.max_request_size} bytes, but the meter did not grant "
                f"{needed.standard_names[0]} (conformance)"
            )
        invoke = self._next_invoke()
        pending = _Pending(kind, invoke, descriptor, blocks_to_send=blocks[1:], last_block_sent=1)
        return self._start(pending, blocks[0].encode())

    def release(self) -> bytes:
        """RLRQ; a ciphered association carries a glo-initiate-request in it (Green Book 9.3.4)."""
        self._require("release")
        information = None
        if self.settings.ciphered_context:
            s = self.settings
            information = self._protect(
                x.InitiateRequest(s.conformance, s.max_receive_pdu_size).encode(), Form.GLO
            )
        self.state = ClientState.AWAITING_RLRE
        return RLRQ(acse.ReleaseRequestReason.NORMAL, information).encode()

    def abort(self) -> None:
        """Forget the association (link lost, time-out): the next step is associate()."""
        self.state = ClientState.IDLE
        self._pending = None

    def abandon_request(self) -> None:
        """Give up the request in flight (its answer did not decode): the association stays
        usable, and a late answer to it is refused by its invoke-id."""
        if self.state is ClientState.AWAITING_RESPONSE:
            self._finish()

    @property
    def max_request_size(self) -> int:
        """Largest plain APDU the meter accepts once protection is added."""
        size = self.server_max_receive_pdu_size or 0xFFFF
        return size - (CIPHERING_OVERHEAD[self._form] if self._sc.protected else 0)

    # --- received APDUs ---------------------------------------------------------------------

    def receive_apdu(self, apdu: bytes | bytearray | memoryview) -> ClientEvent:
        """Consume one APDU from the meter and return one event (or raise)."""
        apdu = bytes(apdu)
        if not apdu:
            raise ProtocolError("empty APDU received")
        if self.state is ClientState.AWAITING_AARE:
            return self._on_aare(apdu)
        if self.state is ClientState.AWAITING_RLRE and apdu[0] == RLRE.TAG:
            return self._on_rlre(apdu)
        plain, ciphered = self._open(apdu)
        try:
            decoded = x.decode_apdu(plain)
        except DecodeError as error:  # the request stays in flight: see abandon_request
            raise MalformedAnswerError(str(error), plain) from None
        if isinstance(decoded, (x.DataNotification, x.EventNotificationRequest)):
            return Notification(decoded, ciphered)
        if self.state is ClientState.AWAITING_PASS4:
            return self._on_pass4(decoded, ciphered)
        if self.state is not ClientState.AWAITING_RESPONSE or self._pending is None:
            raise ProtocolError(
                f"{decoded.NAME} received in state {self.state.value}: no request is waiting for it"
            )
        if self._sc.protected and not ciphered and not isinstance(decoded, PLAIN_REFUSALS):
            raise SecurityError(
                f"the meter answered {decoded.NAME} without protection although the association uses "
                f"security {self.settings.security}: refused, nothing from it is used"
            )
        if not isinstance(decoded, PLAIN_REFUSALS):
            self._check_invoke(decoded, self._pending)  # a stray answer leaves the request waiting
        try:
            event = self._on_response(decoded)
        except (ServiceError, ProtocolError):
            self._finish()
            raise
        if not isinstance(event, SendApdu):
            self._finish()
        return event

    # --- association ------------------------------------------------------------------------

    def _on_aare(self, apdu: bytes) -> SendApdu | Associated:
        if apdu[0] != AARE.TAG:
            self.state = ClientState.IDLE
            if apdu[0] in (x.ExceptionResponse.TAG, x.ConfirmedServiceError.TAG):
                refusal = x.decode_apdu(apdu)
                if isinstance(refusal, PLAIN_REFUSALS):
                    raise refusal.to_error()
            raise ProtocolError(f"AARE (0x61) expected after AARQ, got tag 0x{apdu[0]:02x}")
        try:
            aare = AARE.decode(apdu)
        except Exception:
            self.state = ClientState.IDLE
            raise
        if not aare.accepted:
            self.state = ClientState.IDLE
            detail, reason = self._initiate_error(aare.user_information)
            message = f"the meter refused the association: {aare.describe()}" + (
                f"; {detail}" if detail else ""
            )
            raise AssociationError(message, reason)
        mechanism = self.settings.mechanism
        try:
            self._take_aare(aare, mechanism)
        except Exception:
            self.state = ClientState.IDLE
            raise
        if mechanism not in HLS_MECHANISMS:
            self.state = ClientState.ASSOCIATED
            return self._associated()
        self.state = ClientState.AWAITING_PASS4
        return SendApdu(self._pass3(), "HLS pass 3 (reply_to_HLS_authentication)")

    def _take_aare(self, aare: AARE, mechanism: MechanismName | None) -> None:
        needs_title = self._sc.protected or mechanism in HLS_MECHANISMS
        if needs_title:
            self.server_system_title = SystemTitle(
                aare.responding_ap_title or b"",
                what="AARE responding-AP-title (the meter system title, needed for ciphering/HLS)",
                error=ProtocolError,
            )
        if aare.user_information is None:
            raise ProtocolError(
                "accepted AARE without user-information: the InitiateResponse is missing"
            )
        plain, _ = self._open(aare.user_information)
        response = x.decode_apdu(plain)
        if isinstance(response, x.ConfirmedServiceError):
            raise AssociationError(
                f"the meter refused the xDLMS context: {response.describe()}",
                AssociationRefusal.XDLMS_CONTEXT_REFUSED,
            )
        if not isinstance(response, x.InitiateResponse):
            raise ProtocolError(
                f"AARE user-information holds {response.NAME}, expected an InitiateResponse"
            )
        self.conformance = response.negotiated_conformance & self.settings.conformance
        self.server_max_receive_pdu_size = response.server_max_receive_pdu_size
        self.negotiated_dlms_version = response.negotiated_dlms_version_number
        if mechanism in HLS_MECHANISMS:
            if aare.responding_authentication_value is None:
                raise ProtocolError(
                    "AARE for HLS without responding-authentication-value (the meter challenge StoC)"
                )
            self._stoc = check_challenge(
                aare.responding_authentication_value.value.reveal(), "meter challenge (StoC)"
            )

    def _initiate_error(self, information: bytes | None) -> tuple[str, AssociationRefusal]:
        """The detail of a refused AARE's user-information and the refusal it tells."""
        if not information:
            return "", AssociationRefusal.REJECTED
        try:
            plain, _ = self._open(information)
            response = x.decode_apdu(plain)
        except DlmsError as exc:  # the refusal itself is the news; say why its detail is unreadable
            return f"user-information unreadable ({exc})", AssociationRefusal.REJECTED
        if not isinstance(response, x.ConfirmedServiceError):
            return "", AssociationRefusal.REJECTED
        deciphering = response.error_name == AssociationRefusal.DECIPHERING_ERROR
        reason = AssociationRefusal.DECIPHERING_ERROR if deciphering else AssociationRefusal.REJECTED
        return response.describe(), reason

    def _pass3(self) -> bytes:
        """f(StoC) in ACTION 15/0.0.40.0.0.255/1 (Green Book 9.2.7.4); IC order of the trace."""
        s = self.settings
        reply = hls_reply(s, self._stoc, self._ctos, self.server_system_title, self._next_ic)
        invoke = self._next_invoke()
        method = s.hls_method
        self._pending = _Pending(PendingKind.PASS3, invoke, method)
        plain = x.ActionRequestNormal(invoke, method, axdr.OctetString(reply)).encode()
        if s.pass3_signing is Pass3Signing.ALWAYS:
            self.pass3_signed = True
            return build_signed_pass3(
                plain,
                client_system_title=required(s.system_title, "the client system title"),
                server_system_title=required(self.server_system_title, "the meter system title"),
                signing_key=required(s.signing_key, "the client signing key"),
                keys=CipherKeys(ek=s.ek, ak=s.ak),
                invocation_counter=spend_invocation_counter(self._next_ic),
                suite=s.suite,
            )
        return self._protect(plain, Form.GLO) if self._sc.protected else plain

    def _on_pass4(self, decoded: Any, ciphered: bool) -> Associated:
        pending = self._pending
        assert pending is not None
        if isinstance(decoded, x.ExceptionResponse):
            self.abort()
            refused = (decoded.state_error, decoded.service_error) == (
                StateError.SERVICE_NOT_ALLOWED,
                ExceptionServiceError.OPERATION_NOT_POSSIBLE,
            )
            if refused and not self.pass3_signed:
                raise Pass3SigningRequired(
                    "the meter refused HLS pass 3 with ExceptionResponse ServiceNotAllowed/OperationNotPossible: "
                    "it wants pass 3 signed (general-signing); retry with pass3_signing: always "
                    "(needs the client signing key whose certificate the meter knows)",
                    decoded.state_error.standard_name,
                    decoded.service_error.standard_name,
                )
            if refused:
                title = self.settings.system_title.hex().upper() if self.settings.system_title else "?"
                raise SignatureError(
                    "the meter refused the signed HLS pass 3 (ServiceNotAllowed/OperationNotPossible): "
                    f"it does not accept the signature of client {title}. Is the client certificate "
                    "imported into the meter (dlms-edge keys meter-import-cert)? Does client.key.pem "
                    "belong to that certificate, and is the client system_title the one in it?"
                )
            raise decoded.to_error()
        if isinstance(decoded, x.ConfirmedServiceError):
            self.abort()
            raise decoded.to_error()
        if self._sc.protected and not ciphered:
            self.abort()
            raise SecurityError(
                "the meter answered HLS pass 3 without protection in a ciphered association: refused"
            )
        if not isinstance(decoded, x.ActionResponseNormal):
            self.abort()
            raise ProtocolError(f"HLS pass 4: action-response-normal expected, got {decoded.NAME}")
        self._check_invoke(decoded, pending)
        response = decoded.single_response
        if response.result != x.ActionResult.SUCCESS or not isinstance(
            response.return_parameters, bytes
        ):
            self.abort()
            raise AssociationError(
                f"the meter did not accept HLS pass 3 (action-result {response.result.standard_name}): "
                "wrong AK/EK, client system title, or the meter wants another invocation counter",
                AssociationRefusal.PASS3_NOT_ACCEPTED,
            )
        try:
            verify_hls_reply(
                self.settings,
                bytes(response.return_parameters),
                self._ctos,
                self._stoc,
                self.server_system_title,
            )
        except Exception:
            self.abort()
            raise
        self._pending = None
        self.state = ClientState.ASSOCIATED
        return self._associated()

    def _associated(self) -> Associated:
        if self.settings.dedicated_key is not None:
            self._form = (
                Form.DED
            )  # Green Book 9.2.3.3: the dedicated key ciphers the association's APDUs
        assert self.conformance is not None, "set from the AARE before any association"
        return Associated(
            conformance=self.conformance,
            server_max_receive_pdu_size=self.server_max_receive_pdu_size,
            negotiated_dlms_version=self.negotiated_dlms_version,
            server_system_title=self.server_system_title,
            authentication=self.settings.authentication,
            pass3_signed=self.pass3_signed,
        )

    def _on_rlre(self, apdu: bytes) -> Released:
        rlre = RLRE.decode(apdu)
        if rlre.user_information:
            self._open(rlre.user_information)  # authenticate it (and advance the replay guard)
        self.state = ClientState.RELEASED
        self._pending = None
        self._form = Form.GENERAL_GLO if self.settings.general_glo_ciphering else Form.GLO
        return Released(rlre.reason.standard_name if rlre.reason is not None else None)

    # --- responses to data requests ----------------------------------------------------------

    def _on_response(self, decoded: Any) -> ClientEvent:
        pending = self._pending
        assert pending is not None
        if isinstance(decoded, PLAIN_REFUSALS):
            raise decoded.to_error()
        handler = _RESPONSE_HANDLERS.get(type(decoded))
        if handler is None or pending.kind not in handler[0]:
            raise ProtocolError(
                f"{decoded.NAME} does not answer the {pending.kind} request in flight"
            )
        return handler[1](self, decoded, pending)

    def _get_normal(self, response: x.GetResponseNormal, pending: _Pending) -> GetResult:
        return GetResult(pending.invoke_id, (response.result,))

    def _get_list(self, response: x.GetResponseWithList, pending: _Pending) -> GetResult:
        if len(response.results) != pending.count:
            raise ProtocolError(
                f"GET with-list: {pending.count} attributes asked, {len(response.results)} results received"
            )
        return GetResult(pending.invoke_id, response.results)

    def _get_block(
        self, response: x.GetResponseWithDatablock, pending: _Pending
    ) -> SendApdu | GetResult:
        if pending.reassembler is None:
            pending.reassembler = x.GetBlockReassembler(
                pending.invoke_id_and_priority, pending.descriptor
            )
        following = pending.reassembler.feed(response)
        if following is not None:
            return SendApdu(
                self._protect(following.encode()),
                f"GET-Request-Next after block {following.block_number}",
            )
        blocks = pending.reassembler.blocks
        if pending.kind is PendingKind.GET:
            return GetResult(
                pending.invoke_id, (pending.reassembler.data(),), blocks
            )
        results = pending.reassembler.results()
        if len(results) != pending.count:
            raise ProtocolError(
                f"GET with-list: {pending.count} attributes asked, {len(results)} results received"
            )
        return GetResult(pending.invoke_id, results, blocks)

    def _next_block(self, block_number: int, pending: _Pending, what: str) -> SendApdu:
        if block_number != pending.last_block_sent or not pending.blocks_to_send:
            raise ProtocolError(
                f"{what}: the meter acknowledged block {block_number}, block {pending.last_block_sent} was sent"
                + ("" if pending.blocks_to_send else " and it was the last one")
            )
        request = pending.blocks_to_send.pop(0)
        pending.last_block_sent += 1
        return SendApdu(self._protect(request.encode()), f"{what} block {pending.last_block_sent}")

    def _set_block_ack(self, response: x.SetResponseDatablock, pending: _Pending) -> SendApdu:
        return self._next_block(response.block_number, pending, "SET")

    def _set_result(self, response: Any, pending: _Pending) -> SetResult:
        if pending.blocks_to_send:
            raise ProtocolError(
                f"SET: the meter answered before the last of the blocks ({len(pending.blocks_to_send)} unsent)"
            )
        return SetResult(pending.invoke_id, (response.result,))

    def _action_block_ack(
        self, response: x.ActionResponseNextPblock, pending: _Pending
    ) -> SendApdu:
        return self._next_block(response.block_number, pending, "ACTION")

    def _action_result(self, response: x.ActionResponseNormal, pending: _Pending) -> ActionResult:
        single = response.single_response
        data = None if single.return_parameters is x.OMITTED else single.return_parameters
        return ActionResult(pending.invoke_id, single.result, data)

    def _action_response_block(
        self, response: x.ActionResponseWithPblock, pending: _Pending
    ) -> SendApdu | ActionResult:
        """Long return parameters come in pblocks; ask for each next one (Green Book 9.3.9)."""
        if pending.response_blocks is None:
            pending.response_blocks = x.BlockAssembler("ACTION response block transfer")
        block = response.pblock
        if not pending.response_blocks.add(block.block_number, block.last_block, block.raw_data):
            following = x.ActionRequestNextPblock(
                pending.invoke_id_and_priority, block.block_number
            )
            return SendApdu(
                self._protect(following.encode()),
                f"ACTION-Request-Next-Pblock after block {block.block_number}",
            )
        payload = pending.response_blocks.payload
        single, end = x.ActionResponseWithOptionalData.read(payload, 0)
        if end != len(payload):
            raise ProtocolError(f"ACTION response blocks: {len(payload) - end} bytes after the response")
        data = None if single.return_parameters is x.OMITTED else single.return_parameters
        return ActionResult(pending.invoke_id, single.result, data)

    # --- plumbing ---------------------------------------------------------------------------

    def _require(self, action: str) -> None:
        if self.state not in _ALLOWED[action]:
            waiting = (
                f" (invoke-id {self._pending.invoke_id} in flight)"
                if self._pending
                else ""
            )
            raise ProtocolError(f"cannot {action} in state {self.state.value}{waiting}")

    def _next_invoke(self, peek: bool = False) -> int:
        invoke = self._invoke_id
        if not peek:
            self._invoke_id = (invoke + 1) & INVOKE_ID_MASK  # 4 bits (Green Book 9.5)
        return x.invoke_id_and_priority(invoke, high_priority=self.settings.high_priority)

    def _check_invoke(self, response: Any, pending: _Pending) -> None:
        if (
            self.settings.check_invoke_id
            and not response.answers(pending.invoke_id_and_priority)
        ):
            raise StaleAnswerError(
                f"{response.NAME} carries invoke-id {response.invoke_id}, the request in flight has "
                f"{pending.invoke_id}: a late or foreign answer, ignored"
            )

    def _start(self, pending: _Pending, plain: bytes) -> bytes:
        self._pending = pending
        self.state = ClientState.AWAITING_RESPONSE
        return self._protect(plain)

    def _finish(self) -> None:
        self._pending = None
        if self.state is ClientState.AWAITING_RESPONSE:
            self.state = ClientState.ASSOCIATED

    def _protect(self, plain: bytes, form: Form | None = None) -> bytes:
        if not self._sc.protected:
            return plain
        return protect(
            plain,
            sc=self._sc,
            keys=self._keys,
            system_title=required(self.settings.system_title, "the client system title"),
            invocation_counter=spend_invocation_counter(self._next_ic),
            form=form or self._form,
        )

    def _open(self, apdu: bytes) -> tuple[bytes, bool]:
        """Verify and remove protection (tag, signature, replay guard); plain APDUs pass."""
        if apdu[0] != GENERAL_SIGNING and not is_ciphered(apdu[0]):
            return apdu, False
        signers: dict[bytes, PublicKeyOrCertificate] = {}
        if self.server_system_title is not None and self.settings.server_public_key is not None:
            signers[self.server_system_title] = self.settings.server_public_key
        peeled = peel(
            apdu,
            keys=self._keys,
            system_title=self.server_system_title,
            signers=signers,
            guard=self.guard,
        )
        for layer in peeled.layers:
            sender = getattr(layer, "system_title", None) or getattr(
                layer, "originator_system_title", None
            )
            if self.server_system_title is not None and sender != self.server_system_title:
                raise SecurityError(
                    f"protected APDU from system title {sender.hex().upper() if sender else '?'}, the meter of this "
                    f"association is {self.server_system_title.hex().upper()}: refused"
                )
        return peeled.plaintext, True


# response class -> (kinds of request it may answer, handler)
_GETS = frozenset({PendingKind.GET, PendingKind.GET_LIST})
_SETS = frozenset({PendingKind.SET})
_ACTIONS = frozenset({PendingKind.ACTION})
_RESPONSE_HANDLERS: dict[type, tuple[frozenset[PendingKind], Callable[..., ClientEvent]]] = {
    x.GetResponseNormal: (frozenset({PendingKind.GET}), ClientSession._get_normal),
    x.GetResponseWithList: (frozenset({PendingKind.GET_LIST}), ClientSession._get_list),
    x.GetResponseWithDatablock: (_GETS, ClientSession._get_block),
    x.SetResponseNormal: (_SETS, ClientSession._set_result),
    x.SetResponseDatablock: (_SETS, ClientSession._set_block_ack),
    x.SetResponseLastDatablock: (_SETS, ClientSession._set_result),
    x.ActionResponseNormal: (_ACTIONS, ClientSession._action_result),
    x.ActionResponseNextPblock: (_ACTIONS, ClientSession._action_block_ack),
    x.ActionResponseWithPblock: (_ACTIONS, ClientSession._action_response_block),
}
