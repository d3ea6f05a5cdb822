"""Typed values of the COSEM ``Data`` CHOICE and their wire primitives (Blue Book,
DLMS UA 1000-1, 4.1.5; A-XDR rules IEC 61334-6).

Each class subclasses the natural Python type (``LongUnsigned(300) == 300``) and carries
its wire tag in ``TAG``, so callers treat decoded values as plain numbers, strings and
sequences while the codec in :mod:`edge_agent.dlms.encoding.axdr` still knows the exact type to
encode. :func:`data_type_of` is the one place that maps a Python value to its tag,
inferring it for plain values (``int`` by range, ``str`` ASCII or not, ...).

Beside the values live the pieces of their wire form that are data rather than codec:
the A-XDR length field, the compact-array TypeDescription (its own small grammar), and
:data:`FIXED_FORMATS`, the ``struct`` format of every fixed-width type.

These names are re-exported by :mod:`edge_agent.dlms.encoding.axdr`; import them from there.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from edge_agent.dlms.encoding.date_time import CosemDate, CosemDateTime, CosemTime
from edge_agent.dlms.errors import DecodeError, EncodeError, TruncatedError

__all__ = [
    "COMPACT_NODE_ALLOWANCE", "COMPACT_SIMPLE", "DONT_CARE", "FIXED_FORMATS", "MAX_DEPTH",
    "TAG_OF_TYPE", "Array", "ArrayDescription", "Bcd", "BitString", "CompactArray", "DataType",
    "DontCare", "DoubleLong", "DoubleLongUnsigned", "Enum", "Float32", "Float64", "Integer",
    "Long", "Long64", "Long64Unsigned", "LongUnsigned", "OctetString", "Structure",
    "StructureDescription", "TypeDescription", "Unsigned", "Utf8String", "VisibleString",
    "data_type_of", "decode_length", "decode_type_description", "describe", "encode_length",
    "encode_type_description", "node_count", "row_format", "truncated",
]

Buffer = bytes | bytearray | memoryview

#: Deepest nesting of structures/arrays accepted. COSEM objects nest a handful of levels
#: (object_list entries: 4); anything near this is garbage or an attack.
MAX_DEPTH = 32


class DataType(IntEnum):
    """Data CHOICE tags (Blue Book 4.1.5, Table 2)."""

    NULL_DATA = 0
    ARRAY = 1
    STRUCTURE = 2
    BOOLEAN = 3
    BIT_STRING = 4
    DOUBLE_LONG = 5
    DOUBLE_LONG_UNSIGNED = 6
    OCTET_STRING = 9
    VISIBLE_STRING = 10
    UTF8_STRING = 12
    BCD = 13
    INTEGER = 15
    LONG = 16
    UNSIGNED = 17
    LONG_UNSIGNED = 18
    COMPACT_ARRAY = 19
    LONG64 = 20
    LONG64_UNSIGNED = 21
    ENUM = 22
    FLOAT32 = 23
    FLOAT64 = 24
    DATE_TIME = 25
    DATE = 26
    TIME = 27
    DONT_CARE = 255


# --- typed values ------------------------------------------------------------------------


class _TypedInt(int):
    __slots__ = ()
    TAG: DataType

    def __repr__(self) -> str:
        return f"{type(self).__name__}({int(self)})"


class Integer(_TypedInt):
    """integer: Integer8, -128..127."""
    __slots__ = ()
    TAG = DataType.INTEGER


class Long(_TypedInt):
    """long: Integer16."""
    __slots__ = ()
    TAG = DataType.LONG


class Unsigned(_TypedInt):
    """unsigned: Unsigned8, 0..255."""
    __slots__ = ()
    TAG = DataType.UNSIGNED


class LongUnsigned(_TypedInt):
    """long-unsigned: Unsigned16."""
    __slots__ = ()
    TAG = DataType.LONG_UNSIGNED


class DoubleLong(_TypedInt):
    """double-long: Integer32."""
    __slots__ = ()
    TAG = DataType.DOUBLE_LONG


class DoubleLongUnsigned(_TypedInt):
    """double-long-unsigned: Unsigned32."""
    __slots__ = ()
    TAG = DataType.DOUBLE_LONG_UNSIGNED


class Long64(_TypedInt):
    """long64: Integer64."""
    __slots__ = ()
    TAG = DataType.LONG64


class Long64Unsigned(_TypedInt):
    """long64-unsigned: Unsigned64."""
    __slots__ = ()
    TAG = DataType.LONG64_UNSIGNED


class Enum(_TypedInt):
    """enum: Unsigned8 naming a choice of the attribute's definition."""
    __slots__ = ()
    TAG = DataType.ENUM


