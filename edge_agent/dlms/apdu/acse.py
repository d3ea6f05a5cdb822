"""ACSE PDUs: AARQ, AARE, RLRQ, RLRE (ISO/IEC 8650-1 as profiled by Green Book 9.3 and 11.2).

They are BER-encoded SEQUENCEs of optional, context-tagged components. One table per PDU
maps each tag to its field and its codec, so encoding and decoding are the same walk over
data. ``user_information`` carries raw bytes (an InitiateRequest/-Response, plain or ciphered
by the security module): ACSE does not look inside.

Authentication values are ``Secret``: with LLS they are the password, and HLS challenges
are no business of a log line either.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, ClassVar, NamedTuple, Self, TypeVar

from edge_agent.dlms.apdu.results import StandardEnum, StrictEnum
from edge_agent.dlms.encoding import ber
from edge_agent.dlms.errors import DecodeError
from edge_agent.dlms.secret import Secret

# Green Book 9.4.2.2: {joint-iso-ccitt(2) country(16) country-name(756) identified-organization(5)
# DLMS-UA(8) application-context(1) | authentication-mechanism-name(2)}.
_DLMS_UA = (2, 16, 756, 5, 8)


class ApplicationContextName(StrictEnum):
    """Green Book 9.4.2.2.2: referencing (LN/SN) and whether ciphered APDUs are allowed."""

    LOGICAL_NAME = 1
    SHORT_NAME = 2
    LOGICAL_NAME_WITH_CIPHERING = 3
    SHORT_NAME_WITH_CIPHERING = 4


class MechanismName(StrictEnum):
    """Green Book 9.4.2.2.3: authentication mechanisms (security levels 0..7)."""

    NONE = 0  # lowest-level-security
    LOW = 1  # LLS: password
    HIGH = 2  # HLS manufacturer specific
    HIGH_MD5 = 3
    HIGH_SHA1 = 4
    HIGH_GMAC = 5  # HLS-5, suite 0/1
    HIGH_SHA256 = 6
    HIGH_ECDSA = 7  # HLS-7, suite 1/2


_Named = TypeVar("_Named", bound=StrictEnum)


def _oid_table(enum: type[_Named], arc: int) -> tuple[dict[_Named, bytes], dict[bytes, _Named]]:
    encoded = {member: ber.encode_oid((*_DLMS_UA, arc, int(member))) for member in enum}
    return encoded, {value: member for member, value in encoded.items()}


_CONTEXT_OID, _CONTEXT_BY_OID = _oid_table(ApplicationContextName, 1)
_MECHANISM_OID, _MECHANISM_BY_OID = _oid_table(MechanismName, 2)


class AssociationResult(StrictEnum):
    ACCEPTED = 0
    REJECTED_PERMANENT = 1
    REJECTED_TRANSIENT = 2


class AcseServiceUser(StandardEnum):
    """Result-source-diagnostic when the server's application (the meter) decided."""

    NULL = 0
    NO_REASON_GIVEN = 1
    APPLICATION_CONTEXT_NAME_NOT_SUPPORTED = 2
    CALLING_AP_TITLE_NOT_RECOGNIZED = 3
    CALLING_AP_INVOCATION_IDENTIFIER_NOT_RECOGNIZED = 4
    CALLING_AE_QUALIFIER_NOT_RECOGNIZED = 5
    CALLING_AE_INVOCATION_IDENTIFIER_NOT_RECOGNIZED = 6
    CALLED_AP_TITLE_NOT_RECOGNIZED = 7
    CALLED_AP_INVOCATION_IDENTIFIER_NOT_RECOGNIZED = 8
    CALLED_AE_QUALIFIER_NOT_RECOGNIZED = 9
    CALLED_AE_INVOCATION_IDENTIFIER_NOT_RECOGNIZED = 10
    AUTHENTICATION_MECHANISM_NAME_NOT_RECOGNISED = 11
    AUTHENTICATION_MECHANISM_NAME_REQUIRED = 12
    AUTHENTICATION_FAILURE = 13
    AUTHENTICATION_REQUIRED = 14


class AcseServiceProvider(StandardEnum):
    """Result-source-diagnostic when the ACSE provider itself refused."""

    NULL = 0
    NO_REASON_GIVEN = 1
    NO_COMMON_ACSE_VERSION = 2


