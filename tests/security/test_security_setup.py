"""Security setup (class 64): client requests ↔ simulated meter, through encoded APDUs."""

from __future__ import annotations

import datetime as dt
import json
from types import SimpleNamespace
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given
from hypothesis import strategies as st
from known_answers import VECTORS

from edge_agent.client.security_setup_calls import SecuritySetup
from edge_agent.dlms.apdu import (
    OMITTED,
    ActionRequestNormal,
    ActionResponseNormal,
    ActionResponseWithOptionalData,
    ActionResult,
    CosemAttributeDescriptor,
    CosemMethodDescriptor,
    GetRequestNormal,
    GetResponseNormal,
    decode_apdu,
)
from edge_agent.dlms.apdu.conformance import Conformance
from edge_agent.dlms.cosem.obis import Obis
from edge_agent.dlms.cosem.security_setup import (
    ByEntity,
    BySerial,
    CertificateEntity,
    CertificateInfo,
    CertificateType,
    KeyId,
    KeyPair,
    SecurityPolicy,
    key_data_array,
    key_transfer_parameter,
    parse_certificates,
    parse_identification,
    parse_key_data,
    serial_bytes,
)
from edge_agent.dlms.encoding import axdr
from edge_agent.dlms.errors import DecodeError, ServiceError
from edge_agent.dlms.secret import Secret
from edge_agent.dlms.security import certificates
from edge_agent.simulator.objects import AssociationContext, ObjectView, Refused, Request
from edge_agent.simulator.security_setup_server import MeterKeyState, SecuritySetupServer

METER_ST = bytes.fromhex("5341476770067a23")
CLIENT_ST = bytes.fromhex("444c4d5300000001")
NOW = dt.datetime(2026, 11, 25, 1, 0, tzinfo=dt.UTC)
KEK = Secret(bytes.fromhex("16021623d78c463dafc26f8d83f41334"), "KEK")


class Loopback:
    """A client whose requests are encoded, decoded, served by the meter side and answered
    with encoded responses: the whole A-XDR path without a link."""

    def __init__(self, server: SecuritySetupServer, client_system_title: bytes = CLIENT_ST) -> None:
        self.server = server
        # The association layer's session carries the client's calling-AP-title.
        association = AssociationContext(1, ObjectView(()), Conformance.ACTION | Conformance.GET, 1024,
                                         session=SimpleNamespace(client_system_title=client_system_title))
        self.request = Request(NOW, NOW, association)

    def get(self, code: Obis, class_id: int, attribute: int) -> Any:
        wire = GetRequestNormal(0xC1, CosemAttributeDescriptor(class_id, bytes(code), attribute)).encode()
        request = decode_apdu(wire)
        value = self.server.attributes()[request.descriptor.attribute_id].get(self.request)
        return decode_apdu(GetResponseNormal(0xC1, value).encode()).result

    def action(self, code: Obis, class_id: int, method: int, parameters: Any = OMITTED) -> Any:
        wire = ActionRequestNormal(0xC1, CosemMethodDescriptor(class_id, bytes(code), method), parameters).encode()
        request = decode_apdu(wire)
        parameter = request.method_invocation_parameters
        try:
            returned = self.server.invoke(self.request, request.descriptor.method_id,
                                          None if parameter is OMITTED else parameter)
            single = ActionResponseWithOptionalData(ActionResult.SUCCESS, OMITTED if returned is None else returned)
        except Refused as refusal:
            single = ActionResponseWithOptionalData(ActionResult(int(refusal.result)))
        answer = decode_apdu(ActionResponseNormal(0xC1, single).encode()).single_response
        if answer.result != ActionResult.SUCCESS:
            raise ServiceError(f"meter refused method {method}: {answer.result.standard_name}",
                               answer.result.standard_name)
        return answer.return_parameters


def _certified(system_title: bytes, usage: str = certificates.DIGITAL_SIGNATURE,
               curve: ec.EllipticCurve | None = None) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(curve or ec.SECP256R1())
    certificate = certificates.self_signed_certificate(
        key, system_title, not_before=NOW - dt.timedelta(days=1), not_after=NOW + dt.timedelta(days=365),
        usage=usage)
    return key, certificate


@pytest.fixture
def meter() -> tuple[MeterKeyState, SecuritySetupServer, SecuritySetup, ec.EllipticCurvePrivateKey]:
    meter_key, meter_cert = _certified(METER_ST)
    state = MeterKeyState(METER_ST, 1, ek=Secret(bytes(range(16)), "EK"), ak=Secret(bytes(range(16, 32)), "AK"), kek=KEK)
    state.key_pairs[KeyPair.DIGITAL_SIGNATURE] = meter_key
    server = SecuritySetupServer(state)
    server.import_certificate(Loopback(server).request, certificates.certificate_der(meter_cert))
    return state, server, SecuritySetup(Loopback(server)), meter_key


# --- codec ---------------------------------------------------------------------------------


@given(st.sampled_from(CertificateEntity), st.sampled_from(CertificateType),
       *(st.binary(max_size=40) for _ in range(4)))
