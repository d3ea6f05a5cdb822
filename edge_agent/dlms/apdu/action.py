"""ACTION-Request (0xC3) and ACTION-Response (0xC7) (Green Book 9.3.9, 9.5).

Method parameters and return data are OPTIONAL Data: :data:`OMITTED` marks them absent,
since ``None`` is a legitimate value (null-data, ``01 00`` on the wire).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Self

from edge_agent.dlms.apdu.base import (
    OMITTED,
    Apdu,
    BlockNumberApdu,
    Buffer,
    CosemMethodDescriptor,
    Data,
    DataBlockSA,
    GetDataResult,
    encode_data_sequence,
    encode_get_data_result,
    encode_sequence,
    read_data,
    read_data_sequence,
    read_get_data_result,
    read_method_descriptor_list,
    read_presence,
    read_sequence,
    read_u8,
    split_datablocks_sa,
)
from edge_agent.dlms.apdu.results import ActionResult
from edge_agent.dlms.encoding import axdr

ACTION_REQUEST = 0xC3
ACTION_RESPONSE = 0xC7


def _encode_optional_data(out: bytearray, value: Data) -> None:
    if value is OMITTED:
        out.append(0)
    else:
        out.append(1)
        axdr.encode_into(out, value)


def _read_optional_data(buf: Buffer, offset: int, what: str) -> tuple[Data, int]:
    present, offset = read_presence(buf, offset, what)
    if not present:
        return OMITTED, offset
    return read_data(buf, offset, what)


# --- requests -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ActionRequestNormal(Apdu):
    TAG: ClassVar[int] = ACTION_REQUEST
    CHOICE: ClassVar[int] = 1
    NAME: ClassVar[str] = "action-request-normal"

    invoke_id_and_priority: int
    descriptor: CosemMethodDescriptor
    method_invocation_parameters: Data = OMITTED

    def _encode_body(self, out: bytearray) -> None:
        out.append(self.invoke_id_and_priority)
        self.descriptor.encode_into(out)
        _encode_optional_data(out, self.method_invocation_parameters)

    @classmethod
    def _read_body(cls, buf: Buffer, offset: int) -> tuple[Self, int]:
        invoke, offset = read_u8(buf, offset, "invoke-id-and-priority")
        descriptor, offset = CosemMethodDescriptor.read(buf, offset)
        parameters, offset = _read_optional_data(buf, offset, "method-invocation-parameters")
        return cls(invoke, descriptor, parameters), offset


@dataclass(frozen=True, slots=True)
class ActionRequestNextPblock(BlockNumberApdu):
    """Client asks for the next block of a long ACTION-Response (after ``block_number``)."""

    TAG: ClassVar[int] = ACTION_REQUEST
    CHOICE: ClassVar[int] = 2
    NAME: ClassVar[str] = "action-request-next-pblock"

    invoke_id_and_priority: int
    block_number: int


@dataclass(frozen=True, slots=True)
class ActionRequestWithList(Apdu):
    TAG: ClassVar[int] = ACTION_REQUEST
    CHOICE: ClassVar[int] = 3
    NAME: ClassVar[str] = "action-request-with-list"

    invoke_id_and_priority: int
    cosem_method_descriptor_list: tuple[CosemMethodDescriptor, ...]
    method_invocation_parameters: tuple[Data, ...]

    def _encode_body(self, out: bytearray) -> None:
        out.append(self.invoke_id_and_priority)
        encode_sequence(out, self.cosem_method_descriptor_list)
        encode_data_sequence(out, self.method_invocation_parameters)

    @classmethod
    def _read_body(cls, buf: Buffer, offset: int) -> tuple[Self, int]:
        invoke, offset = read_u8(buf, offset, "invoke-id-and-priority")
        methods, offset = read_method_descriptor_list(buf, offset)
        parameters, offset = read_data_sequence(buf, offset, "method-invocation-parameters")
        return cls(invoke, methods, parameters), offset


@dataclass(frozen=True, slots=True)
class ActionRequestWithFirstPblock(Apdu):
    TAG: ClassVar[int] = ACTION_REQUEST
    CHOICE: ClassVar[int] = 4
    NAME: ClassVar[str] = "action-request-with-first-pblock"

    invoke_id_and_priority: int
    descriptor: CosemMethodDescriptor
    pblock: DataBlockSA

    def _encode_body(self, out: bytearray) -> None:
        out.append(self.invoke_id_and_priority)
        self.descriptor.encode_into(out)
        self.pblock.encode_into(out)

    @classmethod
    def _read_body(cls, buf: Buffer, offset: int) -> tuple[Self, int]:
        invoke, offset = read_u8(buf, offset, "invoke-id-and-priority")
        descriptor, offset = CosemMethodDescriptor.read(buf, offset)
        block, offset = DataBlockSA.read(buf, offset)
        return cls(invoke, descriptor, block), offset


@dataclass(frozen=True, slots=True)
class ActionRequestWithListAndFirstPblock(Apdu):
    TAG: ClassVar[int] = ACTION_REQUEST
    CHOICE: ClassVar[int] = 5
    NAME: ClassVar[str] = "action-request-with-list-and-first-pblock"

    invoke_id_and_priority: int
    cosem_method_descriptor_list: tuple[CosemMethodDescriptor, ...]
    pblock: DataBlockSA

    def _encode_body(self, out: bytearray) -> None:
        out.append(self.invoke_id_and_priority)
        encode_sequence(out, self.cosem_method_descriptor_list)
        self.pblock.encode_into(out)

    @classmethod
    def _read_body(cls, buf: Buffer, offset: int) -> tuple[Self, int]:
        invoke, offset = read_u8(buf, offset, "invoke-id-and-priority")
        methods, offset = read_method_descriptor_list(buf, offset)
        block, offset = DataBlockSA.read(buf, offset)
        return cls(invoke, methods, block), offset


@dataclass(frozen=True, slots=True)
class ActionRequestWithPblock(Apdu):
    TAG: ClassVar[int] = ACTION_REQUEST
    CHOICE: ClassVar[int] = 6
    NAME: ClassVar[str] = "action-request-with-pblock"

    invoke_id_and_priority: int
    pblock: DataBlockSA

    def _encode_body(self, out: bytearray) -> None:
        out.append(self.invoke_id_and_priority)
        self.pblock.encode_into(out)

    @classmethod
    def _read_body(cls, buf: Buffer, offset: int) -> tuple[Self, int]:
        invoke, offset = read_u8(buf, offset, "invoke-id-and-priority")
        block, offset = DataBlockSA.read(buf, offset)
        return cls(invoke, block), offset


# --- responses ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ActionResponseWithOptionalData:
    """Action-Response-With-Optional-Data: the result and, optionally, a Get-Data-Result."""

    result: ActionResult
    return_parameters: GetDataResult = OMITTED

    def encode_into(self, out: bytearray) -> None:
        out.append(self.result)
        if self.return_parameters is OMITTED:
            out.append(0)
        else:
            out.append(1)
            encode_get_data_result(out, self.return_parameters)

    @classmethod
    def read(cls, buf: Buffer, offset: int) -> tuple[Self, int]:
        code, offset = read_u8(buf, offset, "action-result")
        present, offset = read_presence(buf, offset, "return-parameters")
        if not present:
            return cls(ActionResult(code)), offset
        value, offset = read_get_data_result(buf, offset, "return-parameters")
        return cls(ActionResult(code), value), offset


@dataclass(frozen=True, slots=True)
class ActionResponseNormal(Apdu):
    TAG: ClassVar[int] = ACTION_RESPONSE
    CHOICE: ClassVar[int] = 1
    NAME: ClassVar[str] = "action-response-normal"

    invoke_id_and_priority: int
    single_response: ActionResponseWithOptionalData

    def _encode_body(self, out: bytearray) -> None:
        out.append(self.invoke_id_and_priority)
        self.single_response.encode_into(out)

    @classmethod
    def _read_body(cls, buf: Buffer, offset: int) -> tuple[Self, int]:
        invoke, offset = read_u8(buf, offset, "invoke-id-and-priority")
        response, offset = ActionResponseWithOptionalData.read(buf, offset)
        return cls(invoke, response), offset


@dataclass(frozen=True, slots=True)
class ActionResponseWithPblock(Apdu):
    TAG: ClassVar[int] = ACTION_RESPONSE
    CHOICE: ClassVar[int] = 2
    NAME: ClassVar[str] = "action-response-with-pblock"

    invoke_id_and_priority: int
    pblock: DataBlockSA

    def _encode_body(self, out: bytearray) -> None:
        out.append(self.invoke_id_and_priority)
        self.pblock.encode_into(out)

    @classmethod
    def _read_body(cls, buf: Buffer, offset: int) -> tuple[Self, int]:
        invoke, offset = read_u8(buf, offset, "invoke-id-and-priority")
        block, offset = DataBlockSA.read(buf, offset)
        return cls(invoke, block), offset


@dataclass(frozen=True, slots=True)
class ActionResponseWithList(Apdu):
    TAG: ClassVar[int] = ACTION_RESPONSE
    CHOICE: ClassVar[int] = 3
    NAME: ClassVar[str] = "action-response-with-list"

    invoke_id_and_priority: int
    list_of_responses: tuple[ActionResponseWithOptionalData, ...]

    def _encode_body(self, out: bytearray) -> None:
        out.append(self.invoke_id_and_priority)
        encode_sequence(out, self.list_of_responses)

    @classmethod
    def _read_body(cls, buf: Buffer, offset: int) -> tuple[Self, int]:
        invoke, offset = read_u8(buf, offset, "invoke-id-and-priority")
        responses, offset = read_sequence(
            buf, offset, ActionResponseWithOptionalData, "list-of-responses", 2
        )
        return cls(invoke, responses), offset


@dataclass(frozen=True, slots=True)
class ActionResponseNextPblock(BlockNumberApdu):
    """Server acknowledges pblock ``block_number`` of a long ACTION-Request."""

    TAG: ClassVar[int] = ACTION_RESPONSE
    CHOICE: ClassVar[int] = 4
    NAME: ClassVar[str] = "action-response-next-pblock"

    invoke_id_and_priority: int
    block_number: int


ACTION_REQUESTS = (
    ActionRequestNormal,
    ActionRequestNextPblock,
    ActionRequestWithList,
    ActionRequestWithFirstPblock,
    ActionRequestWithListAndFirstPblock,
    ActionRequestWithPblock,
)
ACTION_RESPONSES = (
    ActionResponseNormal,
    ActionResponseWithPblock,
    ActionResponseWithList,
    ActionResponseNextPblock,
)
ActionRequest = (
    ActionRequestNormal
    | ActionRequestNextPblock
    | ActionRequestWithList
    | ActionRequestWithFirstPblock
    | ActionRequestWithListAndFirstPblock
    | ActionRequestWithPblock
)
ActionResponse = (
    ActionResponseNormal
    | ActionResponseWithPblock
    | ActionResponseWithList
    | ActionResponseNextPblock
)


def split_action_request(
    request: ActionRequestNormal | ActionRequestWithList, max_pdu_size: int
) -> list[ActionRequest]:
    """The request itself if it fits ``max_pdu_size``, else its pblock form (Green Book 9.3.9).

    The pblocks carry the A-XDR encoding of the parameters (normal: one Data, null-data
    when omitted; with-list: the SEQUENCE OF Data). ``max_pdu_size`` is the server's max
    receive PDU size minus what ciphering will add.
    """
    if len(request.encode()) <= max_pdu_size:
        return [request]
    invoke = request.invoke_id_and_priority
    head = bytearray()
    if isinstance(request, ActionRequestNormal):
        parameters = request.method_invocation_parameters
        raw = axdr.encode(None if parameters is OMITTED else parameters)
        request.descriptor.encode_into(head)
    else:
        values = bytearray()
        encode_data_sequence(values, request.method_invocation_parameters)
        raw = bytes(values)
        encode_sequence(head, request.cosem_method_descriptor_list)
    blocks = split_datablocks_sa(raw, len(head), max_pdu_size)
    first: ActionRequest
    if isinstance(request, ActionRequestNormal):
        first = ActionRequestWithFirstPblock(invoke, request.descriptor, blocks[0])
    else:
        first = ActionRequestWithListAndFirstPblock(
            invoke, request.cosem_method_descriptor_list, blocks[0]
        )
    return [first, *(ActionRequestWithPblock(invoke, block) for block in blocks[1:])]
