"""The serial port of an RS-485 bus, shared by the HDLC links of the meters on it."""

from __future__ import annotations

import logging

from edge_agent.agent.config_model import SerialSettings
from edge_agent.dlms.errors import TransportError
from edge_agent.transport.base import Transport, TransportBase

log = logging.getLogger(__name__)


class SharedLine(TransportBase):
    """The serial port of an RS-485 bus, shared by its meters' HDLC links.

    Opened on first use and reopened after it failed (adapter unplugged and back). Each
    meter's MeterClient gets it as ``transport=`` and so never closes it; ``close()`` does
    nothing either, so that no user can close the line under the others. :meth:`shutdown`
    closes the port. The lane guarantees one user at a time.
    """

    def __init__(self, bus_id: str, serial: SerialSettings) -> None:
        self.bus_id = bus_id
        self.serial = serial
        self._port: Transport | None = None

    def _get(self) -> Transport:
        if self._port is None:
            from edge_agent.transport.serial import SerialTransport as SerialPort

            s = self.serial
            self._port = SerialPort(s.device, s.baud, s.parity, s.bytesize, s.stopbits,
                                    rs485=s.rs485)
            log.info("bus %s: opened %s at %d baud", self.bus_id, s.device, s.baud)
        return self._port

    def write(self, data: bytes) -> None:
        try:
            self._get().write(data)
        except TransportError:
            self.shutdown()
            raise

    def read(self, timeout: float) -> bytes:
        try:
            return self._get().read(timeout)
        except TransportError:
            self.shutdown()
            raise

    def close(self) -> None:
        """A meter is done with the line; the line stays open for the others."""

    def shutdown(self) -> None:
        port, self._port = self._port, None
        if port is not None:
            port.close()