def test_certificate_info_round_trip(entity, kind, serial, issuer, subject, alt) -> None:
    info = CertificateInfo(entity, kind, serial, issuer, subject, alt)
    assert CertificateInfo.from_axdr(axdr.decode_all(axdr.encode(info.to_axdr()))) == info


@given(st.one_of(
    st.builds(ByEntity, st.sampled_from(CertificateEntity), st.sampled_from(CertificateType), st.binary(max_size=8)),
    st.builds(BySerial, st.binary(max_size=20), st.binary(max_size=40))))
def test_identification_round_trip(identification) -> None:
    assert parse_identification(axdr.decode_all(axdr.encode(identification.to_axdr()))) == identification


def test_key_transfer_parameter_matches_the_rfc3394_vector() -> None:
    case = next(c for c in json.loads((VECTORS / "security.json").read_text())["cases"] if c["id"] == "key-wrap")
    kek = Secret(bytes.fromhex(case["inputs"]["kek"]), "KEK")
    key = Secret(bytes.fromhex(case["inputs"]["key"]), "EK")
    parameter = key_transfer_parameter(kek, {KeyId.GLOBAL_UNICAST_ENCRYPTION_KEY: key})
    assert axdr.encode(parameter).hex() == "0101020216000918" + case["expected"]["wrapped"]
    assert parse_key_data(parameter) == [(KeyId.GLOBAL_UNICAST_ENCRYPTION_KEY, bytes.fromhex(case["expected"]["wrapped"]))]


@pytest.mark.parametrize("bad", [axdr.Array([]), axdr.Structure(()), axdr.Array([axdr.Structure((axdr.Enum(9), axdr.OctetString(b"")))])])
def test_malformed_key_data(bad) -> None:
    with pytest.raises(DecodeError):
        parse_key_data(bad)


@given(st.lists(st.tuples(st.sampled_from(KeyId), st.binary(max_size=40)), min_size=1, max_size=4))
def test_key_data_round_trip(entries) -> None:
    assert parse_key_data(axdr.decode_all(axdr.encode(key_data_array(entries)))) == entries


_DATA = st.recursive(
    st.one_of(st.none(), st.integers(-(2**31), 2**31 - 1),
              st.binary(max_size=12).map(axdr.OctetString)),
    lambda inner: st.one_of(st.lists(inner, max_size=4).map(axdr.Array),
                            st.lists(inner, max_size=7).map(lambda v: axdr.Structure(tuple(v)))),
    max_leaves=12)


@given(_DATA)
def test_parsers_refuse_any_malformed_value_with_a_decode_error(value) -> None:
    for parse in (parse_key_data, parse_identification, parse_certificates):
        try:
            parse(value)
        except DecodeError:
            pass


# --- attributes and methods ------------------------------------------------------------------


def test_attributes(meter) -> None:
    _state, _, setup, _ = meter
    assert setup.security_suite() == 1
    assert setup.server_system_title() == METER_ST and setup.client_system_title() == CLIENT_ST
    assert setup.security_policy() is SecurityPolicy.NONE
    [own] = setup.certificates()
    assert (own.entity, own.type, own.system_title) == (CertificateEntity.SERVER, CertificateType.DIGITAL_SIGNATURE, METER_ST)


def test_import_certificate_then_it_is_listed(meter) -> None:
    state, _, setup, _ = meter
    _, client_cert = _certified(CLIENT_ST)
    setup.import_certificate(client_cert)
    listed = {(c.entity, c.system_title) for c in setup.certificates()}
    assert (CertificateEntity.CLIENT, CLIENT_ST) in listed
    assert state.signer(CLIENT_ST) == client_cert
    assert setup.export_certificate(ByEntity(CertificateEntity.CLIENT, CertificateType.DIGITAL_SIGNATURE, CLIENT_ST)) == client_cert
    by_serial = BySerial(serial_bytes(client_cert), client_cert.issuer.public_bytes())
    assert setup.export_certificate(by_serial) == client_cert
    setup.remove_certificate(by_serial)
    assert state.signer(CLIENT_ST) is None
    with pytest.raises(ServiceError, match="other-reason"):
        setup.remove_certificate(by_serial)


@pytest.mark.parametrize("make", [
    lambda: _certified(CLIENT_ST, curve=ec.SECP384R1())[1],  # wrong curve for suite 1
    lambda: _certified(METER_ST)[1],  # names the meter but is not its key
])
def test_import_refuses_unusable_certificates(meter, make) -> None:
    _, _, setup, _ = meter
    with pytest.raises(ServiceError):
        setup.import_certificate(make())
    assert len(setup.certificates()) == 1


def test_import_garbage_is_type_unmatched(meter) -> None:
    _, server, _, _ = meter
    with pytest.raises(Refused) as caught:
        server.import_certificate(Loopback(server).request, axdr.OctetString(b"not a certificate"))
    assert caught.value.result is ActionResult.TYPE_UNMATCHED


def test_the_meter_keeps_its_own_certificate(meter) -> None:
    _, _, setup, _ = meter
    with pytest.raises(ServiceError):
        setup.remove_certificate(ByEntity(CertificateEntity.SERVER, CertificateType.DIGITAL_SIGNATURE, METER_ST))


