"""Block transfer helpers: GET datablock reassembly, SET/ACTION pblock splitting, GBT."""

from __future__ import annotations

import pytest
from apdu_strategies import attribute_descriptors, data
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.dlms.apdu import (
    OMITTED,
    ActionRequestNormal,
    ActionRequestWithFirstPblock,
    ActionRequestWithList,
    ActionRequestWithListAndFirstPblock,
    ActionRequestWithPblock,
    CosemAttributeDescriptor,
    CosemAttributeDescriptorWithSelection,
    CosemMethodDescriptor,
    DataAccessResult,
    DataBlockG,
    GbtReassembler,
    GeneralBlockTransfer,
    GetBlockReassembler,
    GetRequestNext,
    GetResponseWithDatablock,
    SetRequestNormal,
    SetRequestWithDatablock,
    SetRequestWithFirstDatablock,
    SetRequestWithList,
    SetRequestWithListAndFirstDatablock,
    decode_apdu,
    split_action_request,
    split_get_response,
    split_into_gbt,
    split_set_request,
)
from edge_agent.dlms.apdu.base import encode_get_data_result
from edge_agent.dlms.encoding import axdr
from edge_agent.dlms.errors import EncodeError, ProtocolError, ServiceError

PROFILE = CosemAttributeDescriptor(7, bytes((1, 0, 99, 1, 0, 255)), 2)
ROWS = axdr.Array(
    [axdr.Structure((axdr.OctetString(bytes(12)), axdr.DoubleLongUnsigned(n))) for n in range(200)]
)


def _run_get(
    responses: list[GetResponseWithDatablock], reassembler: GetBlockReassembler
) -> list[GetRequestNext]:
    sent = []
    for response in responses:
        request = reassembler.feed(decode_apdu(response.encode()))
        if request is not None:
            sent.append(request)
    return sent


def test_get_blocks_reassemble_the_value() -> None:
    responses = split_get_response(0xC1, axdr.encode(ROWS), 256)
    assert len(responses) > 5
    assert all(len(r.encode()) <= 256 for r in responses)
    assert [r.result.last_block for r in responses] == [False] * (len(responses) - 1) + [True]
    reassembler = GetBlockReassembler(0xC1, PROFILE)
    sent = _run_get(responses, reassembler)
    assert [r.block_number for r in sent] == list(range(1, len(responses)))
    assert sent[0].encode() == bytes.fromhex("C002C100000001")
    assert reassembler.data() == ROWS
    assert reassembler.blocks == len(responses)


def test_get_blocks_with_list_results() -> None:
    out = bytearray(b"\x02")
    encode_get_data_result(out, axdr.LongUnsigned(7))
    encode_get_data_result(out, DataAccessResult.READ_WRITE_DENIED)
    reassembler = GetBlockReassembler(0xC2)
    _run_get(split_get_response(0xC2, bytes(out), 12), reassembler)
    assert reassembler.results() == (7, DataAccessResult.READ_WRITE_DENIED)


@pytest.mark.parametrize("order", [[2, 1], [1, 1], [1, 3]])
def test_get_blocks_out_of_order_are_refused(order: list[int]) -> None:
    reassembler = GetBlockReassembler(0xC1)
    with pytest.raises(ProtocolError, match="expected block"):
        for number in order:
            reassembler.feed(GetResponseWithDatablock(0xC1, DataBlockG(False, number, b"x")))


def test_get_block_after_last_and_wrong_invoke_id() -> None:
    reassembler = GetBlockReassembler(0xC1)
    assert reassembler.feed(GetResponseWithDatablock(0xC1, DataBlockG(True, 1, b"\x00"))) is None
    with pytest.raises(ProtocolError, match="after the last block"):
        reassembler.feed(GetResponseWithDatablock(0xC1, DataBlockG(True, 2, b"")))
    with pytest.raises(ProtocolError, match="invoke-id 3"):
        GetBlockReassembler(0xC1).feed(GetResponseWithDatablock(0xC3, DataBlockG(True, 1, b"")))


def test_get_block_error_is_a_readable_service_error() -> None:
    reassembler = GetBlockReassembler(0xC1, PROFILE)
    with pytest.raises(
        ServiceError, match="long-get-aborted: .*1.0.99.1.0.255 of class 7"
    ) as caught:
        reassembler.feed(
            GetResponseWithDatablock(0xC1, DataBlockG(True, 1, DataAccessResult.LONG_GET_ABORTED))
        )
    assert caught.value.reason == "long-get-aborted"


def test_get_block_size_limit_and_incomplete_payload() -> None:
    reassembler = GetBlockReassembler(0xC1, max_size=10)
    with pytest.raises(ProtocolError, match="not arrived"):
        reassembler.feed(GetResponseWithDatablock(0xC1, DataBlockG(False, 1, b"12345")))
        reassembler.raw_data  # noqa: B018
    with pytest.raises(ProtocolError, match="more than 10 bytes"):
        reassembler.feed(GetResponseWithDatablock(0xC1, DataBlockG(False, 2, b"123456")))


