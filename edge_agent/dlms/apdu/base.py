"""Building blocks shared by the xDLMS APDUs (Green Book 9.5, the xDLMS ASN.1, A-XDR encoded).

Readers here take ``(buf, offset)`` and return ``(value, next_offset)``; they read with
``struct.unpack_from`` and turn running off the end into ``TruncatedError`` naming the
field, so no APDU decoder ever leaks ``IndexError``/``struct.error``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Self

from edge_agent.dlms.apdu.results import (
    ActionResult,
    DataAccessResult,
    StandardEnum,
    explain_result,
)
from edge_agent.dlms.encoding import axdr
from edge_agent.dlms.errors import DecodeError, EncodeError, ServiceError, TruncatedError

Buffer = bytes | bytearray | memoryview
#: A COSEM Data value as :mod:`edge_agent.dlms.encoding.axdr` decodes and encodes it.
Data = Any

_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_I8 = struct.Struct(">b")
_DESCRIPTOR = struct.Struct(">H6sb")  # class-id, instance-id (OBIS), attribute/method-id


class Omitted:
    """An OPTIONAL Data component that is absent (``None`` is the Data null-data)."""

    __slots__ = ()
    _instance: ClassVar[Omitted | None] = None

    def __new__(cls) -> Omitted:
        if cls._instance is None:
            cls._instance = object.__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "OMITTED"

    def __reduce__(self) -> str:
        return "OMITTED"


OMITTED = Omitted()


# --- primitive readers -------------------------------------------------------------------


def truncated(what: str, need: int, buf: Buffer, offset: int) -> TruncatedError:
    return TruncatedError(
        f"{what}: expected {need} byte(s) at offset {offset}, the APDU ends at {len(buf)} "
        "(truncated frame: check the link layer reassembly)"
    )


def read_u8(buf: Buffer, offset: int, what: str) -> tuple[int, int]:
    if offset >= len(buf):
        raise truncated(what, 1, buf, offset)
    return buf[offset], offset + 1


def read_u16(buf: Buffer, offset: int, what: str) -> tuple[int, int]:
    try:
        return _U16.unpack_from(buf, offset)[0], offset + 2
    except struct.error:
        raise truncated(what, 2, buf, offset) from None


def read_u32(buf: Buffer, offset: int, what: str) -> tuple[int, int]:
    try:
        return _U32.unpack_from(buf, offset)[0], offset + 4
    except struct.error:
        raise truncated(what, 4, buf, offset) from None


def read_boolean(buf: Buffer, offset: int, what: str) -> tuple[bool, int]:
    value, offset = read_u8(buf, offset, what)
    return value != 0, offset


def read_presence(buf: Buffer, offset: int, what: str) -> tuple[bool, int]:
    """A-XDR OPTIONAL/DEFAULT marker: 0x00 absent, 0x01 present (anything else is garbage)."""
    flag, offset = read_u8(buf, offset, what)
    if flag > 1:
        raise DecodeError(
            f"{what}: expected 00 (absent) or 01 (present) at offset {offset - 1}, got {flag:02x}"
        )
    return flag == 1, offset


def read_octet_string(buf: Buffer, offset: int, what: str) -> tuple[bytes, int]:
    """A-XDR OCTET STRING: length then contents."""
    length, start = _length(buf, offset, what)
    end = start + length
    if end > len(buf):
        raise truncated(what, length, buf, start)
    return bytes(buf[start:end]), end


def read_count(buf: Buffer, offset: int, what: str, min_item_size: int = 1) -> tuple[int, int]:
    """A-XDR SEQUENCE OF quantity, checked against the bytes left before any loop runs."""
    count, offset = _length(buf, offset, what)
    if count * min_item_size > len(buf) - offset:
        raise TruncatedError(
            f"{what}: {count} element(s) announced at offset {offset}, "
            f"only {len(buf) - offset} bytes left"
        )
    return count, offset


def _length(buf: Buffer, offset: int, what: str) -> tuple[int, int]:
    try:
        return axdr.decode_length(buf, offset)
    except DecodeError as error:
        raise type(error)(f"{what}: {error}") from None


def read_data(buf: Buffer, offset: int, what: str) -> tuple[Data, int]:
    try:
        return axdr.decode(buf, offset)
    except DecodeError as error:
        raise type(error)(f"{what}: {error}") from None


def read_enum(enum: type[StandardEnum], buf: Buffer, offset: int, what: str) -> tuple[Any, int]:
    value, offset = read_u8(buf, offset, what)
    return enum.from_wire(value, what), offset


def expect_end(buf: Buffer, offset: int, what: str) -> None:
    if offset != len(buf):
        raise DecodeError(
            f"{what}: {len(buf) - offset} unexpected byte(s) after the APDU ends "
            f"at offset {offset} "
            "(two APDUs glued together, or a wrong length in the link layer)"
        )


def put_u8(out: bytearray, value: int, what: str) -> None:
    if not 0 <= value <= 0xFF:
        raise EncodeError(f"{what} must be 0..255, got {value}")
    out.append(value)


def put_u16(out: bytearray, value: int, what: str) -> None:
    if not 0 <= value <= 0xFFFF:
        raise EncodeError(f"{what} must be 0..65535, got {value}")
    out += _U16.pack(value)


def put_u32(out: bytearray, value: int, what: str) -> None:
    if not 0 <= value <= 0xFFFF_FFFF:
        raise EncodeError(f"{what} must be 0..4294967295, got {value}")
    out += _U32.pack(value)


def put_octet_string(out: bytearray, value: bytes) -> None:
    out += axdr.encode_length(len(value))
    out += value


def put_count(out: bytearray, count: int) -> None:
    out += axdr.encode_length(count)


# --- Invoke-Id-And-Priority (Green Book 9.5: Unsigned8, bit 7 priority, bit 6 service class) --

PRIORITY_HIGH = 0x80
SERVICE_CLASS_CONFIRMED = 0x40
INVOKE_ID_MASK = 0x0F


def invoke_id_and_priority(
    invoke_id: int, *, confirmed: bool = True, high_priority: bool = True
) -> int:
    """The Invoke-Id-And-Priority octet: ``invoke_id_and_priority(1) == 0xC1``."""
    if not 0 <= invoke_id <= INVOKE_ID_MASK:
        raise EncodeError(f"invoke-id must be 0..15, got {invoke_id}")
    return (
        invoke_id
        | (SERVICE_CLASS_CONFIRMED if confirmed else 0)
        | (PRIORITY_HIGH if high_priority else 0)
    )


def invoke_id_of(invoke_id_and_priority: int) -> int:
    return invoke_id_and_priority & INVOKE_ID_MASK


# Long-Invoke-Id-And-Priority (DataNotification, Green Book 9.5): Unsigned32 with
# bit 31 priority, bit 30 service class, bit 29 processing option, bit 28 self-descriptive.
LONG_PRIORITY_HIGH = 0x8000_0000
LONG_SERVICE_CLASS_CONFIRMED = 0x4000_0000
LONG_PROCESSING_BREAK_ON_ERROR = 0x2000_0000
LONG_SELF_DESCRIPTIVE = 0x1000_0000
LONG_INVOKE_ID_MASK = 0x00FF_FFFF


# --- descriptors ---------------------------------------------------------------------


def _obis_text(instance_id: bytes) -> str:
    return ".".join(str(b) for b in instance_id)


def _check_descriptor(class_id: int, instance_id: bytes, member_id: int, member: str) -> None:
    if not 0 <= class_id <= 0xFFFF:
        raise EncodeError(f"class-id must be 0..65535, got {class_id}")
    if len(instance_id) != 6:
        raise EncodeError(
            f"instance-id must be the 6 bytes of an OBIS code, got {len(instance_id)}"
        )
    if not -128 <= member_id <= 127:
        raise EncodeError(f"{member}-id is an Integer8 (-128..127), got {member_id}")


@dataclass(frozen=True, slots=True)
class CosemAttributeDescriptor:
    """Cosem-Attribute-Descriptor: class-id, instance-id (OBIS, 6 bytes), attribute-id."""

    class_id: int
    instance_id: bytes
    attribute_id: int

    SIZE: ClassVar[int] = 9

    def __post_init__(self) -> None:
        _check_descriptor(self.class_id, self.instance_id, self.attribute_id, "attribute")

    @property
    def target(self) -> str:
        """``"object 1.0.99.1.0.255 of class 7"`` for error messages."""
        return f"object {_obis_text(self.instance_id)} of class {self.class_id}"

    def describe(self) -> str:
        return f"attribute {self.attribute_id} of {self.target}"

    def encode_into(self, out: bytearray) -> None:
        out += _DESCRIPTOR.pack(self.class_id, self.instance_id, self.attribute_id)

    @classmethod
    def read(cls, buf: Buffer, offset: int) -> tuple[Self, int]:
        try:
            class_id, instance_id, attribute_id = _DESCRIPTOR.unpack_from(buf, offset)
        except struct.error:
            raise truncated("cosem-attribute-descriptor", cls.SIZE, buf, offset) from None
        return cls(class_id, instance_id, attribute_id), offset + cls.SIZE


@dataclass(frozen=True, slots=True)
class CosemMethodDescriptor:
    """Cosem-Method-Descriptor: class-id, instance-id (OBIS), method-id."""

    class_id: int
    instance_id: bytes
    method_id: int

    SIZE: ClassVar[int] = 9

    def __post_init__(self) -> None:
        _check_descriptor(self.class_id, self.instance_id, self.method_id, "method")

    @property
    def target(self) -> str:
        return f"object {_obis_text(self.instance_id)} of class {self.class_id}"

    def describe(self) -> str:
        return f"method {self.method_id} of {self.target}"

    def encode_into(self, out: bytearray) -> None:
        out += _DESCRIPTOR.pack(self.class_id, self.instance_id, self.method_id)

    @classmethod
    def read(cls, buf: Buffer, offset: int) -> tuple[Self, int]:
        try:
            class_id, instance_id, method_id = _DESCRIPTOR.unpack_from(buf, offset)
        except struct.error:
            raise truncated("cosem-method-descriptor", cls.SIZE, buf, offset) from None
        return cls(class_id, instance_id, method_id), offset + cls.SIZE


@dataclass(frozen=True, slots=True)
class SelectiveAccess:
    """Selective-Access-Descriptor: access-selector (1 range, 2 entry for profiles) and its
    parameters as a Data value (Blue Book 4.3.6 for the profile generic structures)."""

    access_selector: int
    access_parameters: Data

    def encode_into(self, out: bytearray) -> None:
        put_u8(out, self.access_selector, "access-selector")
        axdr.encode_into(out, self.access_parameters)

    @classmethod
    def read(cls, buf: Buffer, offset: int) -> tuple[Self, int]:
        selector, offset = read_u8(buf, offset, "access-selector")
        parameters, offset = read_data(buf, offset, "access-parameters")
        return cls(selector, parameters), offset


def encode_optional_access(out: bytearray, access: SelectiveAccess | None) -> None:
    if access is None:
        out.append(0)
    else:
        out.append(1)
        access.encode_into(out)


def read_optional_access(buf: Buffer, offset: int) -> tuple[SelectiveAccess | None, int]:
    present, offset = read_presence(buf, offset, "access-selection")
    if not present:
        return None, offset
    return SelectiveAccess.read(buf, offset)


@dataclass(frozen=True, slots=True)
class CosemAttributeDescriptorWithSelection:
    """One element of the with-list GET/SET requests."""

    descriptor: CosemAttributeDescriptor
    access_selection: SelectiveAccess | None = None

    def encode_into(self, out: bytearray) -> None:
        self.descriptor.encode_into(out)
        encode_optional_access(out, self.access_selection)

    @classmethod
    def read(cls, buf: Buffer, offset: int) -> tuple[Self, int]:
        descriptor, offset = CosemAttributeDescriptor.read(buf, offset)
        access, offset = read_optional_access(buf, offset)
        return cls(descriptor, access), offset


def read_attribute_descriptor_list(
    buf: Buffer, offset: int
) -> tuple[tuple[CosemAttributeDescriptorWithSelection, ...], int]:
    """attribute-descriptor-list of the with-list GET/SET requests (10 bytes per element at
    least: the descriptor and the access-selection presence octet)."""
    return read_sequence(
        buf,
        offset,
        CosemAttributeDescriptorWithSelection,
        "attribute-descriptor-list",
        CosemAttributeDescriptor.SIZE + 1,
    )


def read_method_descriptor_list(
    buf: Buffer, offset: int
) -> tuple[tuple[CosemMethodDescriptor, ...], int]:
    """cosem-method-descriptor-list of the with-list ACTION requests."""
    return read_sequence(
        buf,
        offset,
        CosemMethodDescriptor,
        "cosem-method-descriptor-list",
        CosemMethodDescriptor.SIZE,
    )


def access_error(
    result: DataAccessResult | ActionResult,
    descriptor: CosemAttributeDescriptor | CosemMethodDescriptor,
) -> ServiceError:
    """The ``ServiceError`` a client raises for a failed GET/SET/ACTION of ``descriptor``:
    ``"object-undefined: the meter has no object 1.0.99.1.0.255 of class 7"``."""
    return ServiceError(explain_result(result, descriptor.target), result.standard_name)


# --- Data and results ---------------------------------------------------------------------

#: Get-Data-Result: the attribute's Data value, or a DataAccessResult saying why not.
GetDataResult = Any


def encode_get_data_result(out: bytearray, result: GetDataResult) -> None:
    # CHOICE { data [0] Data, data-access-result [1] Data-Access-Result }
    if isinstance(result, DataAccessResult):
        out.append(1)
        out.append(result)
    else:
        out.append(0)
        axdr.encode_into(out, result)


def read_get_data_result(buf: Buffer, offset: int, what: str) -> tuple[GetDataResult, int]:
    choice, offset = read_u8(buf, offset, what)
    if choice == 0:
        return read_data(buf, offset, what)
    if choice == 1:
        code, offset = read_u8(buf, offset, f"{what} data-access-result")
        return DataAccessResult(code), offset
    raise DecodeError(
        f"{what}: expected 00 (data) or 01 (data-access-result) at offset {offset - 1}, "
        f"got {choice:02x}"
    )


@dataclass(frozen=True, slots=True)
class DataBlockSA:
    """DataBlock-SA (SET and ACTION block transfer): last-block, block-number, raw-data."""

    last_block: bool
    block_number: int
    raw_data: bytes

    def encode_into(self, out: bytearray) -> None:
        out.append(1 if self.last_block else 0)
        put_u32(out, self.block_number, "block-number")
        put_octet_string(out, self.raw_data)

    @classmethod
    def read(cls, buf: Buffer, offset: int) -> tuple[Self, int]:
        last, offset = read_boolean(buf, offset, "last-block")
        number, offset = read_u32(buf, offset, "block-number")
        raw, offset = read_octet_string(buf, offset, "raw-data")
        return cls(last, number, raw), offset


def raw_chunk_size(max_pdu_size: int, header: int) -> int:
    """Largest raw-data length whose block (``header`` + length field + data) fits the PDU."""
    room = max_pdu_size - header
    size = room - len(axdr.encode_length(max(room, 0)))
    while size > 0 and size + len(axdr.encode_length(size)) > room:
        size -= 1
    if size <= 0:
        raise EncodeError(f"a PDU of {max_pdu_size} bytes cannot carry any block data")
    return size


# Tag, choice, invoke-id, last-block, block-number (4): the fixed part of each SET/ACTION
# block APDU.
_DATABLOCK_SA_HEADER = 1 + 1 + 1 + 1 + 4


def split_datablocks_sa(raw: bytes, head_size: int, max_pdu_size: int) -> list[DataBlockSA]:
    """``raw`` cut into DataBlock-SA 1..n for a long SET or ACTION request (Green Book 9.3.8,
    9.3.9): the first block shares its APDU with ``head_size`` bytes of descriptors, each
    later block has the APDU to itself."""
    first_size = raw_chunk_size(max_pdu_size, _DATABLOCK_SA_HEADER + head_size)
    size = raw_chunk_size(max_pdu_size, _DATABLOCK_SA_HEADER)
    chunks = [raw[:first_size]] + [
        raw[start : start + size] for start in range(first_size, len(raw), size)
    ]
    return [
        DataBlockSA(number == len(chunks), number, chunk)
        for number, chunk in enumerate(chunks, start=1)
    ]


def encode_sequence(out: bytearray, items: tuple[Any, ...]) -> None:
    put_count(out, len(items))
    for item in items:
        item.encode_into(out)


def read_sequence(
    buf: Buffer, offset: int, item: Any, what: str, min_size: int
) -> tuple[tuple[Any, ...], int]:
    count, offset = read_count(buf, offset, what, min_size)
    items = []
    for _ in range(count):
        value, offset = item.read(buf, offset)
        items.append(value)
    return tuple(items), offset


def encode_data_sequence(out: bytearray, values: tuple[Data, ...]) -> None:
    put_count(out, len(values))
    for value in values:
        axdr.encode_into(out, value)


def read_data_sequence(buf: Buffer, offset: int, what: str) -> tuple[tuple[Data, ...], int]:
    count, offset = read_count(buf, offset, what)
    values = []
    for _ in range(count):
        value, offset = read_data(buf, offset, what)
        values.append(value)
    return tuple(values), offset


# --- the APDU base --------------------------------------------------------------------------


class Apdu:
    """Shared ``encode``/``decode`` of one APDU alternative.

    ``TAG`` is the xDLMS-APDU tag and ``CHOICE`` the service alternative (``None`` for
    APDUs without one); every subclass defines ``_encode_body(out)`` and the classmethod
    ``_read_body(buf, offset) -> (apdu, end)``, which starts right after tag and choice.
    """

    __slots__ = ()
    TAG: ClassVar[int]
    CHOICE: ClassVar[int | None] = None
    NAME: ClassVar[str]

    def encode(self) -> bytes:
        out = bytearray((self.TAG,) if self.CHOICE is None else (self.TAG, self.CHOICE))
        self._encode_body(out)
        return bytes(out)

    def _encode_body(self, out: bytearray) -> None:
        raise NotImplementedError(f"{type(self).__name__} does not define its body")

    @classmethod
    def _read_body(cls, buf: Buffer, offset: int) -> tuple[Self, int]:
        raise NotImplementedError(f"{cls.__name__} does not define its body")

    @classmethod
    def decode(cls, buf: Buffer) -> Self:
        """Decode exactly one APDU of this type from ``buf``."""
        head = 1 if cls.CHOICE is None else 2
        if len(buf) < head:
            raise truncated(cls.NAME, head, buf, 0)
        if buf[0] != cls.TAG or (cls.CHOICE is not None and buf[1] != cls.CHOICE):
            expected = f"{cls.TAG:02x}" + ("" if cls.CHOICE is None else f"{cls.CHOICE:02x}")
            raise DecodeError(f"{cls.NAME}: expected tag {expected}, got {bytes(buf[:head]).hex()}")
        try:
            apdu, end = cls._read_body(buf, head)
        except DecodeError as error:
            raise type(error)(f"{cls.NAME}: {error}") from None
        expect_end(buf, end, cls.NAME)
        return apdu

    # --- Invoke-Id (Green Book 9.5) ------------------------------------------------------------
    # The APDUs of the confirmed services carry an ``invoke_id_and_priority`` field; those
    # without one (ExceptionResponse, ConfirmedServiceError, the Initiate APDUs,
    # general-block-transfer) answer None here.

    @property
    def invoke_id(self) -> int | None:
        """The 4-bit Invoke-Id, or None for an APDU that carries none."""
        octet: int | None = getattr(self, "invoke_id_and_priority", None)
        return None if octet is None else invoke_id_of(octet)

    def answers(self, request_invoke_id_and_priority: int) -> bool:
        """Whether this response carries the Invoke-Id of the request sent with
        ``request_invoke_id_and_priority`` (priority and service-class bits aside)."""
        own = self.invoke_id
        return own is not None and own == invoke_id_of(request_invoke_id_and_priority)


class BlockNumberApdu(Apdu):
    """Body ``invoke-id-and-priority, block-number (Unsigned32)``, shared by the APDUs that
    only name a block: GET-Request-Next, SET-Response-Datablock and
    ACTION-Request/Response-Next-Pblock (Green Book 9.5). Subclasses declare both fields."""

    __slots__ = ()
    invoke_id_and_priority: int
    block_number: int

    if TYPE_CHECKING:  # the subclasses are dataclasses of exactly these two fields

        def __init__(self, invoke_id_and_priority: int, block_number: int) -> None: ...

    def _encode_body(self, out: bytearray) -> None:
        out.append(self.invoke_id_and_priority)
        put_u32(out, self.block_number, "block-number")

    @classmethod
    def _read_body(cls, buf: Buffer, offset: int) -> tuple[Self, int]:
        invoke, offset = read_u8(buf, offset, "invoke-id-and-priority")
        number, offset = read_u32(buf, offset, "block-number")
        return cls(invoke, number), offset
