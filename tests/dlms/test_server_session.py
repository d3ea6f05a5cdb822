"""Meter-side session: AARQ checks and diagnostics, HLS verification, replay log, release."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given, settings
from hypothesis import strategies as st
from known_answers import cases
from session_harness import AK, CLIENT_TITLE, CTOS, EK, ENERGY, METER_TITLE, STOC, make_link

from edge_agent.dlms import apdu as x
from edge_agent.dlms.apdu.acse import (
    AARE,
    AARQ,
    RLRE,
    ApplicationContextName,
    AuthenticationValue,
    MechanismName,
)
from edge_agent.dlms.apdu.conformance import Conformance
from edge_agent.dlms.association.client import ClientSettings, ClientState
from edge_agent.dlms.association.events import Associated, GetResult, Released
from edge_agent.dlms.association.server import (
    ClientAccess,
    CounterLog,
    ServerSession,
    ServerSettings,
    ServerState,
)
from edge_agent.dlms.errors import AssociationError, ConfigError, DlmsError, ExceptionResponseError
from edge_agent.dlms.secret import Secret
from edge_agent.dlms.security import CipherKeys, SecurityControl, protect, unprotect
from edge_agent.dlms.security.certificates import public_key_from_point

VECTORS = cases("security.json")


def authenc(suite: int = 0, **extra) -> ClientSettings:
    return ClientSettings(
        security="authenc",
        suite=suite,
        authentication="hls-gmac",
        system_title=CLIENT_TITLE,
        ek=EK,
        ak=AK,
        **extra,
    )


def access(**extra) -> ClientAccess:
    return ClientAccess(1, security="authenc", authentication="hls-gmac", **extra)


def refusal(apdu: bytes) -> str:
    aare = AARE.decode(apdu)
    assert not aare.accepted
    return aare.result_source_diagnostic.standard_name


def test_replayed_request_is_refused_and_logged() -> None:
    log = CounterLog()
    link = make_link(authenc(), access(), counters=log, client_ic=40)
    link.associate()
    request = link.client.get(ENERGY)
    link.client.receive_apdu(link.server.receive_apdu(request))
    answer = link.server.receive_apdu(request)
    refused = x.decode_apdu(answer)
    assert refused == x.ExceptionResponse(
        x.StateError.SERVICE_NOT_ALLOWED, x.ExceptionServiceError.INVOCATION_COUNTER_ERROR, 44
    )
    assert [(e.invocation_counter, e.where, e.accepted) for e in log.received] == [
        (40, "glo-initiate-request", True),
        (42, "glo-action-request", True),
        (41, "f(StoC)", True),
        (43, "glo-get-request", True),
        (43, "glo-get-request", False),
    ]
    assert log.refused[0].system_title == CLIENT_TITLE


def test_counters_survive_reassociation_and_lower_counters_are_refused() -> None:
    log = CounterLog()
    first = make_link(authenc(), access(), counters=log, client_ic=100)
    first.associate()
    second = make_link(
        authenc(), access(), counters=log, client_ic=50
    )  # a client that lost its counter
    with pytest.raises(AssociationError, match="deciphering-error"):
        second.associate()
    assert log.refused[-1].invocation_counter == 50


def test_request_before_association_and_plain_request_under_policy() -> None:
    link = make_link(authenc(), access())
    plain_get = x.GetRequestNormal(0xC1, ENERGY).encode()
    assert link.server.receive_apdu(plain_get) == bytes.fromhex("d80101")
    link.associate()
    assert link.server.receive_apdu(plain_get) == bytes.fromhex("d80101")
    assert link.server.state is ServerState.ASSOCIATED


def test_only_pass3_is_allowed_before_pass4() -> None:
    link = make_link(authenc(), access())
    link.client.receive_apdu(link.server.receive_apdu(link.client.associate()))
    assert link.server.state is ServerState.AWAITING_PASS3
    sneaky = protect(
        x.GetRequestNormal(0xC1, ENERGY).encode(),
        sc=SecurityControl.of(0, "authenc"),
        keys=CipherKeys(EK, AK),
        system_title=CLIENT_TITLE,
        invocation_counter=77,
    )
    assert link.server.receive_apdu(sneaky) == bytes.fromhex("d80101")


def _aarq(**fields) -> bytes:
    initiate = x.InitiateRequest(Conformance.GET).encode()
    return AARQ(user_information=initiate, **fields).encode()


@pytest.mark.parametrize(
    "client_access, aarq, diagnostic",
    [
        (
            ClientAccess(16),
            _aarq(application_context_name=ApplicationContextName.LOGICAL_NAME_WITH_CIPHERING),
            "application-context-name-not-supported",
        ),
        (
            ClientAccess(16, authentication="low", password=Secret(b"x")),
            _aarq(),
            "authentication-mechanism-name-required",
        ),
        (
            ClientAccess(16),
            _aarq(
                mechanism_name=MechanismName.LOW,
                sender_acse_requirements=True,
                calling_authentication_value=AuthenticationValue(Secret(b"x")),
            ),
            "authentication-mechanism-name-not-recognised",
        ),
        (
            ClientAccess(16, security="authenc", authentication="hls-gmac"),
            _aarq(
                application_context_name=ApplicationContextName.LOGICAL_NAME_WITH_CIPHERING,
                mechanism_name=MechanismName.HIGH_GMAC,
                sender_acse_requirements=True,
                calling_authentication_value=AuthenticationValue(Secret(CTOS)),
            ),
            "calling-ap-title-not-recognized",
        ),
    ],
)
def test_aarq_refusals_carry_the_meters_diagnostic(
    client_access: ClientAccess, aarq: bytes, diagnostic: str
) -> None:
    link = make_link(ClientSettings(), client_access)
    assert refusal(link.server.receive_apdu(aarq)) == diagnostic
    assert link.server.state is ServerState.IDLE


def test_unknown_client_sap_and_unreadable_aarq_are_refused() -> None:
    link = make_link(ClientSettings(), ClientAccess(16))
    link.server.client_sap = 99
    assert refusal(link.server.receive_apdu(_aarq())) == "no-reason-given"
    link.server.client_sap = 16
    assert refusal(link.server.receive_apdu(b"\x60\x03\xa1\x01")) == "no-reason-given"


def test_incompatible_conformance_is_an_initiate_error() -> None:
    link = make_link(ClientSettings(conformance=Conformance.WRITE), ClientAccess(16))
    with pytest.raises(AssociationError, match="incompatible-conformance"):
        link.associate()


def test_release_of_a_ciphered_association() -> None:
    link = make_link(authenc(), access())
    link.associate()
    rlrq = link.client.release()
    assert rlrq[0] == 0x62 and b"\x21" in rlrq  # glo-initiate-request inside
    rlre = link.server.receive_apdu(rlrq)
    assert RLRE.decode(rlre).user_information[0] == 0x28
    assert link.client.receive_apdu(rlre) == Released("normal")
    assert link.server.state is ServerState.IDLE


def test_hls7_ecdsa_association() -> None:
    client_key = ec.generate_private_key(ec.SECP256R1())
    meter_key = ec.generate_private_key(ec.SECP256R1())
    settings = ClientSettings(
        security="authenc",
        suite=1,
        authentication="hls-ecdsa",
        system_title=CLIENT_TITLE,
        ek=EK,
        ak=AK,
        signing_key=client_key,
        server_public_key=meter_key.public_key(),
    )
    link = make_link(
        settings,
        ClientAccess(1, security="authenc", authentication="hls-ecdsa"),
        client_public_keys={CLIENT_TITLE: client_key.public_key()},
        meter_signing_key=meter_key,
    )
    assert isinstance(link.associate(), Associated)
    impostor = make_link(
        ClientSettings(
            security="authenc",
            suite=1,
            authentication="hls-ecdsa",
            system_title=CLIENT_TITLE,
            ek=EK,
            ak=AK,
            signing_key=ec.generate_private_key(ec.SECP256R1()),
            server_public_key=meter_key.public_key(),
        ),
        ClientAccess(1, security="authenc", authentication="hls-ecdsa"),
        client_public_keys={CLIENT_TITLE: client_key.public_key()},
        meter_signing_key=meter_key,
    )
    with pytest.raises(AssociationError, match="did not accept HLS pass 3"):
        impostor.associate()


def test_dedicated_key_ciphers_the_association_with_ded_apdus() -> None:
    link = make_link(authenc(dedicated_key=Secret(bytes(range(16, 32)), "dedicated key")), access())
    link.associate()
    result = link.exchange(link.client.get(ENERGY))
    assert isinstance(result, GetResult) and result.value == 123456
    assert link.wire[-2][1][0] == 0xD0 and link.wire[-1][1][0] == 0xD4  # ded-get-request/-response


def test_the_reference_layout_signed_elsewhere_is_accepted() -> None:
    """The vector's pass 3 (signed with a key we never saw) against our meter side."""
    case = VECTORS["pass3-general-signing"]
    client_public = public_key_from_point(bytes.fromhex(case["inputs"]["client_public_key"]))
    hls5 = VECTORS["hls5-gmac"]["inputs"]
    link = make_link(
        authenc(suite=1),
        access(require_signed_pass3=True),
        client_public_keys={CLIENT_TITLE: client_public},
        client_ic=hls5["client_ic"] - 1,
        stoc=STOC,
    )
    aare = link.server.receive_apdu(link.client.associate())
    link.client.receive_apdu(aare)  # builds our own pass 3, which is not sent
    pass4 = link.server.receive_apdu(bytes.fromhex(case["inputs"]["apdu"]))
    assert pass4[0] == 0xDB and link.server.pass3_signed
    assert isinstance(link.client.receive_apdu(pass4), Associated)
    opened = unprotect(pass4, CipherKeys(EK, AK))
    assert opened.system_title == METER_TITLE