class Bcd(_TypedInt):
    """bcd: one octet. The Blue Book types it Integer8, but its content is two BCD
    digits, so the octet is kept unsigned (0..255); :attr:`digits` shows the nibbles."""
    __slots__ = ()
    TAG = DataType.BCD

    @property
    def digits(self) -> str:
        return f"{int(self):02X}"


class Float32(float):
    """float32: IEEE 754 single precision."""
    __slots__ = ()
    TAG = DataType.FLOAT32

    def __repr__(self) -> str:
        return f"Float32({float(self)!r})"


class Float64(float):
    """float64: IEEE 754 double precision."""
    __slots__ = ()
    TAG = DataType.FLOAT64

    def __repr__(self) -> str:
        return f"Float64({float(self)!r})"


class OctetString(bytes):
    """octet-string."""
    __slots__ = ()
    TAG = DataType.OCTET_STRING

    def __repr__(self) -> str:
        return f"OctetString({bytes(self).hex()!r})"


class VisibleString(str):
    """visible-string. Octets map 1:1 to code points (Latin-1) so any octet survives."""
    __slots__ = ()
    TAG = DataType.VISIBLE_STRING

    def __repr__(self) -> str:
        return f"VisibleString({str(self)!r})"


class Utf8String(str):
    """utf8-string."""
    __slots__ = ()
    TAG = DataType.UTF8_STRING

    def __repr__(self) -> str:
        return f"Utf8String({str(self)!r})"


class Structure(tuple[Any, ...]):
    """structure: an ordered sequence of Data of any types."""
    __slots__ = ()
    TAG = DataType.STRUCTURE

    def __repr__(self) -> str:
        return f"Structure({tuple(self)!r})"


class Array(list[Any]):
    """array: a sequence of Data (the standard wants one type for all elements)."""
    __slots__ = ()
    TAG = DataType.ARRAY

    def __repr__(self) -> str:
        return f"Array({list(self)!r})"


