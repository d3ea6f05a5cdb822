"""IEC 62056-47 wrapper: header codec and stream splitting."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.dlms.errors import DlmsError, EncodeError, FrameError, TruncatedError
from edge_agent.dlms.link.wrapper import WrapperDecoder, WrapperFrame, hdlc_instead

# GET-Request-Normal of Register 1.0.1.8.0.255 attribute 2, client 16 to server 1.
GET = bytes.fromhex("c001c100030100010800ff0200")


def test_known_header() -> None:
    assert WrapperFrame(16, 1, GET).encode() == bytes.fromhex("000100100001000d") + GET
    assert WrapperFrame.decode(bytes.fromhex("000100100001000d") + GET) == (
        WrapperFrame(16, 1, GET),
        21,
    )


@given(st.integers(0, 0xFFFF), st.integers(0, 0xFFFF), st.binary(max_size=600))
def test_round_trip(source: int, destination: int, apdu: bytes) -> None:
    frame = WrapperFrame(source, destination, apdu)
    assert WrapperFrame.decode(b"xy" + frame.encode(), 2) == (frame, 2 + 8 + len(apdu))


def test_every_truncation_is_truncated_error() -> None:
    wire = WrapperFrame(16, 1, GET).encode()
    for cut in range(len(wire)):
        with pytest.raises(TruncatedError):
            WrapperFrame.decode(wire[:cut])


def test_wrong_version_names_the_likely_cause() -> None:
    with pytest.raises(FrameError, match="HDLC over TCP"):
        WrapperFrame.decode(bytes.fromhex("7ea00a00020021039323d47e"))


@pytest.mark.parametrize(
    "frame",
    [WrapperFrame(-1, 1, b""), WrapperFrame(1, 70000, b""), WrapperFrame(1, 1, bytes(70000))],
)
def test_encode_out_of_range(frame: WrapperFrame) -> None:
    with pytest.raises(EncodeError):
        frame.encode()


@given(st.lists(st.binary(max_size=100), min_size=1, max_size=6), st.integers(1, 50))
def test_stream_splitting_of_partial_and_back_to_back_frames(
    apdus: list[bytes], chunk: int
) -> None:
    stream = b"".join(WrapperFrame(1, 16, apdu).encode() for apdu in apdus)
    decoder = WrapperDecoder()
    got = []
    for start in range(0, len(stream), chunk):
        got += decoder.feed(stream[start : start + chunk])
    assert [frame.apdu for frame in got] == apdus
    assert decoder.pending == 0


def test_stream_with_bad_header_raises_and_resets() -> None:
    decoder = WrapperDecoder()
    with pytest.raises(FrameError):
        decoder.feed(b"\x00\x02" + bytes(10))
    assert decoder.pending == 0
    assert decoder.feed(WrapperFrame(1, 16, b"ok").encode())[0].apdu == b"ok"


@given(st.binary(max_size=40))
def test_garbage_gives_dlms_errors_only(data: bytes) -> None:
    try:
        WrapperDecoder().feed(data)
    except DlmsError:
        pass


@pytest.mark.parametrize(("data", "hdlc"), [
    (bytes.fromhex("7ea00a000200232193fd8a7e"), True),  # an HDLC UA
    (bytes.fromhex("7ea8"), True),  # format type 3 with the segmentation bit
    (bytes.fromhex("0001000100100005"), False),  # a wrapper header
    (bytes.fromhex("7e"), False),  # too short to tell
    (bytes.fromhex("7e7e"), False),  # flags only: noise
    (b"", False),
])
def test_an_hdlc_frame_where_a_wrapper_stream_begins_is_named(data: bytes, hdlc: bool) -> None:
    error = hdlc_instead(data)
    assert (error is not None) is hdlc
    if error is not None:
        assert isinstance(error, FrameError) and error.fix == ("link", "hdlc")
        assert "speaks HDLC over TCP" in str(error)
