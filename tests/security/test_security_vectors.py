"""Every case of shared/vectors/security.json except the HDLC field cases, plus mbus-push."""

import pytest
from sec_fixtures import keys_from, load_cases

from edge_agent.dlms.errors import AuthenticationError, TruncatedError
from edge_agent.dlms.secret import Secret
from edge_agent.dlms.security import hls, keywrap
from edge_agent.dlms.security.certificates import public_key_from_point
from edge_agent.dlms.security.ciphering import unprotect
from edge_agent.dlms.security.control import CipherKeys
from edge_agent.dlms.security.layers import peel
from edge_agent.dlms.security.signing import GeneralSigning, verify

CASES = load_cases("security.json")


def by_kind(*kinds):
    return [pytest.param(c, id=c["id"]) for c in CASES if c["kind"] in kinds]


def test_every_non_hdlc_case_is_covered():
    covered = {
        c.values[0]["id"]
        for c in by_kind("decrypt", "decrypt-and-verify", "hls-gmac", "key-wrap", "reject")
    }
    assert covered == {c["id"] for c in CASES if c["kind"] != "hdlc"}


def _info_field(frame: bytes) -> bytes:
    """HDLC I-frame information field: after the LLC header E6 E6 00, before FCS and flag.
    (The HDLC codec is another module; slicing is enough for this fixed frame.)"""
    start = frame.index(bytes.fromhex("e6e600")) + 3
    return frame[start:-3]


@pytest.mark.parametrize("case", by_kind("decrypt"))
def test_decrypt(case):
    inputs = case["inputs"]
    apdu = (
        bytes.fromhex(inputs["apdu"])
        if "apdu" in inputs
        else _info_field(bytes.fromhex(inputs["frame"]))
    )
    title = bytes.fromhex(inputs["system_title"]) if "system_title" in inputs else None
    result = unprotect(apdu, keys_from(inputs), title)
    assert result.plaintext.hex() == case["expected"]["plaintext"]


@pytest.mark.parametrize("case", by_kind("decrypt-and-verify"))
def test_decrypt_and_verify(case):
    inputs, expected = case["inputs"], case["expected"]
    result = unprotect(bytes.fromhex(inputs["apdu"]), keys_from(inputs))
    assert result.plaintext.hex() == expected["plaintext"]
    assert result.sc.byte == 0x31
    signed = GeneralSigning.from_bytes(result.plaintext)
    public_key = public_key_from_point(bytes.fromhex(inputs["client_public_key"]))
    assert verify(signed, public_key).hex() == expected["signed_content"]
    # the same through the layer peeler, keyed by the originator's system title
    peeled = peel(
        bytes.fromhex(inputs["apdu"]),
        keys=keys_from(inputs),
        signers={signed.originator_system_title: public_key},
    )
    assert peeled.plaintext.hex() == expected["signed_content"]
    assert len(peeled.layers) == 2


@pytest.mark.parametrize("case", by_kind("hls-gmac"))
def test_hls_gmac(case):
    i, expected = case["inputs"], case["expected"]
    keys, suite = keys_from(i), int(i["sc"], 16) & 0x0F
    f_stoc = hls.gmac_response(
        bytes.fromhex(i["stoc"]),
        keys=keys,
        system_title=bytes.fromhex(i["client_system_title"]),
        invocation_counter=i["client_ic"],
        suite=suite,
    )
    assert f_stoc.hex() == expected["f_stoc"]
    assert (
        hls.verify_gmac_response(
            bytes.fromhex(expected["f_ctos"]),
            bytes.fromhex(i["ctos"]),
            keys=keys,
            system_title=bytes.fromhex(i["server_system_title"]),
            suite=suite,
        )
        == i["server_ic"]
    )


@pytest.mark.parametrize("case", by_kind("key-wrap"))
def test_key_wrap(case):
    kek = Secret(bytes.fromhex(case["inputs"]["kek"]))
    key = Secret(bytes.fromhex(case["inputs"]["key"]))
    wrapped = keywrap.wrap(kek, key)
    assert wrapped.hex() == case["expected"]["wrapped"]
    assert keywrap.unwrap(kek, wrapped) == key


_REJECT = {"authentication": AuthenticationError, "truncated": TruncatedError}


@pytest.mark.parametrize("case", by_kind("reject"))
def test_reject(case):
    inputs = case["inputs"]
    title = bytes.fromhex(inputs["system_title"]) if "system_title" in inputs else None
    with pytest.raises(_REJECT[case["expected"]["error"]]) as info:
        unprotect(bytes.fromhex(inputs["apdu"]), keys_from(inputs), title)
    assert str(info.value)


def _mbus_user_data(frames: bytes) -> bytes:
    """Concatenate the DLMS data of wired M-Bus long frames (68 L L 68 C A CI 01 67 ... CS 16)."""
    out, i = b"", 0
    while i < len(frames):
        assert frames[i] == 0x68 and frames[i + 3] == 0x68
        end = i + 4 + frames[i + 1]
        out += frames[i + 9 : end]
        assert frames[end + 1] == 0x16
        i = end + 2
    return out


@pytest.mark.parametrize(
    "case", [pytest.param(c, id=c["id"]) for c in load_cases("mbus-push.json")]
)
def test_mbus_push(case):
    apdu = _mbus_user_data(bytes.fromhex(case["inputs"]["frames"]))
    keys = CipherKeys(ek=Secret(bytes.fromhex(case["inputs"]["ek"])))  # encryption only: no AK
    result = unprotect(apdu, keys)
    assert result.sc.byte == 0x20
    assert result.plaintext.hex() == case["expected"]["plaintext"]
