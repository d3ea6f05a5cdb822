"""HDLC link layer of IEC 62056-46: the public surface in one import.

Frames, addresses and parameters live in :mod:`edge_agent.dlms.link.hdlc.frame`; the sans-IO
connection (both roles) in :mod:`edge_agent.dlms.link.hdlc.connection`.
"""

from edge_agent.dlms.link.hdlc.connection import (
    Connected,
    DataReceived,
    Disconnected,
    Event,
    HdlcConnection,
    Rejected,
    Role,
    State,
)
from edge_agent.dlms.link.hdlc.frame import (
    FLAG,
    LLC_COMMAND,
    LLC_RESPONSE,
    FrameKind,
    FrameSplitter,
    HdlcAddress,
    HdlcFrame,
    HdlcParameters,
    UnknownControlError,
    strip_llc,
)

__all__ = [
    "FLAG",
    "LLC_COMMAND",
    "LLC_RESPONSE",
    "Connected",
    "DataReceived",
    "Disconnected",
    "Event",
    "FrameKind",
    "FrameSplitter",
    "HdlcAddress",
    "HdlcConnection",
    "HdlcFrame",
    "HdlcParameters",
    "Rejected",
    "Role",
    "State",
    "UnknownControlError",
    "strip_llc",
]
