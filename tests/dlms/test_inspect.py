"""edge_agent.dlms.inspect: every vector kind, the reference trace, capture lines, bad input."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given, settings
from hypothesis import strategies as st
from known_answers import VECTORS

from edge_agent.dlms.errors import (
    AuthenticationError,
    DecodeError,
    DlmsError,
    MissingKeyError,
    SignatureError,
    TruncatedError,
)
from edge_agent.dlms.inspect import DecodeKeys, format_capture_line, inspect, parse_hex, parse_line
from edge_agent.dlms.link.hdlc.frame import LLC_COMMAND, FrameKind, HdlcAddress, HdlcFrame
from edge_agent.dlms.link.mbus import split_telegram
from edge_agent.dlms.link.wrapper import WrapperFrame
from edge_agent.dlms.push.dsmr import DsmrTelegram
from edge_agent.dlms.push.reassembly import Telegram, reassemble
from edge_agent.dlms.secret import Secret
from edge_agent.dlms.security.certificates import public_key_from_point
from edge_agent.dlms.security.ciphering import protect
from edge_agent.dlms.security.control import CipherKeys, SecurityControl
from edge_agent.dlms.security.signing import sign
from edge_agent.dlms.security.tags import Form


def mbus_apdus(data: bytes) -> list[bytes]:
    """The APDUs of the M-Bus telegrams in ``data``, through the one push reassembler."""
    return [e.apdu for e in reassemble(data, ("mbus",)) if isinstance(e, Telegram)]

SECURITY = {c["id"]: c for c in json.loads((VECTORS / "security.json").read_text())["cases"]}
MBUS = json.loads((VECTORS / "mbus-push.json").read_text())["cases"][0]
TRACE = json.loads((Path(__file__).parent / "t210d_pass3_trace.json").read_text())["apdus"]

EK = Secret(bytes.fromhex("000102030405060708090a0b0c0d0e0f"), "EK")
AK = Secret(bytes.fromhex("d0d1d2d3d4d5d6d7d8d9dadbdcdddedf"), "AK")
WRONG = Secret(bytes(16), "wrong")
GET_REQUEST = bytes.fromhex("c0010000080000010000ff0200")  # GET clock time


def keys_of(inputs: dict) -> DecodeKeys:
    return DecodeKeys(
        CipherKeys(
            ek=Secret(bytes.fromhex(inputs["ek"])) if "ek" in inputs else None,
            ak=Secret(bytes.fromhex(inputs["ak"])) if "ak" in inputs else None,
        ),
        bytes.fromhex(inputs["system_title"]) if "system_title" in inputs else None,
        public_key_from_point(bytes.fromhex(inputs["client_public_key"]))
        if "client_public_key" in inputs else None,
    )


def data_of(inputs: dict) -> bytes:
    return bytes.fromhex(inputs.get("apdu") or inputs["frame"])


DECRYPT = [i for i, c in SECURITY.items() if c["kind"] in ("decrypt", "decrypt-and-verify")]


# --- security vectors ---------------------------------------------------------------------


@pytest.mark.parametrize("case_id", DECRYPT)
def test_vector_deciphers_to_expected_plaintext(case_id: str) -> None:
    case = SECURITY[case_id]
    tree = inspect(data_of(case["inputs"]), keys_of(case["inputs"]))
    assert tree["plaintext"] == case["expected"]["plaintext"]


@pytest.mark.parametrize("case_id", DECRYPT)
def test_vector_without_keys_is_structural_and_names_the_keys(case_id: str) -> None:
    tree = inspect(data_of(SECURITY[case_id]["inputs"]))
    apdu = tree["apdu"]
    assert "plaintext" not in tree and apdu["deciphered"] is False
    needed = apdu["keys_needed"]
    if apdu["security_control"]["authentication"]:
        assert "authentication key (AK)" in needed
    else:
        assert "no AK is needed" in needed


def test_glo_get_request_tree_names_the_object() -> None:
    case = SECURITY["glo-get-request-authenc"]
    apdu = inspect(data_of(case["inputs"]), keys_of(case["inputs"]))["apdu"]
    assert apdu["type"] == "glo-get-request" and apdu["invocation_counter"] == 0x01234567
    content = apdu["content"]
    assert content["type"] == "get-request-normal" and content["invoke_id"] == 0
    assert content["descriptor"] == {
        "class_id": 8, "class": "Clock", "instance_id": "0.0.1.0.0.255",
        "name": content["descriptor"]["name"], "attribute_id": 2, "attribute": "time",
    }


def test_get_response_with_list_values() -> None:
    case = SECURITY["glo-get-response-with-list"]
    content = inspect(data_of(case["inputs"]), keys_of(case["inputs"]))["apdu"]["content"]
    assert [r["type"] for r in content["results"]] == ["double-long-unsigned"] * 3
    assert content["results"][0]["value"] == 0xD2EAC902


def test_pass3_signature_verifies_with_the_client_public_key() -> None:
    case = SECURITY["pass3-general-signing"]
    apdu = inspect(data_of(case["inputs"]), keys_of(case["inputs"]))["apdu"]
    signed = apdu["content"]
    assert signed["type"] == "general-signing" and signed["signature_status"] == "valid"
    assert signed["originator_system_title"]["hex"] == "434c496a2ae598ef"
    action = signed["content"]
    assert action["descriptor"]["method"] == "reply_to_HLS_authentication"
    assert bytes.fromhex(case["expected"]["signed_content"])[-17:].hex() == (
        action["method_invocation_parameters"]["value"])


def test_pass3_with_another_public_key_is_a_signature_error() -> None:
    case = SECURITY["pass3-general-signing"]
    other = ec.generate_private_key(ec.SECP256R1()).public_key()
    keys = DecodeKeys(keys_of(case["inputs"]).cipher, signer=other)
    with pytest.raises(SignatureError, match="does not verify"):
        inspect(data_of(case["inputs"]), keys)


def test_bad_tag_is_an_authentication_error_naming_the_keys() -> None:
    case = SECURITY["bad-tag"]
    with pytest.raises(AuthenticationError) as caught:
        inspect(data_of(case["inputs"]), keys_of(case["inputs"]))
    assert "needs the encryption key (EK) and the authentication key (AK)" in str(caught.value)


def test_truncated_vector() -> None:
    case = SECURITY["truncated"]
    with pytest.raises(TruncatedError):
        inspect(data_of(case["inputs"]), keys_of(case["inputs"]))


def test_encryption_only_with_a_wrong_ek_is_reported_as_a_key_problem() -> None:
    case = SECURITY["general-glo-push-enc-only"]
    with pytest.raises(AuthenticationError, match="wrong EK") as caught:
        inspect(data_of(case["inputs"]), DecodeKeys(CipherKeys(ek=WRONG)))
    assert "no AK is needed" in str(caught.value)


def test_missing_ak_for_an_authenticated_frame() -> None:
    case = SECURITY["general-glo-data-notification"]
    with pytest.raises(MissingKeyError, match="AK"):
        inspect(data_of(case["inputs"]), DecodeKeys(CipherKeys(ek=EK)))


def test_hdlc_snrm_addresses() -> None:
    case = SECURITY["hdlc-snrm-4byte"]
    frame = inspect(data_of(case["inputs"]))["frames"][0]
    assert (frame["kind"], frame["destination"], frame["source"], frame["control"]) == ("SNRM", "1/16", "1", "0x93")


# --- M-Bus push and DSMR-in-GCM ---------------------------------------------------------------


def test_mbus_two_frame_telegram_values_per_obis() -> None:
    inputs, expected = MBUS["inputs"], MBUS["expected"]
    tree = inspect(bytes.fromhex(inputs["frames"]), keys_of(inputs))
    assert tree["format"] == "mbus" and len(tree["frames"]) == 2
    assert tree["plaintext"] == expected["plaintext"]
    notification = tree["apdu"]["content"]
    assert notification["meter_number"] == expected["meter_number"]
    assert {k: v["value"] for k, v in notification["values"].items()} == expected["values"]
    assert notification["values"]["1.0.1.8.0.255"]["unit"] == "Wh"
    assert notification["values"]["1.0.32.7.0.255"]["unit"] == "V"


def test_mbus_old_firmware_length_overflow() -> None:
    inputs = MBUS["inputs"]
    # Rebuild the telegram the way old firmware cut it: 252 APDU bytes in the first frame.
    apdu = mbus_apdus(bytes.fromhex(inputs["frames"]))[0]
    frames = split_telegram(apdu, first_segment_size=252)
    raw = frames[0].encode(allow_length_overflow=True) + b"".join(f.encode() for f in frames[1:])
    assert raw[:4] == bytes.fromhex("68010168")
    tree = inspect(raw, keys_of(inputs))
    assert tree["plaintext"] == MBUS["expected"]["plaintext"]


def test_mbus_single_frame_of_two_names_the_missing_segment_and_the_sender() -> None:
    first_frame_end = 4 + 0xFA + 2
    tree = inspect(bytes.fromhex(MBUS["inputs"]["frames"])[:first_frame_end])
    (problem,) = tree["problems"]
    assert problem["kind"] == "incomplete" and "segment 1" in problem["message"]
    assert problem["seen"]["system_title"] == "5341475905a19dcb"
    assert problem["seen"]["manufacturer"] == "SAG"
    assert problem["seen"]["keys"] == ["ek"] and "(EK)" in problem["seen"]["keys_needed"]
    assert "apdu" not in tree


P1_TELEGRAM = DsmrTelegram("SAG5SAG-METER", ("0-0:1.0.0(261125020304W)", "1-0:1.8.0(000123.456*kWh)",
                                             "1-0:32.7.0(230.1*V)", "0-0:96.1.0(1SAG1100000292)"))


def _p1_in_gcm(telegram: bytes) -> bytes:
    return protect(telegram, sc=SecurityControl(0, True, True), keys=CipherKeys(ek=EK, ak=AK),
                   system_title=bytes.fromhex("5341475905a19dcb"), invocation_counter=7,
                   form=Form.GENERAL_GLO)


def test_dsmr_telegram_in_general_glo_ciphering() -> None:
    tree = inspect(_p1_in_gcm(P1_TELEGRAM.encode()), DecodeKeys(CipherKeys(ek=EK, ak=AK)))
    content = tree["apdu"]["content"]
    assert content["type"] == "dsmr-p1-telegram" and content["identification"] == "SAG5SAG-METER"
    assert content["timestamp"] == "2026-11-25T02:03:04+01:00"
    energy = content["values"]["1.0.1.8.0.255"]
    assert (energy["value"], energy["unit"]) == (123.456, "kWh") and energy["name"]
    assert content["values"]["0.0.96.1.0.255"]["value"] == "1SAG1100000292"


def test_dsmr_telegram_with_a_wrong_crc_is_refused() -> None:
    damaged = P1_TELEGRAM.encode().replace(b"230.1", b"230.2")
    with pytest.raises(DecodeError, match="CRC mismatch"):
        inspect(_p1_in_gcm(damaged), DecodeKeys(CipherKeys(ek=EK, ak=AK)))


# --- other framings -----------------------------------------------------------------------------


def test_wrapper_frame() -> None:
    tree = inspect(WrapperFrame(16, 1, GET_REQUEST).encode())
    assert tree["format"] == "wrapper"
    frame = tree["frames"][0]
    assert (frame["source_wport"], frame["destination_wport"]) == (16, 1)
    assert frame["apdu"]["descriptor"]["attribute"] == "time"


def _iframe(info: bytes, segmented: bool, ns: int) -> bytes:
    return HdlcFrame(HdlcAddress.server(1, 16), HdlcAddress(16), FrameKind.I, True, ns, 0,
                     info, segmented).encode()


def test_hdlc_segments_are_reassembled() -> None:
    payload = LLC_COMMAND + GET_REQUEST
    raw = _iframe(payload[:7], True, 0) + _iframe(payload[7:], False, 1)
    tree = inspect(raw)
    assert [f["send_sequence"] for f in tree["frames"]] == [0, 1]
    assert tree["frames"][0]["segmented"] is True
    assert tree["apdu"]["type"] == "get-request-normal"


def test_hdlc_last_segment_missing_is_reported() -> None:
    payload = LLC_COMMAND + GET_REQUEST
    tree = inspect(_iframe(payload[:7], True, 0))
    (problem,) = tree["problems"]
    assert "1 segment(s) with 4 bytes" in problem["message"] and "apdu" not in tree


@pytest.mark.parametrize(("bad", "kind", "words"), [
    ("7ea00a00020021039323d57e", "damaged", "FCS mismatch"),
    ("0001001000010005c0", "incomplete", "13 bytes, 9 were received: 4 byte(s) missing"),
    ("68fafa68", "incomplete", "256 bytes, 4 were received"),
])
def test_damaged_or_cut_frames_are_problems(bad: str, kind: str, words: str) -> None:
    (problem,) = inspect(bytes.fromhex(bad))["problems"]
    assert problem["kind"] == kind and words in problem["message"]


def test_garbage_after_a_frame_is_skipped_and_reported() -> None:
    tree = inspect(bytes.fromhex("7ea00a00020021039323d47eff"))
    assert tree["frames"][0]["kind"] == "SNRM"
    assert tree["skipped"] == [{"offset": 12, "length": 1}]


@pytest.mark.parametrize("bad", [
    "7e7e",  # flags only
    "68ffff00",  # an M-Bus start that is none
    "db08",  # ciphered APDU cut after its tag
    "ff00",  # no such APDU
    "",
])
def test_malformed_input_raises_a_decode_error(bad: str) -> None:
    with pytest.raises(DecodeError):
        inspect(bytes.fromhex(bad))


# --- the reference trace (structure only: its keys are not published) ------------------------


def test_reference_signed_pass3_shell() -> None:
    apdu = inspect(bytes.fromhex(TRACE["signed_pass3_general_glo_ciphering"]["hex"]))["apdu"]
    assert apdu["type"] == "general-glo-ciphering"
    assert apdu["security_control"]["byte"] == "0x31" and apdu["invocation_counter"] == 1427
    assert apdu["system_title"]["hex"] == "0f0e0d0c0b0a0908"
    assert apdu["information_length"] == 120  # exactly the general-signing of the trace
    assert len(bytes.fromhex(TRACE["signed_pass3_general_signing"]["hex"])) == 120


def test_reference_general_signing_content() -> None:
    signed = inspect(bytes.fromhex(TRACE["signed_pass3_general_signing"]["hex"]))["apdu"]
    assert signed["recipient_system_title"] == {"hex": "5341476770067a23", "manufacturer": "SAG"}
    assert len(bytes.fromhex(signed["signature"])) == 64
    assert signed["signature_status"].startswith("not verified")
    action = signed["content"]
    assert action["descriptor"]["instance_id"] == "0.0.40.0.0.255"
    assert action["method_invocation_parameters"]["value"].startswith("1100000592")  # f(StoC), IC 1426


def test_reference_unsigned_pass3_and_the_refusal() -> None:
    glo = inspect(bytes.fromhex(TRACE["unsigned_pass3_glo_action_request"]["hex"]))["apdu"]
    assert (glo["type"], glo["invocation_counter"]) == ("glo-action-request", 1448)
    assert "sender's system title" in glo["keys_needed"]
    plain = inspect(bytes.fromhex(TRACE["unsigned_pass3_plain_action_request"]["hex"]))["apdu"]
    assert plain["descriptor"]["method_id"] == 1
    refusal = inspect(bytes.fromhex(TRACE["meter_exception_response"]["hex"]))["apdu"]
    assert (refusal["state_error"], refusal["service_error"]) == ("service-not-allowed", "operation-not-possible")


# --- capture lines ------------------------------------------------------------------------------


def test_capture_line_format_and_parse() -> None:
    when = datetime(2026, 11, 25, 1, 2, 3, 456000, tzinfo=UTC)
    line = format_capture_line(when, "tx", bytes.fromhex("7ea0070321930f017e"))
    assert line == "2026-11-25T01:02:03.456Z tx 7ea0070321930f017e"
    parsed = parse_line(line + "\n")
    assert parsed is not None
    assert (parsed.timestamp, parsed.direction, parsed.frame.hex()) == (when, "tx", "7ea0070321930f017e")
    assert parsed.encode() == line


@settings(max_examples=60, deadline=None)
@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31), timezones=st.just(UTC)),
       st.sampled_from(["tx", "rx"]), st.binary(min_size=1, max_size=64))
def test_capture_line_round_trip(when: datetime, direction: str, frame: bytes) -> None:
    when = when.replace(microsecond=when.microsecond // 1000 * 1000)
    parsed = parse_line(format_capture_line(when, direction, frame))
    assert parsed is not None and (parsed.timestamp, parsed.direction, parsed.frame) == (when, direction, frame)


@pytest.mark.parametrize("text", ["", "   ", "# a comment", "  # indented comment"])
def test_blank_and_comment_lines_are_skipped(text: str) -> None:
    assert parse_line(text) is None


@pytest.mark.parametrize("text, message", [
    ("7ea0 7g", "not hexadecimal"),
    ("7ea", "odd number"),
    ("yesterday tx 7e7e", "not ISO 8601"),
    ("0x", "no hex digits"),
])
def test_bad_lines(text: str, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        parse_line(text)


def test_hex_with_spaces_colons_and_prefix() -> None:
    assert parse_hex("0x7E:A0 07") == bytes.fromhex("7ea007")


# --- fuzz: never anything but a DlmsError ------------------------------------------------------

_SEEDS = [data_of(c["inputs"]) for c in SECURITY.values() if "apdu" in c["inputs"] or "frame" in c["inputs"]]
_SEEDS += [bytes.fromhex(MBUS["inputs"]["frames"])] + [bytes.fromhex(a["hex"]) for a in TRACE.values()]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(_SEEDS), st.integers(0, 400), st.integers(0, 255), st.integers(1, 400))
def test_mutated_frames_fail_only_with_dlms_errors(seed: bytes, position: int, value: int, cut: int) -> None:
    data = bytearray(seed)
    data[position % len(data)] = value
    data = data[: max(1, len(data) - cut % len(data))]
    keys = DecodeKeys(CipherKeys(ek=EK, ak=AK), bytes.fromhex("4d4d4d0000bc614e"))
    try:
        inspect(bytes(data), keys)
    except DlmsError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=1, max_size=80))
def test_random_bytes_fail_only_with_dlms_errors(data: bytes) -> None:
    try:
        inspect(data)
    except DlmsError:
        pass


def test_signed_then_ciphered_round_trip_with_own_keys() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    signed = sign(GET_REQUEST, signing_key=key, originator_system_title=b"ABCDEFGH",
                  recipient_system_title=b"SAG00001")
    apdu = protect(signed.encode(), sc=SecurityControl(1, True, True), keys=CipherKeys(ek=EK, ak=AK),
                   system_title=b"ABCDEFGH", invocation_counter=5, form=Form.GENERAL_GLO)
    tree = inspect(apdu, DecodeKeys(CipherKeys(ek=EK, ak=AK), signers={b"ABCDEFGH": key.public_key()}))
    assert tree["plaintext"] == signed.encode().hex()
    assert tree["apdu"]["content"]["signature_status"] == "valid"
    assert tree["apdu"]["content"]["content"]["type"] == "get-request-normal"


def test_a_ciphered_apdu_cut_short_still_names_its_sender() -> None:
    cut = bytes.fromhex("db084b464d102002c8f58201f82000000001aabbcc")
    with pytest.raises(DecodeError, match=r"504 bytes expected.*system title 4B464D102002C8F5 "
                                          r"\(manufacturer KFM\), SC 0x20"):
        inspect(cut)
