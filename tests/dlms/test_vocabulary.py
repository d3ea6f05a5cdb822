"""The core's shared vocabulary: SystemTitle, the setting choices, refusal reasons,
invoke-id helpers, the lazy cryptography accessor and the learned-fact names."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from session_harness import AK, CLIENT_TITLE, EK, METER_TITLE, Link, make_link

from edge_agent.dlms import apdu as x
from edge_agent.dlms.association.client import ClientSettings
from edge_agent.dlms.association.server import ClientAccess
from edge_agent.dlms.association.settings import Authentication, Pass3Signing
from edge_agent.dlms.errors import (
    AssociationError,
    AssociationRefusal,
    ChecksumError,
    ConfigError,
    DecodeError,
    EncodeError,
    ProtocolError,
)
from edge_agent.dlms.link.hdlc.frame import FrameKind, HdlcAddress, HdlcFrame
from edge_agent.dlms.secret import Secret
from edge_agent.dlms.security import CipherKeys, SecurityControl, SecurityPolicy, protect
from edge_agent.dlms.system_title import SystemTitle
from edge_agent.state import facts
from edge_agent.state.facts import FactStore

KAIFA = bytes.fromhex("4B464D1020304050")  # "KFM" + serial

# --- SystemTitle -------------------------------------------------------------------------------


def test_a_system_title_is_its_eight_bytes() -> None:
    title = SystemTitle(KAIFA)
    assert title == KAIFA and hash(title) == hash(KAIFA)
    assert {KAIFA: "meter"}[title] == "meter"
    assert title.manufacturer == "KFM" and title.serial == bytes.fromhex("1020304050")
    assert title.text == "4B464D1020304050" == str(title)
    assert repr(title) == "SystemTitle(4B464D1020304050, KFM)"
    assert SystemTitle(title) is title  # checked once, not again
    assert pickle.loads(pickle.dumps(title)) == title
    assert type(bytes(title)) is bytes


def test_a_binary_prefix_has_no_manufacturer() -> None:
    title = SystemTitle(bytes.fromhex("0001020304050607"))
    assert title.manufacturer is None
    assert repr(title) == "SystemTitle(0001020304050607)"


@pytest.mark.parametrize("length", [0, 7, 9, 16])
def test_a_wrong_length_raises_the_callers_error(length: int) -> None:
    with pytest.raises(DecodeError, match=f"system title must be 8 bytes .*got {length} bytes"):
        SystemTitle(bytes(length))
    with pytest.raises(ConfigError, match="meter system title must be 8 bytes"):
        SystemTitle(bytes(length), what="meter system title", error=ConfigError)


def test_system_title_from_hex() -> None:
    assert SystemTitle.from_hex(" 4b464d10 20304050 ") == KAIFA
    with pytest.raises(ConfigError, match="not hexadecimal"):
        SystemTitle.from_hex("KFM")
    with pytest.raises(ConfigError, match="must be 8 bytes"):
        SystemTitle.from_hex("4B464D")
    assert SystemTitle.optional(None) is None


def test_every_entry_point_checks_the_title_the_same_way() -> None:
    with pytest.raises(EncodeError, match="system title must be 8 bytes"):
        protect(
            bytes.fromhex("c001c1000301000108 00ff0200".replace(" ", "")),
            sc=SecurityControl(suite=0, authentication=True, encryption=True),
            keys=CipherKeys(ek=EK, ak=AK),
            system_title=CLIENT_TITLE[:7],
            invocation_counter=1,
        )
    with pytest.raises(ConfigError, match="client system title must be 8 bytes"):
        ClientSettings(security="authenc", ek=EK, ak=AK, system_title=CLIENT_TITLE + b"\0")


def test_the_settings_keep_titles_as_system_titles() -> None:
    settings = ClientSettings(security="authenc", ek=EK, ak=AK, system_title=CLIENT_TITLE)
    assert isinstance(settings.system_title, SystemTitle)
    assert settings.system_title == CLIENT_TITLE


# --- the setting choices -----------------------------------------------------------------------


def test_choices_keep_the_spelling_of_cli_config_and_mqtt() -> None:
    assert [str(p) for p in SecurityPolicy] == ["none", "auth", "enc", "authenc"]
    assert [str(a) for a in Authentication] == ["none", "low", "hls-gmac", "hls-ecdsa"]
    assert [str(p) for p in Pass3Signing] == ["never", "always", "auto"]
    assert json.dumps({"policy": SecurityPolicy.AUTHENC}) == '{"policy": "authenc"}'
    assert SecurityPolicy.AUTHENC == "authenc" and f"{Authentication.HLS_GMAC}" == "hls-gmac"


def test_settings_take_the_spelling_and_hold_the_member() -> None:
    settings = ClientSettings(
        security="authenc", authentication="hls-gmac", ek=EK, ak=AK, system_title=CLIENT_TITLE
    )
    assert settings.security is SecurityPolicy.AUTHENC
    assert settings.authentication is Authentication.HLS_GMAC
    assert settings.pass3_signing is Pass3Signing.NEVER
    assert settings.authentication.hls and settings.mechanism is x.acse.MechanismName.HIGH_GMAC
    assert SecurityControl.of(1, "authenc") == SecurityControl.of(1, SecurityPolicy.AUTHENC)


def test_a_wrong_spelling_names_the_setting_and_its_choices() -> None:
    with pytest.raises(ConfigError, match="security policy 'authenticated': expected one of "
                                          "none, auth, enc, authenc"):
        ClientSettings(security="authenticated")
    with pytest.raises(ConfigError, match="authentication 'hls': expected one of none, low, "
                                          "hls-gmac, hls-ecdsa"):
        ClientSettings(authentication="hls")
    with pytest.raises(ConfigError, match="pass3_signing 'auto': the session takes never or always"):
        ClientSettings(pass3_signing="auto")
    with pytest.raises(ConfigError, match="client 3: security 'x'"):
        ClientAccess(3, security="x")


def test_core_messages_name_the_setting_not_a_command_line_flag() -> None:
    with pytest.raises(ConfigError) as low:
        ClientSettings(authentication="low")
    with pytest.raises(ConfigError) as signed:
        ClientSettings(
            security="authenc", authentication="hls-gmac", ek=EK, ak=AK,
            system_title=CLIENT_TITLE, pass3_signing="always",
        )
    for error in (low.value, signed.value):
        assert "--" not in str(error)
    assert "pass3_signing: always" in str(signed.value)


# --- why an association was refused ------------------------------------------------------------


def _ciphered(access_ek: Secret = EK) -> Link:
    settings = ClientSettings(
        security="authenc", suite=0, authentication="hls-gmac", ek=EK, ak=AK,
        system_title=CLIENT_TITLE,
    )
    access = ClientAccess(1, security="authenc", authentication="hls-gmac")
    return make_link(settings, access, meter_keys=(access_ek, AK))


def test_a_meter_that_cannot_decipher_the_aarq_gives_reason_deciphering_error() -> None:
    wrong = Secret(bytes(16), "EK")
    link = _ciphered(access_ek=wrong)
    with pytest.raises(AssociationError) as refused:
        link.associate()
    assert refused.value.reason is AssociationRefusal.DECIPHERING_ERROR


def test_an_acse_rejection_gives_reason_rejected() -> None:
    settings = ClientSettings(authentication="low", password=Secret(b"12345678", "password"))
    access = ClientAccess(1, authentication="low", password=Secret(b"00000000", "password"))
    link = make_link(settings, access)
    with pytest.raises(AssociationError) as refused:
        link.associate()
    assert refused.value.reason is AssociationRefusal.REJECTED
    assert "authentication-failure" in str(refused.value)


def test_the_reason_is_not_in_the_message_alone() -> None:
    error = AssociationError("anything at all", AssociationRefusal.PASS3_NOT_ACCEPTED)
    assert error.reason == "pass3-not-accepted"
    assert AssociationError("the meter could not decipher").reason is None


def test_an_aare_without_a_title_names_the_responding_ap_title() -> None:
    link = _ciphered()
    aarq = link.client.associate()
    aare = x.acse.AARE.decode(link.server.receive_apdu(aarq))
    untitled = replace(aare, responding_ap_title=METER_TITLE[:4]).encode()
    with pytest.raises(ProtocolError, match="AARE responding-AP-title .* must be 8 bytes"):
        link.client.receive_apdu(untitled)


# --- frame damage by kind ----------------------------------------------------------------------


def test_a_damaged_check_sequence_is_a_checksum_error() -> None:
    frame = bytearray(
        HdlcFrame(HdlcAddress.server(1, 17), HdlcAddress.client(16), FrameKind.I, True, 0, 0,
                  info=bytes.fromhex("e6e600c001c1000301000108 00ff0200".replace(" ", ""))).encode()
    )
    frame[-3] ^= 0x01  # one bit of the FCS
    with pytest.raises(ChecksumError, match="FCS mismatch"):
        HdlcFrame.decode(bytes(frame))


# --- invoke-id helpers -------------------------------------------------------------------------


def test_invoke_id_helpers_on_every_apdu() -> None:
    response = x.GetResponseNormal(0xC5, 42)
    assert response.invoke_id == 5
    assert response.answers(0x45) and response.answers(x.invoke_id_and_priority(5))
    assert not response.answers(0xC6)
    refusal = x.ExceptionResponse(
        x.StateError.SERVICE_NOT_ALLOWED, x.ExceptionServiceError.OPERATION_NOT_POSSIBLE
    )
    assert refusal.invoke_id is None and not refusal.answers(0xC5)
    assert x.GetRequestNext(0xC3, 2).invoke_id == 3


# --- the cryptography accessor -----------------------------------------------------------------


def test_cryptography_loads_on_first_use_only() -> None:
    script = (
        "import sys\n"
        "import edge_agent.dlms.association.client, edge_agent.dlms.association.server\n"
        "import edge_agent.dlms.security.certificates, edge_agent.dlms.cosem.security_setup\n"
        "print(any(m.startswith('cryptography') for m in sys.modules))\n"
        "from edge_agent.dlms.security import crypto\n"
        "crypto.ec.SECP256R1\n"
        "print('cryptography.hazmat.primitives.asymmetric.ec' in sys.modules,"
        " 'cryptography.x509' in sys.modules)\n"
    )
    output = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    ).stdout.split()
    assert output == ["False", "True", "False"]


def test_the_accessor_offers_only_what_it_lists() -> None:
    from edge_agent.dlms.security import crypto

    assert crypto.hashes.SHA256().name == "sha256"
    with pytest.raises(AttributeError, match="no attribute 'rsa'"):
        crypto.rsa  # noqa: B018 - the access is the test


# --- learned-fact names ------------------------------------------------------------------------


def test_fact_names_are_one_set_of_constants(tmp_path: Path) -> None:
    store = FactStore(tmp_path)
    store.set_fact("meter-1", facts.PASS3_SIGNING_REQUIRED, True)
    store.set_fact("meter-1", facts.SCALERS, {"1.0.1.8.0.255": [0, 30]})
    assert store.get("meter-1") == {
        "pass3_signing_required": True,
        "scalers": {"1.0.1.8.0.255": [0, 30]},
    }
    names = {facts.PASS3_SIGNING_REQUIRED, facts.CLASSES, facts.SCALERS, facts.SERIAL,
             facts.PROFILES_PUBLISHED}
    assert len(names) == 5
