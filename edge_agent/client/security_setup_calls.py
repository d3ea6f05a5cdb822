"""Security setup (interface class 64, version 1), client side: the calls over any client.

:class:`SecuritySetup` drives one Security setup object of a meter through a client with
``get``/``action`` (:class:`edge_agent.client.client.MeterClient`); the A-XDR codec of the
attributes and method parameters is :mod:`edge_agent.dlms.cosem.security_setup`, shared with
the simulated meter. Blue Book (DLMS UA 1000-1) 4.4.7.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from edge_agent.dlms.apdu.base import OMITTED
from edge_agent.dlms.cosem.obis import Obis
from edge_agent.dlms.cosem.security_setup import (
    CLASS_ID,
    SECURITY_SETUP,
    Attribute,
    CertificateIdentification,
    CertificateInfo,
    KeyId,
    KeyPair,
    Method,
    SecurityPolicy,
    certificate_der,
    derive_agreed_key,
    key_data_array,
    key_transfer_parameter,
    parse_certificate,
    parse_certificates,
    parse_key_data,
    parse_octet_string,
)
from edge_agent.dlms.encoding import axdr
from edge_agent.dlms.errors import ProtocolError
from edge_agent.dlms.secret import Secret
from edge_agent.dlms.security import agreement, certificates

# --- the calls, over any client ---------------------------------------------------------------


class CosemClient(Protocol):
    """What :class:`SecuritySetup` needs of a client (MeterClient has it)."""

    def get(self, code: Obis, class_id: int, attribute: int) -> Any: ...

    def action(self, code: Obis, class_id: int, method: int, parameters: Any = OMITTED) -> Any: ...


class SecuritySetup:
    """One Security setup object of a meter, through an associated client."""

    def __init__(self, client: CosemClient, logical_name: Obis = SECURITY_SETUP) -> None:
        self.client = client
        self.logical_name = logical_name

    def _get(self, attribute: Attribute) -> Any:
        return self.client.get(self.logical_name, CLASS_ID, int(attribute))

    def _action(self, method: Method, parameter: Any) -> Any:
        returned = self.client.action(self.logical_name, CLASS_ID, int(method), parameter)
        return None if returned is OMITTED else returned

    # attributes
    def security_policy(self) -> SecurityPolicy:
        return SecurityPolicy(int(self._get(Attribute.SECURITY_POLICY)))

    def security_suite(self) -> int:
        return int(self._get(Attribute.SECURITY_SUITE))

    def client_system_title(self) -> bytes:
        return parse_octet_string(self._get(Attribute.CLIENT_SYSTEM_TITLE), "client_system_title")

    def server_system_title(self) -> bytes:
        return parse_octet_string(self._get(Attribute.SERVER_SYSTEM_TITLE), "server_system_title")

    def certificates(self) -> list[CertificateInfo]:
        return parse_certificates(self._get(Attribute.CERTIFICATES))

    # methods
    def security_activate(self, policy: SecurityPolicy) -> None:
        self._action(Method.SECURITY_ACTIVATE, axdr.Enum(int(policy)))

    def key_transfer(self, kek: Secret, keys: Mapping[KeyId, Secret]) -> None:
        """Send new keys wrapped with the current master key; they apply after the answer."""
        self._action(Method.KEY_TRANSFER, key_transfer_parameter(kek, keys))

    def key_agreement(self, key_ids: Sequence[KeyId], *, signing_key: ec.EllipticCurvePrivateKey,
                      server_signing_key: ec.EllipticCurvePublicKey | x509.Certificate,
                      client_system_title: bytes, server_system_title: bytes,
                      ephemeral_keys: Mapping[KeyId, ec.EllipticCurvePrivateKey] | None = None,
                      ) -> dict[KeyId, Secret]:
        """Agree new keys with the meter (Ephemeral Unified Model); returns them."""
        if isinstance(server_signing_key, x509.Certificate):
            public = server_signing_key.public_key()
            if not isinstance(public, ec.EllipticCurvePublicKey):
                raise ProtocolError("the meter's certificate does not hold an elliptic-curve key")
            server_signing_key = public
        suite = 2 if signing_key.curve.key_size == 384 else 1
        ours = {key_id: (ephemeral_keys or {}).get(key_id) or certificates.generate_key_pair(suite)
                for key_id in key_ids}
        answer = self._action(Method.KEY_AGREEMENT, key_data_array([
            (key_id, agreement.key_agreement_data(key_id, ours[key_id], signing_key))
            for key_id in key_ids]))
        if answer is None:
            raise ProtocolError("key_agreement: the meter returned no key agreement data")
        agreed: dict[KeyId, Secret] = {}
        for key_id, key_data in parse_key_data(answer, "key_agreement answer"):
            if key_id not in ours:
                raise ProtocolError(f"key_agreement: the meter answered for key {key_id.name}, not asked for")
            peer = agreement.verify_key_agreement_data(key_id, key_data, server_signing_key)
            agreed[key_id] = derive_agreed_key(key_id, ours[key_id], peer,
                                               client_system_title=client_system_title,
                                               server_system_title=server_system_title)
        return agreed

    def generate_key_pair(self, kind: KeyPair) -> None:
        self._action(Method.GENERATE_KEY_PAIR, axdr.Enum(int(kind)))

    def generate_certificate_request(self, kind: KeyPair) -> x509.CertificateSigningRequest:
        answer = self._action(Method.GENERATE_CERTIFICATE_REQUEST, axdr.Enum(int(kind)))
        return certificates.load_csr(parse_octet_string(answer, "certificate signing request"))

    def import_certificate(self, certificate: x509.Certificate) -> None:
        self._action(Method.IMPORT_CERTIFICATE, certificate_der(certificate))

    def export_certificate(self, identification: CertificateIdentification) -> x509.Certificate:
        return parse_certificate(self._action(Method.EXPORT_CERTIFICATE, identification.to_axdr()),
                                 "exported certificate")

    def remove_certificate(self, identification: CertificateIdentification) -> None:
        self._action(Method.REMOVE_CERTIFICATE, identification.to_axdr())


__all__ = ["CosemClient", "SecuritySetup"]
