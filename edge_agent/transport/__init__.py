"""Byte transports (I/O only): TCP, serial (optical mode E, RS-485) and pty pairs for tests."""

from edge_agent.transport.base import Transport
from edge_agent.transport.pty import PtyPair, open_pty
from edge_agent.transport.serial import SerialTransport, optical_sign_on
from edge_agent.transport.tcp import DEFAULT_PORT, TcpTransport

__all__ = [
    "DEFAULT_PORT",
    "PtyPair",
    "SerialTransport",
    "TcpTransport",
    "Transport",
    "open_pty",
    "optical_sign_on",
]
