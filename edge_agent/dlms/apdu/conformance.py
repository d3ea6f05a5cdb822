"""The xDLMS conformance block (Green Book 9.4.6.1: ``[APPLICATION 31] BIT STRING``).

Client and server each send the services they support in the InitiateRequest/-Response;
the association then may use only the intersection. The bit string is 24 bits long and
ASN.1 numbers its bits from the most significant bit of the first octet, so bit 0
(reserved-zero) is ``0x800000`` and bit 23 (action) is ``0x000001``. The flag values
below are exactly the encoded 24-bit number: ``encode`` is a plain ``to_bytes``.
"""

from __future__ import annotations

from enum import IntFlag

from edge_agent.dlms.errors import DecodeError, TruncatedError

#: BER identifier of the conformance block: [APPLICATION 31] in the long tag form.
CONFORMANCE_TAG = b"\x5f\x1f"
# Tag, length 4, unused bits 0, three content octets (BER, even inside A-XDR PDUs).
ENCODED_LENGTH = 7


def _bit(asn1_bit: int) -> int:
    return 1 << (23 - asn1_bit)


class Conformance(IntFlag):
    """Conformance bits with the Green Book names (``standard_name`` gives them spelled out)."""

    RESERVED_ZERO = _bit(0)
    GENERAL_PROTECTION = _bit(1)
    GENERAL_BLOCK_TRANSFER = _bit(2)
    READ = _bit(3)
    WRITE = _bit(4)
    UNCONFIRMED_WRITE = _bit(5)
    # Bit 6 was reserved-six until the 2016 edition named it delta-value-encoding.
    DELTA_VALUE_ENCODING = _bit(6)
    RESERVED_SEVEN = _bit(7)
    ATTRIBUTE0_SUPPORTED_WITH_SET = _bit(8)
    PRIORITY_MGMT_SUPPORTED = _bit(9)
    ATTRIBUTE0_SUPPORTED_WITH_GET = _bit(10)
    BLOCK_TRANSFER_WITH_GET_OR_READ = _bit(11)
    BLOCK_TRANSFER_WITH_SET_OR_WRITE = _bit(12)
    BLOCK_TRANSFER_WITH_ACTION = _bit(13)
    MULTIPLE_REFERENCES = _bit(14)
    INFORMATION_REPORT = _bit(15)
    DATA_NOTIFICATION = _bit(16)
    ACCESS = _bit(17)
    PARAMETERIZED_ACCESS = _bit(18)
    GET = _bit(19)
    SET = _bit(20)
    SELECTIVE_ACCESS = _bit(21)
    EVENT_NOTIFICATION = _bit(22)
    ACTION = _bit(23)

    @property
    def standard_names(self) -> list[str]:
        """The set bits as the Green Book spells them, most significant first."""
        return [
            member.name.lower().replace("_", "-")
            for member in sorted(Conformance, reverse=True)
            if member in self and member.name is not None
        ]

    def encode(self) -> bytes:
        """``5F 1F 04 00 xx xx xx``: the BER form the Initiate PDUs carry."""
        return CONFORMANCE_TAG + b"\x04\x00" + int(self).to_bytes(3, "big")

    @classmethod
    def decode(
        cls, buf: bytes | bytearray | memoryview, offset: int = 0
    ) -> tuple[Conformance, int]:
        """Read the BER conformance block at ``offset``; return it and the offset after it."""
        end = offset + ENCODED_LENGTH
        if len(buf) < end:
            raise TruncatedError(
                f"conformance block: expected {ENCODED_LENGTH} bytes (5F 1F 04 00 + 3) at "
                f"offset {offset}, only {len(buf) - offset} left"
            )
        head = bytes(buf[offset : offset + 4])
        if head != CONFORMANCE_TAG + b"\x04\x00":
            raise DecodeError(
                f"conformance block: expected 5f1f0400 at offset {offset}, got {head.hex()} "
                "(the Green Book encodes it as a BER [APPLICATION 31] 24-bit BIT STRING)"
            )
        return cls(int.from_bytes(buf[offset + 4 : end], "big")), end


#: What our LN client proposes: every LN service it can drive. ACTION is needed even by a
#: reader, because HLS pass 3 is an ACTION on the Association LN object.
CLIENT_DEFAULT = (
    Conformance.GENERAL_PROTECTION
    | Conformance.GENERAL_BLOCK_TRANSFER
    | Conformance.ATTRIBUTE0_SUPPORTED_WITH_GET
    | Conformance.PRIORITY_MGMT_SUPPORTED
    | Conformance.BLOCK_TRANSFER_WITH_GET_OR_READ
    | Conformance.BLOCK_TRANSFER_WITH_SET_OR_WRITE
    | Conformance.BLOCK_TRANSFER_WITH_ACTION
    | Conformance.MULTIPLE_REFERENCES
    | Conformance.DATA_NOTIFICATION
    | Conformance.GET
    | Conformance.SET
    | Conformance.SELECTIVE_ACCESS
    | Conformance.EVENT_NOTIFICATION
    | Conformance.ACTION
)