# What an installer should do about each refusal by the meter (acse-service-user), keyed
# by name: IntEnum members of the two diagnostic enums compare equal by value.
_DIAGNOSTIC_ADVICE: dict[str, str] = {
    "application-context-name-not-supported": "the meter wants the other context: with "
    "ciphering (security policy) or without it, LN or SN referencing",
    "calling-ap-title-not-recognized": "check the client system title",
    "authentication-mechanism-name-not-recognised": "this client address does not allow that "
    "authentication; check the authentication and the client address",
    "authentication-mechanism-name-required": "this client address needs authentication; "
    "set the authentication",
    "authentication-failure": "wrong password (LLS) or wrong keys (HLS)",
    "authentication-required": "this client address needs authentication; set the authentication",
}


class ReleaseRequestReason(StandardEnum):
    NORMAL = 0
    URGENT = 1
    USER_DEFINED = 30


class ReleaseResponseReason(StandardEnum):
    NORMAL = 0
    NOT_FINISHED = 1
    USER_DEFINED = 30


class AuthenticationValueForm(StrictEnum):
    """Authentication-value CHOICE: [0] charstring (GraphicString) or [1] bitstring."""

    CHARSTRING = 0
    BITSTRING = 1


@dataclass(frozen=True, slots=True)
class AuthenticationValue:
    """A password (LLS) or an HLS challenge/response; the bytes stay inside ``value``."""

    value: Secret
    form: AuthenticationValueForm = AuthenticationValueForm.CHARSTRING


# --- component codecs: value -> contents octets, and (buf, start, stop, what) -> value ----


class _Codec(NamedTuple):
    encode: Callable[[Any], bytes]
    decode: Callable[[Any, int, int, str], Any]


def _explicit(inner_tag: int, codec: _Codec) -> _Codec:
    """[n] EXPLICIT: the component's contents are one complete inner TLV."""

    def decode(buf: Any, start: int, stop: int, what: str) -> Any:
        inner_start, inner_stop = ber.expect_tlv(buf, start, stop, inner_tag, what)
        if inner_stop != stop:
            raise DecodeError(f"{what}: {stop - inner_stop} stray bytes after the value")
        return codec.decode(buf, inner_start, inner_stop, what)

    return _Codec(lambda value: ber.tlv(inner_tag, codec.encode(value)), decode)


def _lookup_oid(
    table: dict[bytes, _Named], kind: str
) -> Callable[[Any, int, int, str], _Named]:
    def decode(buf: Any, start: int, stop: int, what: str) -> _Named:
        raw = bytes(buf[start:stop])
        try:
            return table[raw]
        except KeyError:
            raise DecodeError(
                f"{what}: OID {raw.hex()} is not a DLMS UA {kind} (2.16.756.5.8.x.y)"
            ) from None

    return decode


def _octets(buf: Any, start: int, stop: int, what: str) -> bytes:
    return bytes(buf[start:stop])


def _integer(enum: type[StandardEnum] | None = None) -> _Codec:
    def decode(buf: Any, start: int, stop: int, what: str) -> Any:
        value = ber.decode_integer(buf, start, stop, what)
        if enum is None:
            return value
        if not 0 <= value <= 0xFF:
            raise DecodeError(f"{what}: {value} is out of range 0..255")
        return enum.from_wire(value, what)

    return _Codec(lambda value: ber.encode_integer(int(value)), decode)


def _decode_requirements(buf: Any, start: int, stop: int, what: str) -> bool:
    bits, _ = ber.decode_bit_string(buf, start, stop, what)
    # Bit 0, the authentication functional unit, is the only one DLMS defines.
    return bool(bits) and bool(bits[0] & 0x80)


def _decode_version(buf: Any, start: int, stop: int, what: str) -> None:
    bits, _ = ber.decode_bit_string(buf, start, stop, what)
    if not bits or not bits[0] & 0x80:
        raise DecodeError(f"{what}: the peer does not offer ACSE version1, the only one there is")


def _decode_authentication(buf: Any, start: int, stop: int, what: str) -> AuthenticationValue:
    tag, value_start, value_stop = ber.read_tlv(buf, start, stop, what)
    if value_stop != stop:
        raise DecodeError(f"{what}: {stop - value_stop} stray bytes after the value")
    if tag == 0x80:
        return AuthenticationValue(
            Secret(bytes(buf[value_start:value_stop]), "authentication value")
        )
    if tag == 0x81:
        bits, unused = ber.decode_bit_string(buf, value_start, value_stop, what)
        if unused:
            raise DecodeError(f"{what}: authentication bit string is not whole octets")
        return AuthenticationValue(
            Secret(bits, "authentication value"), AuthenticationValueForm.BITSTRING
        )
    raise DecodeError(
        f"{what}: expected charstring [0] (0x80) or bitstring [1] (0x81), got 0x{tag:02x}"
    )


