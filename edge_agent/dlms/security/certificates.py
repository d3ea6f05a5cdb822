"""Key pairs and X.509 certificates as DLMS suites 1 and 2 use them.

Green Book 9.2.6 (certificate profile): end-entity certificates carry an ECDSA P-256 or
P-384 public key; the subject commonName is the system title of the entity as 16
hexadecimal characters, which is how a peer maps a certificate to the system title in
APDUs. keyUsage is digitalSignature (signing certificates) or keyAgreement (key
agreement certificates), marked critical.

Everything here takes and returns bytes or objects; reading and writing files, and the
clock for validity dates, stay with the caller.
"""

from __future__ import annotations

import datetime as dt

from edge_agent.dlms.errors import ConfigError, DecodeError, SignatureError
from edge_agent.dlms.security import crypto
from edge_agent.dlms.security.control import SUITES, suite_of_key, suite_parameters
from edge_agent.dlms.system_title import SystemTitle

DIGITAL_SIGNATURE = "digital-signature"
KEY_AGREEMENT = "key-agreement"
_USAGES = {
    DIGITAL_SIGNATURE: {"digital_signature": True, "key_agreement": False},
    KEY_AGREEMENT: {"digital_signature": False, "key_agreement": True},
}


def generate_key_pair(suite: int = 1) -> crypto.ec.EllipticCurvePrivateKey:
    params = suite_parameters(suite)
    params.require_public_key_algorithms("a key pair")
    assert params.curve is not None
    return crypto.ec.generate_private_key(params.curve())


def public_key_from_point(
    point: bytes, suite: int | None = None
) -> crypto.ec.EllipticCurvePublicKey:
    """A public key from X‖Y (as DLMS carries it) or 04‖X‖Y (SEC 1 uncompressed)."""
    raw = bytes(point)
    if len(raw) in (65, 97) and raw[0] == 0x04:
        raw = raw[1:]
    by_length = {2 * p.coordinate_length: p for p in SUITES.values() if p.curve is not None}
    params = by_length.get(len(raw))
    if params is None or (suite is not None and params.suite != suite):
        expected = (
            "64 (P-256) or 96 (P-384)"
            if suite is None
            else str(2 * suite_parameters(suite).coordinate_length)
        )
        raise DecodeError(
            f"public key point of {len(point)} bytes: expected X‖Y of {expected} bytes, optionally after 0x04"
        )
    assert params.curve is not None
    try:
        return crypto.ec.EllipticCurvePublicKey.from_encoded_point(params.curve(), b"\x04" + raw)
    except ValueError:
        raise DecodeError(f"public key is not a point on {params.curve.name}") from None


def public_key_to_point(
    key: crypto.ec.EllipticCurvePublicKey, *, sec1_prefix: bool = False
) -> bytes:
    """X‖Y (DLMS key agreement data), or 04‖X‖Y with ``sec1_prefix``."""
    encoded = key.public_bytes(
        crypto.serialization.Encoding.X962, crypto.serialization.PublicFormat.UncompressedPoint
    )
    return encoded if sec1_prefix else encoded[1:]


def common_name(system_title: bytes) -> str:
    return SystemTitle(system_title, error=ConfigError).text


def system_title_from_name(name: crypto.x509.Name) -> SystemTitle:
    attributes = name.get_attributes_for_oid(crypto.oid.NameOID.COMMON_NAME)
    text = str(attributes[0].value) if attributes else ""
    try:
        return SystemTitle(bytes.fromhex(text), error=SignatureError)
    except (ValueError, SignatureError):
        raise SignatureError(
            f"certificate subject CN {text!r} is not a system title (16 hex digits, Green Book 9.2.6): "
            "not a DLMS end-entity certificate"
        ) from None


def system_title_from_certificate(certificate: crypto.x509.Certificate) -> SystemTitle:
    return system_title_from_name(certificate.subject)


def _subject(system_title: bytes, organization: str | None) -> crypto.x509.Name:
    name_oid = crypto.oid.NameOID
    attributes = [crypto.x509.NameAttribute(name_oid.COMMON_NAME, common_name(system_title))]
    if organization:
        attributes.append(crypto.x509.NameAttribute(name_oid.ORGANIZATION_NAME, organization))
    return crypto.x509.Name(attributes)