def test_key_transfer_the_meter_unwraps_the_new_key(meter) -> None:
    state, _, setup, _ = meter
    new_ek, new_ak = Secret(b"\x11" * 16, "EK"), Secret(b"\x22" * 16, "AK")
    setup.key_transfer(KEK, {KeyId.GLOBAL_UNICAST_ENCRYPTION_KEY: new_ek, KeyId.AUTHENTICATION_KEY: new_ak})
    assert state.ek == new_ek and state.ak == new_ak and state.kek == KEK


def test_key_transfer_with_a_wrong_kek_changes_nothing(meter) -> None:
    state, _, setup, _ = meter
    before = (state.ek, state.ak)
    with pytest.raises(ServiceError, match="other-reason"):
        setup.key_transfer(Secret(b"\x99" * 16, "KEK"), {KeyId.GLOBAL_UNICAST_ENCRYPTION_KEY: Secret(b"\x11" * 16)})
    assert (state.ek, state.ak) == before


def test_key_transfer_of_a_wrong_length_key_is_refused(meter) -> None:
    state, _, setup, _ = meter
    with pytest.raises(ServiceError):
        setup.key_transfer(KEK, {KeyId.GLOBAL_UNICAST_ENCRYPTION_KEY: Secret(b"\x11" * 32)})
    assert state.ek == Secret(bytes(range(16)))


def test_key_agreement_both_sides_derive_the_same_key(meter) -> None:
    state, _, setup, meter_key = meter
    client_key, client_cert = _certified(CLIENT_ST)
    setup.import_certificate(client_cert)
    agreed = setup.key_agreement([KeyId.GLOBAL_UNICAST_ENCRYPTION_KEY], signing_key=client_key,
                                 server_signing_key=meter_key.public_key(),
                                 client_system_title=CLIENT_ST, server_system_title=METER_ST)
    assert agreed[KeyId.GLOBAL_UNICAST_ENCRYPTION_KEY] == state.ek
    assert state.ek != Secret(bytes(range(16)))


def test_key_agreement_from_an_unknown_client_is_refused(meter) -> None:
    _state, _, setup, meter_key = meter
    client_key, _ = _certified(CLIENT_ST)  # certificate never imported
    with pytest.raises(ServiceError):
        setup.key_agreement([KeyId.AUTHENTICATION_KEY], signing_key=client_key,
                            server_signing_key=meter_key.public_key(),
                            client_system_title=CLIENT_ST, server_system_title=METER_ST)


def test_generate_key_pair_and_certificate_request(meter) -> None:
    state, _, setup, meter_key = meter
    setup.generate_key_pair(KeyPair.DIGITAL_SIGNATURE)
    new_key = state.key_pairs[KeyPair.DIGITAL_SIGNATURE]
    assert new_key.public_key().public_numbers() != meter_key.public_key().public_numbers()
    assert setup.certificates() == []  # the old certificate certified the old key
    csr = setup.generate_certificate_request(KeyPair.DIGITAL_SIGNATURE)
    assert csr.is_signature_valid
    assert certificates.system_title_from_name(csr.subject) == METER_ST
    assert csr.public_key().public_numbers() == new_key.public_key().public_numbers()


def test_certificate_request_without_a_key_pair(meter) -> None:
    _, _, setup, _ = meter
    with pytest.raises(ServiceError):
        setup.generate_certificate_request(KeyPair.KEY_AGREEMENT)


def test_security_activate_strengthens_only(meter) -> None:
    state, _, setup, _ = meter
    strong = SecurityPolicy.AUTHENTICATED_REQUEST | SecurityPolicy.ENCRYPTED_REQUEST
    setup.security_activate(strong)
    # The meter protects requests and responses alike: it reports what it enforces.
    assert setup.security_policy() == strong | SecurityPolicy.AUTHENTICATED_RESPONSE | SecurityPolicy.ENCRYPTED_RESPONSE
    with pytest.raises(ServiceError):
        setup.security_activate(SecurityPolicy.AUTHENTICATED_REQUEST)
    assert state.security_policy == setup.security_policy()


def test_unknown_method_and_bad_parameters(meter) -> None:
    _, server, _, _ = meter
    request = Loopback(server).request
    with pytest.raises(Refused) as caught:
        server.invoke(request, 9, None)
    assert caught.value.result is ActionResult.OBJECT_UNAVAILABLE
    for method, parameter in ((4, axdr.OctetString(b"x")), (2, axdr.Enum(1)), (7, axdr.Structure((axdr.Enum(5), axdr.Structure(()))))):
        with pytest.raises(Refused) as caught:
            server.invoke(request, method, parameter)
        assert caught.value.result is ActionResult.TYPE_UNMATCHED


def test_cosem_object_serves_the_methods(meter) -> None:
    _, server, _, _ = meter
    obj = server.cosem_object(bytes(Obis(0, 0, 43, 0, 0, 255)))
    assert (obj.class_id, obj.version, sorted(obj.methods)) == (64, 1, list(range(1, 9)))
    assert sorted(obj.attributes) == [2, 3, 4, 5, 6]
