"""A-XDR encoding of the COSEM ``Data`` CHOICE (Blue Book, DLMS UA 1000-1, 4.1.5;
A-XDR rules IEC 61334-6).

Every value is one tag octet (:class:`DataType`) and its content. Decoding returns typed
values that subclass the natural Python type (``LongUnsigned(300) == 300``), so callers
can treat them as plain numbers and strings while ``encode`` still knows the exact wire
type. ``encode`` also accepts plain Python values and infers the type:

    None -> null-data        bool  -> boolean        int   -> double-long, long64 or
    float -> float64         bytes -> octet-string            long64-unsigned by range
    str  -> visible-string (ASCII) or utf8-string    tuple -> structure   list -> array

so ``encode(decode(b)) == b`` for canonical encodings and ``decode(encode(v)) == v``.
Two non-canonical inputs decode but re-encode canonically: a boolean octet other than
0x00/0x01, and a length written in a longer form than needed.

Decoding is table-driven (one function per tag in a 256-entry list), reads with
``struct.unpack_from`` at offsets and never copies the input; nesting is bounded by
:data:`MAX_DEPTH`, and element counts are checked against the remaining input before any
loop, so hostile input fails fast with a :class:`~.errors.DecodeError`.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from .cosem_time import CosemDate, CosemDateTime, CosemTime
from .errors import DecodeError, EncodeError, TruncatedError

__all__ = [
    "DataType", "Integer", "Long", "Unsigned", "LongUnsigned", "DoubleLong",
    "DoubleLongUnsigned", "Long64", "Long64Unsigned", "Enum", "Float32", "Float64",
    "OctetString", "VisibleString", "Utf8String", "Bcd", "BitString", "Structure", "Array",
    "CompactArray", "ArrayDescription", "StructureDescription", "TypeDescription",
    "DontCare", "DONT_CARE", "CosemDate", "CosemDateTime", "CosemTime", "MAX_DEPTH",
    "decode", "decode_all", "encode", "encode_into", "encode_length", "decode_length",
    "describe", "data_type_of",
]

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


class Structure(tuple):
    """structure: an ordered sequence of Data of any types."""
    __slots__ = ()
    TAG = DataType.STRUCTURE

    def __repr__(self) -> str:
        return f"Structure({tuple(self)!r})"


class Array(list):
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
    def from_values(cls, values: list | tuple,
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


def decode_length(buf: bytes | bytearray | memoryview, offset: int) -> tuple[int, int]:
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


# --- decoding -----------------------------------------------------------------------------

Buffer = bytes | bytearray | memoryview
_Decoder = Callable[[Buffer, int, int], tuple[Any, int]]
_DECODERS: list[_Decoder | None] = [None] * 256


def _truncated(what: str, need: int, buf: Buffer, offset: int) -> TruncatedError:
    return TruncatedError(
        f"{what} at offset {offset} needs {need} octets, {max(len(buf) - offset, 0)} left: "
        "the APDU is truncated")


def _unknown_tag(tag: int, offset: int) -> DecodeError:
    return DecodeError(
        f"unknown A-XDR data type tag 0x{tag:02X} at offset {offset}; expected a Data CHOICE "
        "tag (0..27 or 255, Blue Book 4.1.5): the data is corrupt or misaligned")


def _fixed_decoder(cls: type, fmt: str, name: str) -> _Decoder:
    unpack = struct.Struct(fmt).unpack_from
    size = struct.calcsize(fmt)

    def decode_fixed(buf: Buffer, off: int, depth: int) -> tuple[Any, int]:
        try:
            return cls(unpack(buf, off)[0]), off + size
        except struct.error:  # only raised when fewer than `size` octets are left
            raise _truncated(name, size, buf, off) from None

    return decode_fixed


def _decode_null(buf: Buffer, off: int, depth: int) -> tuple[None, int]:
    return None, off


def _decode_dont_care(buf: Buffer, off: int, depth: int) -> tuple[DontCare, int]:
    return DONT_CARE, off


def _decode_boolean(buf: Buffer, off: int, depth: int) -> tuple[bool, int]:
    if off >= len(buf):
        raise _truncated("boolean", 1, buf, off)
    return buf[off] != 0, off + 1


def _decode_octets(buf: Buffer, off: int, name: str) -> tuple[int, int]:
    """Read a length; return (start, end) of the octets that follow."""
    if off < len(buf) and buf[off] < 0x80:
        length = buf[off]
        start = off + 1
    else:
        length, start = decode_length(buf, off)
    end = start + length
    if end > len(buf):
        raise _truncated(f"{name} of {length} octets", length, buf, start)
    return start, end


def _decode_octet_string(buf: Buffer, off: int, depth: int) -> tuple[OctetString, int]:
    start, end = _decode_octets(buf, off, "octet-string")
    return OctetString(buf[start:end]), end


def _decode_visible_string(buf: Buffer, off: int, depth: int) -> tuple[VisibleString, int]:
    start, end = _decode_octets(buf, off, "visible-string")
    return VisibleString(str(buf[start:end], "latin-1")), end


def _decode_utf8_string(buf: Buffer, off: int, depth: int) -> tuple[Utf8String, int]:
    start, end = _decode_octets(buf, off, "utf8-string")
    try:
        return Utf8String(str(buf[start:end], "utf-8")), end
    except UnicodeDecodeError as exc:
        raise DecodeError(f"utf8-string at offset {start} is not valid UTF-8: {exc.reason} at "
                          f"octet {exc.start}") from None


def _decode_bit_string(buf: Buffer, off: int, depth: int) -> tuple[BitString, int]:
    bits, start = decode_length(buf, off)
    end = start + ((bits + 7) >> 3)
    if end > len(buf):
        raise _truncated(f"bit-string of {bits} bits", end - start, buf, start)
    return BitString(bytes(buf[start:end]), bits), end


def _decode_date_time(buf: Buffer, off: int, depth: int) -> tuple[CosemDateTime, int]:
    return CosemDateTime.decode(buf, off), off + 12


def _decode_date(buf: Buffer, off: int, depth: int) -> tuple[CosemDate, int]:
    return CosemDate.decode(buf, off), off + 5


def _decode_time(buf: Buffer, off: int, depth: int) -> tuple[CosemTime, int]:
    return CosemTime.decode(buf, off), off + 4


def _sequence_decoder(cls: type[Structure] | type[Array], name: str) -> _Decoder:
    """Decoder of structure or array content: a quantity, then tagged Data elements."""

    def decode_sequence(buf: Buffer, off: int, depth: int) -> tuple[Any, int]:
        n = len(buf)
        if off < n and buf[off] < 0x80:  # short-form quantity inline: this is the hot loop
            count = buf[off]
            off += 1
        else:
            count, off = decode_length(buf, off)
        if count > n - off:  # every element takes at least its tag octet
            raise _truncated(f"{name} of {count} elements", count, buf, off)
        if depth >= MAX_DEPTH:
            raise DecodeError(f"{name} at offset {off} nests deeper than {MAX_DEPTH} levels; "
                              "no COSEM attribute does that: the data is corrupt")
        depth += 1
        items = []
        append = items.append
        decoders = _DECODERS
        for _ in range(count):
            if off >= n:
                raise _truncated(f"element of {name}", 1, buf, off)
            tag = buf[off]
            decoder = decoders[tag]
            if decoder is None:
                raise _unknown_tag(tag, off)
            value, off = decoder(buf, off + 1, depth)
            append(value)
        return cls(items), off

    return decode_sequence


def _octet_decoder(cls: type[int], signed: bool = False) -> _Decoder:
    """One-octet types: every value is built once, decoding is a table look-up."""
    values = tuple(cls(v - 256 if signed and v > 127 else v) for v in range(256))
    name = cls.TAG.name.lower().replace("_", "-")

    def decode_octet(buf: Buffer, off: int, depth: int) -> tuple[Any, int]:
        try:
            return values[buf[off]], off + 1
        except IndexError:
            raise _truncated(name, 1, buf, off) from None

    return decode_octet


# compact-array: content types that carry no per-element structure of their own.
_COMPACT_SIMPLE = frozenset(DataType) - {
    DataType.ARRAY, DataType.STRUCTURE, DataType.COMPACT_ARRAY}
# Zero-width elements (null-data, dont-care, empty arrays) could describe billions of
# values in no bytes; the decoder produces at most this many values plus 8 per octet.
_COMPACT_NODE_ALLOWANCE = 1 << 16


def _decode_type_description(buf: Buffer, off: int, depth: int) -> tuple[TypeDescription, int]:
    if off >= len(buf):
        raise _truncated("compact-array type description", 1, buf, off)
    if depth >= MAX_DEPTH:
        raise DecodeError(f"compact-array type description at offset {off} nests deeper than "
                          f"{MAX_DEPTH} levels: the data is corrupt")
    tag = buf[off]
    off += 1
    if tag == DataType.ARRAY:
        if off + 2 > len(buf):
            raise _truncated("compact-array element count", 2, buf, off)
        count = (buf[off] << 8) | buf[off + 1]
        element, off = _decode_type_description(buf, off + 2, depth + 1)
        return ArrayDescription(count, element), off
    if tag == DataType.STRUCTURE:
        count, off = decode_length(buf, off)
        if count > len(buf) - off:
            raise _truncated(f"structure description of {count} members", count, buf, off)
        members = []
        for _ in range(count):
            member, off = _decode_type_description(buf, off, depth + 1)
            members.append(member)
        return StructureDescription(tuple(members)), off
    if tag not in _COMPACT_SIMPLE:
        raise DecodeError(
            f"compact-array type description at offset {off - 1}: tag 0x{tag:02X} is not a "
            "Data type usable in a compact-array (Blue Book 4.1.5 TypeDescription)")
    return DataType(tag), off


def _node_count(description: TypeDescription) -> int:
    """Values one element of ``description`` decodes to (saturating, to stay cheap)."""
    if isinstance(description, ArrayDescription):
        return 1 + min(description.count * _node_count(description.element), 1 << 40)
    if isinstance(description, StructureDescription):
        return 1 + min(sum(_node_count(m) for m in description.elements), 1 << 40)
    return 1


def _untagged_decoder(description: TypeDescription) -> _Decoder:
    """A decoder for one element of ``description`` written without tags."""
    if isinstance(description, ArrayDescription):
        count = description.count
        inner = _untagged_decoder(description.element)

        def decode_array(buf: Buffer, off: int, depth: int) -> tuple[Array, int]:
            items = []
            for _ in range(count):
                value, off = inner(buf, off, depth + 1)
                items.append(value)
            return Array(items), off

        return decode_array
    if isinstance(description, StructureDescription):
        members = tuple(_untagged_decoder(m) for m in description.elements)

        def decode_structure(buf: Buffer, off: int, depth: int) -> tuple[Structure, int]:
            items = []
            for member in members:
                value, off = member(buf, off, depth + 1)
                items.append(value)
            return Structure(items), off

        return decode_structure
    decoder = _DECODERS[description]
    assert decoder is not None  # _decode_type_description admits known tags only
    return decoder


def _decode_compact_array(buf: Buffer, off: int, depth: int) -> tuple[CompactArray, int]:
    description, off = _decode_type_description(buf, off, depth)
    start, end = _decode_octets(buf, off, "compact-array contents")
    row = _untagged_decoder(description)
    per_row = _node_count(description)
    budget = _COMPACT_NODE_ALLOWANCE + 8 * (end - start)
    values = []
    off = start
    # Decoding from a view that ends with the contents makes every element decoder stop
    # at the contents' end without knowing about it. The view is released on the way out
    # (also on errors) so that a caller's bytearray stays resizable.
    with memoryview(buf)[:end] as contents:
        while off < end:
            budget -= per_row
            if budget < 0:
                raise DecodeError(
                    f"compact-array at offset {start} describes more values than its "
                    f"{end - start} octets can hold: the type description is corrupt")
            value, next_off = row(contents, off, depth + 1)
            if next_off == off:
                raise DecodeError(
                    f"compact-array at offset {start}: its elements take no octets "
                    "(null-data/dont-care only), so the number of elements is undefined")
            values.append(value)
            off = next_off
    return CompactArray(description, tuple(values)), end


for _tag, _decoder in {
    DataType.NULL_DATA: _decode_null,
    DataType.ARRAY: _sequence_decoder(Array, "array"),
    DataType.STRUCTURE: _sequence_decoder(Structure, "structure"),
    DataType.BOOLEAN: _decode_boolean,
    DataType.BIT_STRING: _decode_bit_string,
    DataType.DOUBLE_LONG: _fixed_decoder(DoubleLong, ">i", "double-long"),
    DataType.DOUBLE_LONG_UNSIGNED: _fixed_decoder(DoubleLongUnsigned, ">I",
                                                  "double-long-unsigned"),
    DataType.OCTET_STRING: _decode_octet_string,
    DataType.VISIBLE_STRING: _decode_visible_string,
    DataType.UTF8_STRING: _decode_utf8_string,
    DataType.BCD: _octet_decoder(Bcd),
    DataType.INTEGER: _octet_decoder(Integer, signed=True),
    DataType.LONG: _fixed_decoder(Long, ">h", "long"),
    DataType.UNSIGNED: _octet_decoder(Unsigned),
    DataType.LONG_UNSIGNED: _fixed_decoder(LongUnsigned, ">H", "long-unsigned"),
    DataType.COMPACT_ARRAY: _decode_compact_array,
    DataType.LONG64: _fixed_decoder(Long64, ">q", "long64"),
    DataType.LONG64_UNSIGNED: _fixed_decoder(Long64Unsigned, ">Q", "long64-unsigned"),
    DataType.ENUM: _octet_decoder(Enum),
    DataType.FLOAT32: _fixed_decoder(Float32, ">f", "float32"),
    DataType.FLOAT64: _fixed_decoder(Float64, ">d", "float64"),
    DataType.DATE_TIME: _decode_date_time,
    DataType.DATE: _decode_date,
    DataType.TIME: _decode_time,
    DataType.DONT_CARE: _decode_dont_care,
}.items():
    _DECODERS[_tag] = _decoder


def decode(buf: Buffer, offset: int = 0) -> tuple[Any, int]:
    """Decode one tagged Data value at ``offset``; return (value, offset after it)."""
    if not 0 <= offset < len(buf):
        raise TruncatedError(
            f"expected an A-XDR Data tag at offset {offset}, input has {len(buf)} octets")
    tag = buf[offset]
    decoder = _DECODERS[tag]
    if decoder is None:
        raise _unknown_tag(tag, offset)
    return decoder(buf, offset + 1, 0)


def decode_all(buf: Buffer) -> Any:
    """Decode a buffer that holds exactly one Data value."""
    value, end = decode(buf, 0)
    if end != len(buf):
        raise DecodeError(
            f"{len(buf) - end} octets left after the A-XDR value that ends at offset {end}; "
            "expected exactly one value")
    return value


# --- encoding -----------------------------------------------------------------------------

_Encoder = Callable[[bytearray, Any, int], None]


def _int_encoder(fmt: str, name: str) -> _Encoder:
    pack = struct.Struct(fmt).pack
    bits = struct.calcsize(fmt) * 8
    low, high = ((-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if fmt[-1].islower()
                 else (0, (1 << bits) - 1))

    def encode_int(out: bytearray, value: Any, depth: int) -> None:
        if isinstance(value, float) or not isinstance(value, int):
            raise EncodeError(f"{name} needs an integer, got {type(value).__name__} {value!r}")
        if not low <= value <= high:
            raise EncodeError(f"{name} must be in {low}..{high}, got {int(value)}")
        out += pack(value)

    return encode_int


def _float_encoder(fmt: str, name: str) -> _Encoder:
    pack = struct.Struct(fmt).pack

    def encode_float(out: bytearray, value: Any, depth: int) -> None:
        try:
            out += pack(value)
        except (struct.error, OverflowError, TypeError) as exc:
            raise EncodeError(f"{name} cannot hold {value!r}: {exc}") from None

    return encode_float


def _encode_null(out: bytearray, value: Any, depth: int) -> None:
    if value is not None:
        raise EncodeError(f"null-data has no value, got {value!r}")


def _encode_dont_care(out: bytearray, value: Any, depth: int) -> None:
    if value is not DONT_CARE:
        raise EncodeError(f"dont-care has no value, got {value!r}")


def _encode_boolean(out: bytearray, value: Any, depth: int) -> None:
    if not isinstance(value, int):
        raise EncodeError(f"boolean needs True/False, got {type(value).__name__} {value!r}")
    out.append(1 if value else 0)


def _encode_octet_string(out: bytearray, value: Any, depth: int) -> None:
    if not isinstance(value, bytes | bytearray | memoryview):
        raise EncodeError(f"octet-string needs bytes, got {type(value).__name__} {value!r}")
    out += encode_length(len(value))
    out += value


def _text_encoder(codec: str, name: str) -> _Encoder:
    def encode_text(out: bytearray, value: Any, depth: int) -> None:
        if not isinstance(value, str):
            raise EncodeError(f"{name} needs str, got {type(value).__name__} {value!r}")
        try:
            raw = value.encode(codec)
        except UnicodeEncodeError as exc:
            raise EncodeError(f"{name} cannot hold {value[exc.start:exc.end]!r}; use "
                              "Utf8String for text outside Latin-1") from None
        out += encode_length(len(raw))
        out += raw

    return encode_text


def _encode_bit_string(out: bytearray, value: Any, depth: int) -> None:
    if not isinstance(value, BitString):
        raise EncodeError(f"bit-string needs a BitString, got {type(value).__name__}")
    out += encode_length(value.length)
    out += value.data


def _cosem_time_encoder(cls: type, name: str) -> _Encoder:
    def encode_cosem_time(out: bytearray, value: Any, depth: int) -> None:
        if not isinstance(value, cls):
            raise EncodeError(f"{name} needs a {cls.__name__}, got {type(value).__name__}")
        out += value.encode()

    return encode_cosem_time


def _encode_sequence(out: bytearray, value: Any, depth: int) -> None:
    if not isinstance(value, list | tuple):
        raise EncodeError(f"structure/array needs a tuple or list, got {type(value).__name__}")
    if depth >= MAX_DEPTH:
        raise EncodeError(f"value nests deeper than {MAX_DEPTH} levels (a list that contains "
                          "itself?)")
    out += encode_length(len(value))
    for item in value:
        _encode(out, item, depth + 1)


def _encode_type_description(out: bytearray, description: TypeDescription) -> None:
    if isinstance(description, ArrayDescription):
        if not 0 <= description.count <= 0xFFFF:
            raise EncodeError(f"compact-array array description counts 0..65535 elements, "
                              f"got {description.count}")
        out.append(DataType.ARRAY)
        out += description.count.to_bytes(2, "big")
        _encode_type_description(out, description.element)
    elif isinstance(description, StructureDescription):
        out.append(DataType.STRUCTURE)
        out += encode_length(len(description.elements))
        for member in description.elements:
            _encode_type_description(out, member)
    elif description in _COMPACT_SIMPLE:
        out.append(description)
    else:
        raise EncodeError(f"not a compact-array type description: {description!r}")


def _encode_untagged(out: bytearray, description: TypeDescription, value: Any,
                     depth: int) -> None:
    if depth >= MAX_DEPTH:
        raise EncodeError(f"compact-array element nests deeper than {MAX_DEPTH} levels")
    if isinstance(description, ArrayDescription):
        if not isinstance(value, list | tuple) or len(value) != description.count:
            raise EncodeError(f"compact-array element must be a sequence of "
                              f"{description.count} values, got {value!r}")
        for item in value:
            _encode_untagged(out, description.element, item, depth + 1)
    elif isinstance(description, StructureDescription):
        members = description.elements
        if not isinstance(value, list | tuple) or len(value) != len(members):
            raise EncodeError(f"compact-array element must be a structure of {len(members)} "
                              f"members, got {value!r}")
        for member, item in zip(members, value):
            _encode_untagged(out, member, item, depth + 1)
    else:
        _BODY_ENCODERS[description](out, value, depth)


def _encode_compact_array(out: bytearray, value: Any, depth: int) -> None:
    if not isinstance(value, CompactArray):
        raise EncodeError(f"compact-array needs a CompactArray, got {type(value).__name__}")
    _encode_type_description(out, value.description)
    contents = bytearray()
    for item in value.values:
        _encode_untagged(contents, value.description, item, depth + 1)
    out += encode_length(len(contents))
    out += contents


_BODY_ENCODERS: dict[int, _Encoder] = {
    DataType.NULL_DATA: _encode_null,
    DataType.ARRAY: _encode_sequence,
    DataType.STRUCTURE: _encode_sequence,
    DataType.BOOLEAN: _encode_boolean,
    DataType.BIT_STRING: _encode_bit_string,
    DataType.DOUBLE_LONG: _int_encoder(">i", "double-long"),
    DataType.DOUBLE_LONG_UNSIGNED: _int_encoder(">I", "double-long-unsigned"),
    DataType.OCTET_STRING: _encode_octet_string,
    DataType.VISIBLE_STRING: _text_encoder("latin-1", "visible-string"),
    DataType.UTF8_STRING: _text_encoder("utf-8", "utf8-string"),
    DataType.BCD: _int_encoder(">B", "bcd"),
    DataType.INTEGER: _int_encoder(">b", "integer"),
    DataType.LONG: _int_encoder(">h", "long"),
    DataType.UNSIGNED: _int_encoder(">B", "unsigned"),
    DataType.LONG_UNSIGNED: _int_encoder(">H", "long-unsigned"),
    DataType.COMPACT_ARRAY: _encode_compact_array,
    DataType.LONG64: _int_encoder(">q", "long64"),
    DataType.LONG64_UNSIGNED: _int_encoder(">Q", "long64-unsigned"),
    DataType.ENUM: _int_encoder(">B", "enum"),
    DataType.FLOAT32: _float_encoder(">f", "float32"),
    DataType.FLOAT64: _float_encoder(">d", "float64"),
    DataType.DATE_TIME: _cosem_time_encoder(CosemDateTime, "date-time"),
    DataType.DATE: _cosem_time_encoder(CosemDate, "date"),
    DataType.TIME: _cosem_time_encoder(CosemTime, "time"),
    DataType.DONT_CARE: _encode_dont_care,
}

# Types whose wire type does not depend on the value.
_TAG_OF_TYPE: dict[type, DataType] = {
    cls: cls.TAG for cls in (
        Integer, Long, Unsigned, LongUnsigned, DoubleLong, DoubleLongUnsigned, Long64,
        Long64Unsigned, Enum, Bcd, Float32, Float64, OctetString, VisibleString, Utf8String,
        Structure, Array, BitString, CompactArray, DontCare)
}
_TAG_OF_TYPE.update({
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
    tag = _TAG_OF_TYPE.get(type(value))
    if tag is not None:
        return tag
    for base in type(value).__mro__:
        tag = _TAG_OF_TYPE.get(base)
        if tag is not None:
            return tag
    if isinstance(value, int):  # plain int and foreign int subclasses (IntEnum...)
        return _infer_int(value)
    if isinstance(value, str):
        return DataType.VISIBLE_STRING if value.isascii() else DataType.UTF8_STRING
    raise EncodeError(f"no A-XDR type for {type(value).__name__} {value!r}; use one of the "
                      "typed values of edge_agent.dlms.axdr")


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


def _encode(out: bytearray, value: Any, depth: int) -> None:
    tag = _TAG_OF_TYPE.get(type(value))
    if tag is None:
        tag = data_type_of(value)
    out.append(tag)
    _BODY_ENCODERS[tag](out, value, depth)


def encode_into(out: bytearray, value: Any) -> None:
    """Append the tagged A-XDR encoding of ``value`` to ``out``."""
    _encode(out, value, 0)


def encode(value: Any) -> bytes:
    """The tagged A-XDR encoding of ``value``."""
    out = bytearray()
    _encode(out, value, 0)
    return bytes(out)