def test_vector_pass3_with_an_unknown_certificate_is_refused() -> None:
    case = VECTORS["pass3-general-signing"]
    link = make_link(
        authenc(suite=1),
        access(require_signed_pass3=True),
        client_ic=VECTORS["hls5-gmac"]["inputs"]["client_ic"] - 1,
    )
    link.client.receive_apdu(link.server.receive_apdu(link.client.associate()))
    answer = link.server.receive_apdu(bytes.fromhex(case["inputs"]["apdu"]))
    assert answer == bytes.fromhex("d80101") and link.server.state is ServerState.IDLE
    with pytest.raises(ExceptionResponseError):
        link.client.receive_apdu(answer)
    assert link.client.state is ClientState.IDLE


def test_server_settings_are_checked() -> None:
    with pytest.raises(ConfigError, match="8 bytes"):
        ServerSettings(system_title=b"short", clients={})
    with pytest.raises(ConfigError, match="password"):
        ClientAccess(1, authentication="low")


def test_server_session_without_shared_log_keeps_its_own() -> None:
    settings = ServerSettings(system_title=METER_TITLE, clients={16: ClientAccess(16)})
    session = ServerSession(
        settings,
        16,
        handler=lambda r, c: r,
        make_context=lambda f: f,
        next_invocation_counter=iter(range(5)).__next__,
        next_challenge=lambda: STOC,
    )
    assert session.counters.received == [] and session.receive_apdu(b"") is None


