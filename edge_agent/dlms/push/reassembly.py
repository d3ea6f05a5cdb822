"""One reassembler for every link framing of pushed data, sans-IO: bytes in, events out.

Meters and the programs that log them deliver pushes in many shapes; ``Reassembler``
turns any of them into whole APDUs (:class:`Telegram`) and says what it could not use:

* **HDLC** frames (IEC 62056-46, ``7E ... 7E``): UI or I frames, segmented messages
  joined per sender (the S bit, clause 6.4.1), the LLC header (clause 8.2, ``E6 E7 00``)
  stripped when present and never required: Kaifa and Aidon send it, Landis+Gyr E450/E570
  send it on the first frame of a general-block-transfer only;
* **wired M-Bus** long frames (EN 13757-2, ``68 L L 68 ... 16``) with DLMS segments
  (EN 13757-3, CI 00..1F), as the Austrian customer interface sends them;
* **wrapper** frames (IEC 62056-47, ``00 01 ...``) as meters push over TCP;
* an LLC header followed by the APDU without any frame, and a bare APDU (what many
  readers log);
* **general-block-transfer** (Green Book 9.3.10) on top of any of these: blocks joined
  per sender until the last block.

Whatever is not a frame is skipped and reported (:class:`Skipped`, with its stream offset
and length), so garbage before, between and after frames and a logger's trailing bytes
cost nothing else. A frame whose checksum fails is reported (:class:`Damaged`) with what
its clear part shows: addresses, the APDU type, and for a ciphered APDU the system title,
security control byte and the keys it needs. A capture that ends inside a frame, a
segmented message or a block transfer is reported (:class:`Incomplete`) with how many
bytes or which segment or block are missing; the complete telegrams before it are kept.

``feed(data)`` returns the events found so far (a partial frame waits for more bytes);
``finish()`` ends the stream (end of a capture) and reports what is still incomplete.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from edge_agent.dlms.apdu import GENERAL_BLOCK_TRANSFER
from edge_agent.dlms.link.wrapper import HEADER_LENGTH as WRAPPER_HEADER_LENGTH
from edge_agent.dlms.link.wrapper import WrapperFrame
from edge_agent.dlms.push.reassembly_events import (
    APDU,
    FRAMINGS,
    HDLC,
    LLC,
    MBUS,
    WRAPPER,
    ControlFrame,
    Damaged,
    Incomplete,
    ReassemblyEvent,
    Skipped,
    Telegram,
    apdu_name,
)

if TYPE_CHECKING:
    from edge_agent.dlms.push.reassembler import MAX_MESSAGE_SIZE, Reassembler
    from edge_agent.dlms.push.reassembly_events import LinkFrame

#: A capture of unknown framing: :func:`reassemble` recognises it by its first bytes.
AUTO: Final = (HDLC, MBUS, WRAPPER, LLC, APDU)
_WRAPPER_VERSION: Final = b"\x00\x01"

__all__ = [
    "AUTO",
    "FRAMINGS",
    "MAX_MESSAGE_SIZE",
    "ControlFrame",
    "Damaged",
    "Incomplete",
    "LinkFrame",
    "Reassembler",
    "ReassemblyEvent",
    "Skipped",
    "Telegram",
    "apdu_name",
    "reassemble",
]


def __getattr__(name: str) -> Any:
    """The scanner's names (PEP 562): :mod:`~edge_agent.dlms.push.reassembler`, with the HDLC
    and M-Bus frame classes, is imported at the first ask, so that a capture of whole
    wrapper frames never loads them."""
    if name in ("MAX_MESSAGE_SIZE", "Reassembler"):
        from edge_agent.dlms.push import reassembler

        value = getattr(reassembler, name)
    elif name == "LinkFrame":
        from edge_agent.dlms.push import reassembly_events

        value = reassembly_events.LinkFrame
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def reassemble(data: bytes, framings: tuple[str, ...] = AUTO) -> list[ReassemblyEvent]:
    """Every event of a whole capture (``feed`` then ``finish``).

    With :data:`AUTO` the capture's first bytes decide: ``00 01`` wrapper frames; else
    HDLC and M-Bus frames anywhere in it; and when it holds no frame at all, one APDU,
    after an LLC header if it starts with one (what readers log without the frame).
    """
    buf = bytes(data)
    auto = framings == AUTO
    if (auto and buf[:2] == _WRAPPER_VERSION and len(buf) >= WRAPPER_HEADER_LENGTH
            and int.from_bytes(buf[6:8], "big") == len(buf) - WRAPPER_HEADER_LENGTH > 0
            and buf[WRAPPER_HEADER_LENGTH] != GENERAL_BLOCK_TRANSFER):
        # One whole wrapper frame (IEC 62056-47: its length field counts the rest) around
        # a whole APDU, as a capture line of a TCP meter's answer holds: the one telegram
        # the scan would find, without scanning (nor loading the scanner).
        frame, _ = WrapperFrame.decode(buf)
        return [Telegram(frame.apdu, buf, 0, WRAPPER, (frame,))]
    from edge_agent.dlms.push.reassembler import scan_capture

    return scan_capture(buf, framings, auto)
