"""Security setup (class 64) in the simulated meter: the profile's object, its access rights per
client, and what attach_security_setup ties to the association layer (live client public keys,
the keys of the next association)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from sim_support import NEGOTIATED, START, make

from edge_agent.client.security_setup_calls import SecuritySetup
from edge_agent.dlms.apdu import (
    OMITTED,
    ActionRequestNormal,
    CosemAttributeDescriptor,
    CosemMethodDescriptor,
    DataAccessResult,
    GetRequestNormal,
    decode_apdu,
)
from edge_agent.dlms.association.server import ClientAccess, ServerSettings
from edge_agent.dlms.cosem.obis import Obis
from edge_agent.dlms.cosem.security_setup import (
    SECURITY_SETUP,
    BySerial,
    CertificateEntity,
    KeyId,
    KeyPair,
    serial_bytes,
)
from edge_agent.dlms.errors import ServiceError
from edge_agent.dlms.secret import Secret
from edge_agent.dlms.security import certificates
from edge_agent.keystore import KeyMaterial
from edge_agent.simulator.handler import RequestHandler
from edge_agent.simulator.meter_models import SimulatedMeter
from edge_agent.simulator.objects import AssociationContext
from edge_agent.simulator.security_setup_server import SecuritySetupServer, attach_security_setup

CLIENT_ST = bytes.fromhex("444c4d5300000001")
OTHER_ST = bytes.fromhex("444c4d5300000002")
KEK = Secret(bytes(range(32, 48)), "KEK")
INVOKE = 0xC1


def _certified(system_title: bytes) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    return key, certificates.self_signed_certificate(
        key, system_title, not_before=START - dt.timedelta(days=1), not_after=START + dt.timedelta(days=365))


class HandlerClient:
    """What SecuritySetup needs of a client, served by the simulated meter's RequestHandler as
    client ``client_sap``: every request and answer goes through its A-XDR encoding."""

    def __init__(self, model: SimulatedMeter, client_sap: int, system_title: bytes | None = CLIENT_ST) -> None:
        self.handler = RequestHandler(model)
        # The association layer's session carries the calling-AP-title (ServerSession does).
        self.context = AssociationContext(client_sap, model.view_for(client_sap), NEGOTIATED, 1024,
                                          session=SimpleNamespace(client_system_title=system_title))

    def _exchange(self, request: Any) -> Any:
        return decode_apdu(self.handler.handle(decode_apdu(request.encode()), self.context).encode())

    def get(self, code: Obis, class_id: int, attribute: int) -> Any:
        result = self._exchange(GetRequestNormal(INVOKE, CosemAttributeDescriptor(class_id, bytes(code), attribute))).result
        if isinstance(result, DataAccessResult):
            raise ServiceError(f"attribute {attribute}: {result.standard_name}", result.standard_name)
        return result

    def action(self, code: Obis, class_id: int, method: int, parameters: Any = OMITTED) -> Any:
        answer = self._exchange(ActionRequestNormal(
            INVOKE, CosemMethodDescriptor(class_id, bytes(code), method), parameters)).single_response
        if int(answer.result) != 0:
            raise ServiceError(f"method {method}: {answer.result.standard_name}", answer.result.standard_name)
        return answer.return_parameters


@dataclass
class Installed:
    model: SimulatedMeter
    setup: SecuritySetupServer
    client_public_keys: dict[bytes, Any]  # the association layer's live mapping
    client_key: ec.EllipticCurvePrivateKey

    def client(self, client_sap: int, system_title: bytes | None = CLIENT_ST) -> SecuritySetup:
        return SecuritySetup(HandlerClient(self.model, client_sap, system_title))


@pytest.fixture
def installed() -> Installed:
    """A T-210D model with the keys of an installation: its own pair and certificate, the
    client's certificate already known (as `simulate --keys-dir` makes it)."""
    model, _ = make("t210d")
    meter_key, meter_cert = _certified(model.system_title)
    client_key, client_cert = _certified(CLIENT_ST)
    keys = KeyMaterial(ek=Secret(bytes(16), "EK"), ak=Secret(bytes(range(16)), "AK"), kek=KEK,
                       client_signing_key=client_key, client_certificate=client_cert,
                       meter_signing_key=meter_key, meter_certificate=meter_cert)
    client_public_keys: dict[bytes, Any] = {}
    setup = attach_security_setup(model, keys, client_public_keys, suite=1)
    return Installed(model, setup, client_public_keys, client_key)


