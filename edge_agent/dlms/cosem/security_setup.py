"""Security setup (interface class 64, version 1): the A-XDR codec of its attributes and methods.

Blue Book (DLMS UA 1000-1) 4.4.7. Attributes: 2 security_policy, 3 security_suite,
4 client_system_title, 5 server_system_title, 6 certificates. Methods:

    1 security_activate(enum policy)                 5 generate_certificate_request(enum key pair)
    2 key_transfer(array of key_data)                     -> octet-string CSR (DER)
    3 key_agreement(array of key_agreement_data)     6 import_certificate(octet-string DER)
         -> array of key_agreement_data              7 export_certificate(identification)
    4 generate_key_pair(enum key pair)                    -> octet-string certificate (DER)
                                                     8 remove_certificate(identification)

Sans-IO: Data values (:mod:`edge_agent.dlms.encoding.axdr`) in and out. The client
(:mod:`edge_agent.client.security_setup_calls`) builds parameters and reads answers with it; the
simulated meter (:mod:`edge_agent.simulator.security_setup_server`) the other way round. Parsers
raise :class:`DecodeError` naming the structure that is wrong.

Encodings the Blue Book leaves to the implementer, as chosen here: ``serial_number`` is
the certificate's serial as an unsigned big-endian integer, ``issuer`` and ``subject``
the DER of the X.509 Name (as ASN.1 structures, Blue Book "certificate_info").
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from edge_agent.dlms.cosem.obis import Obis
from edge_agent.dlms.encoding import axdr
from edge_agent.dlms.errors import DecodeError, EncodeError
from edge_agent.dlms.secret import Secret
from edge_agent.dlms.security import agreement, certificates, crypto, keywrap
from edge_agent.dlms.system_title import SystemTitle

CLASS_ID = 64
SECURITY_SETUP = Obis(0, 0, 43, 0, 0, 255)  # the management logical device's instance


class Attribute(enum.IntEnum):
    SECURITY_POLICY = 2
    SECURITY_SUITE = 3
    CLIENT_SYSTEM_TITLE = 4
    SERVER_SYSTEM_TITLE = 5
    CERTIFICATES = 6


class Method(enum.IntEnum):
    SECURITY_ACTIVATE = 1
    KEY_TRANSFER = 2
    KEY_AGREEMENT = 3
    GENERATE_KEY_PAIR = 4
    GENERATE_CERTIFICATE_REQUEST = 5
    IMPORT_CERTIFICATE = 6
    EXPORT_CERTIFICATE = 7
    REMOVE_CERTIFICATE = 8


class SecurityPolicy(enum.IntFlag):
    """security_policy of version 1: one bit per protection, requests and responses apart."""

    NONE = 0
    AUTHENTICATED_REQUEST = 0x04
    ENCRYPTED_REQUEST = 0x08
    DIGITALLY_SIGNED_REQUEST = 0x10
    AUTHENTICATED_RESPONSE = 0x20
    ENCRYPTED_RESPONSE = 0x40
    DIGITALLY_SIGNED_RESPONSE = 0x80


class KeyId(enum.IntEnum):
    """key_id of key_transfer and key_agreement."""

    GLOBAL_UNICAST_ENCRYPTION_KEY = 0
    GLOBAL_BROADCAST_ENCRYPTION_KEY = 1
    AUTHENTICATION_KEY = 2
    MASTER_KEY = 3


class KeyPair(enum.IntEnum):
    """key_pair of generate_key_pair and generate_certificate_request."""

    DIGITAL_SIGNATURE = 0
    KEY_AGREEMENT = 1
    TLS = 2


class CertificateEntity(enum.IntEnum):
    SERVER = 0
    CLIENT = 1
    CERTIFICATION_AUTHORITY = 2
    OTHER = 3


class CertificateType(enum.IntEnum):
    DIGITAL_SIGNATURE = 0
    KEY_AGREEMENT = 1
    TLS = 2
    OTHER = 3


def _member(kind: type[enum.IntEnum], value: Any, what: str) -> Any:
    try:
        return kind(int(value))
    except (TypeError, ValueError):
        allowed = ", ".join(f"{m.value} {m.name.lower()}" for m in kind)
        raise DecodeError(f"{what}: {value!r} is not one of {allowed}") from None


def _structure(value: Any, size: int, what: str) -> tuple[Any, ...]:
    if not isinstance(value, tuple) or len(value) != size:
        raise DecodeError(f"{what}: a structure of {size} elements expected, got {value!r:.80}")
    return value


def _array(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise DecodeError(f"{what}: an array expected, got {type(value).__name__}")
    return value


def parse_octet_string(value: Any, what: str) -> bytes:
    if not isinstance(value, bytes):
        raise DecodeError(f"{what}: an octet-string expected, got {type(value).__name__}")
    return bytes(value)


# --- certificate_info and certificate identification -------------------------------------------


@dataclass(frozen=True, slots=True)
class CertificateInfo:
    """One element of attribute 6 ``certificates``."""

    entity: CertificateEntity
    type: CertificateType
    serial_number: bytes
    issuer: bytes
    subject: bytes
    subject_alt_name: bytes = b""

    def to_axdr(self) -> axdr.Structure:
        return axdr.Structure((
            axdr.Enum(self.entity), axdr.Enum(self.type),
            axdr.OctetString(self.serial_number), axdr.OctetString(self.issuer),
            axdr.OctetString(self.subject), axdr.OctetString(self.subject_alt_name),
        ))

    @classmethod
    def from_axdr(cls, value: Any) -> CertificateInfo:
        entity, kind, serial, issuer, subject, alt = _structure(value, 6, "certificate_info")
        return cls(
            _member(CertificateEntity, entity, "certificate_entity"),
            _member(CertificateType, kind, "certificate_type"),
            *(parse_octet_string(v, "certificate_info") for v in (serial, issuer, subject, alt)),
        )

    @classmethod
    def of(cls, certificate: crypto.x509.Certificate, entity: CertificateEntity) -> CertificateInfo:
        return cls(entity, certificate_type(certificate), serial_bytes(certificate),
                   certificate.issuer.public_bytes(), certificate.subject.public_bytes())

    @property
    def system_title(self) -> SystemTitle | None:
        """The system title in the subject CN (Green Book 9.2.6), when it holds one."""
        text = _common_name(self.subject)
        try:
            return SystemTitle(bytes.fromhex(text or ""))
        except (ValueError, DecodeError):
            return None

    def describe(self) -> str:
        title = self.system_title
        return (f"{self.entity.name.lower()} {self.type.name.lower().replace('_', '-')} certificate, "
                f"serial {self.serial_number.hex()}" + (f", system title {title.text}" if title else ""))


_COMMON_NAME_OID = b"\x06\x03\x55\x04\x03"  # 2.5.4.3, DER


def _common_name(name_der: bytes) -> str | None:
    """The commonName of a DER Name (cryptography parses Names only inside certificates):
    the string right after the OID, short-form length, as DLMS certificates have it."""
    index = name_der.find(_COMMON_NAME_OID)
    start = index + len(_COMMON_NAME_OID) + 2  # string tag, length octet
    if index < 0 or start > len(name_der) or name_der[start - 1] >= 0x80:
        return None
    return name_der[start : start + name_der[start - 1]].decode("ascii", "replace")


def serial_bytes(certificate: crypto.x509.Certificate) -> bytes:
    serial = certificate.serial_number
    return serial.to_bytes(max(1, (serial.bit_length() + 7) // 8), "big")


def certificate_type(certificate: crypto.x509.Certificate) -> CertificateType:
    try:
        usage = certificate.extensions.get_extension_for_class(crypto.x509.KeyUsage).value
    except crypto.x509.ExtensionNotFound:
        return CertificateType.OTHER
    if usage.digital_signature:
        return CertificateType.DIGITAL_SIGNATURE
    if usage.key_agreement:
        return CertificateType.KEY_AGREEMENT
    return CertificateType.OTHER


@dataclass(frozen=True, slots=True)
class ByEntity:
    """certificate_identification_by_entity: which role, which use, whose system title."""

    entity: CertificateEntity
    type: CertificateType
    system_title: bytes

    def to_axdr(self) -> axdr.Structure:
        return axdr.Structure((axdr.Enum(0), axdr.Structure((
            axdr.Enum(self.entity), axdr.Enum(self.type), axdr.OctetString(self.system_title)))))


@dataclass(frozen=True, slots=True)
class BySerial:
    """certificate_identification_by_serial: serial number and issuer (DER Name)."""

    serial_number: bytes
    issuer: bytes

    def to_axdr(self) -> axdr.Structure:
        return axdr.Structure((axdr.Enum(1), axdr.Structure((
            axdr.OctetString(self.serial_number), axdr.OctetString(self.issuer)))))


CertificateIdentification = ByEntity | BySerial


def parse_identification(value: Any) -> CertificateIdentification:
    kind, options = _structure(value, 2, "certificate_identification")
    if kind == 0:
        entity, ctype, title = _structure(options, 3, "certificate_identification_by_entity")
        return ByEntity(_member(CertificateEntity, entity, "certificate_entity"),
                        _member(CertificateType, ctype, "certificate_type"),
                        parse_octet_string(title, "system_title"))
    if kind == 1:
        serial, issuer = _structure(options, 2, "certificate_identification_by_serial")
        return BySerial(parse_octet_string(serial, "serial_number"), parse_octet_string(issuer, "issuer"))
    raise DecodeError(f"certificate_identification_type {kind!r}: 0 (by entity) or 1 (by serial) expected")


# --- method parameters (client → meter) and their parsers (meter side) --------------------------


def key_transfer_parameter(kek: Secret, keys: Mapping[KeyId, Secret]) -> axdr.Array:
    """key_data array: each new key wrapped with the master key (RFC 3394)."""
    if not keys:
        raise EncodeError("key_transfer needs at least one key")
    return axdr.Array([axdr.Structure((axdr.Enum(key_id), axdr.OctetString(keywrap.wrap(kek, key))))
                       for key_id, key in keys.items()])


def parse_key_data(value: Any, what: str = "key_data") -> list[tuple[KeyId, bytes]]:
    """key_transfer / key_agreement parameter: array of {key_id, octet-string}."""
    entries = []
    for item in _array(value, what):
        key_id, data = _structure(item, 2, what)
        entries.append((_member(KeyId, key_id, "key_id"), parse_octet_string(data, what)))
    if not entries:
        raise DecodeError(f"{what}: empty array, at least one key expected")
    return entries


def key_data_array(entries: Sequence[tuple[KeyId, bytes]]) -> axdr.Array:
    return axdr.Array([axdr.Structure((axdr.Enum(k), axdr.OctetString(d))) for k, d in entries])


#: The algorithm an agreed key is derived for (Green Book 9.2.3.4.6.2, OtherInfo).
AGREED_ALGORITHM = {
    (KeyId.GLOBAL_UNICAST_ENCRYPTION_KEY, 16): agreement.Algorithm.AES_GCM_128,
    (KeyId.GLOBAL_BROADCAST_ENCRYPTION_KEY, 16): agreement.Algorithm.AES_GCM_128,
    (KeyId.AUTHENTICATION_KEY, 16): agreement.Algorithm.AES_GCM_128,
    (KeyId.MASTER_KEY, 16): agreement.Algorithm.AES_WRAP_128,
    (KeyId.GLOBAL_UNICAST_ENCRYPTION_KEY, 32): agreement.Algorithm.AES_GCM_256,
    (KeyId.GLOBAL_BROADCAST_ENCRYPTION_KEY, 32): agreement.Algorithm.AES_GCM_256,
    (KeyId.AUTHENTICATION_KEY, 32): agreement.Algorithm.AES_GCM_256,
    (KeyId.MASTER_KEY, 32): agreement.Algorithm.AES_WRAP_256,
}


def derive_agreed_key(key_id: KeyId, own_ephemeral: crypto.ec.EllipticCurvePrivateKey,
                      peer_ephemeral: crypto.ec.EllipticCurvePublicKey, *, client_system_title: bytes,
                      server_system_title: bytes) -> Secret:
    """Ephemeral Unified Model C(2e, 0s): party U is the client, V the server (both sides)."""
    length = 16 if own_ephemeral.curve.key_size == 256 else 32
    return agreement.agree(
        agreement.Scheme.EPHEMERAL_UNIFIED_MODEL, own_ephemeral, peer_ephemeral,
        algorithm=AGREED_ALGORITHM[key_id, length],
        party_u_system_title=client_system_title, party_v_system_title=server_system_title,
    )


def certificate_der(certificate: crypto.x509.Certificate) -> axdr.OctetString:
    return axdr.OctetString(certificate.public_bytes(crypto.serialization.Encoding.DER))


def parse_certificate(value: Any, what: str) -> crypto.x509.Certificate:
    return certificates.load_certificate(parse_octet_string(value, what))


def parse_certificates(value: Any) -> list[CertificateInfo]:
    return [CertificateInfo.from_axdr(item) for item in _array(value, "certificates")]


__all__ = [
    "AGREED_ALGORITHM", "CLASS_ID", "SECURITY_SETUP", "Attribute", "ByEntity", "BySerial",
    "CertificateEntity", "CertificateIdentification", "CertificateInfo", "CertificateType",
    "KeyId", "KeyPair", "Method", "SecurityPolicy", "certificate_der", "certificate_type",
    "derive_agreed_key", "key_data_array", "key_transfer_parameter", "parse_certificate",
    "parse_certificates", "parse_identification", "parse_key_data", "parse_octet_string",
    "serial_bytes",
]
