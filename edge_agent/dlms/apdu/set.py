"""SET-Request (0xC1) and SET-Response (0xC5) (Green Book 9.3.8, 9.5).

A value too long for one APDU goes out as SET-Request-With-First-Datablock followed by
SET-Request-With-Datablock; :func:`split_set_request` produces that sequence from a
normal or with-list request and the server's max receive PDU size.
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
    DataBlockSA,
    SelectiveAccess,
    encode_data_sequence,
    encode_optional_access,
    encode_sequence,
    put_count,
    put_u32,
    read_attribute_descriptor_list,
    read_count,
    read_data,
    read_data_sequence,
    read_optional_access,
    read_u8,
    read_u32,
    split_datablocks_sa,
)
from edge_agent.dlms.apdu.results import DataAccessResult
from edge_agent.dlms.encoding import axdr

SET_REQUEST = 0xC1
SET_RESPONSE = 0xC5


# --- requests -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SetRequestNormal(Apdu):
    TAG: ClassVar[int] = SET_REQUEST
    CHOICE: ClassVar[int] = 1
    NAME: ClassVar[str] = "set-request-normal"

    invoke_id_and_priority: int
    descriptor: CosemAttributeDescriptor
    value: Data
    access_selection: SelectiveAccess | None = None

    def _encode_body(self, out: bytearray) -> None:
        out.append(self.invoke_id_and_priority)
        self.descriptor.encode_into(out)
        encode_optional_access(out, self.access_selection)
        axdr.encode_into(out, self.value)

    @classmethod
    def _read_body(cls, buf: Buffer, offset: int) -> tuple[Self, int]:
        invoke, offset = read_u8(buf, offset, "invoke-id-and-priority")
        descriptor, offset = CosemAttributeDescriptor.read(buf, offset)
        access, offset = read_optional_access(buf, offset)
        value, offset = read_data(buf, offset, "value")
        return cls(invoke, descriptor, value, access), offset


@dataclass(frozen=True, slots=True)
class SetRequestWithFirstDatablock(Apdu):
    TAG: ClassVar[int] = SET_REQUEST
    CHOICE: ClassVar[int] = 2
    NAME: ClassVar[str] = "set-request-with-first-datablock"

    invoke_id_and_priority: int
    descriptor: CosemAttributeDescriptor
    datablock: DataBlockSA
    access_selection: SelectiveAccess | None = None

    def _encode_body(self, out: bytearray) -> None:
        out.append(self.invoke_id_and_priority)
        self.descriptor.encode_into(out)
        encode_optional_access(out, self.access_selection)
        self.datablock.encode_into(out)

    @classmethod
    def _read_body(cls, buf: Buffer, offset: int) -> tuple[Self, int]:
        invoke, offset = read_u8(buf, offset, "invoke-id-and-priority")
        descriptor, offset = CosemAttributeDescriptor.read(buf, offset)
        access, offset = read_optional_access(buf, offset)
        block, offset = DataBlockSA.read(buf, offset)
        return cls(invoke, descriptor, block, access), offset


@dataclass(frozen=True, slots=True)
class SetRequestWithDatablock(Apdu):
    TAG: ClassVar[int] = SET_REQUEST
    CHOICE: ClassVar[int] = 3
    NAME: ClassVar[str] = "set-request-with-datablock"

    invoke_id_and_priority: int
    datablock: DataBlockSA

    def _encode_body(self, out: bytearray) -> None:
        out.append(self.invoke_id_and_priority)
        self.datablock.encode_into(out)

    @classmethod
    def _read_body(cls, buf: Buffer, offset: int) -> tuple[Self, int]:
        invoke, offset = read_u8(buf, offset, "invoke-id-and-priority")
        block, offset = DataBlockSA.read(buf, offset)
        return cls(invoke, block), offset


@dataclass(frozen=True, slots=True)
class SetRequestWithList(Apdu):
    TAG: ClassVar[int] = SET_REQUEST
    CHOICE: ClassVar[int] = 4
    NAME: ClassVar[str] = "set-request-with-list"

    invoke_id_and_priority: int
    attribute_descriptor_list: tuple[CosemAttributeDescriptorWithSelection, ...]
    value_list: tuple[Data, ...]

    def _encode_body(self, out: bytearray) -> None:
        out.append(self.invoke_id_and_priority)
        encode_sequence(out, self.attribute_descriptor_list)
        encode_data_sequence(out, self.value_list)

    @classmethod
    def _read_body(cls, buf: Buffer, offset: int) -> tuple[Self, int]:
        invoke, offset = read_u8(buf, offset, "invoke-id-and-priority")
        items, offset = read_attribute_descriptor_list(buf, offset)
        values, offset = read_data_sequence(buf, offset, "value-list")
        return cls(invoke, items, values), offset


@dataclass(frozen=True, slots=True)
class SetRequestWithListAndFirstDatablock(Apdu):
    TAG: ClassVar[int] = SET_REQUEST
    CHOICE: ClassVar[int] = 5
    NAME: ClassVar[str] = "set-request-with-list-and-first-datablock"

    invoke_id_and_priority: int
    attribute_descriptor_list: tuple[CosemAttributeDescriptorWithSelection, ...]
    datablock: DataBlockSA

    def _encode_body(self, out: bytearray) -> None:
        out.append(self.invoke_id_and_priority)
        encode_sequence(out, self.attribute_descriptor_list)
        self.datablock.encode_into(out)

    @classmethod
    def _read_body(cls, buf: Buffer, offset: int) -> tuple[Self, int]:
        invoke, offset = read_u8(buf, offset, "invoke-id-and-priority")
        items, offset = read_attribute_descriptor_list(buf, offset)
        block, offset = DataBlockSA.read(buf, offset)
        return cls(invoke, items, block), offset


# --- responses ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SetResponseNormal(Apdu):
    TAG: ClassVar[int] = SET_RESPONSE
    CHOICE: ClassVar[int] = 1
    NAME: ClassVar[str] = "set-response-normal"

    invoke_id_and_priority: int
    result: DataAccessResult

    def _encode_body(self, out: bytearray) -> None:
        out.append(self.invoke_id_and_priority)
        out.append(self.result)

    @classmethod
    def _read_body(cls, buf: Buffer, offset: int) -> tuple[Self, int]:
        invoke, offset = read_u8(buf, offset, "invoke-id-and-priority")
        result, offset = read_u8(buf, offset, "data-access-result")
        return cls(invoke, DataAccessResult(result)), offset


@dataclass(frozen=True, slots=True)
class SetResponseDatablock(BlockNumberApdu):
    """Acknowledges block ``block_number`` and asks for the next one."""

    TAG: ClassVar[int] = SET_RESPONSE
    CHOICE: ClassVar[int] = 2
    NAME: ClassVar[str] = "set-response-datablock"

    invoke_id_and_priority: int
    block_number: int


@dataclass(frozen=True, slots=True)
class SetResponseLastDatablock(Apdu):
    TAG: ClassVar[int] = SET_RESPONSE
    CHOICE: ClassVar[int] = 3
    NAME: ClassVar[str] = "set-response-last-datablock"

    invoke_id_and_priority: int
    result: DataAccessResult
    block_number: int

    def _encode_body(self, out: bytearray) -> None:
        out.append(self.invoke_id_and_priority)
        out.append(self.result)
        put_u32(out, self.block_number, "block-number")

    @classmethod
    def _read_body(cls, buf: Buffer, offset: int) -> tuple[Self, int]:
        invoke, offset = read_u8(buf, offset, "invoke-id-and-priority")
        result, offset = read_u8(buf, offset, "data-access-result")
        number, offset = read_u32(buf, offset, "block-number")
        return cls(invoke, DataAccessResult(result), number), offset


def _read_results(buf: Buffer, offset: int) -> tuple[tuple[DataAccessResult, ...], int]:
    count, offset = read_count(buf, offset, "data-access-result list")
    end = offset + count
    return tuple(DataAccessResult(code) for code in buf[offset:end]), end


def _encode_results(out: bytearray, results: tuple[DataAccessResult, ...]) -> None:
    put_count(out, len(results))
    out += bytes(results)


@dataclass(frozen=True, slots=True)
class SetResponseLastDatablockWithList(Apdu):
    TAG: ClassVar[int] = SET_RESPONSE
    CHOICE: ClassVar[int] = 4
    NAME: ClassVar[str] = "set-response-last-datablock-with-list"

    invoke_id_and_priority: int
    results: tuple[DataAccessResult, ...]
    block_number: int

    def _encode_body(self, out: bytearray) -> None:
        out.append(self.invoke_id_and_priority)
        _encode_results(out, self.results)
        put_u32(out, self.block_number, "block-number")

    @classmethod
    def _read_body(cls, buf: Buffer, offset: int) -> tuple[Self, int]:
        invoke, offset = read_u8(buf, offset, "invoke-id-and-priority")
        results, offset = _read_results(buf, offset)
        number, offset = read_u32(buf, offset, "block-number")
        return cls(invoke, results, number), offset


@dataclass(frozen=True, slots=True)
class SetResponseWithList(Apdu):
    TAG: ClassVar[int] = SET_RESPONSE
    CHOICE: ClassVar[int] = 5
    NAME: ClassVar[str] = "set-response-with-list"

    invoke_id_and_priority: int
    results: tuple[DataAccessResult, ...]

    def _encode_body(self, out: bytearray) -> None:
        out.append(self.invoke_id_and_priority)
        _encode_results(out, self.results)

    @classmethod
    def _read_body(cls, buf: Buffer, offset: int) -> tuple[Self, int]:
        invoke, offset = read_u8(buf, offset, "invoke-id-and-priority")
        results, offset = _read_results(buf, offset)
        return cls(invoke, results), offset


SET_REQUESTS = (
    SetRequestNormal,
    SetRequestWithFirstDatablock,
    SetRequestWithDatablock,
    SetRequestWithList,
    SetRequestWithListAndFirstDatablock,
)
SET_RESPONSES = (
    SetResponseNormal,
    SetResponseDatablock,
    SetResponseLastDatablock,
    SetResponseLastDatablockWithList,
    SetResponseWithList,
)
SetRequest = (
    SetRequestNormal
    | SetRequestWithFirstDatablock
    | SetRequestWithDatablock
    | SetRequestWithList
    | SetRequestWithListAndFirstDatablock
)
SetResponse = (
    SetResponseNormal
    | SetResponseDatablock
    | SetResponseLastDatablock
    | SetResponseLastDatablockWithList
    | SetResponseWithList
)


def split_set_request(
    request: SetRequestNormal | SetRequestWithList, max_pdu_size: int
) -> list[SetRequest]:
    """The request itself if it fits ``max_pdu_size``, else its block-transfer form.

    Green Book 9.3.8: the raw data of the blocks is the A-XDR encoding of the value (normal)
    or of the SEQUENCE OF Data value-list (with-list). ``max_pdu_size`` is the server's
    max receive PDU size minus what ciphering will add.
    """
    encoded = request.encode()
    if len(encoded) <= max_pdu_size:
        return [request]
    invoke = request.invoke_id_and_priority
    if isinstance(request, SetRequestNormal):
        raw = axdr.encode(request.value)
        head = bytearray()
        request.descriptor.encode_into(head)
        encode_optional_access(head, request.access_selection)
    else:
        values = bytearray()
        encode_data_sequence(values, request.value_list)
        raw = bytes(values)
        head = bytearray()
        encode_sequence(head, request.attribute_descriptor_list)
    blocks = split_datablocks_sa(raw, len(head), max_pdu_size)
    first: SetRequest
    if isinstance(request, SetRequestNormal):
        first = SetRequestWithFirstDatablock(
            invoke, request.descriptor, blocks[0], request.access_selection
        )
    else:
        first = SetRequestWithListAndFirstDatablock(
            invoke, request.attribute_descriptor_list, blocks[0]
        )
    return [first, *(SetRequestWithDatablock(invoke, block) for block in blocks[1:])]