@dataclass(frozen=True, slots=True)
class BitString:
    """bit-string: ``length`` bits, most significant bit of ``data[0]`` first.

    ``data`` holds exactly ceil(length / 8) octets; the unused low bits of the last
    octet are kept as received so that encoding reproduces the input.
    """

    data: bytes
    length: int

    TAG = DataType.BIT_STRING

    def __post_init__(self) -> None:
        if self.length < 0 or len(self.data) != (self.length + 7) >> 3:
            raise EncodeError(
                f"bit-string of {self.length} bits needs {(self.length + 7) >> 3} octets, "
                f"got {len(self.data)}")

    @classmethod
    def from_bits(cls, bits: str) -> BitString:
        """From text such as ``"10110"`` (first character = first bit)."""
        if bits.strip("01"):
            raise EncodeError(f"bit-string text must contain only 0 and 1, got {bits!r}")
        padded = bits + "0" * (-len(bits) % 8)
        return cls(int(padded, 2).to_bytes(len(padded) // 8, "big") if bits else b"",
                   len(bits))

    @property
    def bits(self) -> str:
        if not self.length:
            return ""
        return f"{int.from_bytes(self.data, 'big'):0{len(self.data) * 8}b}"[: self.length]

    def __getitem__(self, index: int) -> bool:
        if not 0 <= index < self.length:
            raise IndexError(f"bit {index} outside a bit-string of {self.length} bits")
        return bool(self.data[index >> 3] & (0x80 >> (index & 7)))

    def __len__(self) -> int:
        return self.length

    def __str__(self) -> str:
        return self.bits


class DontCare:
    """dont-care (tag 255): a wildcard in selective-access and schedules. Singleton."""

    __slots__ = ()
    TAG = DataType.DONT_CARE
    _instance: DontCare | None = None

    def __new__(cls) -> DontCare:
        if cls._instance is None:
            cls._instance = object.__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "DONT_CARE"

    def __reduce__(self) -> str:
        return "DONT_CARE"


DONT_CARE = DontCare()


# --- compact-array (4.1.5: compact-array, TypeDescription) ---------------------------------


@dataclass(frozen=True, slots=True)
class ArrayDescription:
    """TypeDescription ``array``: a fixed number of elements of one type."""

    count: int
    element: TypeDescription


@dataclass(frozen=True, slots=True)
class StructureDescription:
    """TypeDescription ``structure``: the types of the members, in order."""

    elements: tuple[TypeDescription, ...]


TypeDescription = DataType | ArrayDescription | StructureDescription


@dataclass(frozen=True, slots=True)
class CompactArray:
    """compact-array: a type description, then the elements without their tags.

    ``values`` holds the decoded elements (Structure/Array/typed scalars per
    ``description``). :meth:`from_values` infers the description from the first element.
    """

    description: TypeDescription
    values: tuple[Any, ...]

    TAG = DataType.COMPACT_ARRAY

    @classmethod
    def from_values(cls, values: list[Any] | tuple[Any, ...],
                    description: TypeDescription | None = None) -> CompactArray:
        if description is None:
            if not values:
                raise EncodeError("compact-array of no elements needs an explicit description")
            description = describe(values[0])
        return cls(description, tuple(values))


# --- lengths (A-XDR / BER definite form) ----------------------------------------------------

_LENGTH_FORMS = ((0xFF, 0x81), (0xFFFF, 0x82), (0xFFFFFF, 0x83), (0xFFFFFFFF, 0x84))
_SHORT_LENGTHS = tuple(bytes((n,)) for n in range(0x80))


def encode_length(n: int) -> bytes:
    """Length/quantity field: one octet below 0x80, else 0x81..0x84 and 1..4 octets."""
    if 0 <= n < 0x80:
        return _SHORT_LENGTHS[n]
    for size, (limit, first) in enumerate(_LENGTH_FORMS, start=1):
        if 0 <= n <= limit:
            return bytes((first,)) + n.to_bytes(size, "big")
    raise EncodeError(f"A-XDR length must be 0..4294967295, got {n}")


def decode_length(buf: Buffer, offset: int) -> tuple[int, int]:
    """Return (length, offset after it)."""
    if offset >= len(buf):
        raise TruncatedError(f"expected an A-XDR length at offset {offset}, input ended")
    first = buf[offset]
    if first < 0x80:
        return first, offset + 1
    size = first - 0x80
    if not 1 <= size <= 4:
        raise DecodeError(
            f"A-XDR length at offset {offset}: first octet 0x{first:02X}; expected below 0x80 "
            "or 0x81..0x84 (indefinite and longer forms are not used by DLMS)")
    end = offset + 1 + size
    if end > len(buf):
        raise TruncatedError(
            f"A-XDR length at offset {offset} announces {size} more octets, input ended")
    return int.from_bytes(buf[offset + 1:end], "big"), end


# --- compact-array TypeDescription (4.1.5) -----------------------------------------------

# compact-array: content types that carry no per-element structure of their own.
COMPACT_SIMPLE = frozenset(DataType) - {
    DataType.ARRAY, DataType.STRUCTURE, DataType.COMPACT_ARRAY}


def decode_type_description(buf: Buffer, off: int, depth: int = 0) -> tuple[TypeDescription, int]:
    """A TypeDescription at ``off``; return (description, offset after it)."""
    if off >= len(buf):
        raise truncated("compact-array type description", 1, buf, off)
    if depth >= MAX_DEPTH:
        raise DecodeError(f"compact-array type description at offset {off} nests deeper than "
                          f"{MAX_DEPTH} levels: the data is corrupt")
    tag = buf[off]
    off += 1
    if tag == DataType.ARRAY:
        if off + 2 > len(buf):
            raise truncated("compact-array element count", 2, buf, off)
        count = (buf[off] << 8) | buf[off + 1]
        element, off = decode_type_description(buf, off + 2, depth + 1)
        return ArrayDescription(count, element), off
    if tag == DataType.STRUCTURE:
        count, off = decode_length(buf, off)
        if count > len(buf) - off:
            raise truncated(f"structure description of {count} members", count, buf, off)
        members = []
        for _ in range(count):
            member, off = decode_type_description(buf, off, depth + 1)
            members.append(member)
        return StructureDescription(tuple(members)), off
    if tag not in COMPACT_SIMPLE:
        raise DecodeError(
            f"compact-array type description at offset {off - 1}: tag 0x{tag:02X} is not a "
            "Data type usable in a compact-array (Blue Book 4.1.5 TypeDescription)")
    return DataType(tag), off


def encode_type_description(out: bytearray, description: TypeDescription) -> None:
    """Append the TypeDescription of a compact-array (4.1.5)."""
    if isinstance(description, ArrayDescription):
        if not 0 <= description.count <= 0xFFFF:
            raise EncodeError(f"compact-array array description counts 0..65535 elements, "
                              f"got {description.count}")
        out.append(DataType.ARRAY)
        out += description.count.to_bytes(2, "big")
        encode_type_description(out, description.element)
    elif isinstance(description, StructureDescription):
        out.append(DataType.STRUCTURE)
        out += encode_length(len(description.elements))
        for member in description.elements:
            encode_type_description(out, member)
    elif description in COMPACT_SIMPLE:
        out.append(description)
    else:
        raise EncodeError(f"not a compact-array type description: {description!r}")


#: Zero-width elements (null-data, dont-care, empty arrays) could describe billions of
#: values in no bytes; decoders produce at most this many values plus 8 per octet.
COMPACT_NODE_ALLOWANCE = 1 << 16


def node_count(description: TypeDescription) -> int:
    """Values one element of ``description`` decodes to (saturating, to stay cheap)."""
    if isinstance(description, ArrayDescription):
        return 1 + min(description.count * node_count(description.element), 1 << 40)
    if isinstance(description, StructureDescription):
        return 1 + min(sum(node_count(m) for m in description.elements), 1 << 40)
    return 1


# --- wire tables -------------------------------------------------------------------------

def _octet_values(cls: type[int], signed: bool = False) -> Callable[[int], Any]:
    """One-octet types: all 256 values built once; decoding one is a table look-up."""
    return tuple(cls(v - 256 if signed and v > 127 else v) for v in range(256)).__getitem__


#: Fixed-width content: tag -> (``struct`` format, maker of the typed value from the
#: unpacked number). Nearly every register value is one of these; the codec decodes them
#: inline, and cuts runs of them (compact-array rows, repeated poll layouts) in one call.
FIXED_FORMATS: dict[int, tuple[str, Callable[[Any], Any]]] = {
    DataType.BOOLEAN: ("?", bool),  # '?' unpacks any non-zero octet as True, as 4.1.5 reads
    DataType.DOUBLE_LONG: ("i", DoubleLong),
    DataType.DOUBLE_LONG_UNSIGNED: ("I", DoubleLongUnsigned),
    DataType.BCD: ("B", _octet_values(Bcd)),
    DataType.INTEGER: ("B", _octet_values(Integer, signed=True)),
    DataType.LONG: ("h", Long),
    DataType.UNSIGNED: ("B", _octet_values(Unsigned)),
    DataType.LONG_UNSIGNED: ("H", LongUnsigned),
    DataType.LONG64: ("q", Long64),
    DataType.LONG64_UNSIGNED: ("Q", Long64Unsigned),
    DataType.ENUM: ("B", _octet_values(Enum)),
    DataType.FLOAT32: ("f", Float32),
    DataType.FLOAT64: ("d", Float64),
}

def row_format(
    description: TypeDescription,
) -> tuple[struct.Struct, list[Callable[[Any], Any]]] | None:
    """One struct format for a whole element when every field is fixed-width, else None.

    Profile rows sent as compact-array (4.1.5) are typically a structure of
    double-long-unsigned and long values: ``struct.iter_unpack`` then cuts all rows in C.
    """
    members = (description.elements if isinstance(description, StructureDescription)
               else (description,))
    if not members or not all(m in FIXED_FORMATS for m in members):
        return None
    # Each member is a plain DataType here (checked just above), not a nested description.
    formats = [FIXED_FORMATS[m] for m in members]  # type: ignore[index]
    return struct.Struct(">" + "".join(f for f, _ in formats)), [m for _, m in formats]


# Types whose wire type does not depend on the value.
TAG_OF_TYPE: dict[type, DataType] = {
    cls: cls.TAG for cls in (
        Integer, Long, Unsigned, LongUnsigned, DoubleLong, DoubleLongUnsigned, Long64,
        Long64Unsigned, Enum, Bcd, Float32, Float64, OctetString, VisibleString, Utf8String,
        Structure, Array, BitString, CompactArray, DontCare)
}
TAG_OF_TYPE.update({
    type(None): DataType.NULL_DATA,
    bool: DataType.BOOLEAN,
    float: DataType.FLOAT64,
    bytes: DataType.OCTET_STRING,
    bytearray: DataType.OCTET_STRING,
    memoryview: DataType.OCTET_STRING,
    tuple: DataType.STRUCTURE,
    list: DataType.ARRAY,
    CosemDateTime: DataType.DATE_TIME,
    CosemDate: DataType.DATE,
    CosemTime: DataType.TIME,
})


def _infer_int(value: int) -> DataType:
    if -0x8000_0000 <= value <= 0x7FFF_FFFF:
        return DataType.DOUBLE_LONG
    if -0x8000_0000_0000_0000 <= value <= 0x7FFF_FFFF_FFFF_FFFF:
        return DataType.LONG64
    if 0 <= value <= 0xFFFF_FFFF_FFFF_FFFF:
        return DataType.LONG64_UNSIGNED
    raise EncodeError(f"integer {value} does not fit any A-XDR integer type "
                      "(-2**63 .. 2**64-1)")


def data_type_of(value: Any) -> DataType:
    """The tag ``encode`` would use for ``value``."""
    tag = TAG_OF_TYPE.get(type(value))
    if tag is not None:
        return tag
    for base in type(value).__mro__:
        tag = TAG_OF_TYPE.get(base)
        if tag is not None:
            return tag
    if isinstance(value, int):  # plain int and foreign int subclasses (IntEnum...)
        return _infer_int(value)
    if isinstance(value, str):
        return DataType.VISIBLE_STRING if value.isascii() else DataType.UTF8_STRING
    raise EncodeError(f"no A-XDR type for {type(value).__name__} {value!r}; use one of the "
                      "typed values of edge_agent.dlms.encoding.axdr")


def describe(value: Any) -> TypeDescription:
    """The compact-array TypeDescription of one element like ``value``."""
    tag = data_type_of(value)
    if tag == DataType.STRUCTURE:
        return StructureDescription(tuple(describe(v) for v in value))
    if tag == DataType.ARRAY:
        if not value:
            raise EncodeError("cannot describe the element type of an empty array")
        return ArrayDescription(len(value), describe(value[0]))
    if tag == DataType.COMPACT_ARRAY:
        raise EncodeError("a compact-array cannot contain a compact-array")
    return tag


def truncated(what: str, need: int, buf: Buffer, offset: int) -> TruncatedError:
    return TruncatedError(
        f"{what} at offset {offset} needs {need} octets, {max(len(buf) - offset, 0)} left: "
        "the APDU is truncated")