@settings(max_examples=60, deadline=None)
@given(data, st.integers(24, 400))
def test_set_split_round_trips(value: object, max_pdu: int) -> None:
    request = SetRequestNormal(0xC1, PROFILE, value)
    parts = split_set_request(request, max_pdu)
    assert all(len(p.encode()) <= max_pdu for p in parts)
    if len(parts) == 1:
        assert parts == [request]
        return
    assert isinstance(parts[0], SetRequestWithFirstDatablock) and parts[0].descriptor == PROFILE
    assert all(isinstance(p, SetRequestWithDatablock) for p in parts[1:])
    blocks = [parts[0].datablock, *(p.datablock for p in parts[1:])]
    assert [b.block_number for b in blocks] == list(range(1, len(blocks) + 1))
    assert [b.last_block for b in blocks].count(True) == 1 and blocks[-1].last_block
    assert axdr.decode_all(b"".join(b.raw_data for b in blocks)) == value


@settings(max_examples=40, deadline=None)
@given(st.lists(attribute_descriptors, min_size=1, max_size=5), st.integers(100, 300))
def test_set_with_list_split(plain: list, max_pdu: int) -> None:
    descriptors = tuple(CosemAttributeDescriptorWithSelection(d) for d in plain)
    values = tuple(axdr.OctetString(bytes(60)) for _ in descriptors)
    request = SetRequestWithList(0xC1, descriptors, values)
    parts = split_set_request(request, max_pdu)
    assert all(len(p.encode()) <= max_pdu for p in parts)
    if len(parts) > 1:
        assert isinstance(parts[0], SetRequestWithListAndFirstDatablock)
        raw = parts[0].datablock.raw_data + b"".join(p.datablock.raw_data for p in parts[1:])
        assert raw[0] == len(values)


def test_action_split_normal_and_with_list() -> None:
    method = CosemMethodDescriptor(64, bytes((0, 0, 43, 0, 0, 255)), 3)  # import_certificate
    certificate = axdr.OctetString(bytes(range(256)) * 3)
    parts = split_action_request(ActionRequestNormal(0xC1, method, certificate), 200)
    assert isinstance(parts[0], ActionRequestWithFirstPblock)
    assert all(isinstance(p, ActionRequestWithPblock) for p in parts[1:])
    assert all(len(p.encode()) <= 200 for p in parts)
    raw = parts[0].pblock.raw_data + b"".join(p.pblock.raw_data for p in parts[1:])
    assert axdr.decode_all(raw) == certificate
    listed = split_action_request(
        ActionRequestWithList(0xC1, (method, method), (certificate, None)), 200
    )
    assert isinstance(listed[0], ActionRequestWithListAndFirstPblock)
    small = ActionRequestNormal(0xC1, method, OMITTED)
    assert split_action_request(small, 200) == [small]


def test_split_refuses_a_pdu_too_small_for_any_data() -> None:
    with pytest.raises(EncodeError, match="cannot carry"):
        split_set_request(SetRequestNormal(0xC1, PROFILE, axdr.OctetString(bytes(50))), 18)


# --- general-block-transfer --------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=2000), st.integers(16, 300), st.booleans())
def test_gbt_split_and_reassemble(apdu: bytes, max_pdu: int, streaming: bool) -> None:
    blocks = split_into_gbt(apdu, max_pdu, streaming=streaming)
    assert all(len(b.encode()) <= max_pdu for b in blocks)
    reassembler = GbtReassembler()
    results = [reassembler.feed(decode_apdu(b.encode())) for b in blocks]
    assert results[-1] == apdu and all(r is None for r in results[:-1])
    assert reassembler.done


def test_gbt_known_encoding_and_ack() -> None:
    block = GeneralBlockTransfer(False, False, 1, 1, 0, b"\x0f\x00")
    assert block.encode() == bytes.fromhex("E0010001000002 0F00".replace(" ", ""))
    last = GeneralBlockTransfer(True, True, 63, 2, 0, b"")
    assert last.encode() == bytes.fromhex("E0FF0002000000")
    reassembler = GbtReassembler()
    assert reassembler.feed(block) is None and reassembler.needs_ack
    ack = reassembler.ack(1)
    assert ack.block_number_ack == 1 and ack.block_data == b"" and not reassembler.needs_ack


def test_gbt_gap_is_refused() -> None:
    reassembler = GbtReassembler()
    reassembler.feed(GeneralBlockTransfer(False, True, 1, 1, 0, b"a"))
    with pytest.raises(ProtocolError, match="expected block 2, got 3"):
        reassembler.feed(GeneralBlockTransfer(True, True, 1, 3, 0, b"b"))
