"""The simulator's I/O: serve meters over TCP (wrapper or HDLC, told apart by the first
byte) and over a serial device or pty (HDLC, several meters on one bus).

Everything protocol-related lives in the sans-IO core; this module only moves bytes
between sockets/serial ports and one :class:`Responder` per association.
"""

from __future__ import annotations

import logging
import socket
import termios
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from edge_agent.dlms.errors import DlmsError, TransportError
from edge_agent.dlms.link.hdlc.connection import (
    Connected,
    DataReceived,
    Disconnected,
    HdlcConnection,
    Role,
)
from edge_agent.dlms.link.hdlc.frame import HdlcAddress, HdlcParameters
from edge_agent.dlms.link.wrapper import WrapperDecoder, WrapperFrame
from edge_agent.simulator.faults import NO_FAULTS, Emission, FaultInjector

log = logging.getLogger(__name__)

_HDLC_FLAG = 0x7E
_READ_SIZE = 4096
# What the simulated meter accepts in SNRM: 512-byte information fields, as many meters.
SERVER_PARAMETERS = HdlcParameters(max_info_transmit=512, max_info_receive=512)


class Responder(Protocol):
    """One association's server side: an APDU in, the answering APDU (or None) out."""

    def respond(self, apdu: bytes) -> bytes | None: ...


# client SAP -> a fresh responder (one per association: per HDLC connection or TCP stream)
ResponderFactory = Callable[[int], Responder]
Tap = Callable[[str, bytes], None]


def _no_tap(direction: str, frame: bytes) -> None:
    return None


@dataclass(frozen=True, slots=True)
class Station:
    """One simulated meter on a link: its HDLC address and what answers its clients."""

    logical: int
    physical: int
    factory: ResponderFactory


class _Association:
    """One association's answers: the responder, faults of the request and answer stages,
    and the previous answer (what the ``stale`` fault sends again)."""

    def __init__(self, responder: Responder, faults: FaultInjector) -> None:
        self.responder = responder
        self.faults = faults
        self.previous: bytes | None = None

    def answer(self, request: bytes) -> list[bytes]:
        refusal = self.faults.before_request(request) if self.faults else None
        if refusal is not None:
            return [refusal]
        answer = self.responder.respond(request)
        if answer is None:
            return []
        answers = self.faults.after_answer(request, answer, self.previous) if self.faults else [answer]
        self.previous = answer
        return answers


class _HdlcEndpoint:
    """The HDLC server state of one station on one byte stream."""

    def __init__(self, station: Station, parameters: HdlcParameters, faults: FaultInjector) -> None:
        self.station = station
        self.faults = faults
        self.connection = HdlcConnection(
            Role.SERVER, local=HdlcAddress.server(station.logical, station.physical), parameters=parameters
        )
        self.association: _Association | None = None

    def feed(self, data: bytes) -> list[bytes]:
        """The frames this station sends in reply to ``data``: none unless polled."""
        connection = self.connection
        out: list[bytes] = []
        try:
            connection.receive_data(data)
            out += connection.data_to_send()
            while (event := connection.next_event()) is not None:
                if isinstance(event, (Connected, Disconnected)):
                    self.association = None  # a new link is a new association
                elif isinstance(event, DataReceived) and connection.remote is not None:
                    if self.association is None:
                        self.association = _Association(
                            self.station.factory(connection.remote.upper), self.faults
                        )
                    for answer in self.association.answer(event.apdu):
                        out += connection.send_data(answer)
        except DlmsError as error:  # one bad frame or APDU must not stop the meter
            log.warning("station %d/%d: %s", self.station.logical, self.station.physical, error)
            out += connection.data_to_send()
        return out + connection.answer_poll()  # every poll gets its final answer


class _StreamClosed(Exception):
    """The ``close`` fault ended a connection."""


class HdlcBus:
    """Several stations on one HDLC byte stream (an RS-485 bus, a pty, a TCP connection):
    every station sees every byte and answers only what is addressed to it."""

    def __init__(self, stations: list[Station], parameters: HdlcParameters, faults: FaultInjector,
                 tap: Tap, write: Callable[[bytes], None], *, closable: bool) -> None:
        self.stations = stations
        self.parameters = parameters
        self.faults = faults
        self.tap = tap
        self.write = write
        self.closable = closable  # TCP: the close fault ends the connection; serial: resets
        self.endpoints = self._fresh_endpoints()

    def _fresh_endpoints(self) -> list[_HdlcEndpoint]:
        return [_HdlcEndpoint(station, self.parameters, self.faults) for station in self.stations]

    def serve(self, read: Callable[[], bytes | None], stop: threading.Event) -> None:
        while not stop.is_set():
            data = read()
            if data is None:
                return
            if not data:
                for endpoint in self.endpoints:  # silence: drop any half-received frame
                    endpoint.connection.on_timeout()
                continue
            self.tap("rx", data)
            for endpoint in self.endpoints:  # each ignores frames addressed to other stations
                frames = endpoint.feed(data)
                if frames and self.emit(self.faults.on_wire(frames, hdlc=True) if self.faults
                                        else Emission(frames, True), stop):
                    break  # the line was cut: the rest of these bytes is lost with it

    def emit(self, emission: Emission, stop: threading.Event) -> bool:
        """Write one answer; True when the ``close`` fault cut the line."""
        _emit(emission, self.write, self.tap, stop)
        if not emission.close:
            return False
        if self.closable:
            raise _StreamClosed
        log.info("fault close: link state of every station dropped")
        self.endpoints = self._fresh_endpoints()
        return True


