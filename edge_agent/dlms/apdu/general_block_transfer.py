"""General-block-transfer (0xE0, Green Book 9.3.10 and 9.5).

GBT cuts any APDU (plain or ciphered) into numbered blocks, independent of the service.
Landis+Gyr E450 and others push their DataNotifications through it, split over HDLC
frames. :class:`GbtReassembler` joins the blocks back sans-IO; :func:`split_into_gbt`
does the sender's half.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Self

from edge_agent.dlms.apdu.base import (
    Apdu,
    Buffer,
    put_octet_string,
    put_u16,
    raw_chunk_size,
    read_octet_string,
    read_u8,
    read_u16,
)
from edge_agent.dlms.errors import EncodeError, ProtocolError

GENERAL_BLOCK_TRANSFER = 0xE0

# block-control (Unsigned8): bit 7 last-block, bit 6 streaming, bits 5..0 window.
_LAST_BLOCK = 0x80
_STREAMING = 0x40
_WINDOW = 0x3F


@dataclass(frozen=True, slots=True)
class GeneralBlockTransfer(Apdu):
    TAG: ClassVar[int] = GENERAL_BLOCK_TRANSFER
    NAME: ClassVar[str] = "general-block-transfer"

    last_block: bool
    streaming: bool
    window: int  # blocks the sender of this APDU can receive before it acknowledges
    block_number: int
    block_number_ack: int
    block_data: bytes

    def _encode_body(self, out: bytearray) -> None:
        if not 0 <= self.window <= _WINDOW:
            raise EncodeError(f"general-block-transfer window must be 0..63, got {self.window}")
        out.append(
            (_LAST_BLOCK if self.last_block else 0)
            | (_STREAMING if self.streaming else 0)
            | self.window
        )
        put_u16(out, self.block_number, "block-number")
        put_u16(out, self.block_number_ack, "block-number-ack")
        put_octet_string(out, self.block_data)

    @classmethod
    def _read_body(cls, buf: Buffer, offset: int) -> tuple[Self, int]:
        control, offset = read_u8(buf, offset, "block-control")
        number, offset = read_u16(buf, offset, "block-number")
        ack, offset = read_u16(buf, offset, "block-number-ack")
        data, offset = read_octet_string(buf, offset, "block-data")
        return (
            cls(
                bool(control & _LAST_BLOCK),
                bool(control & _STREAMING),
                control & _WINDOW,
                number,
                ack,
                data,
            ),
            offset,
        )


class GbtReassembler:
    """Receiver of one general-block-transfer: feed blocks, get the whole APDU back.

    Blocks must arrive numbered ``first_block_number``, +1, ... (Green Book 9.3.10: the
    numbering continues across the exchange). A gap, a repeat, or more than ``max_size``
    bytes raise ``ProtocolError``; lost-block recovery by selective re-request is left
    to the peer retransmitting, which this receiver then accepts again in order.
    """

    __slots__ = (
        "_parts",
        "_size",
        "done",
        "expected",
        "last_received",
        "max_size",
        "needs_ack",
        "window",
    )

    def __init__(
        self, first_block_number: int = 1, window: int = 1, max_size: int = 16 << 20
    ) -> None:
        self._parts: list[bytes] = []
        self._size = 0
        self.expected = first_block_number
        self.last_received = 0
        self.done = False
        self.max_size = max_size
        self.needs_ack = False
        self.window = window

    def feed(self, block: GeneralBlockTransfer) -> bytes | None:
        """Take one block; return the reassembled APDU after the last block, else None."""
        if self.done:
            raise ProtocolError(
                f"general-block-transfer: block {block.block_number} after the last block"
            )
        if block.block_number != self.expected:
            raise ProtocolError(
                f"general-block-transfer: expected block {self.expected}, got {block.block_number} "
                "(a block was lost or repeated)"
            )
        self._size += len(block.block_data)
        if self._size > self.max_size:
            raise ProtocolError(
                f"general-block-transfer: more than {self.max_size} bytes; aborting"
            )
        self._parts.append(block.block_data)
        self.last_received = block.block_number
        self.expected = block.block_number + 1
        self.done = block.last_block
        # A sender that is not streaming waits for our acknowledgement after each block.
        self.needs_ack = not block.last_block and not block.streaming
        if self.done:
            return b"".join(self._parts)
        return None

    def ack(self, block_number: int) -> GeneralBlockTransfer:
        """The empty GBT that acknowledges everything received so far (our ``block_number``)."""
        self.needs_ack = False
        return GeneralBlockTransfer(True, False, self.window, block_number, self.last_received, b"")


# block-control, block-number, block-number-ack besides the tag.
_GBT_HEADER = 1 + 1 + 2 + 2


def split_into_gbt(
    apdu: bytes,
    max_pdu_size: int,
    *,
    window: int = 1,
    streaming: bool = False,
    first_block_number: int = 1,
    block_number_ack: int = 0,
) -> list[GeneralBlockTransfer]:
    """Cut ``apdu`` into general-block-transfer APDUs of at most ``max_pdu_size`` bytes."""
    size = raw_chunk_size(max_pdu_size, _GBT_HEADER)
    chunks = [apdu[start : start + size] for start in range(0, len(apdu), size)] or [b""]
    if first_block_number + len(chunks) - 1 > 0xFFFF:
        raise EncodeError(f"{len(apdu)} bytes need more than 65535 general-block-transfer blocks")
    return [
        GeneralBlockTransfer(
            index == len(chunks) - 1,
            streaming,
            window,
            first_block_number + index,
            block_number_ack,
            chunk,
        )
        for index, chunk in enumerate(chunks)
    ]
