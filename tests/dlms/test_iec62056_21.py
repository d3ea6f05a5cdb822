"""IEC 62056-21 mode E sign-on (optical heads)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.dlms.errors import DlmsError, EncodeError, FrameError, ProtocolError
from edge_agent.dlms.link.iec62056_21 import (
    Identification,
    SignOn,
    option_select_message,
    request_message,
)


def test_request_messages() -> None:
    assert request_message() == b"/?!\r\n"
    assert request_message("12345678") == b"/?12345678!\r\n"
    with pytest.raises(EncodeError):
        request_message("a!b")


def test_option_select_for_mode_e() -> None:
    assert option_select_message(9600) == b"\x06252\r\n"
    assert option_select_message(19200) == b"\x06262\r\n"
    with pytest.raises(EncodeError):
        option_select_message(115200)


def test_identification_of_a_t210d() -> None:
    ident = Identification.decode(b"/SAG5\\2T210D-0000001\r\n")
    assert ident == Identification("SAG", "5", "T210D-0000001", "2")
    assert ident.max_baud == 9600 and ident.supports_mode_e
    assert ident.encode() == b"/SAG5\\2T210D-0000001\r\n"


@given(st.sampled_from("0123456"), st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-", max_size=16))
def test_identification_round_trip(baud: str, text: str) -> None:
    ident = Identification("LGZ", baud, text, "2")
    assert Identification.decode(ident.encode()) == ident


def test_sign_on_with_echo_split_reads_and_parity_bits() -> None:
    sign_on = SignOn(max_baud=19200)
    assert sign_on.request() == b"/?!\r\n"
    assert sign_on.receive_data(b"/?!\r\n/LG") is None  # echo of the optical head
    line = bytes(
        b | 0x80 if i % 2 else b for i, b in enumerate(b"Z6\\2E450\r\n")
    )  # 7E1 seen as 8N1
    result = sign_on.receive_data(line)
    assert result is not None
    assert result.identification.manufacturer == "LGZ"
    assert (result.acknowledgement, result.baud) == (b"\x06262\r\n", 19200)


def test_client_limit_lowers_the_baud() -> None:
    sign_on = SignOn(max_baud=9600)
    sign_on.request()
    result = sign_on.receive_data(b"/KFM6\\2MA309\r\n")
    assert (result.acknowledgement, result.baud) == (b"\x06252\r\n", 9600)


def test_meter_without_mode_e_is_a_clear_error() -> None:
    sign_on = SignOn()
    sign_on.request()
    with pytest.raises(ProtocolError, match="mode E"):
        sign_on.receive_data(b"/ISK5ME382-1003\r\n")


def test_noise_without_line_end_gives_up() -> None:
    with pytest.raises(FrameError, match="wrong baud"):
        SignOn().receive_data(bytes(range(1, 100)).replace(b"\r\n", b""))


def test_malformed_identification() -> None:
    with pytest.raises(FrameError):
        Identification.decode(b"/S5\r\n")


@given(st.binary(max_size=80))
def test_random_input_gives_dlms_errors_only(data: bytes) -> None:
    try:
        SignOn().receive_data(data)
    except DlmsError:
        pass
