"""The byte transport every meter link uses: write bytes, read what came, close.

Implementations: :class:`~edge_agent.transport.tcp.TcpTransport`,
:class:`~edge_agent.transport.serial.SerialTransport`. The sans-IO core never sees them;
the blocking client and the simulator drive a core connection over one of these.
"""

from __future__ import annotations

from types import TracebackType
from typing import Protocol, Self, runtime_checkable

__all__ = ["Transport", "TransportBase"]


@runtime_checkable
class Transport(Protocol):
    def write(self, data: bytes) -> None:
        """Send all of ``data``; TransportError if the line is gone."""

    def read(self, timeout: float) -> bytes:
        """What arrived within ``timeout`` seconds (at least one byte), or b"" on time-out.

        TransportError when the peer closed the connection or the device vanished.
        """

    def close(self) -> None: ...

    def set_baud(self, baud: int) -> None:
        """Change the line speed (serial; a no-op on TCP)."""

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc_info: object) -> None: ...


class TransportBase:
    """Context-manager plumbing shared by the implementations."""

    def close(self) -> None:  # pragma: no cover - overridden
        raise TypeError(f"{type(self).__name__} must implement close()")

    def set_baud(self, baud: int) -> None:
        """Transports without a line speed ignore it."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
