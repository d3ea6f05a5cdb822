"""The simulated meter's Security setup (class 64, version 1): its keys, key pairs, certificates.

:class:`MeterKeyState` is the mutable key state the simulator owns. :class:`SecuritySetupServer`
serves attributes 2..6 and methods 1..8 on it (with the signature of
:data:`edge_agent.simulator.objects.Method`; refusals are :class:`Refused` with the
Action-Result a meter gives); the A-XDR codec is :mod:`edge_agent.dlms.cosem.security_setup`,
shared with the client. Every profile's meter has one (``SimulatedMeter.security_setup``);
:func:`attach_security_setup` gives it the installation's keys and ties it to the association
layer:

* certificates imported or removed here change the live ``client_public_keys`` mapping the
  association layer verifies a signed pass 3 (and HLS-7) against, at once;
* keys changed by key_transfer / key_agreement apply to the *next* association, as on a
  meter (Blue Book 4.4.7: new keys are used after the response has been sent):
  :meth:`SecuritySetupServer.settings_now` gives the association settings with the current keys.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from edge_agent.dlms.apdu.results import ActionResult
from edge_agent.dlms.association.server import ServerSettings
from edge_agent.dlms.cosem.security_setup import (
    Attribute as SetupAttribute,
)
from edge_agent.dlms.cosem.security_setup import (
    ByEntity,
    CertificateEntity,
    CertificateIdentification,
    CertificateInfo,
    CertificateType,
    KeyId,
    KeyPair,
    Method,
    SecurityPolicy,
    certificate_der,
    certificate_type,
    derive_agreed_key,
    key_data_array,
    parse_certificate,
    parse_identification,
    parse_key_data,
)
from edge_agent.dlms.encoding import axdr
from edge_agent.dlms.errors import DecodeError, SecurityError
from edge_agent.dlms.secret import Secret
from edge_agent.dlms.security import agreement, certificates, keywrap
from edge_agent.dlms.security.signing import PublicKeyOrCertificate
from edge_agent.keystore import KeyMaterial
from edge_agent.simulator.objects import Attribute, CosemObject, Refused, Request

if TYPE_CHECKING:
    from edge_agent.simulator.meter_models import SimulatedMeter

# key_id -> the MeterKeyState field it replaces
_KEY_FIELDS = {
    KeyId.GLOBAL_UNICAST_ENCRYPTION_KEY: "ek",
    KeyId.GLOBAL_BROADCAST_ENCRYPTION_KEY: "broadcast_ek",
    KeyId.AUTHENTICATION_KEY: "ak",
    KeyId.MASTER_KEY: "kek",
}
_PAIR_TYPE = {
    KeyPair.DIGITAL_SIGNATURE: CertificateType.DIGITAL_SIGNATURE,
    KeyPair.KEY_AGREEMENT: CertificateType.KEY_AGREEMENT,
    KeyPair.TLS: CertificateType.TLS,
}
_PAIR_USAGE = {
    KeyPair.DIGITAL_SIGNATURE: certificates.DIGITAL_SIGNATURE,
    KeyPair.KEY_AGREEMENT: certificates.KEY_AGREEMENT,
}

# The association layer protects requests and responses alike (ClientAccess.security), so
# the policies it can enforce are these four; security_policy reports one of them.
_AUTHENTICATED = SecurityPolicy.AUTHENTICATED_REQUEST | SecurityPolicy.AUTHENTICATED_RESPONSE
_ENCRYPTED = SecurityPolicy.ENCRYPTED_REQUEST | SecurityPolicy.ENCRYPTED_RESPONSE
_SIGNED = SecurityPolicy.DIGITALLY_SIGNED_REQUEST | SecurityPolicy.DIGITALLY_SIGNED_RESPONSE
_POLICIES = {
    "none": SecurityPolicy.NONE,
    "auth": _AUTHENTICATED,
    "enc": _ENCRYPTED,
    "authenc": _AUTHENTICATED | _ENCRYPTED,
}


def policy_of(security: str) -> SecurityPolicy:
    """security_policy (version 1 bits) of an association policy none/auth/enc/authenc."""
    return _POLICIES[security]


def security_of(policy: SecurityPolicy) -> str:
    """The association policy that enforces ``policy`` (every bit it asks for, requests
    and responses alike)."""
    authenticated, encrypted = bool(policy & _AUTHENTICATED), bool(policy & _ENCRYPTED)
    return {(False, False): "none", (True, False): "auth", (False, True): "enc"}.get(
        (authenticated, encrypted), "authenc")


@dataclass(frozen=True, slots=True)
class StoredCertificate:
    entity: CertificateEntity
    certificate: x509.Certificate

    @property
    def info(self) -> CertificateInfo:
        return CertificateInfo.of(self.certificate, self.entity)

    @property
    def system_title(self) -> bytes | None:
        try:
            return certificates.system_title_from_certificate(self.certificate)
        except SecurityError:
            return None


@dataclass(slots=True)
class MeterKeyState:
    """Everything secret or certified a meter holds. Mutable: the methods change it.

    Field names are the Blue Book's attribute names where there is one (security_policy,
    security_suite); ``system_title`` is attribute 5, server_system_title.
    """

    system_title: bytes
    security_suite: int = 1
    security_policy: SecurityPolicy = SecurityPolicy.NONE
    ek: Secret | None = None
    ak: Secret | None = None
    kek: Secret | None = None
    broadcast_ek: Secret | None = None
    key_pairs: dict[KeyPair, ec.EllipticCurvePrivateKey] = field(default_factory=dict)
    certificates: list[StoredCertificate] = field(default_factory=list)

    def __repr__(self) -> str:
        return (f"<MeterKeyState {self.system_title.hex().upper()} suite {self.security_suite}: "
                f"{len(self.key_pairs)} key pairs, {len(self.certificates)} certificates>")

    @classmethod
    def from_key_material(cls, keys: KeyMaterial, system_title: bytes, suite: int = 1) -> MeterKeyState:
        """The state of ``dlms-edge simulate --keys-dir``: the meter's pair and certificate,
        and the client's certificate already imported (as a commissioned T-210D)."""
        state = cls(system_title, suite, ek=keys.ek, ak=keys.ak, kek=keys.kek)
        if keys.meter_signing_key is not None:
            state.key_pairs[KeyPair.DIGITAL_SIGNATURE] = keys.meter_signing_key
        if keys.meter_certificate is not None:
            state.store(StoredCertificate(CertificateEntity.SERVER, keys.meter_certificate))
        if keys.client_certificate is not None:
            state.store(StoredCertificate(CertificateEntity.CLIENT, keys.client_certificate))
        return state

    def store(self, entry: StoredCertificate) -> None:
        """Add a certificate; one of the same entity, type and system title is replaced."""
        key = (entry.entity, certificate_type(entry.certificate), entry.system_title)
        self.certificates = [c for c in self.certificates
                             if (c.entity, certificate_type(c.certificate), c.system_title) != key]
        self.certificates.append(entry)

    def find(self, identification: CertificateIdentification) -> StoredCertificate | None:
        for entry in self.certificates:
            info = entry.info
            if isinstance(identification, ByEntity):
                if (info.entity, info.type, entry.system_title) == (
                        identification.entity, identification.type, identification.system_title):
                    return entry
            elif (info.serial_number, info.issuer) == (identification.serial_number, identification.issuer):
                return entry
        return None

    def client_signers(self) -> dict[bytes, x509.Certificate]:
        """Client system title -> its signing certificate (general-signing of pass 3, HLS-7)."""
        return {entry.system_title: entry.certificate for entry in self.certificates
                if entry.entity is CertificateEntity.CLIENT and entry.system_title is not None
                and certificate_type(entry.certificate) is CertificateType.DIGITAL_SIGNATURE}

    def signer(self, system_title: bytes) -> x509.Certificate | None:
        return self.client_signers().get(bytes(system_title))


