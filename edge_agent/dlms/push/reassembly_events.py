"""What the push reassembler reports: whole telegrams, skipped bytes, damaged frames,
incomplete ones, and frames that carry no data (:mod:`edge_agent.dlms.push.reassembly`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from edge_agent.dlms.link.hdlc.frame import HdlcFrame
    from edge_agent.dlms.link.mbus import MbusLongFrame
    from edge_agent.dlms.link.wrapper import WrapperFrame
    from edge_agent.dlms.push.security_header import SecurityHeaderSeen

    LinkFrame = HdlcFrame | MbusLongFrame | WrapperFrame

__all__ = [
    "APDU",
    "FRAMINGS",
    "HDLC",
    "LLC",
    "MBUS",
    "WRAPPER",
    "ControlFrame",
    "Damaged",
    "Incomplete",
    "LinkFrame",
    "ReassemblyEvent",
    "Skipped",
    "Telegram",
    "apdu_name",
]

HDLC: Final = "hdlc"
MBUS: Final = "mbus"
WRAPPER: Final = "wrapper"
LLC: Final = "llc"
APDU: Final = "apdu"
FRAMINGS: Final = (HDLC, MBUS, WRAPPER)

NAMES: Final = {HDLC: "HDLC", MBUS: "M-Bus", WRAPPER: "wrapper"}

# Names of the APDUs a push or a log may hold, by tag (Green Book 9.5), for messages about
# frames that cannot be decoded: what a damaged frame was carrying.
_APDU_NAMES: Final = {
    0x0F: "data-notification",
    0xC2: "event-notification-request",
    0xC4: "get-response",
    0xE0: "general-block-transfer",
    0xDB: "general-glo-ciphering",
    0xDC: "general-ded-ciphering",
    0xDD: "general-ciphering",
    0xDF: "general-signing",
}


def __getattr__(name: str) -> Any:
    """``LinkFrame`` at run time (PEP 562): the frame classes load at the first ask, so that
    the events of a capture of wrapper frames do not load the HDLC and M-Bus ones."""
    if name != "LinkFrame":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from edge_agent.dlms.link.hdlc.frame import HdlcFrame
    from edge_agent.dlms.link.mbus import MbusLongFrame
    from edge_agent.dlms.link.wrapper import WrapperFrame

    value = globals()["LinkFrame"] = HdlcFrame | MbusLongFrame | WrapperFrame
    return value


def apdu_name(apdu: bytes) -> str | None:
    return _APDU_NAMES.get(apdu[0]) if apdu else None


# --- events -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Telegram:
    """A whole APDU. ``offset`` is where its first frame began in the stream; ``wire`` the
    frames' bytes as received; ``notes`` what was accepted although not standard."""

    apdu: bytes
    wire: bytes
    offset: int
    framing: str
    frames: tuple[LinkFrame, ...] = ()
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Skipped:
    """Bytes that belong to no frame (line noise, a logger's text, a cut-off frame start)."""

    offset: int
    length: int

    @property
    def message(self) -> str:
        return f"skipped {self.length} byte(s) at offset {self.offset}: not part of a frame"


@dataclass(frozen=True, slots=True)
class Damaged:
    """A frame whose checksum (or closing flag) is wrong; ``seen`` is its clear header."""

    offset: int
    length: int
    framing: str
    reason: str
    addresses: str | None = None
    carried: str | None = None  # the APDU type its information field starts with
    seen: SecurityHeaderSeen | None = None
    raw: bytes = b""  # the frame's bytes as received, for a capture file

    @property
    def message(self) -> str:
        where = (f"{NAMES.get(self.framing, self.framing)} frame of {self.length} bytes at "
                 f"offset {self.offset}")
        parts = [f"{where} is damaged: {self.reason}"]
        if self.addresses:
            parts.append(f"addresses {self.addresses}")
        if self.seen is not None:
            parts.append(f"it carries {self.seen.describe()}")
        elif self.carried:
            parts.append(f"it carries a {self.carried}")
        return "; ".join(parts) + "; the frame is dropped"


@dataclass(frozen=True, slots=True)
class Incomplete:
    """A frame, segmented message or block transfer that the stream ended or broke off in."""

    offset: int
    framing: str
    reason: str
    missing_bytes: int | None = None
    received: int = 0
    seen: SecurityHeaderSeen | None = None
    raw: bytes = b""  # the bytes received of it, for a capture file

    @property
    def message(self) -> str:
        text = f"incomplete {self.framing} at offset {self.offset}: {self.reason}"
        if self.seen is not None:
            text += f"; it carries {self.seen.describe()}"
        return text


@dataclass(frozen=True, slots=True)
class ControlFrame:
    """An intact HDLC frame that carries no data (SNRM, UA, RR, an empty I-frame)."""

    offset: int
    frame: HdlcFrame


ReassemblyEvent = Telegram | Skipped | Damaged | Incomplete | ControlFrame
