"""Client session against the server session, in memory: association, services, security."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from known_answers import cases
from session_harness import (
    AK,
    CLIENT_TITLE,
    CLOCK_SHIFT,
    CTOS,
    EK,
    ENERGY,
    METER_TITLE,
    MISSING,
    PROFILE,
    VOLTAGE,
    make_link,
)

from edge_agent.dlms import apdu as x
from edge_agent.dlms.apdu.acse import AARE, AcseServiceUser, AssociationResult
from edge_agent.dlms.apdu.conformance import Conformance
from edge_agent.dlms.association.client import (
    ClientSession,
    ClientSettings,
    ClientState,
    Pass3SigningRequired,
)
from edge_agent.dlms.association.events import (
    ActionResult,
    Associated,
    GetResult,
    Notification,
    Released,
    SendApdu,
    SetResult,
)
from edge_agent.dlms.association.server import ClientAccess, ServerState
from edge_agent.dlms.encoding import axdr
from edge_agent.dlms.errors import (
    AssociationError,
    AuthenticationError,
    ConfigError,
    ExceptionResponseError,
    ProtocolError,
    ReplayError,
    SecurityError,
    SignatureError,
)
from edge_agent.dlms.secret import Secret
from edge_agent.dlms.security import (
    CipherKeys,
    Form,
    GeneralSigning,
    SecurityControl,
    protect,
    unprotect,
    verify,
)

VECTORS = cases("security.json")
PASSWORD = Secret(b"12345678", "password")


def hls(policy: str = "authenc", suite: int = 1, **extra) -> ClientSettings:
    return ClientSettings(
        security=policy,
        suite=suite,
        authentication="hls-gmac",
        system_title=CLIENT_TITLE,
        ek=EK,
        ak=AK,
        **extra,
    )


def hls_access(policy: str = "authenc", **extra) -> ClientAccess:
    return ClientAccess(1, security=policy, authentication="hls-gmac", **extra)


# --- no security, LLS --------------------------------------------------------------------------


def test_no_security_get_set_action_release() -> None:
    link = make_link(ClientSettings(), ClientAccess(16))
    event = link.associate()
    assert isinstance(event, Associated) and link.client.state is ClientState.ASSOCIATED
    assert link.wire[0][1][0] == 0x60 and link.wire[1][1][0] == 0x61
    assert Conformance.GET in event.conformance and event.server_max_receive_pdu_size == 1024
    result = link.exchange(link.client.get(ENERGY))
    assert isinstance(result, GetResult) and result.value == 123456 and result.blocks == 0
    assert link.exchange(link.client.get(MISSING)).value is x.DataAccessResult.OBJECT_UNDEFINED
    assert link.exchange(link.client.set(VOLTAGE, 2299)) == SetResult(
        3, (x.DataAccessResult.SUCCESS,)
    )
    assert link.exchange(link.client.get(VOLTAGE)).value == 2299
    action = link.exchange(link.client.action(CLOCK_SHIFT, 900))
    assert isinstance(action, ActionResult) and action.result is x.ActionResult.SUCCESS
    assert link.meter.actions == [900]
    assert link.exchange(link.client.release()) == Released("normal")
    assert link.client.state is ClientState.RELEASED and link.server.state is ServerState.IDLE


def test_invoke_ids_count_modulo_16() -> None:
    link = make_link(ClientSettings(), ClientAccess(16))
    link.associate()
    seen = []
    for _ in range(20):
        apdu = link.client.get(ENERGY)
        seen.append(apdu[2] & 0x0F)
        link.exchange(apdu)
    assert seen[:3] == [1, 2, 3] and seen[15] == 0 and seen[16] == 1


def test_lls_and_wrong_password() -> None:
    access = ClientAccess(16, authentication="low", password=PASSWORD)
    link = make_link(ClientSettings(authentication="low", password=PASSWORD), access)
    assert isinstance(link.associate(), Associated)
    wrong = make_link(
        ClientSettings(authentication="low", password=Secret(b"nope", "password")), access
    )
    with pytest.raises(AssociationError, match="authentication-failure") as info:
        wrong.associate()
    assert "wrong password" in str(info.value) and "nope" not in str(info.value)
    assert wrong.client.state is ClientState.IDLE


def test_missing_mechanism_is_named() -> None:
    link = make_link(ClientSettings(), ClientAccess(16, authentication="low", password=PASSWORD))
    with pytest.raises(AssociationError, match="authentication-mechanism-name-required"):
        link.associate()


# --- HLS-5 -----------------------------------------------------------------------------------


@pytest.mark.parametrize("suite", [0, 1])
def test_hls5_authenc_association_and_reads(suite: int) -> None:
    link = make_link(hls(suite=suite), hls_access())
    event = link.associate()
    assert (
        isinstance(event, Associated)
        and event.server_system_title == METER_TITLE
        and not event.pass3_signed
    )
    kinds = [apdu[0] for _, apdu in link.wire]
    assert kinds == [0x60, 0x61, 0xCB, 0xCF]  # AARQ, AARE, glo-action-request, glo-action-response
    assert link.wire[1][1].count(METER_TITLE) == 1  # responding-AP-title
    result = link.exchange(link.client.get(ENERGY))
    assert result.value == 123456
    assert link.wire[-2][1][0] == 0xC8 and link.wire[-1][1][0] == 0xCC
    assert isinstance(link.exchange(link.client.release()), Released)


def test_hls5_vector_f_stoc_and_f_ctos() -> None:
    case = VECTORS["hls5-gmac"]
    inputs, expected = case["inputs"], case["expected"]
    link = make_link(
        hls("none"),
        hls_access("none"),
        client_ic=inputs["client_ic"],
        server_ic=inputs["server_ic"],
        stoc=bytes.fromhex(inputs["stoc"]),
        ctos=bytes.fromhex(inputs["ctos"]),
    )
    assert isinstance(link.associate(), Associated)
    pass3 = x.decode_apdu(link.wire[2][1])
    assert bytes(pass3.method_invocation_parameters).hex() == expected["f_stoc"]
    pass4 = x.decode_apdu(link.wire[3][1])
    assert bytes(pass4.single_response.return_parameters).hex() == expected["f_ctos"]


def test_pass3_order_of_invocation_counters() -> None:
    spent = []
    values = iter(range(500, 600))

    def source() -> int:
        spent.append(next(values))
        return spent[-1]

    link = make_link(hls(pass3_signing="never"), hls_access())
    link.client = ClientSession(hls(), source, CTOS)
    link.associate()
    assert spent == [500, 501, 502]  # glo-initiate-request, f(StoC), outer glo-action-request
    outer = unprotect(link.wire[2][1], CipherKeys(EK, AK), CLIENT_TITLE)
    assert outer.invocation_counter == 502
    f_stoc = bytes(x.decode_apdu(outer.plaintext).method_invocation_parameters)
    assert int.from_bytes(f_stoc[1:5], "big") == 501


def test_unsigned_pass3_refused_by_t210d_quirk() -> None:
    link = make_link(hls(), hls_access(require_signed_pass3=True))
    with pytest.raises(Pass3SigningRequired) as info:
        link.associate()
    message = str(info.value)
    assert "ServiceNotAllowed" in message and "pass3_signing: always" in message
    assert info.value.fix == ("pass3_signing", "always")  # the CLI adds --pass3-signing always
    assert isinstance(info.value, ExceptionResponseError)
    assert info.value.reason == "service-not-allowed/operation-not-possible"
    assert link.wire[-1][1] == bytes.fromhex("d80101")  # in clear, as in the trace
    assert link.client.state is ClientState.IDLE and link.server.state is ServerState.IDLE


def test_signed_pass3_accepted_with_known_key() -> None:
    client_key = ec.generate_private_key(ec.SECP256R1())
    link = make_link(
        hls(pass3_signing="always", signing_key=client_key),
        hls_access(require_signed_pass3=True),
        client_public_keys={CLIENT_TITLE: client_key.public_key()},
    )
    event = link.associate()
    assert isinstance(event, Associated) and event.pass3_signed and link.server.pass3_signed
    assert link.wire[2][1][:10] == b"\xdb\x08" + CLIENT_TITLE
    assert link.exchange(link.client.get(ENERGY)).value == 123456


def test_signed_pass3_with_unknown_key_is_refused() -> None:
    link = make_link(
        hls(pass3_signing="always", signing_key=ec.generate_private_key(ec.SECP256R1())),
        hls_access(require_signed_pass3=True),
        client_public_keys={CLIENT_TITLE: ec.generate_private_key(ec.SECP256R1()).public_key()},
    )
    # Not "sign it" (it was signed) but "the meter does not know this signer".
    with pytest.raises(SignatureError, match="meter-import-cert"):
        link.associate()


def test_pass3_general_signing_layout_matches_the_vector() -> None:
    """Same keys, titles, challenge and ICs as the vector; the signature is verified instead."""
    case = VECTORS["pass3-general-signing"]
    client_key = ec.generate_private_key(ec.SECP256R1())
    link = make_link(
        hls(pass3_signing="always", signing_key=client_key),
        hls_access(require_signed_pass3=True),
        client_public_keys={CLIENT_TITLE: client_key.public_key()},
        client_ic=VECTORS["hls5-gmac"]["inputs"]["client_ic"] - 1,  # the AARQ spends one first
    )
    link.associate()
    opened = unprotect(link.wire[2][1], CipherKeys(EK, AK))
    expected = bytes.fromhex(case["expected"]["plaintext"])
    assert opened.sc.byte == 0x31 and opened.invocation_counter == 563807943
    assert opened.plaintext[:-64] == expected[:-64]
    signed = GeneralSigning.from_bytes(opened.plaintext)
    assert signed.content.hex() == case["expected"]["signed_content"]
    assert verify(signed, client_key.public_key()) == signed.content
    assert link.server.pass3_signed


def test_wrong_keys_are_refused_with_deciphering_error() -> None:
    wrong_ak = Secret(bytes(16), "AK")
    link = make_link(
        ClientSettings(
            security="authenc",
            suite=0,
            authentication="hls-gmac",
            system_title=CLIENT_TITLE,
            ek=EK,
            ak=wrong_ak,
        ),
        hls_access(),
    )
    with pytest.raises(AssociationError, match="deciphering-error"):
        link.associate()


def test_wrong_key_in_pass3_without_ciphering() -> None:
    link = make_link(
        ClientSettings(
            suite=0,
            authentication="hls-gmac",
            system_title=CLIENT_TITLE,
            ek=EK,
            ak=Secret(bytes(16)),
        ),
        hls_access("none"),
    )
    with pytest.raises(AssociationError, match="did not accept HLS pass 3"):
        link.associate()


def test_forged_meter_f_ctos_is_an_authentication_error() -> None:
    link = make_link(hls("none", suite=0), hls_access("none"), meter_keys=(EK, AK))
    aare = link.server.receive_apdu(link.client.associate())
    pass3 = link.client.receive_apdu(aare).apdu
    pass4 = bytearray(link.server.receive_apdu(pass3))
    pass4[-1] ^= 1
    with pytest.raises(AuthenticationError, match="GMAC"):
        link.client.receive_apdu(bytes(pass4))
    assert link.client.state is ClientState.IDLE


def test_bad_tag_on_a_response_names_causes_and_keeps_waiting() -> None:
    link = make_link(hls(suite=0), hls_access())
    link.associate()
    request = link.client.get(ENERGY)
    response = bytearray(link.server.receive_apdu(request))
    response[-1] ^= 0x80
    with pytest.raises(AuthenticationError, match="wrong AK or EK"):
        link.client.receive_apdu(bytes(response))
    assert link.client.state is ClientState.AWAITING_RESPONSE
    response[-1] ^= 0x80
    assert link.client.receive_apdu(bytes(response)).value == 123456


def test_replayed_response_is_refused_by_the_client() -> None:
    link = make_link(hls(suite=0), hls_access())
    link.associate()
    link.exchange(link.client.get(ENERGY))
    old_response = link.wire[-1][1]
    link.client.get(ENERGY)
    with pytest.raises(ReplayError, match="not above the last accepted"):
        link.client.receive_apdu(old_response)


def test_plain_response_in_ciphered_association_is_refused() -> None:
    link = make_link(hls(suite=0), hls_access())
    link.associate()
    link.client.get(ENERGY)
    with pytest.raises(SecurityError, match="without protection"):
        link.client.receive_apdu(x.GetResponseNormal(0xC2, 1).encode())


# --- services --------------------------------------------------------------------------------


@pytest.mark.parametrize("policy", ["none", "authenc"])
def test_block_transfer_of_a_large_get(policy: str) -> None:
    settings = hls(policy, suite=0, max_receive_pdu_size=256)
    link = make_link(settings, hls_access(policy))
    link.associate()
    result = link.exchange(link.client.get(PROFILE))
    assert result.value == bytes(range(256)) * 8 and result.blocks > 8
    nexts = [apdu for who, apdu in link.wire if who == "client"][2:]
    assert len(nexts) == result.blocks and all(
        len(apdu) <= 256 for who, apdu in link.wire if who == "meter"
    )


def test_get_with_list_and_blocks_of_a_list() -> None:
    link = make_link(hls("authenc", suite=0, max_receive_pdu_size=300), hls_access())
    link.associate()
    result = link.exchange(link.client.get_with_list([ENERGY, VOLTAGE, MISSING]))
    assert result.values == (123456, 2301, x.DataAccessResult.OBJECT_UNDEFINED)
    long = link.exchange(link.client.get_with_list([ENERGY, PROFILE]))
    assert long.values == (123456, bytes(range(256)) * 8) and long.blocks > 1


def test_with_list_needs_multiple_references() -> None:
    access = ClientAccess(16, conformance=Conformance.GET)
    link = make_link(ClientSettings(), access)
    link.associate()
    with pytest.raises(ProtocolError, match="multiple-references"):
        link.client.get_with_list([ENERGY, VOLTAGE])


def test_exception_response_and_confirmed_service_error_raise_service_errors() -> None:
    link = make_link(ClientSettings(), ClientAccess(16))
    link.associate()
    link.client.get(ENERGY)
    with pytest.raises(ExceptionResponseError, match="service-unknown"):
        link.client.receive_apdu(bytes.fromhex("d80202"))
    assert link.client.state is ClientState.ASSOCIATED
    link.client.get(ENERGY)
    error = x.ConfirmedServiceError(x.ConfirmedService.READ, x.ServiceErrorKind.ACCESS, 2)
    with pytest.raises(Exception, match="object-access-violated"):
        link.client.receive_apdu(error.encode())


def test_foreign_invoke_id_is_a_protocol_error() -> None:
    link = make_link(ClientSettings(), ClientAccess(16))
    link.associate()
    link.client.get(ENERGY)
    with pytest.raises(ProtocolError, match="invoke-id 9"):
        link.client.receive_apdu(x.GetResponseNormal(0xC9, 5).encode())
    assert link.client.receive_apdu(x.GetResponseNormal(0xC1, 5).encode()).value == 5


def test_notifications_arrive_between_requests() -> None:
    link = make_link(hls(suite=0), hls_access())
    link.associate()
    note = x.DataNotification(0x80000001, b"", 42).encode()
    sc = SecurityControl.of(0, "authenc")
    ciphered = protect(
        note,
        sc=sc,
        keys=CipherKeys(EK, AK),
        system_title=METER_TITLE,
        invocation_counter=5000,
        form=Form.GENERAL_GLO,
    )
    event = link.client.receive_apdu(ciphered)
    assert isinstance(event, Notification) and event.ciphered and event.apdu.notification_body == 42


def test_requests_need_an_association() -> None:
    session = ClientSession(ClientSettings(), iter(range(10)).__next__, CTOS)
    with pytest.raises(ProtocolError, match="cannot request in state idle"):
        session.get(ENERGY)
    session.associate()
    with pytest.raises(ProtocolError, match="awaiting-aare"):
        session.associate()


def test_refused_aare_names_the_initiate_error() -> None:
    session = ClientSession(ClientSettings(), iter(range(10)).__next__, CTOS)
    session.associate()
    error = x.ConfirmedServiceError(
        x.ConfirmedService.INITIATE_ERROR, x.ServiceErrorKind.INITIATE, 1
    )
    aare = AARE(
        result=AssociationResult.REJECTED_PERMANENT,
        result_source_diagnostic=AcseServiceUser.NO_REASON_GIVEN,
        user_information=error.encode(),
    )
    with pytest.raises(AssociationError, match="dlms-version-too-low"):
        session.receive_apdu(aare.encode())


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"security": "authenc"}, "system title"),
        ({"authentication": "low"}, "password"),
        ({"security": "secret"}, "security policy"),
        ({"authentication": "hls-gmac", "system_title": CLIENT_TITLE}, "EK and the AK"),
        (
            {
                "authentication": "hls-gmac",
                "system_title": CLIENT_TITLE,
                "ek": EK,
                "ak": AK,
                "pass3_signing": "always",
                "suite": 1,
            },
            "signing key",
        ),
        ({"pass3_signing": "auto"}, "Pass3SigningRequired"),
    ],
)
def test_settings_say_what_is_missing(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ClientSettings(**kwargs)


def test_session_events_are_sendapdu_until_done() -> None:
    link = make_link(hls(suite=0), hls_access())
    aare = link.server.receive_apdu(link.client.associate())
    event = link.client.receive_apdu(aare)
    assert isinstance(event, SendApdu) and "pass 3" in event.purpose


def _granting(bits: Conformance) -> ClientAccess:
    from edge_agent.dlms.association.server import SERVER_CONFORMANCE

    return ClientAccess(16, conformance=SERVER_CONFORMANCE | bits)


def test_long_set_goes_in_datablocks_acknowledged_one_by_one() -> None:
    link = make_link(ClientSettings(), _granting(Conformance.BLOCK_TRANSFER_WITH_SET_OR_WRITE))
    link.associate()
    value = bytes(range(256)) * 12
    first = x.decode_apdu(link.client.set(PROFILE, value))
    assert isinstance(first, x.SetRequestWithFirstDatablock) and len(first.encode()) <= 1024
    raw, number, invoke = bytearray(first.datablock.raw_data), 1, first.invoke_id_and_priority
    while True:
        event = link.client.receive_apdu(x.SetResponseDatablock(invoke, number).encode())
        block = x.decode_apdu(event.apdu)
        assert isinstance(block, x.SetRequestWithDatablock) and block.datablock.block_number == number + 1
        raw += block.datablock.raw_data
        number += 1
        if block.datablock.last_block:
            break
    with pytest.raises(ProtocolError, match="acknowledged block 1"):
        link.client.receive_apdu(x.SetResponseDatablock(invoke, 1).encode())
    link.client.set(PROFILE, value)  # the aborted SET is over; a new one starts
    assert axdr.decode_all(bytes(raw)) == value


def test_long_set_without_granted_block_transfer_is_refused() -> None:
    link = make_link(ClientSettings(), ClientAccess(16))
    link.associate()
    with pytest.raises(ProtocolError, match="block-transfer-with-set-or-write"):
        link.client.set(PROFILE, bytes(3000))
    assert link.client.state is ClientState.ASSOCIATED


def test_long_action_parameters_go_in_pblocks() -> None:
    link = make_link(ClientSettings(), _granting(Conformance.BLOCK_TRANSFER_WITH_ACTION))
    link.associate()
    first = x.decode_apdu(link.client.action(CLOCK_SHIFT, bytes(2000)))
    assert isinstance(first, x.ActionRequestWithFirstPblock)
    invoke = first.invoke_id_and_priority
    second = link.client.receive_apdu(x.ActionResponseNextPblock(invoke, 1).encode())
    assert isinstance(x.decode_apdu(second.apdu), x.ActionRequestWithPblock)
    done = x.ActionResponseNormal(invoke, x.ActionResponseWithOptionalData(x.ActionResult.SUCCESS, 7))
    assert link.client.receive_apdu(done.encode()) == ActionResult(first.invoke_id, x.ActionResult.SUCCESS, 7)
