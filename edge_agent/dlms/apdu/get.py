"""GET-Request (0xC0) and GET-Response (0xC4) with their block transfer (Green Book 9.3.7, 9.5).

The meter sends a value too long for one APDU as GET-Response-With-Datablock; the client
asks for each following block with GET-Request-Next. :class:`GetBlockReassembler` does the
client's half of that exchange sans-IO, :func:`split_get_response` the server's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Self

from edge_agent.dlms.apdu.base import (
    Apdu,
    BlockNumberApdu,
    Buffer,
    CosemAttributeDescriptor,
    CosemAttributeDescriptorWithSelection,
    Data,
    GetDataResult,
    SelectiveAccess,
    encode_get_data_result,
    encode_optional_access,
    encode_sequence,
    invoke_id_of,
    put_octet_string,
    put_u32,
    raw_chunk_size,
    read_attribute_descriptor_list,
    read_boolean,
    read_count,
    read_get_data_result,
    read_octet_string,
    read_optional_access,
    read_u8,
    read_u32,
)
from edge_agent.dlms.apdu.results import DataAccessResult, explain_result
from edge_agent.dlms.encoding import axdr
from edge_agent.dlms.errors import DecodeError, ProtocolError, ServiceError

GET_REQUEST = 0xC0
GET_RESPONSE = 0xC4


# --- requests -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GetRequestNormal(Apdu):
    TAG: ClassVar[int] = GET_REQUEST
    CHOICE: ClassVar[int] = 1
    NAME: ClassVar[str] = "get-request-normal"

    invoke_id_and_priority: int
    descriptor: CosemAttributeDescriptor
    access_selection: SelectiveAccess | None = None

    def _encode_body(self, out: bytearray) -> None:
        out.append(self.invoke_id_and_priority)
        self.descriptor.encode_into(out)
        encode_optional_access(out, self.access_selection)

    @classmethod
    def _read_body(cls, buf: Buffer, offset: int) -> tuple[Self, int]:
        invoke, offset = read_u8(buf, offset, "invoke-id-and-priority")
        descriptor, offset = CosemAttributeDescriptor.read(buf, offset)
        access, offset = read_optional_access(buf, offset)
        return cls(invoke, descriptor, access), offset


@dataclass(frozen=True, slots=True)
class GetRequestNext(BlockNumberApdu):
    """Asks for the block after ``block_number`` (the number of the block last received)."""

    TAG: ClassVar[int] = GET_REQUEST
    CHOICE: ClassVar[int] = 2
    NAME: ClassVar[str] = "get-request-next"

    invoke_id_and_priority: int
    block_number: int


@dataclass(frozen=True, slots=True)
class GetRequestWithList(Apdu):
    TAG: ClassVar[int] = GET_REQUEST
    CHOICE: ClassVar[int] = 3
    NAME: ClassVar[str] = "get-request-with-list"

    invoke_id_and_priority: int
    attribute_descriptor_list: tuple[CosemAttributeDescriptorWithSelection, ...]

    def _encode_body(self, out: bytearray) -> None:
        out.append(self.invoke_id_and_priority)
        encode_sequence(out, self.attribute_descriptor_list)

    @classmethod
    def _read_body(cls, buf: Buffer, offset: int) -> tuple[Self, int]:
        invoke, offset = read_u8(buf, offset, "invoke-id-and-priority")
        items, offset = read_attribute_descriptor_list(buf, offset)
        return cls(invoke, items), offset


# --- responses ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GetResponseNormal(Apdu):
    """``result`` is the Data value, or a :class:`DataAccessResult` when the read failed."""

    TAG: ClassVar[int] = GET_RESPONSE
    CHOICE: ClassVar[int] = 1
    NAME: ClassVar[str] = "get-response-normal"

    invoke_id_and_priority: int
    result: GetDataResult

    def _encode_body(self, out: bytearray) -> None:
        out.append(self.invoke_id_and_priority)
        encode_get_data_result(out, self.result)

    @classmethod
    def _read_body(cls, buf: Buffer, offset: int) -> tuple[Self, int]:
        invoke, offset = read_u8(buf, offset, "invoke-id-and-priority")
        result, offset = read_get_data_result(buf, offset, "get-data-result")
        return cls(invoke, result), offset


@dataclass(frozen=True, slots=True)
class DataBlockG:
    """DataBlock-G: one block of a long GET; ``result`` is raw bytes or a DataAccessResult."""

    last_block: bool
    block_number: int
    result: bytes | DataAccessResult

    def encode_into(self, out: bytearray) -> None:
        out.append(1 if self.last_block else 0)
        put_u32(out, self.block_number, "block-number")
        # CHOICE { raw-data [0] OCTET STRING, data-access-result [1] Data-Access-Result }
        if isinstance(self.result, DataAccessResult):
            out.append(1)
            out.append(self.result)
        else:
            out.append(0)
            put_octet_string(out, self.result)

    @classmethod
    def read(cls, buf: Buffer, offset: int) -> tuple[Self, int]:
        last, offset = read_boolean(buf, offset, "last-block")
        number, offset = read_u32(buf, offset, "block-number")
        choice, offset = read_u8(buf, offset, "datablock result")
        if choice == 0:
            raw, offset = read_octet_string(buf, offset, "raw-data")
            return cls(last, number, raw), offset
        if choice == 1:
            code, offset = read_u8(buf, offset, "data-access-result")
            return cls(last, number, DataAccessResult(code)), offset
        raise DecodeError(
            "DataBlock-G: expected 00 (raw-data) or 01 (data-access-result) "
            f"at offset {offset - 1}, got {choice:02x}"
        )


@dataclass(frozen=True, slots=True)
class GetResponseWithDatablock(Apdu):
    TAG: ClassVar[int] = GET_RESPONSE
    CHOICE: ClassVar[int] = 2
    NAME: ClassVar[str] = "get-response-with-datablock"

    invoke_id_and_priority: int
    result: DataBlockG

    def _encode_body(self, out: bytearray) -> None:
        out.append(self.invoke_id_and_priority)
        self.result.encode_into(out)

    @classmethod
    def _read_body(cls, buf: Buffer, offset: int) -> tuple[Self, int]:
        invoke, offset = read_u8(buf, offset, "invoke-id-and-priority")
        block, offset = DataBlockG.read(buf, offset)
        return cls(invoke, block), offset


@dataclass(frozen=True, slots=True)
class GetResponseWithList(Apdu):
    """One Get-Data-Result per requested attribute, in request order."""

    TAG: ClassVar[int] = GET_RESPONSE
    CHOICE: ClassVar[int] = 3
    NAME: ClassVar[str] = "get-response-with-list"

    invoke_id_and_priority: int
    results: tuple[GetDataResult, ...]

    def _encode_body(self, out: bytearray) -> None:
        out.append(self.invoke_id_and_priority)
        out += axdr.encode_length(len(self.results))
        for result in self.results:
            encode_get_data_result(out, result)

    @classmethod
    def _read_body(cls, buf: Buffer, offset: int) -> tuple[Self, int]:
        invoke, offset = read_u8(buf, offset, "invoke-id-and-priority")
        count, offset = read_count(buf, offset, "get-data-result list", 2)
        results, offset = axdr.decode_get_data_results(buf, offset, count, DataAccessResult)
        return cls(invoke, tuple(results)), offset


GET_REQUESTS = (GetRequestNormal, GetRequestNext, GetRequestWithList)
GET_RESPONSES = (GetResponseNormal, GetResponseWithDatablock, GetResponseWithList)
GetRequest = GetRequestNormal | GetRequestNext | GetRequestWithList
GetResponse = GetResponseNormal | GetResponseWithDatablock | GetResponseWithList


# --- block transfer ------------------------------------------------------------------------


class BlockAssembler:
    """Joins numbered blocks (GET datablocks, SET/ACTION pblocks) sans-IO.

    Blocks are numbered from 1 without gaps (Green Book 9.3.7.3); anything else, or more
    than ``max_size`` bytes in total, is a ``ProtocolError``: the transfer cannot be
    trusted any further and the caller aborts it.
    """

    __slots__ = ("_parts", "_size", "block_number", "done", "max_size", "what")

    def __init__(self, what: str, max_size: int = 16 << 20) -> None:
        self._parts: list[bytes] = []
        self._size = 0
        self.max_size = max_size
        self.block_number = 0  # number of the last block accepted
        self.done = False
        self.what = what

    def add(self, block_number: int, last_block: bool, raw_data: bytes) -> bool:
        """Take the next block; return True once the last block has been taken."""
        if self.done:
            raise ProtocolError(f"{self.what}: block {block_number} came after the last block")
        if block_number != self.block_number + 1:
            raise ProtocolError(
                f"{self.what}: expected block {self.block_number + 1}, got block {block_number} "
                "(a block was lost or repeated; restart the request)"
            )
        self._size += len(raw_data)
        if self._size > self.max_size:
            raise ProtocolError(
                f"{self.what}: more than {self.max_size} bytes in blocks; aborting the transfer"
            )
        self._parts.append(raw_data)
        self.block_number = block_number
        self.done = last_block
        return last_block

    @property
    def payload(self) -> bytes:
        if not self.done:
            raise ProtocolError(
                f"{self.what}: the last block has not arrived (got up to {self.block_number})"
            )
        return b"".join(self._parts)


class GetBlockReassembler:
    """Client half of a long GET: feed each GET-Response-With-Datablock, send what it returns.

    >>> reassembler = GetBlockReassembler(0xC1)
    >>> next_request = reassembler.feed(response)   # GetRequestNext, or None when complete
    >>> value = reassembler.data()                  # the decoded Data (or Data sequence)

    A with-list GET answered in blocks carries the whole SEQUENCE OF Get-Data-Result as raw
    data; :meth:`results` decodes that form.
    """

    __slots__ = ("_assembler", "descriptor", "invoke_id_and_priority")

    def __init__(
        self,
        invoke_id_and_priority: int,
        descriptor: CosemAttributeDescriptor | None = None,
        max_size: int = 16 << 20,
    ) -> None:
        self.invoke_id_and_priority = invoke_id_and_priority
        self.descriptor = descriptor
        self._assembler = BlockAssembler("GET block transfer", max_size)

    @property
    def blocks(self) -> int:
        return self._assembler.block_number

    def feed(self, response: GetResponseWithDatablock) -> GetRequestNext | None:
        """Take one block; return the GET-Request-Next to send, or None after the last block."""
        if not response.answers(self.invoke_id_and_priority):
            raise ProtocolError(
                f"GET block transfer: response carries invoke-id {response.invoke_id}, "
                f"expected {invoke_id_of(self.invoke_id_and_priority)}"
            )
        block = response.result
        if isinstance(block.result, DataAccessResult):
            target = self.descriptor.target if self.descriptor else "the requested data"
            raise ServiceError(
                f"GET block {block.block_number}: {explain_result(block.result, target)}",
                block.result.standard_name,
            )
        if self._assembler.add(block.block_number, block.last_block, block.result):
            return None
        return GetRequestNext(self.invoke_id_and_priority, block.block_number)

    @property
    def raw_data(self) -> bytes:
        return self._assembler.payload

    def data(self) -> Data:
        """The reassembled value of a GET-Request-Normal."""
        return axdr.decode_all(self.raw_data)

    def results(self) -> tuple[GetDataResult, ...]:
        """The reassembled SEQUENCE OF Get-Data-Result of a GET-Request-With-List."""
        raw = self.raw_data
        count, offset = read_count(raw, 0, "get-data-result list", 2)
        results, offset = axdr.decode_get_data_results(raw, offset, count, DataAccessResult)
        if offset != len(raw):
            raise DecodeError(
                f"GET block transfer: {len(raw) - offset} bytes after the result list"
            )
        return tuple(results)


# DataBlock-G overhead besides the raw data: tag, choice, invoke-id, last-block,
# block-number (4), raw-data choice.
_DATABLOCK_G_HEADER = 1 + 1 + 1 + 1 + 4 + 1


def split_get_response(
    invoke_id_and_priority: int, raw_data: bytes, max_pdu_size: int
) -> list[GetResponseWithDatablock]:
    """Server half: cut encoded data (or a Get-Data-Result list) into datablocks 1..n."""
    size = raw_chunk_size(max_pdu_size, _DATABLOCK_G_HEADER)
    chunks = [raw_data[start : start + size] for start in range(0, len(raw_data), size)] or [b""]
    return [
        GetResponseWithDatablock(
            invoke_id_and_priority, DataBlockG(number == len(chunks), number, chunk)
        )
        for number, chunk in enumerate(chunks, start=1)
    ]
