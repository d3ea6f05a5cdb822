"""CRC-16/X.25 (HDLC HCS/FCS): known answers and the two implementations agreeing."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from edge_agent.dlms.encoding.crc import CRC16_X25_TABLE, crc16_x25, crc16_x25_table


def test_check_value_of_the_catalogue() -> None:
    # CRC RevEng catalogue, CRC-16/IBM-SDLC (alias X-25): check = 0x906E, residue 0xF0B8.
    assert crc16_x25(b"123456789") == 0x906E
    assert crc16_x25_table(b"123456789") == 0x906E


def test_empty_input_is_zero() -> None:
    assert crc16_x25(b"") == 0x0000 == crc16_x25_table(b"")


def test_hcs_of_a_published_snrm_frame() -> None:
    # 7E A0 0A 00 02 00 21 03 93 | FCS 23 D4 | 7E  (vectors/security.json, hdlc-snrm-4byte)
    assert crc16_x25(bytes.fromhex("a00a000200210393")).to_bytes(2, "little") == b"\x23\xd4"


def test_message_with_its_crc_leaves_the_x25_residue() -> None:
    data = b"dlms-edge"
    framed = data + crc16_x25(data).to_bytes(2, "little")
    # Running the CRC over data + CRC gives the fixed good-frame residue 0xF0B8 (^0xFFFF).
    assert crc16_x25(framed) ^ 0xFFFF == 0xF0B8


def test_table_has_256_entries_and_known_first_entries() -> None:
    assert len(CRC16_X25_TABLE) == 256
    assert CRC16_X25_TABLE[:4] == (0x0000, 0x1189, 0x2312, 0x329B)


@given(st.binary(max_size=600))
def test_both_implementations_agree(data: bytes) -> None:
    assert crc16_x25(data) == crc16_x25_table(data)
    assert crc16_x25(memoryview(data)) == crc16_x25(bytearray(data))