def _encode_authentication(value: AuthenticationValue) -> bytes:
    raw = value.value.reveal()
    if value.form is AuthenticationValueForm.BITSTRING:
        return ber.tlv(0x81, ber.encode_bit_string(raw))
    return ber.tlv(0x80, raw)


def _decode_diagnostic(buf: Any, start: int, stop: int, what: str) -> IntEnum:
    tag, value_start, value_stop = ber.read_tlv(buf, start, stop, what)
    enum = {0xA1: AcseServiceUser, 0xA2: AcseServiceProvider}.get(tag)
    if enum is None or value_stop != stop:
        raise DecodeError(
            f"{what}: expected acse-service-user [1] (0xa1) or acse-service-provider [2] (0xa2), "
            f"got 0x{tag:02x}"
        )
    diagnostic: IntEnum = _explicit(ber.INTEGER, _integer(enum)).decode(
        buf, value_start, value_stop, what
    )
    return diagnostic


def _encode_diagnostic(value: IntEnum) -> bytes:
    tag = 0xA2 if isinstance(value, AcseServiceProvider) else 0xA1
    return ber.tlv(tag, ber.tlv(ber.INTEGER, ber.encode_integer(int(value))))


_CONTEXT = _explicit(
    ber.OBJECT_IDENTIFIER,
    _Codec(_CONTEXT_OID.__getitem__, _lookup_oid(_CONTEXT_BY_OID, "application context")),
)
_MECHANISM = _Codec(_MECHANISM_OID.__getitem__, _lookup_oid(_MECHANISM_BY_OID, "mechanism name"))
_OCTET_STRING = _explicit(ber.OCTET_STRING, _Codec(bytes, _octets))
_INVOCATION_ID = _explicit(ber.INTEGER, _integer())
_REQUIREMENTS = _Codec(lambda _: ber.encode_bit_string(b"\x80", 7), _decode_requirements)
_VERSION = _Codec(lambda _: ber.encode_bit_string(b"\x80", 7), _decode_version)
_AUTHENTICATION = _Codec(_encode_authentication, _decode_authentication)
_DIAGNOSTIC = _Codec(_encode_diagnostic, _decode_diagnostic)


class _Component(NamedTuple):
    tag: int
    field: str | None  # None: validated but not kept (protocol-version)
    codec: _Codec


class _AcsePdu:
    """Shared encode/decode walk; subclasses name their tag and component table.

    protocol-version (0x80 in AARQ/AARE) is checked on decoding and left out on encoding:
    version1 is its DEFAULT and the only version there is.
    """

    __slots__ = ()
    TAG: ClassVar[int]
    NAME: ClassVar[str]
    COMPONENTS: ClassVar[tuple[_Component, ...]]

    def encode(self) -> bytes:
        body = bytearray()
        for component in self.COMPONENTS:
            if component.field is None:
                continue
            value = getattr(self, component.field)
            # Booleans stand for "functional unit present": False is encoded by absence.
            if value is None or value is False:
                continue
            body += ber.tlv(component.tag, component.codec.encode(value))
        return ber.tlv(self.TAG, bytes(body))

    @classmethod
    def decode(cls, buf: bytes | memoryview) -> Self:
        start, stop = ber.expect_tlv(buf, 0, len(buf), cls.TAG, cls.NAME)
        if stop != len(buf):
            raise DecodeError(f"{cls.NAME}: {len(buf) - stop} bytes after the end of the PDU")
        by_tag = cls._by_tag()
        values: dict[str, Any] = {}
        last_position = -1
        offset = start
        while offset < stop:
            tag, value_start, value_stop = ber.read_tlv(buf, offset, stop, cls.NAME)
            found = by_tag.get(tag)
            if found is None:
                known = ", ".join(f"0x{t:02x}" for t in by_tag)
                raise DecodeError(
                    f"{cls.NAME}: unknown component tag 0x{tag:02x} at offset {offset} "
                    f"(known: {known})"
                )
            position, component = found
            # A SEQUENCE: components come in the order of the ASN.1 definition, each once.
            if position <= last_position:
                raise DecodeError(
                    f"{cls.NAME}: component 0x{tag:02x} at offset {offset} is out of order "
                    "or repeated"
                )
            last_position = position
            what = f"{cls.NAME} {component.field or 'protocol-version'}"
            value = component.codec.decode(buf, value_start, value_stop, what)
            if component.field is not None:
                values[component.field] = value
            offset = value_stop
        return cls._build(values)

    @classmethod
    def _build(cls, values: dict[str, Any]) -> Self:
        return cls(**values)

    @classmethod
    def _by_tag(cls) -> dict[int, tuple[int, _Component]]:
        return {
            component.tag: (position, component)
            for position, component in enumerate(cls.COMPONENTS)
        }