def _hash_for(
    key: crypto.ec.EllipticCurvePrivateKey,
) -> crypto.hashes.SHA256 | crypto.hashes.SHA384:
    params = suite_of_key(key)
    assert params.hash is not None
    return params.hash()


def _key_usage(usage: str) -> crypto.x509.KeyUsage:
    try:
        flags = _USAGES[usage]
    except KeyError:
        raise ConfigError(
            f"certificate usage {usage!r}: expected {DIGITAL_SIGNATURE} or {KEY_AGREEMENT}"
        ) from None
    return crypto.x509.KeyUsage(
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
        **flags,
    )


def build_csr(
    private_key: crypto.ec.EllipticCurvePrivateKey,
    system_title: bytes,
    *,
    usage: str = DIGITAL_SIGNATURE,
    organization: str | None = None,
) -> crypto.x509.CertificateSigningRequest:
    """A PKCS #10 request for the certificate of ``system_title`` (to a CA or the meter)."""
    return (
        crypto.x509.CertificateSigningRequestBuilder()
        .subject_name(_subject(system_title, organization))
        .add_extension(_key_usage(usage), critical=True)
        .sign(private_key, _hash_for(private_key))
    )


def self_signed_certificate(
    private_key: crypto.ec.EllipticCurvePrivateKey,
    system_title: bytes,
    *,
    not_before: dt.datetime,
    not_after: dt.datetime,
    usage: str = DIGITAL_SIGNATURE,
    organization: str | None = None,
    serial_number: int | None = None,
) -> crypto.x509.Certificate:
    if not_after <= not_before:
        raise ConfigError("certificate validity: not_after must be later than not_before")
    name = _subject(system_title, organization)
    public_key = private_key.public_key()
    return (
        crypto.x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public_key)
        .serial_number(
            serial_number if serial_number is not None else crypto.x509.random_serial_number()
        )
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(_key_usage(usage), critical=True)
        .add_extension(crypto.x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(crypto.x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .sign(private_key, _hash_for(private_key))
    )


def load_certificate(data: bytes) -> crypto.x509.Certificate:
    """PEM or DER."""
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            return crypto.x509.load_pem_x509_certificate(data)
        return crypto.x509.load_der_x509_certificate(data)
    except ValueError as exc:
        raise DecodeError(f"not an X.509 certificate (PEM or DER): {exc}") from None


def load_csr(data: bytes) -> crypto.x509.CertificateSigningRequest:
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            return crypto.x509.load_pem_x509_csr(data)
        return crypto.x509.load_der_x509_csr(data)
    except ValueError as exc:
        raise DecodeError(f"not a certificate signing request (PEM or DER): {exc}") from None


def load_private_key(
    data: bytes, password: bytes | None = None
) -> crypto.ec.EllipticCurvePrivateKey:
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            key = crypto.serialization.load_pem_private_key(data, password)
        else:
            key = crypto.serialization.load_der_private_key(data, password)
    except (ValueError, TypeError):
        # The library's message may quote the input; say only what to do.
        raise ConfigError(
            "private key cannot be loaded: not a PEM/DER private key, or wrong/missing password"
        ) from None
    if not isinstance(key, crypto.ec.EllipticCurvePrivateKey):
        raise ConfigError("private key is not an elliptic-curve key (P-256 or P-384 expected)")
    return key


def private_key_pem(key: crypto.ec.EllipticCurvePrivateKey, password: bytes | None = None) -> bytes:
    encryption = (
        crypto.serialization.BestAvailableEncryption(password)
        if password
        else crypto.serialization.NoEncryption()
    )
    return key.private_bytes(
        crypto.serialization.Encoding.PEM, crypto.serialization.PrivateFormat.PKCS8, encryption
    )


def certificate_pem(certificate: crypto.x509.Certificate) -> bytes:
    return certificate.public_bytes(crypto.serialization.Encoding.PEM)


def certificate_der(certificate: crypto.x509.Certificate) -> bytes:
    return certificate.public_bytes(crypto.serialization.Encoding.DER)


def csr_pem(csr: crypto.x509.CertificateSigningRequest) -> bytes:
    return csr.public_bytes(crypto.serialization.Encoding.PEM)
