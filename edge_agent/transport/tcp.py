"""TCP client transport (the IEC 62056-47 wrapper, or HDLC behind serial-to-Ethernet converters)."""

from __future__ import annotations

import errno
import select
import socket

from edge_agent.dlms.errors import TransportError
from edge_agent.transport.base import TransportBase

__all__ = ["DEFAULT_PORT", "TcpTransport"]

DEFAULT_PORT = 4059  # IANA "DLMS/COSEM" port
_READ_SIZE = 4096


class TcpTransport(TransportBase):
    def __init__(self, host: str, port: int = DEFAULT_PORT, timeout: float = 10.0) -> None:
        self.host, self.port = host, port
        where = f"{host}:{port}"
        try:
            self._socket = socket.create_connection((host, port), timeout=timeout)
        except ConnectionRefusedError:
            raise TransportError(
                f"connection refused by {where}: is the meter/simulator listening?"
            ) from None
        except TimeoutError:
            raise TransportError(
                f"no TCP answer from {where} within {timeout:g} s: check host, port and firewall"
            ) from None
        except socket.gaierror as error:
            raise TransportError(f"cannot resolve host {host!r}: {error.strerror}") from None
        except OSError as error:
            raise TransportError(f"cannot connect to {where}: {error.strerror or error}") from None
        self._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._socket.settimeout(None)
        self._closed = False

    def write(self, data: bytes) -> None:
        try:
            self._socket.sendall(data)
        except OSError as error:
            raise TransportError(
                f"sending to {self.host}:{self.port} failed: {error.strerror or error}"
            ) from None

    def read(self, timeout: float) -> bytes:
        try:
            ready, _, _ = select.select([self._socket], [], [], max(timeout, 0.0))
            if not ready:
                return b""
            data = self._socket.recv(_READ_SIZE)
        except (OSError, ValueError) as error:
            if isinstance(error, OSError) and error.errno == errno.EINTR:  # pragma: no cover
                return b""
            raise TransportError(
                f"reading from {self.host}:{self.port} failed: {getattr(error, 'strerror', None) or error}"
            ) from None
        if not data:
            raise TransportError(f"{self.host}:{self.port} closed the connection")
        return data

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._socket.close()

    def __repr__(self) -> str:
        return f"TcpTransport({self.host!r}, {self.port})"
