"""The known malformations the client accepts, and only those (edge_agent.client.lenient),
and the wrapper decoder that skips line noise before a frame of the expected ports."""

from __future__ import annotations

import pytest

from edge_agent.client.lenient import apdu_end, split_trailing, unwrap_date_time
from edge_agent.dlms.errors import FrameError
from edge_agent.dlms.link.wrapper import WrapperDecoder, WrapperFrame

GET_RESPONSE = bytes.fromhex("c401c1000600000457")  # get-response-normal, double-long-unsigned
DATE_TIME = bytes.fromhex("07ea0b1405060000ff800000")  # 2026-11-20 06:00:00, deviation unknown
AARE = bytes.fromhex("6129a109060760857405080101a203020100a305a103020100be10040e0800065f1f040000101d04000007")


@pytest.mark.parametrize("apdu", [GET_RESPONSE, AARE])
def test_the_end_of_a_complete_apdu_is_found(apdu: bytes) -> None:
    assert apdu_end(apdu) == len(apdu)
    assert split_trailing(apdu + b"\x00\x7e") == (apdu, b"\x00\x7e")


@pytest.mark.parametrize("apdu", [GET_RESPONSE[:-1], b"\xc4\x01\xc1\x00\x0e\x01", b"", b"\xff"])
def test_no_complete_apdu_means_nothing_is_cut(apdu: bytes) -> None:
    assert split_trailing(apdu) == (apdu, b"")


def test_a_date_time_wrapped_once_more_is_unwrapped_and_nothing_else() -> None:
    assert unwrap_date_time(b"\x09\x0c" + DATE_TIME) == DATE_TIME
    assert unwrap_date_time(DATE_TIME) is None  # the standard form needs nothing
    assert unwrap_date_time(b"\x09\x0c" + b"\x07\xea\x63" + bytes(9)) is None  # month 99: no date-time
    assert unwrap_date_time(b"\x0a\x0c" + DATE_TIME) is None  # not an octet-string tag
    assert unwrap_date_time(42) is None


def test_the_decoder_skips_noise_before_a_frame_of_the_expected_ports() -> None:
    frame = WrapperFrame(1, 16, GET_RESPONSE).encode()
    decoder = WrapperDecoder(expects=(1, 16))
    noise = bytes.fromhex("7d90aa0001")
    assert decoder.feed(noise + frame[:5]) == []
    assert decoder.feed(frame[5:] + frame) == [WrapperFrame(1, 16, GET_RESPONSE)] * 2
    assert decoder.pending == 0


def test_noise_is_kept_in_skipped_for_the_report() -> None:
    decoder = WrapperDecoder(expects=(1, 16))
    frames = decoder.feed(b"\x12\x34" + WrapperFrame(1, 16, GET_RESPONSE).encode())
    assert frames == [WrapperFrame(1, 16, GET_RESPONSE)] and decoder.skipped == b"\x12\x34"


def test_without_expected_ports_a_bad_header_still_ends_the_stream() -> None:
    with pytest.raises(FrameError, match="wrapper version"):
        WrapperDecoder().feed(b"\x12\x34" + WrapperFrame(1, 16, GET_RESPONSE).encode())


def test_a_frame_cut_short_is_held_back_with_its_announced_length() -> None:
    decoder = WrapperDecoder(expects=(1, 16))
    encoded = WrapperFrame(1, 16, GET_RESPONSE).encode()
    assert decoder.feed(encoded[:6] + (len(GET_RESPONSE) + 4).to_bytes(2, "big") + GET_RESPONSE) == []
    frame, announced = decoder.partial()
    assert (frame.apdu, announced) == (GET_RESPONSE, len(GET_RESPONSE) + 4)
    decoder.clear()
    assert decoder.pending == 0
