"""general-signing (0xDF) and ECDSA with raw r‖s signatures.

Green Book 9.5 / 9.2.7.3:

    general-signing ::= SEQUENCE {
        transaction-id, originator-system-title, recipient-system-title,
        date-time, other-information      OCTET STRING (each),
        content                           OCTET STRING,
        signature                         OCTET STRING }

The signature (suite 1: ECDSA P-256/SHA-256, suite 2: P-384/SHA-384, Green Book 9.2.3.4.5)
covers transaction-id .. other-information *as encoded, with their length octets*,
followed by the content *without* its length octets. On the wire a signature is r ‖ s,
each the size of the curve order (64 bytes for P-256, 96 for P-384), not DER.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from edge_agent.dlms.errors import DecodeError, EncodeError, SignatureError, TruncatedError
from edge_agent.dlms.security import crypto
from edge_agent.dlms.security._length import octet_string, take_octet_string
from edge_agent.dlms.security.control import SuiteParameters, suite_of_key
from edge_agent.dlms.security.header import TransactionHeader
from edge_agent.dlms.security.tags import GENERAL_SIGNING

# ``cryptography`` is loaded (through ``crypto``) by the functions that sign and verify;
# the codec (GeneralSigning) needs none of it.
PublicKeyOrCertificate = Union["crypto.ec.EllipticCurvePublicKey", "crypto.x509.Certificate"]


def raw_to_der(raw: bytes, params: SuiteParameters) -> bytes:
    if len(raw) != params.signature_length:
        raise SignatureError(
            f"signature is {len(raw)} bytes, suite {params.suite} signatures are r‖s of "
            f"{params.signature_length} bytes: wrong security suite or damaged signature"
        )
    half = params.coordinate_length
    return crypto.dss.encode_dss_signature(
        int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big")
    )


def der_to_raw(der: bytes, params: SuiteParameters) -> bytes:
    r, s = crypto.dss.decode_dss_signature(der)
    half = params.coordinate_length
    return r.to_bytes(half, "big") + s.to_bytes(half, "big")


def ecdsa_sign(private_key: crypto.ec.EllipticCurvePrivateKey, data: bytes) -> bytes:
    """Raw r‖s ECDSA signature of ``data`` with the suite's hash."""
    params = suite_of_key(private_key)
    assert params.hash is not None
    return der_to_raw(private_key.sign(data, crypto.ec.ECDSA(params.hash())), params)


def ecdsa_verify(
    public_key: crypto.ec.EllipticCurvePublicKey, data: bytes, signature: bytes, what: str
) -> None:
    params = suite_of_key(public_key)
    assert params.hash is not None
    try:
        public_key.verify(raw_to_der(signature, params), data, crypto.ec.ECDSA(params.hash()))
    except crypto.exceptions.InvalidSignature:
        raise SignatureError(
            f"{what}: ECDSA signature does not verify with the signer's public key: wrong or "
            "outdated certificate of the signer, or content altered on the way"
        ) from None


@dataclass(frozen=True, slots=True)
class GeneralSigning:
    header: TransactionHeader
    content: bytes
    signature: bytes = b""

    @property
    def originator_system_title(self) -> bytes:
        return self.header.originator_system_title

    @property
    def recipient_system_title(self) -> bytes:
        return self.header.recipient_system_title

    def signed_data(self) -> bytes:
        """transaction-id .. other-information with length octets ‖ content without."""
        return self.header.encode() + self.content

    def encode(self) -> bytes:
        return (
            bytes((GENERAL_SIGNING,))
            + self.header.encode()
            + octet_string(self.content)
            + octet_string(self.signature)
        )

    @classmethod
    def decode(cls, buf: bytes | memoryview, offset: int = 0) -> tuple[GeneralSigning, int]:
        if offset >= len(buf):
            raise TruncatedError("general-signing expected, input is empty")
        if buf[offset] != GENERAL_SIGNING:
            raise DecodeError(f"general-signing tag 0xDF expected, got 0x{buf[offset]:02X}")
        header, offset = TransactionHeader.decode(buf, offset + 1, "general-signing")
        content, offset = take_octet_string(buf, offset, "general-signing content")
        signature, offset = take_octet_string(buf, offset, "general-signing signature")
        return cls(header, content, signature), offset

    @classmethod
    def from_bytes(cls, apdu: bytes | memoryview) -> GeneralSigning:
        """Decode a whole APDU; trailing bytes are an error."""
        signed, end = cls.decode(apdu, 0)
        if end != len(apdu):
            raise DecodeError(f"general-signing: {len(apdu) - end} bytes after the signature")
        return signed


def sign(
    content: bytes,
    *,
    signing_key: crypto.ec.EllipticCurvePrivateKey,
    originator_system_title: bytes,
    recipient_system_title: bytes = b"",
    transaction_id: bytes = b"",
    date_time: bytes = b"",
    other_information: bytes = b"",
) -> GeneralSigning:
    """Build a general-signing APDU around ``content`` (an encoded APDU)."""
    if not content:
        raise EncodeError("general-signing needs a content APDU")
    header = TransactionHeader(
        transaction_id,
        originator_system_title,
        recipient_system_title,
        date_time,
        other_information,
    )
    unsigned = GeneralSigning(header, bytes(content))
    return GeneralSigning(header, unsigned.content, ecdsa_sign(signing_key, unsigned.signed_data()))


def verify(signed: GeneralSigning, signer: PublicKeyOrCertificate) -> bytes:
    """Verify the signature and return the content; raise SignatureError otherwise.

    With a certificate, its subject system title must also be the originator's.
    """
    what = f"general-signing from {signed.originator_system_title.hex().upper() or 'unknown originator'}"
    if isinstance(signer, crypto.ec.EllipticCurvePublicKey):
        public_key = signer
    else:
        public_key = _certified_key(signer, signed.originator_system_title, what)
    if not signed.signature:
        raise SignatureError(f"{what}: the signature field is empty")
    ecdsa_verify(public_key, signed.signed_data(), signed.signature, what)
    return signed.content


def public_key_of(signer: PublicKeyOrCertificate, what: str) -> crypto.ec.EllipticCurvePublicKey:
    """The elliptic-curve key of ``signer`` (a key, or a certificate holding one)."""
    key = signer if isinstance(signer, crypto.ec.EllipticCurvePublicKey) else signer.public_key()
    if not isinstance(key, crypto.ec.EllipticCurvePublicKey):
        raise SignatureError(f"{what}: the certificate does not hold an elliptic-curve key")
    return key


def _certified_key(
    certificate: crypto.x509.Certificate, originator_system_title: bytes, what: str
) -> crypto.ec.EllipticCurvePublicKey:
    """The certificate's key, once its subject is shown to be the originator."""

    from edge_agent.dlms.security.certificates import system_title_from_certificate

    if not isinstance(certificate, crypto.x509.Certificate):
        raise SignatureError(
            f"{what}: the signer given is a {type(certificate).__name__}, expected an "
            "elliptic-curve public key or an X.509 certificate: load the originator's key"
        )
    certified = system_title_from_certificate(certificate)
    if certified != originator_system_title:
        raise SignatureError(
            f"{what}: the certificate given belongs to system title {certified.hex().upper()}, "
            "not to the originator: import the originator's certificate"
        )
    public_key = certificate.public_key()
    if not isinstance(public_key, crypto.ec.EllipticCurvePublicKey):
        raise SignatureError(f"{what}: the certificate does not hold an elliptic-curve key")
    return public_key