def _client_system_title(request: Request) -> bytes:
    """The calling-AP-title of the current association (attribute 4, client_system_title).

    The association layer keeps it on its session object (``AssociationContext.session``,
    a :class:`edge_agent.dlms.association.server.ServerSession` in the simulator); an
    association without ciphering or HLS has none (empty octet-string).
    """
    session = getattr(request.association, "session", None)
    return bytes(getattr(session, "client_system_title", None) or b"")


class SecuritySetupServer:
    """The methods and attributes of one Security setup object over a :class:`MeterKeyState`.

    ``generate_key`` makes key pairs (the suite's curve); tests pass a deterministic one.
    ``client_public_keys``: the association layer's live mapping (client system title ->
    certificate); kept equal to the imported client signing certificates after every change.
    """

    def __init__(self, state: MeterKeyState,
                 generate_key: Callable[[int], ec.EllipticCurvePrivateKey] = certificates.generate_key_pair,
                 client_public_keys: MutableMapping[bytes, PublicKeyOrCertificate] | None = None,
                 ) -> None:
        self.state = state
        self.generate_key = generate_key
        self.client_public_keys = client_public_keys
        self.methods: dict[int, Callable[[Request, Any], Any]] = {
            Method.SECURITY_ACTIVATE: self.security_activate,
            Method.KEY_TRANSFER: self.key_transfer,
            Method.KEY_AGREEMENT: self.key_agreement,
            Method.GENERATE_KEY_PAIR: self.generate_key_pair,
            Method.GENERATE_CERTIFICATE_REQUEST: self.generate_certificate_request,
            Method.IMPORT_CERTIFICATE: self.import_certificate,
            Method.EXPORT_CERTIFICATE: self.export_certificate,
            Method.REMOVE_CERTIFICATE: self.remove_certificate,
        }

    # --- what the association layer reads ---------------------------------------------------

    def current_keys(self) -> tuple[Secret | None, Secret | None]:
        """(EK, AK) as they are now: what the next association uses."""
        return self.state.ek, self.state.ak

    def settings_now(self, settings: ServerSettings) -> ServerSettings:
        """``settings`` with the keys held now (EK, AK, the meter's signing key), for a new
        association: one already established keeps the keys it started with."""
        ek, ak = self.current_keys()
        signing_key = self.state.key_pairs.get(KeyPair.DIGITAL_SIGNATURE, settings.signing_key)
        return dataclasses.replace(settings, ek=ek, ak=ak, signing_key=signing_key)

    def publish_client_keys(self) -> None:
        """Make ``client_public_keys`` hold exactly the imported client signing certificates."""
        if self.client_public_keys is None:
            return
        current = self.state.client_signers()
        for title in [t for t in self.client_public_keys if t not in current]:
            del self.client_public_keys[title]
        self.client_public_keys.update(current)

    # --- attributes -----------------------------------------------------------------------

    def attributes(self) -> dict[int, Attribute]:
        # Getters read self.state when called: attach_security_setup may replace it.
        def certificate_list(request: Request) -> axdr.Array:
            return axdr.Array([c.info.to_axdr() for c in self.state.certificates])

        return {
            SetupAttribute.SECURITY_POLICY: Attribute(
                get=lambda r: axdr.Enum(int(self.state.security_policy))),
            SetupAttribute.SECURITY_SUITE: Attribute(get=lambda r: axdr.Enum(self.state.security_suite)),
            SetupAttribute.CLIENT_SYSTEM_TITLE: Attribute(
                get=lambda r: axdr.OctetString(_client_system_title(r))),
            SetupAttribute.SERVER_SYSTEM_TITLE: Attribute(
                get=lambda r: axdr.OctetString(self.state.system_title)),
            SetupAttribute.CERTIFICATES: Attribute(get=certificate_list),
        }

    def cosem_object(self, logical_name: bytes) -> CosemObject:
        return CosemObject(64, 1, bytes(logical_name), self.attributes(), dict(self.methods))

    def invoke(self, request: Request, method_id: int, parameter: Any) -> Any:
        """Run one method (what the request handler does through the registry)."""
        method = self.methods.get(method_id)
        if method is None:
            raise Refused(ActionResult.OBJECT_UNAVAILABLE, f"Security setup has no method {method_id}")
        return method(request, parameter)

    # --- methods --------------------------------------------------------------------------

    def security_activate(self, request: Request, parameter: Any) -> None:
        if not isinstance(parameter, int) or isinstance(parameter, bool) or not 0 <= parameter <= 0xFF:
            raise Refused(ActionResult.TYPE_UNMATCHED, "security_activate takes an enum (policy bits)")
        asked = SecurityPolicy(parameter)
        if asked & _SIGNED:
            raise Refused(ActionResult.OTHER_REASON,
                          "this meter does not enforce digitally signed requests or responses")
        # What the meter enforces: requests and responses are protected alike.
        policy = policy_of(security_of(asked))
        # Blue Book 4.4.7: the policy can only be strengthened, never weakened.
        if self.state.security_policy & ~policy:
            raise Refused(ActionResult.OTHER_REASON,
                          f"security policy {int(self.state.security_policy):#04x} cannot be weakened "
                          f"to {int(asked):#04x}")
        if policy and (self.state.ek is None or (policy & _AUTHENTICATED and self.state.ak is None)):
            raise Refused(ActionResult.OTHER_REASON,
                          f"security policy {int(asked):#04x} needs keys the meter does not hold (EK, AK)")
        # security_policy reports what is enforced; the association layer applies it from
        # the next association on (SimulatedMeterStation.settings_now).
        self.state.security_policy = policy

    def key_transfer(self, request: Request, parameter: Any) -> None:
        entries = _parsed(parse_key_data, parameter, "key_transfer")
        kek = self.state.kek
        if kek is None:
            raise Refused(ActionResult.OTHER_REASON, "no master key (KEK) is set, keys cannot be unwrapped")
        try:
            # All or nothing: every key is unwrapped before any is replaced.
            new = {key_id: keywrap.unwrap(kek, wrapped, f"new {key_id.name.lower()}")
                   for key_id, wrapped in entries}
        except (SecurityError, DecodeError) as error:
            raise Refused(ActionResult.OTHER_REASON, f"key_transfer: {error}") from None
        expected = 32 if self.state.security_suite == 2 else 16
        for key_id, key in new.items():
            if len(key) != expected:
                raise Refused(ActionResult.OTHER_REASON,
                              f"key_transfer: {key_id.name} of {len(key)} bytes, suite {self.state.security_suite} "
                              f"uses {expected}-byte keys")
        for key_id, key in new.items():
            setattr(self.state, _KEY_FIELDS[key_id], key)

    def key_agreement(self, request: Request, parameter: Any) -> axdr.Array:
        """Ephemeral Unified Model: check the client's signed ephemeral key, answer with ours."""
        entries = _parsed(parse_key_data, parameter, "key_agreement")
        client_title = _client_system_title(request)
        client_cert = self.state.signer(client_title) if client_title else None
        if client_cert is None:
            raise Refused(ActionResult.OTHER_REASON,
                          "key_agreement: no signing certificate of the client is imported")
        signing_key = self.state.key_pairs.get(KeyPair.DIGITAL_SIGNATURE)
        if signing_key is None:
            raise Refused(ActionResult.OTHER_REASON, "key_agreement: the meter has no signing key pair")
        answers, agreed = [], {}
        for key_id, key_data in entries:
            try:
                peer = agreement.verify_key_agreement_data(key_id, key_data, client_cert.public_key())
            except (SecurityError, DecodeError) as error:
                raise Refused(ActionResult.OTHER_REASON, f"key_agreement: {error}") from None
            ours = self.generate_key(self.state.security_suite)
            agreed[key_id] = derive_agreed_key(key_id, ours, peer, client_system_title=client_title,
                                               server_system_title=self.state.system_title)
            answers.append((key_id, agreement.key_agreement_data(key_id, ours, signing_key)))
        for key_id, key in agreed.items():
            setattr(self.state, _KEY_FIELDS[key_id], key)
        return key_data_array(answers)

    def generate_key_pair(self, request: Request, parameter: Any) -> None:
        kind = _key_pair(parameter)
        self.state.key_pairs[kind] = self.generate_key(self.state.security_suite)
        # The meter's certificates of the old pair no longer match its key.
        self.state.certificates = [
            c for c in self.state.certificates
            if not (c.entity is CertificateEntity.SERVER and certificate_type(c.certificate) is _PAIR_TYPE[kind])]

    def generate_certificate_request(self, request: Request, parameter: Any) -> axdr.OctetString:
        kind = _key_pair(parameter)
        key = self.state.key_pairs.get(kind)
        if key is None or kind not in _PAIR_USAGE:
            raise Refused(ActionResult.OTHER_REASON,
                          f"no {kind.name.lower()} key pair: call generate_key_pair first")
        csr = certificates.build_csr(key, self.state.system_title, usage=_PAIR_USAGE[kind])
        return axdr.OctetString(csr.public_bytes(serialization.Encoding.DER))

    def import_certificate(self, request: Request, parameter: Any) -> None:
        try:
            certificate = parse_certificate(parameter, "import_certificate")
        except DecodeError as error:
            raise Refused(ActionResult.TYPE_UNMATCHED, str(error)) from None
        public = certificate.public_key()
        curve = "secp384r1" if self.state.security_suite == 2 else "secp256r1"
        if not isinstance(public, ec.EllipticCurvePublicKey) or public.curve.name != curve:
            raise Refused(ActionResult.OTHER_REASON,
                          f"certificate key is not on {curve}, the curve of security suite {self.state.security_suite}")
        entry = StoredCertificate(_entity_of(certificate, self.state.system_title), certificate)
        if entry.entity is not CertificateEntity.CERTIFICATION_AUTHORITY and entry.system_title is None:
            raise Refused(ActionResult.OTHER_REASON,
                          "certificate subject CN is not a system title (16 hex digits, Green Book 9.2.6)")
        if entry.entity is CertificateEntity.SERVER:
            own = self.state.key_pairs.get(KeyPair.DIGITAL_SIGNATURE)
            if own is None or own.public_key().public_numbers() != public.public_numbers():
                raise Refused(ActionResult.OTHER_REASON,
                              "certificate names this meter but does not certify one of its key pairs")
        self.state.store(entry)
        self.publish_client_keys()

    def export_certificate(self, request: Request, parameter: Any) -> axdr.OctetString:
        found = self.state.find(_parsed(parse_identification, parameter, "export_certificate"))
        if found is None:
            raise Refused(ActionResult.OTHER_REASON, "export_certificate: no such certificate")
        return certificate_der(found.certificate)

    def remove_certificate(self, request: Request, parameter: Any) -> None:
        identification = _parsed(parse_identification, parameter, "remove_certificate")
        found = self.state.find(identification)
        if found is None:
            raise Refused(ActionResult.OTHER_REASON, "remove_certificate: no such certificate")
        if found.entity is CertificateEntity.SERVER:
            raise Refused(ActionResult.OTHER_REASON, "the meter's own certificates cannot be removed")
        self.state.certificates.remove(found)
        self.publish_client_keys()