# --- robustness: any bytes in, a refusal or an answer out, never a stray exception --------------

PREFIXES = st.sampled_from([b"", b"\x60", b"\x62", b"\xc0\x01", b"\xc8", b"\xdb\x08", b"\xdf", b"\xcb"])


@settings(max_examples=300, deadline=None)
@given(prefix=PREFIXES, body=st.binary(max_size=80), associated=st.booleans())
def test_server_answers_garbage_with_refusals(prefix: bytes, body: bytes, associated: bool) -> None:
    link = make_link(authenc(), access())
    if associated:
        link.associate()
    answer = link.server.receive_apdu(prefix + body)
    assert answer is None or answer[0] in (0x61, 0x63, 0xD8) or answer[0] in (0xCC, 0xCD, 0xCF)


@settings(max_examples=300, deadline=None)
@given(prefix=PREFIXES, body=st.binary(max_size=80), step=st.sampled_from(["aare", "pass4", "response"]))
def test_client_raises_only_dlms_errors_on_garbage(prefix: bytes, body: bytes, step: str) -> None:
    link = make_link(authenc(), access())
    if step == "aare":
        link.client.associate()
    elif step == "pass4":
        link.client.receive_apdu(link.server.receive_apdu(link.client.associate()))
    else:
        link.associate()
        link.client.get(ENERGY)
    try:
        link.client.receive_apdu(prefix + body)
    except DlmsError:
        pass


def test_general_glo_ciphering_both_ways() -> None:
    link = make_link(authenc(general_glo_ciphering=True), access())
    link.associate()
    assert link.exchange(link.client.get(ENERGY)).value == 123456
    request, response = link.wire[-2][1], link.wire[-1][1]
    assert request[:10] == b"\xdb\x08" + CLIENT_TITLE and response[:10] == b"\xdb\x08" + METER_TITLE
