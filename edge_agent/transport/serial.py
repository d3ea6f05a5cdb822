"""Serial transport over pyserial: optical heads (IEC 62056-21 mode E) and RS-485 buses.

RS-485 direction control uses the kernel's RS-485 mode when the driver offers it
(``TIOCSRS485``: most Raspberry Pi HATs on ttyAMA/ttySC) and otherwise pyserial's
software RTS toggling (``serial.rs485.RS485``), which works on any adapter with RTS but
with millisecond jitter; ``rs485_delay_before_tx``/``rx`` add guard times (seconds).
"""

from __future__ import annotations

import errno
import termios
import time

import serial
import serial.rs485

from edge_agent.dlms.errors import NoResponseError, TransportError
from edge_agent.dlms.link.iec62056_21 import SIGN_ON_BAUD, Identification, SignOn
from edge_agent.transport.base import TransportBase

__all__ = ["SerialTransport", "optical_sign_on"]

_PARITIES = {"N": serial.PARITY_NONE, "E": serial.PARITY_EVEN, "O": serial.PARITY_ODD}
_STOPBITS = {1: serial.STOPBITS_ONE, 1.5: serial.STOPBITS_ONE_POINT_FIVE, 2: serial.STOPBITS_TWO}


class SerialTransport(TransportBase):
    def __init__(
        self,
        device: str,
        baud: int = 9600,
        parity: str = "N",
        bytesize: int = 8,
        stopbits: float = 1,
        rs485: bool = False,
        rs485_delay_before_tx: float | None = None,
        rs485_delay_before_rx: float | None = None,
    ) -> None:
        if parity not in _PARITIES:
            raise TransportError(f"parity must be one of N, E, O, got {parity!r}")
        if stopbits not in _STOPBITS:
            raise TransportError(f"stop bits must be 1, 1.5 or 2, got {stopbits}")
        self.device = device
        options = {
            "baudrate": baud,
            "parity": _PARITIES[parity],
            "bytesize": bytesize,
            "stopbits": _STOPBITS[stopbits],
            "timeout": 0,
            "exclusive": True,  # two agents on one port garble each other's frames
        }
        settings = (
            serial.rs485.RS485Settings(
                delay_before_tx=rs485_delay_before_tx, delay_before_rx=rs485_delay_before_rx
            )
            if rs485
            else None
        )
        self._port = self._open(serial.Serial, options)
        # "kernel", "software" (RTS toggled by pyserial around each write) or None.
        self.rs485_driver: str | None = None
        if settings is not None:
            try:
                self._port.rs485_mode = settings
                self.rs485_driver = "kernel"
            except (ValueError, OSError):
                self._port.close()
                self._port = self._open(serial.rs485.RS485, options)
                self._port.rs485_mode = settings
                self.rs485_driver = "software"

    def _open(self, kind: type[serial.Serial], options: dict) -> serial.Serial:
        try:
            return kind(self.device, **options)
        except (serial.SerialException, OSError, ValueError, termios.error) as error:
            raise TransportError(_explain_open_error(self.device, error)) from None

    def configure(self, baud: int, parity: str = "N", bytesize: int = 8) -> None:
        """Change speed and character format (mode E goes from 300 7E1 to 8N1)."""
        try:
            self._port.baudrate = baud
            self._port.parity = _PARITIES[parity]
            self._port.bytesize = bytesize
        except (serial.SerialException, termios.error, ValueError, KeyError) as error:
            raise TransportError(
                f"cannot set {self.device} to {baud} baud {bytesize}{parity}1: {error}"
                " (does the adapter support this speed and character format?)"
            ) from None

    def set_baud(self, baud: int) -> None:
        self.configure(baud, _parity_letter(self._port.parity), self._port.bytesize)

    def write(self, data: bytes) -> None:
        try:
            self._port.write(data)
            self._port.flush()  # return once the bytes left: half-duplex lines turn around
        except (serial.SerialException, OSError, termios.error) as error:
            raise TransportError(f"writing to {self.device} failed: {error}") from None

    def read(self, timeout: float) -> bytes:
        try:
            self._port.timeout = max(timeout, 0.0)
            first = self._port.read(1)
            if not first:
                return b""
            waiting = self._port.in_waiting
            return first + (self._port.read(waiting) if waiting else b"")
        except (serial.SerialException, OSError, termios.error) as error:
            raise TransportError(
                f"reading from {self.device} failed: {error} (adapter unplugged?)"
            ) from None

    def close(self) -> None:
        self._port.close()

    def __repr__(self) -> str:
        return f"SerialTransport({self.device!r}, {self._port.baudrate})"


def _parity_letter(parity: str) -> str:
    return next(letter for letter, value in _PARITIES.items() if value == parity)


def _explain_open_error(device: str, error: Exception) -> str:
    code = getattr(error, "errno", None)
    if code == errno.ENOENT:
        return (
            f"serial device {device} not found: check the cable/adapter and prefer the stable"
            " name under /dev/serial/by-id/"
        )
    if code == errno.EACCES:
        return (
            f"permission denied on {device}: add your user to the dialout group"
            " (sudo usermod -aG dialout $USER, then log in again)"
        )
    if code == errno.EBUSY or "exclusive" in str(error).lower() or "lock" in str(error).lower():
        return (
            f"{device} is in use by another program (another dlms-edge, ModemManager, a terminal)"
        )
    return f"cannot open {device}: {error}"


def optical_sign_on(
    transport: SerialTransport,
    device_address: str = "",
    max_baud: int = 19200,
    timeout: float = 2.0,
    settle: float = 0.3,
) -> Identification:
    """IEC 62056-21 mode E: sign on at 300 7E1, select HDLC, switch to the agreed baud 8N1.

    ``settle`` is the pause after the acknowledgement before switching speed: the meter
    changes its baud only after it has received the whole message (clause 6.4.5.4).
    """
    sign_on = SignOn(device_address, max_baud)
    transport.configure(SIGN_ON_BAUD, "E", 7)
    transport.write(sign_on.request())
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        data = transport.read(left)
        if data and (result := sign_on.receive_data(data)) is not None:
            transport.write(result.acknowledgement)
            time.sleep(settle)
            transport.configure(result.baud, "N", 8)
            return result.identification
    raise NoResponseError(
        f"no IEC 62056-21 identification from the optical head on {transport.device} within"
        f" {timeout:g} s: check that the head sits on the meter's optical port, its cable, and"
        " that the meter's optical interface is enabled"
    )