def _parsed(parser: Callable[..., Any], parameter: Any, what: str) -> Any:
    try:
        return parser(parameter)
    except DecodeError as error:
        raise Refused(ActionResult.TYPE_UNMATCHED, f"{what}: {error}") from None


def _key_pair(parameter: Any) -> KeyPair:
    try:
        return KeyPair(int(parameter))
    except (TypeError, ValueError):
        raise Refused(ActionResult.TYPE_UNMATCHED,
                      "key_pair must be an enum: 0 digital signature, 1 key agreement, 2 TLS") from None


def _entity_of(certificate: x509.Certificate, own_system_title: bytes) -> CertificateEntity:
    try:
        if certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca:
            return CertificateEntity.CERTIFICATION_AUTHORITY
    except x509.ExtensionNotFound:
        pass
    try:
        title = certificates.system_title_from_certificate(certificate)
    except SecurityError:
        return CertificateEntity.OTHER
    return CertificateEntity.SERVER if title == own_system_title else CertificateEntity.CLIENT


def attach_security_setup(model: SimulatedMeter, keys: KeyMaterial,
                          client_public_keys: MutableMapping[bytes, PublicKeyOrCertificate], *,
                          suite: int, policy: SecurityPolicy = SecurityPolicy.NONE) -> SecuritySetupServer:
    """Give ``model``'s Security setup the installation's keys and tie it to the association
    layer's live ``client_public_keys``; returns it. The station builds each new association
    from :meth:`SecuritySetupServer.settings_now`, so that keys changed by key_transfer apply
    from the next association on (``SimulatedMeterStation``: in ``__init__``
    ``self.security_setup = attach_security_setup(self.model, self.keys, self.client_public_keys,
    suite=suite)``; in ``responder`` ``ServerSession(self.security_setup.settings_now(self.settings), ...)``).
    """
    server = model.security_setup
    server.state = MeterKeyState.from_key_material(keys, model.system_title, suite)
    server.state.security_policy = policy  # what the association layer enforces
    server.client_public_keys = client_public_keys
    server.publish_client_keys()
    return server


__all__ = ["MeterKeyState", "SecuritySetupServer", "StoredCertificate", "attach_security_setup",
           "policy_of", "security_of"]
