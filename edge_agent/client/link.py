"""Blocking APDU links: the sans-IO HDLC connection or the TCP wrapper driven over a transport.

A link moves whole APDUs. ``request`` sends one and returns the answer; ``receive``
waits for an unsolicited one (pushes). Both links call ``tap(direction, frame)`` for
every frame on the wire, which is how ``--verbose`` and ``--capture`` see the bytes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Protocol

from edge_agent.client.lenient import apdu_end
from edge_agent.dlms.errors import DlmsError, NoResponseError, ProtocolError, TransportError
from edge_agent.dlms.link.hdlc.connection import (
    Connected,
    DataReceived,
    Disconnected,
    HdlcConnection,
    Rejected,
    Role,
    State,
)
from edge_agent.dlms.link.hdlc.frame import HdlcAddress, HdlcParameters
from edge_agent.dlms.link.wrapper import WrapperDecoder, WrapperFrame, hdlc_instead

log = logging.getLogger(__name__)

Tap = Callable[[str, bytes], None]
# What the client proposes in SNRM: the largest the standard allows (2030-byte information
# fields, window 7); the meter's UA grants what it can, and the link uses that. On a slow
# line every frame the meter grants room for saves a segment header, and a window saves the
# RR round trip (and the meter's turnaround) between segments.
DEFAULT_PARAMETERS = HdlcParameters.largest()


def _no_tap(direction: str, frame: bytes) -> None:
    return None


class Transport(Protocol):
    def write(self, data: bytes) -> None: ...
    def read(self, timeout: float) -> bytes: ...
    def close(self) -> None: ...


class Link(Protocol):
    def open(self) -> None: ...
    def request(self, apdu: bytes) -> bytes: ...
    def next_answer(self, timeout: float) -> bytes | None: ...
    def receive(self, timeout: float) -> bytes | None: ...
    def close(self) -> None: ...


def server_address(logical: int, physical: int | None, size: int = 4) -> HdlcAddress:
    """The HDLC server address (IEC 62056-46 6.4.2.2) in ``size`` bytes.

    Four bytes is the default: every meter accepts it and the T-210D requires it. Without a
    physical address the one-byte form is used.
    """
    if physical is None or size == 1:
        return HdlcAddress(logical)
    return HdlcAddress.server(logical, physical, length=size)


class HdlcLink:
    """HDLC (IEC 62056-46) over a serial line or TCP (serial-to-Ethernet converters)."""

    def __init__(
        self,
        transport: Transport,
        client_sap: int,
        server: HdlcAddress,
        *,
        timeout: float = 3.0,
        retries: int = 3,
        parameters: HdlcParameters = DEFAULT_PARAMETERS,
        tap: Tap = _no_tap,
    ) -> None:
        self.transport = transport
        self.timeout = timeout
        self.tap = tap
        self.connection = HdlcConnection(
            Role.CLIENT,
            local=HdlcAddress.client(client_sap),
            remote=server,
            parameters=parameters,
            max_retries=retries,
        )
        self._received: list[bytes] = []

    def _write(self, frames: list[bytes]) -> None:
        for frame in frames:
            self.tap("tx", frame)
            self.transport.write(frame)

    def _pump(self, until: type) -> object:
        """Drive the connection until an event of type ``until`` arrives."""
        while True:
            event = self.connection.next_event()
            while event is not None:
                if isinstance(event, until):
                    return event
                if isinstance(event, DataReceived):
                    self._received.append(event.apdu)  # push between request and answer
                elif isinstance(event, Disconnected):
                    raise TransportError(f"HDLC link lost: {event.reason}")
                elif isinstance(event, Rejected):
                    raise ProtocolError(
                        f"HDLC frame rejected (FRMR): {event.reason} in control {event.control:#04x}"
                    )
                event = self.connection.next_event()
            data = self.transport.read(self.timeout)
            if not data:
                self._write(self.connection.on_timeout())  # NoResponseError when exhausted
                continue
            self.tap("rx", data)
            self.connection.receive_data(data)
            self._write(self.connection.data_to_send())

    def open(self) -> None:
        self._write([self.connection.send_connect()])
        connected = self._pump(Connected)
        log.debug("HDLC connected: %s", connected.parameters)

    def request(self, apdu: bytes) -> bytes:
        self._write(self.connection.send_data(apdu))
        while True:
            event = self._pump(DataReceived)
            if not event.unnumbered:
                return event.apdu
            self._received.append(event.apdu)

    def next_answer(self, timeout: float) -> bytes | None:
        """Another answer to the request in flight (the one before was not its answer),
        or None when none comes within ``timeout``; pushes meanwhile are kept. The meter
        speaks only when polled: unless the answer came in the same burst, RR asks for it."""
        while (event := self.connection.next_event()) is not None:
            if isinstance(event, DataReceived) and not event.unnumbered:
                return event.apdu
            if isinstance(event, DataReceived):
                self._received.append(event.apdu)
        self._write([self.connection.poll()])
        return self._wait(timeout, answers_only=True)

    def receive(self, timeout: float) -> bytes | None:
        if self._received:
            return self._received.pop(0)
        return self._wait(timeout, answers_only=False)

    def _wait(self, timeout: float, *, answers_only: bool) -> bytes | None:
        deadline = time.monotonic() + timeout
        while True:
            while (event := self.connection.next_event()) is not None:
                if isinstance(event, DataReceived):
                    if not (answers_only and event.unnumbered):
                        return event.apdu
                    self._received.append(event.apdu)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            data = self.transport.read(min(self.timeout, max(remaining, 0.01)))
            if data:
                self.tap("rx", data)
                self.connection.receive_data(data)
                self._write(self.connection.data_to_send())

    def close(self) -> None:
        if self.connection.state is State.DISCONNECTED:
            return  # DM, FRMR or an impossible N(R) ended the link: no DISC to wait for
        try:
            self._write([self.connection.send_disconnect()])
            self._pump(Disconnected)
        except (NoResponseError, TransportError, ProtocolError) as error:
            log.debug("HDLC disconnect not confirmed: %s", error)


class WrapperLink:
    """The IEC 62056-47 wrapper over TCP: wPort = client SAP and server logical device.

    Answers come from the server's wPort to ours; a frame between other ports is logged
    with its bytes and refused (Green Book 7.3.3.3). Bytes before a header of ours that
    are no wrapper frame (line noise) are skipped with a warning that shows them. A header whose length covers more than
    the APDU that came is accepted, with a warning, once the line stays quiet and the bytes
    that came hold a complete APDU: some meters count bytes they never send.
    """

    QUIET = 0.2  # seconds without bytes after which a frame still incomplete is judged

    def __init__(
        self,
        transport: Transport,
        client_sap: int,
        server_logical: int,
        *,
        timeout: float = 5.0,
        tap: Tap = _no_tap,
    ) -> None:
        self.transport = transport
        self.client_wport = client_sap
        self.server_wport = server_logical
        self.timeout = timeout
        self.tap = tap
        self._decoder = WrapperDecoder(expects=(server_logical, client_sap))
        self._frames: list[WrapperFrame] = []
        self._refused: WrapperFrame | None = None  # the last frame between other ports
        self._spoke_wrapper = False  # a wrapper frame came: later noise is only noise

    def open(self) -> None:
        return None  # the TCP connection is the link

    def _ours(self, frame: WrapperFrame) -> bool:
        if (frame.source_wport, frame.destination_wport) == (self.server_wport, self.client_wport):
            return True
        self._refused = frame
        log.warning(
            "refused a wrapper frame from port %d to port %d: this client is port %d and asked"
            " port %d; frame %s", frame.source_wport, frame.destination_wport, self.client_wport,
            self.server_wport, frame.encode().hex(),
        )
        return False

    def _short_frame(self) -> WrapperFrame | None:
        """The frame held back, if the bytes that came hold a complete APDU (see the class)."""
        held = self._decoder.partial()
        if held is None or apdu_end(held[0].apdu) != len(held[0].apdu):
            return None
        frame, announced = held
        self._decoder.clear()
        log.warning(
            "wrapper header announces %d APDU bytes, the meter sent %d that hold a complete APDU:"
            " accepted (a known meter bug); frame %s", announced, len(frame.apdu),
            frame.encode()[:6].hex() + announced.to_bytes(2, "big").hex() + frame.apdu.hex(),
        )
        return frame

    def _next_frame(self, timeout: float, *, ours_only: bool) -> WrapperFrame | None:
        deadline = time.monotonic() + timeout
        while True:
            while self._frames:
                frame = self._frames.pop(0)
                if not ours_only or self._ours(frame):
                    return frame
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            held = self._decoder.pending > 0
            data = self.transport.read(min(remaining, self.QUIET) if held else remaining)
            if data:
                self.tap("rx", data)
                self._frames.extend(self._decoder.feed(data))
                skipped = self._decoder.skipped
                if not self._spoke_wrapper and (error := hdlc_instead(skipped)) is not None:
                    raise error
                self._spoke_wrapper = self._spoke_wrapper or bool(self._frames)
                if skipped:
                    log.warning("skipped %d byte(s) that are no wrapper frame from port %d (line"
                                " noise): %s", len(self._decoder.skipped), self.server_wport,
                                self._decoder.skipped.hex())
            elif held and (frame := self._short_frame()) is not None:
                self._frames.append(frame)

    def request(self, apdu: bytes) -> bytes:
        frame = WrapperFrame(self.client_wport, self.server_wport, apdu).encode()
        self.tap("tx", frame)
        self.transport.write(frame)
        self._refused = None
        answer = self._next_frame(self.timeout, ours_only=True)
        if answer is None:
            raise self._silence()
        return answer.apdu

    def _silence(self) -> DlmsError:
        refused = self._refused
        if refused is not None:
            return ProtocolError(
                f"only answers from wrapper port {refused.source_wport} to port"
                f" {refused.destination_wport} came within {self.timeout:g} s; this client is"
                f" port {self.client_wport} and asked port {self.server_wport}: refused (check"
                " --client and --logical; the meter answers from a port it was not asked on)"
            )
        return NoResponseError(
            f"no answer within {self.timeout:g} s from wrapper port {self.server_wport}"
            f" (client port {self.client_wport}): check --client/--logical, or the meter"
            " speaks HDLC over TCP (then add --hdlc)"
        )

    def next_answer(self, timeout: float) -> bytes | None:
        frame = self._next_frame(timeout, ours_only=True)
        return None if frame is None else frame.apdu

    def receive(self, timeout: float) -> bytes | None:
        frame = self._next_frame(timeout, ours_only=False)
        return None if frame is None else frame.apdu

    def close(self) -> None:
        return None