@dataclass(frozen=True, slots=True)
class AARQ(_AcsePdu):
    """A-ASSOCIATE request (Green Book 9.3.2, Table 118 for the DLMS use of each field)."""

    TAG: ClassVar[int] = 0x60
    NAME: ClassVar[str] = "AARQ"

    application_context_name: ApplicationContextName = ApplicationContextName.LOGICAL_NAME
    called_ap_title: bytes | None = None
    called_ae_qualifier: bytes | None = None
    called_ap_invocation_id: int | None = None
    called_ae_invocation_id: int | None = None
    calling_ap_title: bytes | None = None  # the client system title (ciphered contexts)
    calling_ae_qualifier: bytes | None = None  # the client certificate (HLS-7) if sent here
    calling_ap_invocation_id: int | None = None
    calling_ae_invocation_id: int | None = None  # the client user id, if the meter uses one
    sender_acse_requirements: bool = False  # authentication functional unit
    mechanism_name: MechanismName | None = None
    calling_authentication_value: AuthenticationValue | None = None
    user_information: bytes | None = None  # InitiateRequest, plain or ciphered

    COMPONENTS: ClassVar[tuple[_Component, ...]] = (
        _Component(0x80, None, _VERSION),
        _Component(0xA1, "application_context_name", _CONTEXT),
        _Component(0xA2, "called_ap_title", _OCTET_STRING),
        _Component(0xA3, "called_ae_qualifier", _OCTET_STRING),
        _Component(0xA4, "called_ap_invocation_id", _INVOCATION_ID),
        _Component(0xA5, "called_ae_invocation_id", _INVOCATION_ID),
        _Component(0xA6, "calling_ap_title", _OCTET_STRING),
        _Component(0xA7, "calling_ae_qualifier", _OCTET_STRING),
        _Component(0xA8, "calling_ap_invocation_id", _INVOCATION_ID),
        _Component(0xA9, "calling_ae_invocation_id", _INVOCATION_ID),
        _Component(0x8A, "sender_acse_requirements", _REQUIREMENTS),
        _Component(0x8B, "mechanism_name", _MECHANISM),
        _Component(0xAC, "calling_authentication_value", _AUTHENTICATION),
        _Component(0xBE, "user_information", _OCTET_STRING),
    )

    @classmethod
    def _build(cls, values: dict[str, Any]) -> AARQ:
        if "application_context_name" not in values:
            raise DecodeError("AARQ: application-context-name (0xa1) is mandatory and missing")
        return cls(**values)


