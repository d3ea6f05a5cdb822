"""A-XDR encoding of the COSEM ``Data`` CHOICE (Blue Book, DLMS UA 1000-1, 4.1.5;
A-XDR rules IEC 61334-6).

Every value is one tag octet (:class:`DataType`) and its content. Decoding returns the
typed values of :mod:`.axdr_types` (re-exported here), which subclass the natural Python
type (``LongUnsigned(300) == 300``), so callers can treat them as plain numbers and
strings while ``encode`` still knows the exact wire type. ``encode`` also accepts plain
Python values and infers the type:

    None -> null-data        bool  -> boolean        int   -> double-long, long64 or
    float -> float64         bytes -> octet-string            long64-unsigned by range
    str  -> visible-string (ASCII) or utf8-string    tuple -> structure   list -> array

so ``encode(decode(b)) == b`` for canonical encodings and ``decode(encode(v)) == v``.
Two non-canonical inputs decode but re-encode canonically: a boolean octet other than
0x00/0x01, and a length written in a longer form than needed.

Decoding is table-driven and reads with ``struct.unpack_from`` at offsets without copying
the input. It is on the hot path of every poll (a GET-Response-With-List of 20 registers
is 20 scalars), so fixed-width scalars -- nearly every register value -- are decoded
inline from one table (:data:`_FIXED`) rather than through a call each; a compact-array of
fixed-width elements is cut with one ``struct`` row format; and
:func:`decode_get_data_results` cuts a with-list body laid out like one seen before in
one call. Nesting is bounded by :data:`MAX_DEPTH`, and element counts are checked against
the remaining input before any loop, so hostile input fails fast with a
:class:`~.errors.DecodeError`.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from operator import call as _call  # maker(content) in C, for map()
from typing import Any

# The typed values are this module's API too: one compact re-export list.
from edge_agent.dlms.encoding.data_types import (  # isort: skip
    COMPACT_NODE_ALLOWANCE, DONT_CARE, FIXED_FORMATS, MAX_DEPTH, TAG_OF_TYPE, Array, ArrayDescription, Bcd, BitString,
    Buffer, CompactArray, DataType, DontCare, DoubleLong, DoubleLongUnsigned, Enum, Float32,
    Float64, Integer, Long, Long64, Long64Unsigned, LongUnsigned, OctetString, Structure,
    StructureDescription, TypeDescription, Unsigned, Utf8String, VisibleString, data_type_of,
    decode_length, decode_type_description, describe, encode_length, encode_type_description,
    node_count, row_format, truncated,
)
from edge_agent.dlms.encoding.date_time import CosemDate, CosemDateTime, CosemTime
from edge_agent.dlms.errors import DecodeError, EncodeError, TruncatedError

__all__ = [
    "DONT_CARE", "MAX_DEPTH", "Array", "ArrayDescription", "Bcd", "BitString", "CompactArray",
    "CosemDate", "CosemDateTime", "CosemTime", "DataType", "DontCare", "DoubleLong",
    "DoubleLongUnsigned", "Enum", "Float32", "Float64", "Integer", "Long", "Long64",
    "Long64Unsigned", "LongUnsigned", "OctetString", "Structure", "StructureDescription",
    "TypeDescription", "Unsigned", "Utf8String", "VisibleString", "data_type_of", "decode",
    "decode_all", "decode_get_data_results", "decode_length", "describe", "encode",
    "encode_into", "encode_length",
]

# --- decoding -----------------------------------------------------------------------------

_Decoder = Callable[[Buffer, int, int], tuple[Any, int]]


def _unknown_tag(tag: int, offset: int) -> DecodeError:
    return DecodeError(
        f"unknown A-XDR data type tag 0x{tag:02X} at offset {offset}; expected a Data CHOICE "
        "tag (0..27 or 255, Blue Book 4.1.5): the data is corrupt or misaligned")


# The same as a 256-entry table the loops index by tag: (unpack_from, maker, size).
_FixedSpec = tuple[Callable[[Buffer, int], tuple[Any, ...]], Callable[[Any], Any], int]
_FIXED: list[_FixedSpec | None] = [None] * 256
for _tag, (_format, _make) in FIXED_FORMATS.items():
    _struct = struct.Struct(">" + _format)
    _FIXED[_tag] = (_struct.unpack_from, _make, _struct.size)
# Names for messages, from the standard's spelling ("double-long-unsigned").
_NAMES: dict[int, str] = {tag: tag.name.lower().replace("_", "-") for tag in DataType}
# One function per tag, called with the content offset (the loops inline _FIXED first).
_DECODERS: list[_Decoder | None] = [None] * 256


def _fixed_truncated(tag: int, buf: Buffer, off: int) -> TruncatedError:
    spec = _FIXED[tag]
    assert spec is not None
    return truncated(_NAMES[tag], spec[2], buf, off)


def _fixed_decoder(tag: int) -> _Decoder:
    spec = _FIXED[tag]
    assert spec is not None, "only the tags of FIXED_FORMATS have a fixed decoder"
    unpack, make, size = spec

    def decode_fixed(buf: Buffer, off: int, depth: int) -> tuple[Any, int]:
        try:
            return make(unpack(buf, off)[0]), off + size
        except struct.error:  # only raised when fewer than `size` octets are left
            raise _fixed_truncated(tag, buf, off) from None

    return decode_fixed


def _decode_null(buf: Buffer, off: int, depth: int) -> tuple[None, int]:
    return None, off


def _decode_dont_care(buf: Buffer, off: int, depth: int) -> tuple[DontCare, int]:
    return DONT_CARE, off


def _decode_octets(buf: Buffer, off: int, name: str) -> tuple[int, int]:
    """Read a length; return (start, end) of the octets that follow."""
    if off < len(buf) and buf[off] < 0x80:
        length = buf[off]
        start = off + 1
    else:
        length, start = decode_length(buf, off)
    end = start + length
    if end > len(buf):
        raise truncated(f"{name} of {length} octets", length, buf, start)
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
        raise truncated(f"bit-string of {bits} bits", end - start, buf, start)
    return BitString(bytes(buf[start:end]), bits), end


def _cosem_time_decoder(cls: type[CosemDateTime | CosemDate | CosemTime], size: int) -> _Decoder:
    def decode_cosem_time(buf: Buffer, off: int, depth: int) -> tuple[Any, int]:
        return cls.decode(buf, off), off + size  # 4.1.6.1; cls checks length and fields

    return decode_cosem_time


def _sequence_decoder(cls: type[Structure | Array], name: str) -> _Decoder:
    """Decoder of structure or array content: a quantity, then tagged Data elements."""

    def decode_sequence(buf: Buffer, off: int, depth: int) -> tuple[Any, int]:
        n = len(buf)
        if off < n and buf[off] < 0x80:
            count = buf[off]
            off += 1
        else:
            count, off = decode_length(buf, off)
        if count > n - off:  # every element takes at least its tag octet
            raise truncated(f"{name} of {count} elements", count, buf, off)
        if depth >= MAX_DEPTH:
            raise DecodeError(f"{name} at offset {off} nests deeper than {MAX_DEPTH} levels; "
                              "no COSEM attribute does that: the data is corrupt")
        depth += 1
        items: list[Any] = []
        append = items.append
        fixed_specs, decoders = _FIXED, _DECODERS
        tag = 0
        # The loop body is decode() inlined (rows of a load profile are this loop); the
        # handlers below word the error from the state at the failing element.
        try:
            for _ in range(count):
                tag = buf[off]
                fixed = fixed_specs[tag]
                if fixed is not None:
                    unpack, make, size = fixed
                    append(make(unpack(buf, off + 1)[0]))
                    off += 1 + size
                    continue
                decoder = decoders[tag]
                if decoder is None:
                    raise _unknown_tag(tag, off)
                value, off = decoder(buf, off + 1, depth)
                append(value)
        except IndexError:
            raise truncated(f"element of {name}", 1, buf, off) from None
        except struct.error:
            raise _fixed_truncated(tag, buf, off + 1) from None
        return cls(items), off

    return decode_sequence


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


def _decode_fixed_rows(contents: memoryview, start: int, description: TypeDescription,
                       row: struct.Struct, makers: list[Callable[[Any], Any]]) -> tuple[Any, ...]:
    if len(contents) % row.size:
        raise TruncatedError(
            f"compact-array contents at offset {start}: {len(contents)} octets are not a whole "
            f"number of {row.size}-octet elements: the APDU is truncated or corrupt")
    if isinstance(description, StructureDescription):
        return tuple(Structure(map(_call, makers, fields)) for fields in row.iter_unpack(contents))
    return tuple(map(makers[0], (value for (value,) in row.iter_unpack(contents))))


def _decode_compact_array(buf: Buffer, off: int, depth: int) -> tuple[CompactArray, int]:
    description, off = decode_type_description(buf, off, depth)
    start, end = _decode_octets(buf, off, "compact-array contents")
    fast = row_format(description)
    # Decoding from a view that ends with the contents makes every element decoder stop
    # at the contents' end without knowing about it. The view is released on the way out
    # (also on errors) so that a caller's bytearray stays resizable.
    with memoryview(buf)[:end] as contents:
        if fast is not None:
            return CompactArray(description, _decode_fixed_rows(
                contents[start:], start, description, *fast)), end
        row = _untagged_decoder(description)
        per_row = node_count(description)
        budget = COMPACT_NODE_ALLOWANCE + 8 * (end - start)
        values = []
        off = start
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
    **{tag: _fixed_decoder(tag) for tag in FIXED_FORMATS},
    DataType.NULL_DATA: _decode_null,
    DataType.ARRAY: _sequence_decoder(Array, "array"),
    DataType.STRUCTURE: _sequence_decoder(Structure, "structure"),
    DataType.BIT_STRING: _decode_bit_string,
    DataType.OCTET_STRING: _decode_octet_string,
    DataType.VISIBLE_STRING: _decode_visible_string,
    DataType.UTF8_STRING: _decode_utf8_string,
    DataType.COMPACT_ARRAY: _decode_compact_array,
    DataType.DATE_TIME: _cosem_time_decoder(CosemDateTime, 12),
    DataType.DATE: _cosem_time_decoder(CosemDate, 5),
    DataType.TIME: _cosem_time_decoder(CosemTime, 4),
    DataType.DONT_CARE: _decode_dont_care,
}.items():
    _DECODERS[_tag] = _decoder


def decode(buf: Buffer, offset: int = 0) -> tuple[Any, int]:
    """Decode one tagged Data value at ``offset``; return (value, offset after it)."""
    if not 0 <= offset < len(buf):
        raise TruncatedError(
            f"expected an A-XDR Data tag at offset {offset}, input has {len(buf)} octets")
    tag = buf[offset]
    fixed = _FIXED[tag]
    if fixed is not None:
        unpack, make, size = fixed
        try:
            return make(unpack(buf, offset + 1)[0]), offset + 1 + size
        except struct.error:
            raise _fixed_truncated(tag, buf, offset + 1) from None
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


# --- Get-Data-Result lists: the poll's hot loop ---------------------------------------------


@dataclass(frozen=True, slots=True)
class _ResultsLayout:
    """A flat Get-Data-Result list as decoded once: its structure octets and one format.

    A meter answers the same poll with the same layout every time: the same CHOICE, tag
    and length octets, only the contents change. The decoder's path through a list depends
    on those structure octets alone when every result is a data-access-result, a
    fixed-width scalar, or an octet-/visible-string in the short length form (their
    contents are valid whatever they hold). So when ``structure`` (masked from the input
    in one big-integer operation) equals the octets seen before, one ``struct`` format cuts
    every content and decoding it again would give the same fields.
    """

    size: int
    mask: int
    structure: int
    unpack: Callable[[Buffer, int], tuple[Any, ...]]
    makers: tuple[Callable[[Any], Any], ...]

    def match(self, buf: Buffer, offset: int) -> list[Any] | None:
        end = offset + self.size
        if end > len(buf) or int.from_bytes(buf[offset:end], "big") & self.mask != self.structure:
            return None
        return list(map(_call, self.makers, self.unpack(buf, offset)))


_SHORT_STRINGS: dict[int, Callable[[bytes], Any]] = {
    DataType.OCTET_STRING: OctetString,
    DataType.VISIBLE_STRING: lambda octets: VisibleString(str(octets, "latin-1")),
}
# Layouts by (count, failure maker), most recent first; a few per key, as an agent may
# poll several meters with lists of one length.
_LAYOUTS: dict[tuple[int, Callable[[int], Any]], tuple[_ResultsLayout, ...]] = {}
_LAYOUTS_PER_KEY, _LAYOUT_KEYS = 4, 64


def _layout_of(buf: Buffer, offset: int, count: int,
               failure: Callable[[int], Any]) -> _ResultsLayout | None:
    """The layout of a list that just decoded, or None if it holds anything else."""
    start = offset
    formats, makers, mask = [">"], [], bytearray()
    for _ in range(count):
        if buf[offset] == 1:  # data-access-result: its code is content, read by `failure`
            formats.append("xB")
            makers.append(failure)
            mask += b"\xff\x00"
            offset += 2
            continue
        tag = buf[offset + 1]
        fixed = _FIXED[tag]
        if fixed is not None:
            content, make = FIXED_FORMATS[tag]
            head, size = 2, fixed[2]
        elif tag in _SHORT_STRINGS and buf[offset + 2] < 0x80:
            size = buf[offset + 2]
            content, make, head = f"{size}s", _SHORT_STRINGS[tag], 3  # + the length octet
        else:
            return None
        formats.append(f"{head}x{content}")
        makers.append(make)
        mask += b"\xff" * head + bytes(size)
        offset += head + size
    mask_value = int.from_bytes(mask, "big")
    return _ResultsLayout(offset - start, mask_value,
                          int.from_bytes(buf[start:offset], "big") & mask_value,
                          struct.Struct("".join(formats)).unpack_from, tuple(makers))


def decode_get_data_results(buf: Buffer, offset: int, count: int,
                            failure: Callable[[int], Any]) -> tuple[list[Any], int]:
    """Decode ``count`` Get-Data-Result values; return (results, offset after them).

    Get-Data-Result ::= CHOICE { data [0] Data, data-access-result [1] Data-Access-Result }
    (IEC 62056-5-3 xDLMS ASN.1): the body of GET-Response-With-List, one per requested
    attribute, so the loop of every poll. It lives here, next to the Data tables: values
    are decoded inline, and a list laid out like one decoded before is cut with one
    ``struct`` format (:class:`_ResultsLayout`). ``failure`` turns a data-access-result
    code into the caller's type (the APDU layer passes its ``DataAccessResult``; this
    module sits below it). The caller checks ``count`` against the input first.
    """
    key = (count, failure)
    layouts = _LAYOUTS.get(key, ())
    for layout in layouts:
        results = layout.match(buf, offset)
        if results is not None:
            return results, offset + layout.size
    results, end = _decode_results(buf, offset, count, failure)
    learned = _layout_of(buf, offset, count, failure) if count else None
    if learned is not None:
        if len(_LAYOUTS) >= _LAYOUT_KEYS:
            _LAYOUTS.clear()  # a bound, not a policy: polls repeat a handful of layouts
        _LAYOUTS[key] = (learned, *layouts[:_LAYOUTS_PER_KEY - 1])
    return results, end


def _decode_results(buf: Buffer, offset: int, count: int,
                    failure: Callable[[int], Any]) -> tuple[list[Any], int]:
    results: list[Any] = []
    try:
        for _ in range(count):
            choice = buf[offset]
            if choice == 0:
                value, offset = decode(buf, offset + 1)
            elif choice == 1:
                value, offset = failure(buf[offset + 1]), offset + 2
            else:
                raise DecodeError(f"expected 00 (data) or 01 (data-access-result) at offset "
                                  f"{offset}, got {choice:02x}")
            results.append(value)
    except IndexError:
        raise truncated("get-data-result", 2, buf, offset) from None
    except DecodeError as error:  # worded like apdu_common.read_get_data_result
        raise type(error)(f"get-data-result: {error}") from None
    return results, offset


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


def _cosem_time_encoder(cls: type[CosemDateTime | CosemDate | CosemTime], name: str) -> _Encoder:
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
    encode_type_description(out, value.description)
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


def _encode(out: bytearray, value: Any, depth: int) -> None:
    tag = TAG_OF_TYPE.get(type(value))
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
