"""The server (meter) side of DLMS/COSEM application associations, sans-IO.

Green Book 9.3/9.4 seen from the meter: check the AARQ (application context, mechanism,
password or challenge, the possibly ciphered InitiateRequest) and answer an AARE with the
diagnostics a real meter gives; for HLS verify pass 3 and answer pass 4; then unprotect
each request (tag and replay checks), hand the plain APDU to the object model
(``handler``), and protect its answer with the meter's invocation counter.

One :class:`ServerSession` serves one client connection (one client SAP, told by the link
layer). What must outlive a connection -- the received-counter guard and the log of every
client invocation counter -- lives in a :class:`CounterLog` the caller shares.

Quirk ``require_signed_pass3`` (per client SAP): the Sagemcom T-210D behaviour (trace in
tests/dlms/t210d_pass3_trace.json) -- an unsigned pass 3 is refused with ExceptionResponse
service-not-allowed / operation-not-possible, a pass 3 in general-signing is accepted only with a valid
signature of a client key the meter knows.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from edge_agent.dlms import apdu as x
from edge_agent.dlms.apdu.acse import (
    AARE,
    AARQ,
    RLRE,
    RLRQ,
    AcseServiceUser,
    AssociationResult,
    AuthenticationValue,
    MechanismName,
    ReleaseResponseReason,
)
from edge_agent.dlms.apdu.base import Omitted
from edge_agent.dlms.apdu.conformance import Conformance
from edge_agent.dlms.apdu.results import ConfirmedService, ServiceErrorKind, StateError
from edge_agent.dlms.apdu.results import ExceptionServiceError as ESE
from edge_agent.dlms.association.settings import (
    CIPHERING_OVERHEAD,
    CONTEXTS,
    HLS_MECHANISMS,
    HLS_METHOD,
    Authentication,
    required,
    spend_invocation_counter,
)
from edge_agent.dlms.encoding import axdr
from edge_agent.dlms.errors import ConfigError, DecodeError, DlmsError, ReplayError, SecurityError
from edge_agent.dlms.secret import Secret
from edge_agent.dlms.security import (
    CipheredApdu,
    CipherKeys,
    Form,
    GeneralSigning,
    ReceiveCounterGuard,
    SecurityControl,
    SecurityPolicy,
    crypto,
    protect,
    unprotect,
    verify,
)
from edge_agent.dlms.security.hls import (
    check_password,
    ecdsa_response,
    gmac_response,
    verify_ecdsa_response,
    verify_gmac_response,
)
from edge_agent.dlms.security.signing import PublicKeyOrCertificate, public_key_of
from edge_agent.dlms.security.tags import CIPHERED, GENERAL_SIGNING, is_ciphered
from edge_agent.dlms.system_title import SystemTitle

#: What the simulated meter grants at most (Green Book 9.4.6.1); intersected with the proposal.
SERVER_CONFORMANCE = (
    Conformance.BLOCK_TRANSFER_WITH_GET_OR_READ
    | Conformance.MULTIPLE_REFERENCES
    | Conformance.SELECTIVE_ACCESS
    | Conformance.GET
    | Conformance.SET
    | Conformance.ACTION
    | Conformance.ATTRIBUTE0_SUPPORTED_WITH_GET
    | Conformance.PRIORITY_MGMT_SUPPORTED
    | Conformance.DATA_NOTIFICATION
    | Conformance.EVENT_NOTIFICATION
    | Conformance.GENERAL_PROTECTION
)
MIN_CLIENT_PDU_SIZE = 12  # below this not even an ExceptionResponse with a counter fits

REFUSED_UNSIGNED_PASS3 = x.ExceptionResponse(
    StateError.SERVICE_NOT_ALLOWED, ESE.OPERATION_NOT_POSSIBLE
)
NOT_ALLOWED = REFUSED_UNSIGNED_PASS3
DECIPHERING_ERROR = x.ExceptionResponse(StateError.SERVICE_NOT_ALLOWED, ESE.DECIPHERING_ERROR)
UNKNOWN_SERVICE = x.ExceptionResponse(StateError.SERVICE_UNKNOWN, ESE.SERVICE_NOT_SUPPORTED)

# ConfirmedServiceError(initiate-error, ...) values: index in the Green Book ENUMERATED.
_INITIATE = {"dlms-version-too-low": 1, "incompatible-conformance": 2, "pdu-size-too-short": 3}
_DECIPHERING = (
    ServiceErrorKind.APPLICATION_REFERENCE,
    6,
)  # application-reference/deciphering-error


# --- settings -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ClientAccess:
    """How one client SAP may associate (what the meter's Association LN object fixes)."""

    sap: int
    security: SecurityPolicy = SecurityPolicy.NONE  # or its spelling, "authenc"
    authentication: Authentication = Authentication.NONE  # or its spelling, "hls-gmac"
    password: Secret | None = None
    conformance: Conformance = SERVER_CONFORMANCE
    require_signed_pass3: bool = False

    def __post_init__(self) -> None:
        policy = SecurityPolicy.parse(self.security, f"client {self.sap}: security")
        object.__setattr__(self, "security", policy)
        authentication = Authentication.parse(
            self.authentication, f"client {self.sap}: authentication"
        )
        object.__setattr__(self, "authentication", authentication)
        if authentication is Authentication.LOW and self.password is None:
            raise ConfigError(f"client {self.sap}: LLS needs a password")

    @property
    def mechanism(self) -> MechanismName | None:
        return self.authentication.mechanism


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """The meter: its identity and keys, and the client SAPs it serves."""

    system_title: bytes
    clients: Mapping[int, ClientAccess]
    suite: int = 0
    ek: Secret | None = None
    ak: Secret | None = None
    signing_key: crypto.ec.EllipticCurvePrivateKey | None = None  # HLS-7 f(CtoS)
    #: client system title -> certificate or public key (imported certificates); may be a
    #: live dict the simulator updates when a certificate is imported.
    client_public_keys: Mapping[bytes, PublicKeyOrCertificate] = field(default_factory=dict)
    max_receive_pdu_size: int = 1024

    def __post_init__(self) -> None:
        title = SystemTitle(self.system_title, what="meter system title", error=ConfigError)
        object.__setattr__(self, "system_title", title)
        SecurityControl(self.suite)


@dataclass(frozen=True, slots=True)
class AssociationFacts:
    """What the object model needs to know of the association (``make_context`` input)."""

    client_sap: int
    conformance: Conformance
    max_pdu_size: int  # the client's max receive PDU size, minus what protection adds
    server_max_receive_pdu_size: int
    mechanism_id: int
    context_id: int
    dlms_version: int
    authenticated: bool
    session: ServerSession


@dataclass(frozen=True, slots=True)
class ReceivedCounter:
    """One invocation counter a client used, as the meter saw it."""

    system_title: bytes
    invocation_counter: int
    where: str  # "glo-initiate-request", "f(StoC)", "glo-get-request", ...
    accepted: bool


class CounterLog:
    """Receive guard and the log of client invocation counters, across associations."""

    def __init__(self, guard: ReceiveCounterGuard | None = None) -> None:
        self.guard = guard if guard is not None else ReceiveCounterGuard()
        self.received: list[ReceivedCounter] = []
        self._seen: set[tuple[bytes, int]] = set()

    def record(
        self, system_title: bytes, invocation_counter: int, where: str, accepted: bool = True
    ) -> None:
        self.received.append(
            ReceivedCounter(bytes(system_title), invocation_counter, where, accepted)
        )
        if accepted:
            self._seen.add((bytes(system_title), invocation_counter))

    def seen(self, system_title: bytes, invocation_counter: int) -> bool:
        return (bytes(system_title), invocation_counter) in self._seen

    @property
    def refused(self) -> list[ReceivedCounter]:
        return [entry for entry in self.received if not entry.accepted]


class ServerState(Enum):
    IDLE = "idle"
    AWAITING_PASS3 = "awaiting-pass-3"
    ASSOCIATED = "associated"


Handler = Callable[[Any, Any], Any]  # (plain request APDU, context) -> response APDU


class ServerSession:
    """One client connection to the meter; feed APDUs, send back what it returns."""

    def __init__(
        self,
        settings: ServerSettings,
        client_sap: int,
        *,
        handler: Handler,
        make_context: Callable[[AssociationFacts], Any],
        next_invocation_counter: Callable[[], int],
        next_challenge: Callable[[], bytes],
        counters: CounterLog | None = None,
    ) -> None:
        self.settings = settings
        self.client_sap = client_sap
        self._handler = handler
        self._make_context = make_context
        self._next_ic = next_invocation_counter
        self._next_challenge = next_challenge
        self.counters = counters if counters is not None else CounterLog()
        self._reset()

    def _reset(self) -> None:
        self.state = ServerState.IDLE
        self.client_system_title: bytes | None = None
        self.pass3_signed = False
        self.context: Any = None
        self._access: ClientAccess | None = None
        self._keys = CipherKeys(ek=self.settings.ek, ak=self.settings.ak)
        self._sc = SecurityControl(self.settings.suite)
        self._ctos = self._stoc = b""
        self._pass3_floor: int | None = None
        self._facts: AssociationFacts | None = None

    # --- entry point ------------------------------------------------------------------------

    def receive_apdu(self, apdu: bytes | bytearray | memoryview) -> bytes | None:
        """The response APDU to ``apdu`` (None: nothing to answer)."""
        apdu = bytes(apdu)
        if not apdu:
            return None
        if apdu[0] == AARQ.TAG:
            return self._on_aarq(apdu)
        if apdu[0] == RLRQ.TAG:
            return self._on_rlrq(apdu)
        if self.state is ServerState.IDLE:
            return NOT_ALLOWED.encode()  # no association: every xDLMS service is refused
        try:
            plain, form, where = self._open(apdu)
        except ReplayError:
            last = self.counters.guard.last(self.client_system_title or b"", "ek") or 0
            return x.ExceptionResponse(
                StateError.SERVICE_NOT_ALLOWED, ESE.INVOCATION_COUNTER_ERROR, last + 1
            ).encode()
        except SecurityError:
            return DECIPHERING_ERROR.encode()
        except DlmsError:
            return UNKNOWN_SERVICE.encode()
        if self.state is ServerState.AWAITING_PASS3:
            return self._on_pass3(plain, form, where)
        if self._sc.protected and form is None:
            return NOT_ALLOWED.encode()  # the policy asks for protection (Green Book 9.2.7.2)
        try:
            request = x.decode_apdu(plain)
        except DlmsError:
            return UNKNOWN_SERVICE.encode()
        response = self._handler(request, self.context)
        return self._seal(response.encode(), form)

    # --- AARQ / AARE ------------------------------------------------------------------------

    def _on_aarq(self, apdu: bytes) -> bytes:
        self._reset()
        try:
            aarq = AARQ.decode(apdu)
        except DlmsError:
            return self._aare_refusal(AcseServiceUser.NO_REASON_GIVEN)
        access = self.settings.clients.get(self.client_sap)
        if access is None:
            return self._aare_refusal(AcseServiceUser.NO_REASON_GIVEN)
        self._access = access
        self._sc = SecurityControl.of(self.settings.suite, access.security)
        ciphered = self._sc.protected
        if aarq.application_context_name is not CONTEXTS[ciphered]:
            return self._aare_refusal(AcseServiceUser.APPLICATION_CONTEXT_NAME_NOT_SUPPORTED)
        mechanism = access.mechanism
        if mechanism is not None and aarq.mechanism_name is None:
            return self._aare_refusal(AcseServiceUser.AUTHENTICATION_MECHANISM_NAME_REQUIRED)
        if aarq.mechanism_name is not mechanism:
            return self._aare_refusal(AcseServiceUser.AUTHENTICATION_MECHANISM_NAME_NOT_RECOGNISED)
        if ciphered or mechanism in HLS_MECHANISMS:
            try:
                self.client_system_title = SystemTitle(aarq.calling_ap_title or b"")
            except DecodeError:
                return self._aare_refusal(AcseServiceUser.CALLING_AP_TITLE_NOT_RECOGNIZED)
        value = aarq.calling_authentication_value
        if mechanism is None:
            return self._initiate(aarq, access)
        if value is None:
            return self._aare_refusal(AcseServiceUser.AUTHENTICATION_REQUIRED)
        if mechanism is MechanismName.LOW:
            try:
                check_password(required(access.password, "the LLS password"), value.value.reveal())
            except SecurityError:
                return self._aare_refusal(AcseServiceUser.AUTHENTICATION_FAILURE)
        if mechanism in HLS_MECHANISMS:
            self._ctos = value.value.reveal()
            if not 8 <= len(self._ctos) <= 64:
                return self._aare_refusal(AcseServiceUser.AUTHENTICATION_FAILURE)
        return self._initiate(aarq, access)

    def _initiate(self, aarq: AARQ, access: ClientAccess) -> bytes:
        information = aarq.user_information
        if not information:
            return self._aare_refusal(AcseServiceUser.NO_REASON_GIVEN)
        if self._sc.protected and not is_ciphered(information[0]):
            return self._aare_refusal(AcseServiceUser.NO_REASON_GIVEN, _DECIPHERING)
        try:
            plain, _, _ = self._open(information)
            request = x.decode_apdu(plain)
        except SecurityError:
            return self._aare_refusal(AcseServiceUser.NO_REASON_GIVEN, _DECIPHERING)
        except DlmsError:
            return self._aare_refusal(AcseServiceUser.NO_REASON_GIVEN)
        if not isinstance(request, x.InitiateRequest):
            return self._aare_refusal(AcseServiceUser.NO_REASON_GIVEN)
        if request.proposed_dlms_version_number < 6:
            return self._aare_refusal(
                AcseServiceUser.NO_REASON_GIVEN,
                (ServiceErrorKind.INITIATE, _INITIATE["dlms-version-too-low"]),
            )
        conformance = request.proposed_conformance & access.conformance
        if not conformance:
            return self._aare_refusal(
                AcseServiceUser.NO_REASON_GIVEN,
                (ServiceErrorKind.INITIATE, _INITIATE["incompatible-conformance"]),
            )
        if (
            request.client_max_receive_pdu_size
            and request.client_max_receive_pdu_size < MIN_CLIENT_PDU_SIZE
        ):
            return self._aare_refusal(
                AcseServiceUser.NO_REASON_GIVEN,
                (ServiceErrorKind.INITIATE, _INITIATE["pdu-size-too-short"]),
            )
        if request.dedicated_key is not None:
            self._keys = dataclasses.replace(self._keys, dedicated_ek=request.dedicated_key)
        mechanism = access.mechanism
        hls = mechanism in HLS_MECHANISMS
        # 0 in client-max-receive-pdu-size means "no limit" (Green Book 9.4.6.2).
        client_size = request.client_max_receive_pdu_size or 0xFFFF
        overhead = CIPHERING_OVERHEAD[Form.GENERAL_GLO] if self._sc.protected else 0
        self._facts = AssociationFacts(
            client_sap=self.client_sap,
            conformance=conformance,
            max_pdu_size=client_size - overhead,
            server_max_receive_pdu_size=self.settings.max_receive_pdu_size,
            mechanism_id=int(mechanism) if mechanism is not None else 0,
            context_id=int(CONTEXTS[self._sc.protected]),
            dlms_version=6,
            authenticated=not hls,
            session=self,
        )
        self.context = self._make_context(self._facts)
        response = x.InitiateResponse(conformance, self.settings.max_receive_pdu_size).encode()
        if self._sc.protected:
            response = self._protect(response, Form.GLO)  # glo-initiate-response (0x28)
        value = None
        if hls:
            self._pass3_floor = self.counters.guard.last(self.client_system_title or b"", "ek")
            self._stoc = bytes(self._next_challenge())
            value = AuthenticationValue(Secret(self._stoc, "StoC"))
        titled = self._sc.protected or hls
        self.state = ServerState.AWAITING_PASS3 if hls else ServerState.ASSOCIATED
        return AARE(
            application_context_name=aarq.application_context_name,
            result=AssociationResult.ACCEPTED,
            result_source_diagnostic=AcseServiceUser.AUTHENTICATION_REQUIRED
            if hls
            else AcseServiceUser.NULL,
            responding_ap_title=self.settings.system_title if titled else None,
            responder_acse_requirements=mechanism is not None,
            mechanism_name=mechanism,
            responding_authentication_value=value,
            user_information=response,
        ).encode()

    def _aare_refusal(
        self, diagnostic: AcseServiceUser, service_error: tuple[ServiceErrorKind, int] | None = None
    ) -> bytes:
        self._reset()
        information = None
        if service_error is not None:
            information = x.ConfirmedServiceError(
                ConfirmedService.INITIATE_ERROR, *service_error
            ).encode()
        return AARE(
            result=AssociationResult.REJECTED_PERMANENT,
            result_source_diagnostic=diagnostic,
            user_information=information,
        ).encode()

    # --- HLS pass 3 / pass 4 ----------------------------------------------------------------

    def _on_pass3(self, plain: bytes, form: Form | None, where: str) -> bytes:
        access = self._access
        assert access is not None and self._facts is not None
        signed: GeneralSigning | None = None
        if plain[:1] == bytes((GENERAL_SIGNING,)):
            try:
                signed = GeneralSigning.from_bytes(plain)
                plain = self._verify_signature(signed)
            except DlmsError:
                self._reset()
                return NOT_ALLOWED.encode()
        if access.require_signed_pass3 and signed is None:
            self._reset()  # the T-210D answers in clear and drops the association
            return REFUSED_UNSIGNED_PASS3.encode()
        if self._sc.protected and form is None:
            self._reset()
            return NOT_ALLOWED.encode()
        try:
            request = x.decode_apdu(plain)
        except DlmsError:
            self._reset()
            return UNKNOWN_SERVICE.encode()
        if not isinstance(request, x.ActionRequestNormal) or request.descriptor != HLS_METHOD:
            return NOT_ALLOWED.encode()  # only reply_to_HLS_authentication before pass 4
        parameter = request.method_invocation_parameters
        result = x.ActionResult.READ_WRITE_DENIED
        returned: axdr.OctetString | Omitted = x.OMITTED
        if isinstance(parameter, bytes):
            try:
                returned = axdr.OctetString(self.reply_to_hls_authentication(bytes(parameter)))
                result = x.ActionResult.SUCCESS
            except DlmsError:
                returned = x.OMITTED
        if result is x.ActionResult.SUCCESS:
            self.pass3_signed = signed is not None
            self.state = ServerState.ASSOCIATED
            self._facts = dataclasses.replace(self._facts, authenticated=True)
            self.context = self._make_context(self._facts)
        response = x.ActionResponseNormal(
            request.invoke_id_and_priority, x.ActionResponseWithOptionalData(result, returned)
        ).encode()
        sealed = self._seal(response, form)
        if result is not x.ActionResult.SUCCESS:
            self._reset()
        return sealed

    def _verify_signature(self, signed: GeneralSigning) -> bytes:
        if signed.originator_system_title != self.client_system_title:
            raise SecurityError(
                "general-signing originator is not the calling AP title of the AARQ"
            )
        if signed.recipient_system_title not in (b"", self.settings.system_title):
            raise SecurityError("general-signing is addressed to another system title")
        signer = self.settings.client_public_keys.get(signed.originator_system_title)
        if signer is None:
            raise SecurityError("no certificate of this client system title was imported")
        return verify(signed, signer)

    def reply_to_hls_authentication(self, f_stoc: bytes) -> bytes:
        """Association LN method 1 (Green Book 9.2.7.4): check f(StoC), return f(CtoS)."""
        access, client = self._access, self.client_system_title
        assert access is not None and client is not None
        if access.mechanism is MechanismName.HIGH_GMAC:
            counter = verify_gmac_response(
                f_stoc, self._stoc, keys=self._keys, system_title=client, suite=self.settings.suite
            )
            # f(StoC) spends the counter before the outer APDU's (trace: 1426, then 1427), so it
            # is checked against the counter of the AARQ, not the one just accepted.
            floor = self._pass3_floor
            fresh = not self.counters.seen(client, counter) and (floor is None or counter > floor)
            self.counters.record(client, counter, "f(StoC)", fresh)
            if not fresh:
                raise ReplayError(f"f(StoC) reuses invocation counter {counter}")
            last = self.counters.guard.last(client, "ek")
            if last is None or counter > last:
                self.counters.guard.accept(client, "ek", counter)
            return gmac_response(
                self._ctos,
                keys=self._keys,
                system_title=self.settings.system_title,
                invocation_counter=spend_invocation_counter(self._next_ic),
                suite=self.settings.suite,
            )
        signer = self.settings.client_public_keys.get(client)
        if signer is None or self.settings.signing_key is None:
            raise SecurityError("HLS-7 needs the client's certificate and the meter signing key")
        verify_ecdsa_response(
            f_stoc,
            public_key_of(signer, "HLS-7 pass 3"),
            own_system_title=self.settings.system_title,
            peer_system_title=client,
            challenge_sent=self._stoc,
            challenge_received=self._ctos,
        )
        return ecdsa_response(
            self.settings.signing_key,
            own_system_title=self.settings.system_title,
            peer_system_title=client,
            challenge_received=self._ctos,
            challenge_sent=self._stoc,
        )

    # --- release ----------------------------------------------------------------------------

    def _on_rlrq(self, apdu: bytes) -> bytes:
        try:
            rlrq = RLRQ.decode(apdu)
            if rlrq.user_information and self.state is not ServerState.IDLE:
                self._open(rlrq.user_information)
        except DlmsError:
            rlrq = None
        information = None
        if self._sc.protected and self.state is not ServerState.IDLE and self._facts is not None:
            response = x.InitiateResponse(
                self._facts.conformance, self.settings.max_receive_pdu_size
            ).encode()
            information = self._protect(response, Form.GLO)
        self._reset()
        reason = ReleaseResponseReason.NORMAL if rlrq is not None else None
        return RLRE(reason, information).encode()

    # --- protection -------------------------------------------------------------------------

    def _open(self, apdu: bytes) -> tuple[bytes, Form | None, str]:
        """Unprotect a client APDU (replay-guarded, logged); plain APDUs pass unchanged."""
        if not is_ciphered(apdu[0]):
            return apdu, None, "plain"
        client = self.client_system_title
        name = CIPHERED[apdu[0]][1]
        try:
            opened = unprotect(apdu, self._keys, client, guard=self.counters.guard)
        except ReplayError:
            self._log_refused(apdu, name)
            raise
        if client is not None and opened.system_title != client:
            raise SecurityError(
                "ciphered APDU from another system title than the association's client"
            )
        if (opened.sc.authentication, opened.sc.encryption) != (
            self._sc.authentication,
            self._sc.encryption,
        ):
            raise SecurityError(
                f"{name} with {opened.sc.describe()} does not meet the policy {self._access.security if self._access else '?'}"
            )
        self.counters.record(opened.system_title, opened.invocation_counter, name)
        return opened.plaintext, opened.form, name

    def _log_refused(self, apdu: bytes, name: str) -> None:
        parsed, _ = CipheredApdu.decode(apdu, 0)
        sender = parsed.system_title or self.client_system_title or b""
        self.counters.record(sender, parsed.invocation_counter, name, accepted=False)

    def _protect(self, plain: bytes, form: Form) -> bytes:
        return protect(
            plain,
            sc=self._sc,
            keys=self._keys,
            system_title=self.settings.system_title,
            invocation_counter=spend_invocation_counter(self._next_ic),
            form=form,
        )

    def _seal(self, response: bytes, form: Form | None) -> bytes:
        """Answer in the form the request came in (glo, ded, general-glo), or in clear."""
        if form is None or not self._sc.protected:
            return response
        return self._protect(response, form)