@dataclass(frozen=True, slots=True)
class AARE(_AcsePdu):
    """A-ASSOCIATE response (Green Book 9.3.3)."""

    TAG: ClassVar[int] = 0x61
    NAME: ClassVar[str] = "AARE"

    application_context_name: ApplicationContextName = ApplicationContextName.LOGICAL_NAME
    result: AssociationResult = AssociationResult.ACCEPTED
    result_source_diagnostic: AcseServiceUser | AcseServiceProvider = AcseServiceUser.NULL
    responding_ap_title: bytes | None = None  # the meter system title
    responding_ae_qualifier: bytes | None = None
    responding_ap_invocation_id: int | None = None
    responding_ae_invocation_id: int | None = None
    responder_acse_requirements: bool = False
    mechanism_name: MechanismName | None = None
    responding_authentication_value: AuthenticationValue | None = None  # StoC challenge
    user_information: bytes | None = None  # InitiateResponse or ConfirmedServiceError

    COMPONENTS: ClassVar[tuple[_Component, ...]] = (
        _Component(0x80, None, _VERSION),
        _Component(0xA1, "application_context_name", _CONTEXT),
        _Component(0xA2, "result", _explicit(ber.INTEGER, _integer(AssociationResult))),
        _Component(0xA3, "result_source_diagnostic", _DIAGNOSTIC),
        _Component(0xA4, "responding_ap_title", _OCTET_STRING),
        _Component(0xA5, "responding_ae_qualifier", _OCTET_STRING),
        _Component(0xA6, "responding_ap_invocation_id", _INVOCATION_ID),
        _Component(0xA7, "responding_ae_invocation_id", _INVOCATION_ID),
        _Component(0x88, "responder_acse_requirements", _REQUIREMENTS),
        _Component(0x89, "mechanism_name", _MECHANISM),
        _Component(0xAA, "responding_authentication_value", _AUTHENTICATION),
        _Component(0xBE, "user_information", _OCTET_STRING),
    )

    @classmethod
    def _build(cls, values: dict[str, Any]) -> AARE:
        for field, tag in (
            ("application_context_name", 0xA1),
            ("result", 0xA2),
            ("result_source_diagnostic", 0xA3),
        ):
            if field not in values:
                raise DecodeError(
                    f"AARE: {field.replace('_', '-')} (0x{tag:02x}) is mandatory and missing"
                )
        return cls(**values)

    @property
    def accepted(self) -> bool:
        return self.result is AssociationResult.ACCEPTED

    def describe(self) -> str:
        """``"rejected-permanent by the meter (acse-service-user): authentication-failure"``."""
        diagnostic = self.result_source_diagnostic
        by_user = isinstance(diagnostic, AcseServiceUser)
        source = "acse-service-user" if by_user else "acse-service-provider"
        text = f"{self.result.standard_name} ({source}: {diagnostic.standard_name})"
        advice = _DIAGNOSTIC_ADVICE.get(diagnostic.standard_name) if by_user else None
        return f"{text}; {advice}" if advice and not self.accepted else text


@dataclass(frozen=True, slots=True)
class RLRQ(_AcsePdu):
    """A-RELEASE request (Green Book 9.3.4); user-information may carry an InitiateRequest."""

    TAG: ClassVar[int] = 0x62
    NAME: ClassVar[str] = "RLRQ"

    reason: ReleaseRequestReason | None = ReleaseRequestReason.NORMAL
    user_information: bytes | None = None

    COMPONENTS: ClassVar[tuple[_Component, ...]] = (
        _Component(0x80, "reason", _integer(ReleaseRequestReason)),
        _Component(0xBE, "user_information", _OCTET_STRING),
    )

    @classmethod
    def _build(cls, values: dict[str, Any]) -> RLRQ:
        return cls(reason=values.get("reason"), user_information=values.get("user_information"))


@dataclass(frozen=True, slots=True)
class RLRE(_AcsePdu):
    """A-RELEASE response (Green Book 9.3.5)."""

    TAG: ClassVar[int] = 0x63
    NAME: ClassVar[str] = "RLRE"

    reason: ReleaseResponseReason | None = ReleaseResponseReason.NORMAL
    user_information: bytes | None = None

    COMPONENTS: ClassVar[tuple[_Component, ...]] = (
        _Component(0x80, "reason", _integer(ReleaseResponseReason)),
        _Component(0xBE, "user_information", _OCTET_STRING),
    )

    @classmethod
    def _build(cls, values: dict[str, Any]) -> RLRE:
        return cls(reason=values.get("reason"), user_information=values.get("user_information"))


AcsePdu = AARQ | AARE | RLRQ | RLRE
ACSE_PDUS: dict[int, type[_AcsePdu]] = {pdu.TAG: pdu for pdu in (AARQ, AARE, RLRQ, RLRE)}


def decode_acse(buf: bytes | memoryview) -> AcsePdu:
    """Decode whichever ACSE PDU ``buf`` holds, by its first byte."""
    if not len(buf):
        raise DecodeError("ACSE PDU: empty input")
    pdu = ACSE_PDUS.get(buf[0])
    if pdu is None:
        raise DecodeError(
            f"ACSE PDU: tag 0x{buf[0]:02x} is none of AARQ 0x60, AARE 0x61, RLRQ 0x62, RLRE 0x63"
        )
    # ACSE_PDUS holds exactly the classes of AcsePdu; its value type is their common base.
    return pdu.decode(buf)  # type: ignore[return-value]


__all__ = [
    "AARE",
    "AARQ",
    "ACSE_PDUS",
    "RLRE",
    "RLRQ",
    "AcsePdu",
    "AcseServiceProvider",
    "AcseServiceUser",
    "ApplicationContextName",
    "AssociationResult",
    "AuthenticationValue",
    "AuthenticationValueForm",
    "MechanismName",
    "ReleaseRequestReason",
    "ReleaseResponseReason",
    "decode_acse",
]