def test_the_profile_object_is_the_security_setup_server(installed) -> None:
    model = installed.model
    assert model.security_setup is installed.setup and model.security is installed.setup.state
    obj = model.objects[bytes(SECURITY_SETUP)]
    assert (obj.class_id, obj.version, sorted(obj.attributes), sorted(obj.methods)) == (
        64, 1, [2, 3, 4, 5, 6], list(range(1, 9)))


@pytest.mark.parametrize("sap, methods", [(16, [6, 7]), (1, list(range(1, 9)))])
def test_the_object_list_advertises_the_methods_of_the_access_table(sap, methods) -> None:
    model, _ = make("t210d")
    _, granted = model.view_for(sap).find(bytes(SECURITY_SETUP))
    assert sorted(m for m in granted.methods if granted.method(m)) == methods
    assert all(granted.attribute(a).readable for a in range(2, 7))


def test_attributes_through_the_handler(installed) -> None:
    setup, title = installed.client(16), installed.model.system_title
    assert setup.security_suite() == 1
    assert setup.server_system_title() == title
    assert setup.client_system_title() == CLIENT_ST  # the current association's
    assert {(c.entity, c.system_title) for c in setup.certificates()} == {
        (CertificateEntity.SERVER, title), (CertificateEntity.CLIENT, CLIENT_ST)}
    # No ciphering and no HLS: the association has no calling-AP-title.
    assert installed.client(16, system_title=None).client_system_title() == b""


def test_attach_publishes_the_client_keys(installed) -> None:
    keys = installed.client_public_keys
    assert list(keys) == [CLIENT_ST]
    assert keys[CLIENT_ST].public_key().public_numbers() == installed.client_key.public_key().public_numbers()


def test_public_client_imports_a_certificate_and_the_association_layer_sees_it(installed) -> None:
    _, new_cert = _certified(OTHER_ST)
    installed.client(16).import_certificate(new_cert)
    assert installed.client_public_keys[OTHER_ST] == new_cert
    # The management client removes it again: gone from the association layer as well.
    installed.client(1).remove_certificate(BySerial(serial_bytes(new_cert), new_cert.issuer.public_bytes()))
    assert list(installed.client_public_keys) == [CLIENT_ST]


def test_the_public_client_may_not_transfer_keys(installed) -> None:
    before = installed.setup.current_keys()
    with pytest.raises(ServiceError, match="read-write-denied"):
        installed.client(16).key_transfer(KEK, {KeyId.GLOBAL_UNICAST_ENCRYPTION_KEY: Secret(b"\x11" * 16)})
    assert installed.setup.current_keys() == before


def test_key_transfer_changes_the_keys_of_the_next_association(installed) -> None:
    setup = installed.setup
    settings = ServerSettings(installed.model.system_title, {1: ClientAccess(1)}, suite=1, ek=setup.state.ek,
                              ak=setup.state.ak, client_public_keys=installed.client_public_keys)
    new_ek, new_ak = Secret(b"\x11" * 16, "EK"), Secret(b"\x22" * 16, "AK")
    installed.client(1).key_transfer(KEK, {KeyId.GLOBAL_UNICAST_ENCRYPTION_KEY: new_ek,
                                           KeyId.AUTHENTICATION_KEY: new_ak})
    assert setup.current_keys() == (new_ek, new_ak)
    following = setup.settings_now(settings)
    assert (following.ek, following.ak) == (new_ek, new_ak)
    assert following.client_public_keys is installed.client_public_keys  # still the live mapping
    assert (settings.ek, settings.ak) != (new_ek, new_ak)  # an established association keeps its keys


def test_a_new_meter_key_pair_signs_the_next_association(installed) -> None:
    setup = installed.setup
    settings = setup.settings_now(ServerSettings(installed.model.system_title, {1: ClientAccess(1)}, suite=1))
    installed.client(1).generate_key_pair(KeyPair.DIGITAL_SIGNATURE)
    following = setup.settings_now(settings)
    assert following.signing_key is setup.state.key_pairs[KeyPair.DIGITAL_SIGNATURE]
    assert following.signing_key is not settings.signing_key


def test_before_attach_the_meter_has_no_keys_to_transfer() -> None:
    model, _ = make("t210d")
    with pytest.raises(ServiceError, match="other-reason"):
        SecuritySetup(HandlerClient(model, 1)).key_transfer(KEK, {KeyId.AUTHENTICATION_KEY: Secret(b"\x11" * 16)})
    assert model.security.ek is None and model.security.certificates == []


def test_the_generic_profile_has_the_object_too() -> None:
    model, _ = make("generic")
    setup = SecuritySetup(HandlerClient(model, 16))
    assert setup.server_system_title() == model.system_title
    assert setup.security_suite() == 0  # until the station attaches its keys