def _emit(emission: Emission, write: Callable[[bytes], None], tap: Tap, stop: threading.Event) -> None:
    if emission.delay and stop.wait(emission.delay):
        return
    for chunk in emission.chunks:
        tap("tx", chunk)
        write(chunk)


def _serve_wrapper_stream(
    read: Callable[[], bytes | None], write: Callable[[bytes], None], station: Station, tap: Tap,
    stop: threading.Event, first: bytes, faults: FaultInjector,
) -> None:
    decoder = WrapperDecoder()
    associations: dict[int, _Association] = {}
    data: bytes | None = first
    while not stop.is_set():
        if data is None:
            return
        if data:
            tap("rx", data)
            for frame in decoder.feed(data):
                if frame.destination_wport != station.logical:
                    log.debug("wrapper frame for logical device %d ignored", frame.destination_wport)
                    continue
                client = frame.source_wport
                if client not in associations:
                    associations[client] = _Association(station.factory(client), faults)
                replies = [WrapperFrame(station.logical, client, answer).encode()
                           for answer in associations[client].answer(frame.apdu)]
                if not replies:
                    continue
                emission = faults.on_wire(replies, hdlc=False) if faults else Emission(replies, False)
                _emit(emission, write, tap, stop)
                if emission.close:
                    raise _StreamClosed
        data = read()


class MeterServer:
    """Serve one simulated meter (TCP) or several on one serial bus."""

    def __init__(
        self,
        stations: list[Station],
        *,
        parameters: HdlcParameters = SERVER_PARAMETERS,
        tap: Tap = _no_tap,
        idle_timeout: float = 120.0,
        faults: FaultInjector = NO_FAULTS,
    ) -> None:
        if not stations:
            raise ValueError("a meter server needs at least one station")
        self.stations = stations
        self.parameters = parameters
        self.tap = tap
        self.idle_timeout = idle_timeout
        self.faults = faults
        self.stop_event = threading.Event()
        # Set once serve_serial has its port open: pyserial flushes the input when it
        # opens a port, so bytes a client sends before that are lost.
        self.serial_open = threading.Event()
        self._listener: socket.socket | None = None
        self.buses: list[HdlcBus] = []  # every HDLC stream served so far (tests inspect them)

    def _bus(self, write: Callable[[bytes], None], *, closable: bool) -> HdlcBus:
        bus = HdlcBus(self.stations, self.parameters, self.faults, self.tap, write, closable=closable)
        self.buses.append(bus)
        return bus

    # --- TCP -------------------------------------------------------------------------------

    def bind_tcp(self, host: str, port: int) -> tuple[str, int]:
        """Listen on host:port (0 picks a free port); returns the bound address."""
        try:
            listener = socket.create_server((host, port), reuse_port=False)
        except OSError as error:
            raise TransportError(
                f"cannot listen on {host}:{port}: {error.strerror or error}"
                " (another simulator on that port? pick another, or 0 for any free port)"
            ) from None
        listener.settimeout(0.5)
        self._listener = listener
        return listener.getsockname()[:2]

    def serve_tcp_forever(self) -> None:
        assert self._listener is not None, "call bind_tcp first"
        while not self.stop_event.is_set():
            try:
                sock, peer = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            log.info("client connected from %s:%d", *peer[:2])
            threading.Thread(target=self._handle_tcp, args=(sock,), daemon=True).start()

    def start_tcp(self, host: str = "127.0.0.1", port: int = 0) -> tuple[str, int]:
        """Bind and serve in a background thread (tests, demo); returns the address."""
        address = self.bind_tcp(host, port)
        threading.Thread(target=self.serve_tcp_forever, name="simulator-tcp", daemon=True).start()
        return address

    def _handle_tcp(self, sock: socket.socket) -> None:
        sock.settimeout(self.idle_timeout)

        def read() -> bytes | None:
            try:
                data = sock.recv(_READ_SIZE)
            except (TimeoutError, OSError):
                return None
            return data or None

        def write(data: bytes) -> None:
            sock.sendall(data)

        try:
            first = read()
            if first is None:
                return
            if first[0] == _HDLC_FLAG:
                pending = [first]

                def read_first() -> bytes | None:
                    return pending.pop() if pending else read()

                self._bus(write, closable=True).serve(read_first, self.stop_event)
            else:
                _serve_wrapper_stream(
                    read, write, self.stations[0], self.tap, self.stop_event, first, self.faults
                )
        except _StreamClosed:
            log.info("fault close: connection closed mid-frame")
        except DlmsError as error:
            log.warning("connection closed: %s", error)
        except OSError as error:
            log.info("connection ended: %s", error)
        finally:
            sock.close()

    # --- serial / pty ----------------------------------------------------------------------

    def serve_serial(self, device: str, baud: int = 9600) -> None:
        """Serve HDLC on a serial device or pty path until :meth:`stop`."""
        import serial  # pyserial; only the serial path needs it

        try:
            port = serial.Serial(device, baudrate=baud, timeout=0.2)
        except (serial.SerialException, OSError) as error:
            raise TransportError(f"cannot open {device}: {error}") from None
        self.serial_open.set()

        def read() -> bytes:
            try:
                return port.read(port.in_waiting or 1)
            except (serial.SerialException, OSError, termios.error) as error:
                # The device went away (USB adapter unplugged): stop instead of spinning.
                raise TransportError(f"reading {device} failed: {error}") from None

        try:
            self._bus(port.write, closable=False).serve(read, self.stop_event)
        finally:
            port.close()

    def stop(self) -> None:
        self.stop_event.set()
        if self._listener is not None:
            self._listener.close()
