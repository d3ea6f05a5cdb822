"""HDLC frame codec, addresses, parameters and the stream splitter (IEC 62056-46)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from known_answers import cases

from edge_agent.dlms.encoding.crc import crc16_x25
from edge_agent.dlms.errors import DlmsError, EncodeError, FrameError, TruncatedError
from edge_agent.dlms.link.hdlc.frame import (
    FrameKind,
    FrameSplitter,
    HdlcAddress,
    HdlcFrame,
    HdlcParameters,
    UnknownControlError,
    strip_llc,
)

CASES = cases("security.json")
HDLC_CASES = [case for case in CASES.values() if case["kind"] == "hdlc"]


# --- known answers -----------------------------------------------------------------------


@pytest.mark.parametrize("case", HDLC_CASES, ids=lambda case: case["id"])
def test_vector_frames_decode_and_reencode(case: dict) -> None:
    raw = bytes.fromhex(case["inputs"]["frame"])
    frame, end = HdlcFrame.decode(raw)
    expected = case["expected"]
    assert end == len(raw) - 1  # offset of the closing flag
    assert frame.destination.upper == expected["dest_logical"]
    assert frame.destination.lower == expected.get("dest_physical")
    assert frame.source.upper == expected["src_sap"]
    assert frame.control == int(expected["control"], 16)
    assert frame.kind is FrameKind.SNRM and frame.poll_final
    assert frame.encode() == raw


def test_vector_iframe_info_field_is_the_glo_get_request() -> None:
    raw = bytes.fromhex(CASES["hdlc-iframe-glo-get"]["inputs"]["frame"])
    frame, _ = HdlcFrame.decode(memoryview(raw))
    assert (frame.kind, frame.send_sequence, frame.receive_sequence, frame.poll_final) == (
        FrameKind.I,
        0,
        0,
        True,
    )
    assert frame.destination == HdlcAddress.server(1, 16)
    assert frame.source == HdlcAddress.client(1)
    apdu = strip_llc(frame.info)
    assert apdu[0] == 0xC8 and apdu[1] == len(apdu) - 2  # glo-get-request, short length
    assert frame.encode() == raw


def test_vector_iframe_plaintext_with_aes_gcm() -> None:
    # Decryption belongs to the security module; this only proves the info field we cut
    # out is exactly the ciphered APDU of the vector (SC 0x30: AAD = SC || AK).
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    case = CASES["hdlc-iframe-glo-get"]
    frame, _ = HdlcFrame.decode(bytes.fromhex(case["inputs"]["frame"]))
    apdu = strip_llc(frame.info)
    security_control, counter, body, tag = apdu[2], apdu[3:7], apdu[7:-12], apdu[-12:]
    iv = bytes.fromhex(case["inputs"]["system_title"]) + counter
    key = bytes.fromhex(case["inputs"]["ek"])
    decryptor = Cipher(algorithms.AES(key), modes.GCM(iv, tag, min_tag_length=12)).decryptor()
    decryptor.authenticate_additional_data(
        bytes((security_control,)) + bytes.fromhex(case["inputs"]["ak"])
    )
    plaintext = decryptor.update(body) + decryptor.finalize()
    assert plaintext.hex() == case["expected"]["plaintext"]


@pytest.mark.parametrize(
    ("kind", "poll", "ns", "nr", "control"),
    [
        (FrameKind.I, True, 0, 0, 0x10),
        (FrameKind.I, False, 3, 5, 0xA6),
        (FrameKind.RR, True, 0, 1, 0x31),
        (FrameKind.RNR, True, 0, 2, 0x55),
        (FrameKind.SNRM, True, 0, 0, 0x93),
        (FrameKind.DISC, True, 0, 0, 0x53),
        (FrameKind.UA, True, 0, 0, 0x73),
        (FrameKind.DM, True, 0, 0, 0x1F),
        (FrameKind.FRMR, True, 0, 0, 0x97),
        (FrameKind.UI, False, 0, 0, 0x03),
    ],
)
def test_control_field_values(kind, poll, ns, nr, control) -> None:
    frame = HdlcFrame(HdlcAddress(1), HdlcAddress(16), kind, poll, ns, nr)
    assert frame.control == control
    decoded, _ = HdlcFrame.decode(frame.encode())
    assert decoded == frame


@pytest.mark.parametrize(
    ("address", "wire"),
    [
        (HdlcAddress.client(16), "21"),
        (HdlcAddress(1, 17, 2), "0223"),
        (HdlcAddress.server(1, 16), "00020021"),
        (HdlcAddress.server(0x3FFF, 0x3FFF), "fefefeff"),
    ],
)
def test_address_forms(address: HdlcAddress, wire: str) -> None:
    assert address.encode().hex() == wire
    assert HdlcAddress.decode(bytes.fromhex(wire)) == (address, len(wire) // 2)


@pytest.mark.parametrize(
    "bad",
    [
        lambda: HdlcAddress(128),
        lambda: HdlcAddress(1, 2),
        lambda: HdlcAddress(1, 128, 2),
        lambda: HdlcAddress(1, None, 4),
        lambda: HdlcAddress(1, 1, 3),
    ],
)
def test_address_out_of_range_is_an_encode_error(bad) -> None:
    with pytest.raises(EncodeError):
        bad()


def test_three_byte_address_is_rejected() -> None:
    with pytest.raises(FrameError, match="3 bytes"):
        HdlcAddress.decode(bytes.fromhex("00020300"))


def test_default_parameters_match_the_green_book_example() -> None:
    assert HdlcParameters().encode().hex() == "818012050180060180070400000001080400000001"


def test_snrm_form_leaves_the_defaults_out() -> None:
    assert HdlcParameters().encode(defaults=False) == b""
    assert HdlcParameters(max_info_receive=2030).encode(defaults=False).hex() == "818004060207ee"
    assert HdlcParameters(window_transmit=7).encode(defaults=False).hex() == "818006070400000007"
    assert HdlcParameters.largest().encode(defaults=False).hex() == (
        "818014" "050207ee" "060207ee" "070400000007" "080400000007"
    )
    assert HdlcParameters.largest() == HdlcParameters(2030, 2030, 7, 7)


@pytest.mark.parametrize(
    ("wire", "expected"),
    [
        ("", HdlcParameters()),
        ("81800705020400080107", HdlcParameters(max_info_transmit=1024, window_receive=7)),
        (
            "8180090604000001f40701 03".replace(" ", ""),
            HdlcParameters(max_info_receive=500, window_transmit=3),
        ),
        ("818006990100050122", HdlcParameters(max_info_transmit=0x22)),  # unknown id skipped
    ],
)
def test_parameter_decoding_forms(wire: str, expected: HdlcParameters) -> None:
    assert HdlcParameters.decode(bytes.fromhex(wire)) == expected


@pytest.mark.parametrize(
    "wire",
    [
        "8180",
        "8280020501",
        "81800305",
        "8180050503000001",
        "818003070100",
        "818004050200",
        "81800a",
    ],
)
def test_bad_parameter_fields(wire: str) -> None:
    with pytest.raises(FrameError):
        HdlcParameters.decode(bytes.fromhex(wire))


def test_negotiation_takes_the_minimum_of_both_sides() -> None:
    client = HdlcParameters(
        max_info_transmit=512, max_info_receive=256, window_transmit=7, window_receive=1
    )
    server = HdlcParameters(
        max_info_transmit=128, max_info_receive=1024, window_transmit=3, window_receive=2
    )
    ua = server.negotiate(client)
    assert ua == HdlcParameters(128, 512, 1, 2)
    assert client.negotiate(ua) == HdlcParameters(512, 128, 2, 1)


# --- round trips ------------------------------------------------------------------------

addresses = st.one_of(
    st.builds(HdlcAddress, st.integers(0, 127)),
    st.builds(HdlcAddress, st.integers(0, 127), st.integers(0, 127), st.just(2)),
    st.builds(HdlcAddress, st.integers(0, 0x3FFF), st.integers(0, 0x3FFF), st.just(4)),
)


@st.composite
def frames(draw) -> HdlcFrame:
    kind = draw(st.sampled_from(list(FrameKind)))
    numbered_send = kind is FrameKind.I
    numbered_receive = kind in (FrameKind.I, FrameKind.RR, FrameKind.RNR)
    return HdlcFrame(
        destination=draw(addresses),
        source=draw(addresses),
        kind=kind,
        poll_final=draw(st.booleans()),
        send_sequence=draw(st.integers(0, 7)) if numbered_send else 0,
        receive_sequence=draw(st.integers(0, 7)) if numbered_receive else 0,
        info=draw(st.binary(max_size=300)),
        segmented=draw(st.booleans()),
    )


@given(frames())
def test_frame_round_trip(frame: HdlcFrame) -> None:
    wire = frame.encode()
    assert HdlcFrame.decode(wire) == (frame, len(wire) - 1)
    assert HdlcFrame.decode(b"\x00" + wire, 1) == (frame, len(wire))


@given(
    st.builds(
        HdlcParameters,
        st.integers(1, 2032),
        st.integers(1, 2032),
        st.integers(1, 7),
        st.integers(1, 7),
    )
)
def test_parameter_round_trip(parameters: HdlcParameters) -> None:
    assert HdlcParameters.decode(parameters.encode()) == parameters
    assert HdlcParameters.decode(parameters.encode(defaults=False)) == parameters


def test_oversized_frame_is_an_encode_error() -> None:
    with pytest.raises(EncodeError, match="segment"):
        HdlcFrame(HdlcAddress(1), HdlcAddress(16), FrameKind.I, info=bytes(2040)).encode()


# --- damage -----------------------------------------------------------------------------

SAMPLE = HdlcFrame(
    HdlcAddress.server(1, 16),
    HdlcAddress(16),
    FrameKind.I,
    True,
    2,
    3,
    info=b"\xe6\xe6\x00\xc0\x01\xc1\x00\x08\x00\x00\x01\x00\x00\xff\x02\x00",
).encode()
SHORT = HdlcFrame(HdlcAddress(1), HdlcAddress(16), FrameKind.RR, True, 0, 5).encode()


@pytest.mark.parametrize("wire", [SAMPLE, SHORT], ids=["iframe", "rr"])
def test_every_truncation_is_truncated_error(wire: bytes) -> None:
    for cut in range(len(wire)):
        with pytest.raises(TruncatedError):
            HdlcFrame.decode(wire[:cut])


@pytest.mark.parametrize("wire", [SAMPLE, SHORT], ids=["iframe", "rr"])
def test_every_single_byte_corruption_is_a_frame_error(wire: bytes) -> None:
    for position in range(len(wire)):
        for flip in (0x01, 0x80, 0xFF):
            damaged = bytearray(wire)
            damaged[position] ^= flip
            with pytest.raises(DlmsError):  # FrameError, or TruncatedError if length grew
                HdlcFrame.decode(bytes(damaged))


@given(st.binary(max_size=64))
def test_random_bytes_never_crash(data: bytes) -> None:
    try:
        HdlcFrame.decode(b"\x7e" + data)
    except DlmsError:
        pass


def test_undefined_control_is_reported_with_its_byte() -> None:
    wire = bytearray(SHORT)
    wire[5] = 0x09  # REJ: not part of IEC 62056-46
    wire[6:8] = crc16_x25(bytes(wire[1:6])).to_bytes(2, "little")
    with pytest.raises(UnknownControlError) as caught:
        HdlcFrame.decode(bytes(wire))
    assert caught.value.control == 0x09


def test_strip_llc_rejects_missing_header() -> None:
    with pytest.raises(FrameError, match="e6e600"):
        strip_llc(b"\xc0\x01")


# --- stream splitting ------------------------------------------------------------------


def test_splitter_handles_shared_and_double_flags_and_garbage() -> None:
    shared = SAMPLE + SHORT[1:]  # closing flag of the first opens the second
    stream = b"\x00\x13garbage\x7e" + shared + b"\x7e\x7e" + SAMPLE + b"\xff\x7e\xa0"
    splitter = FrameSplitter()
    got = []
    for start in range(0, len(stream), 5):  # arrive in small pieces
        got += splitter.feed(stream[start : start + 5])
    assert [frame.encode() for frame in got] == [SAMPLE, SHORT, SAMPLE]
    assert splitter.discarded >= len(b"\x00\x13garbage\x7e")


def test_splitter_resynchronises_after_a_bad_fcs() -> None:
    damaged = bytearray(SAMPLE)
    damaged[-3] ^= 0x55
    splitter = FrameSplitter()
    assert [f.encode() for f in splitter.feed(bytes(damaged) + SHORT)] == [SHORT]
    assert "FCS" in str(splitter.last_error)


def test_splitter_recovers_when_a_frame_lost_its_tail() -> None:
    splitter = FrameSplitter()
    got = splitter.feed(SAMPLE[:12] + SAMPLE + SHORT)
    assert [f.encode() for f in got] == [SAMPLE, SHORT]


def test_splitter_clear_drops_a_partial_frame() -> None:
    splitter = FrameSplitter()
    assert splitter.feed(SAMPLE[:-4]) == []
    splitter.clear()
    assert [f.encode() for f in splitter.feed(SHORT)] == [SHORT]


@given(
    st.lists(st.one_of(st.sampled_from([SAMPLE, SHORT]), st.binary(max_size=12)), max_size=8),
    st.integers(1, 40),
)
def test_splitter_never_crashes_and_finds_intact_frames(pieces: list[bytes], chunk: int) -> None:
    stream = b"".join(pieces)
    splitter = FrameSplitter()
    found = []
    for start in range(0, len(stream), chunk):
        found += splitter.feed(stream[start : start + chunk])
    assert all(isinstance(item, (HdlcFrame, UnknownControlError)) for item in found)
    # every frame that arrived intact after a flag-separated boundary is found
    intact = [p for p in pieces if p in (SAMPLE, SHORT)]
    assert len([f for f in found if isinstance(f, HdlcFrame)]) <= len(intact) + 8


@given(st.binary(max_size=40))
def test_random_parameter_fields_give_frame_errors_only(data: bytes) -> None:
    try:
        HdlcParameters.decode(b"\x81\x80" + data)
    except FrameError:
        pass
