"""Receive what meters push and hand it on as readings: one thread per push meter.

A :class:`PushListener` owns one line: a serial port (the T-210D M-Bus customer interface
at 2400 8E1, a P1 port at 115200 8N1, an HDLC line), a TCP port meters connect to (Push
setup destination, IEC 62056-47 wrapper or HDLC), or a TCP connection to a serial-to-
Ethernet converter. Bytes go to the sans-IO :class:`~edge_agent.dlms.push.decoder.PushDecoder`;
what comes out goes to two callbacks:

* ``on_readings(meter_id, readings)`` for every telegram that deciphered and decoded;
* ``on_problem(meter_id, code, message)`` with the health codes of the MQTT contract:
  ``wrong_key`` and ``counter_out_of_step`` at once, ``bad_data`` after three telegrams in
  a row that do not decode (the decoder's ``decode_error``; one garbled frame on a long
  cable is normal), ``unreachable`` when
  the line cannot be opened, ``push_stopped`` when nothing arrived for three times the
  expected interval.

The last accepted invocation counter of each sender is the replay guard (Green Book
9.2.7.2.3). With ``state_dir`` it is kept in the state dir
(:class:`~edge_agent.state.receive_counters.PersistentReceiveGuard`), loaded when the
listener is made and written at most every ``counter_flush_interval`` seconds and when
:meth:`PushListener.run` ends, so a telegram recorded before a restart stays a replay.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import selectors
import socket
import termios
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Final, Protocol

from edge_agent.agent.config_model import MeterConfig, SerialSettings
from edge_agent.client.values import Reading, plain, usual_class
from edge_agent.dlms.errors import ConfigError, TransportError
from edge_agent.dlms.push.body import PushObject, parse_object_list
from edge_agent.dlms.push.decoder import PushDecoder, PushEvent, PushMessage, PushRejected
from edge_agent.dlms.secret import Secret
from edge_agent.dlms.security import ReceiveCounterGuard
from edge_agent.state.receive_counters import DEFAULT_FLUSH_INTERVAL, PersistentReceiveGuard

__all__ = [
    "DEFAULT_INTERVALS",
    "PushListener",
    "PushSpec",
    "SerialSource",
    "TcpClientSource",
    "TcpServerSource",
    "readings_of",
]

log = logging.getLogger(__name__)

ReadingsCallback = Callable[[str, list[Reading]], None]
ProblemCallback = Callable[[str, str, str], None]
Tap = Callable[[str, bytes], None]

# Seconds between pushes when the configuration does not say: the Austrian customer
# interface pushes every 5 s, DSMR 4 every 10 s (DSMR 5: 1 s), IDIS push setups as set up
# (often 15 min; a minute is a cautious default for push_stopped).
DEFAULT_INTERVALS: Final = {"mbus": 5.0, "dsmr": 10.0, "hdlc": 60.0, "wrapper": 60.0}
STOPPED_AFTER_INTERVALS: Final = 3
DECODE_ERRORS_BEFORE_PROBLEM: Final = 3
_IMMEDIATE_CODES: Final = frozenset({"wrong_key", "counter_out_of_step"})
# The decoder's rejection codes whose name in the health contract differs.
_HEALTH_CODE_OF_REJECTION: Final = {"decode_error": "bad_data"}
_POLL: Final = 0.2  # seconds: how quickly stop() and the watchdog are noticed
_READ_SIZE: Final = 4096
_RETRY_FIRST, _RETRY_MAX = 1.0, 30.0
_UNKNOWN_METER: Final = "unknown"


# --- where the bytes come from ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SerialSource:
    device: str
    baud: int
    parity: str = "N"
    bytesize: int = 8
    stopbits: float = 1

    def describe(self) -> str:
        return f"{self.device} {self.baud} {self.bytesize}{self.parity}{self.stopbits:g}"


@dataclass(frozen=True, slots=True)
class TcpClientSource:
    """A TCP stream to connect to (serial-to-Ethernet converter, ser2net)."""

    host: str
    port: int

    def describe(self) -> str:
        return f"tcp://{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class TcpServerSource:
    """A TCP port meters connect to (Push setup destination); port 0 picks a free one."""

    bind: str
    port: int

    def describe(self) -> str:
        return f"listening on {self.bind}:{self.port}"


Source = SerialSource | TcpClientSource | TcpServerSource


class _Line(Protocol):
    def poll(self, timeout: float) -> list[tuple[object, bytes]]:
        """(channel, bytes) received within ``timeout``; b"" means that channel closed."""

    def close(self) -> None: ...


class _StreamLine:
    """One serial port or TCP client connection: a single channel."""

    def __init__(self, source: SerialSource | TcpClientSource) -> None:
        self._source = source
        with self._line_errors():
            if isinstance(source, SerialSource):
                from edge_agent.transport.serial import SerialTransport

                self._transport = SerialTransport(source.device, source.baud, source.parity,
                                                  source.bytesize, source.stopbits)
            else:
                from edge_agent.transport.tcp import TcpTransport

                self._transport = TcpTransport(source.host, source.port, timeout=5.0)

    @contextlib.contextmanager
    def _line_errors(self) -> Iterator[None]:
        # pyserial lets termios.error through (not an OSError) when the driver refuses a
        # setting, e.g. parity on a pseudo-terminal.
        try:
            yield
        except termios.error as error:
            raise TransportError(f"{self._source.describe()}: the driver refused the line "
                                 f"settings ({error.args[-1]}): try another parity or "
                                 "speed, or another adapter") from None

    def poll(self, timeout: float) -> list[tuple[object, bytes]]:
        with self._line_errors():
            data = self._transport.read(timeout)
        return [(0, data)] if data else []

    def close(self) -> None:
        self._transport.close()


class _ServerLine:
    """A listening socket and the meters connected to it, one channel per connection."""

    def __init__(self, source: TcpServerSource) -> None:
        self._selector = selectors.DefaultSelector()
        try:
            self._server = socket.create_server((source.bind, source.port), reuse_port=False)
        except OSError as error:
            raise TransportError(f"cannot listen on {source.bind}:{source.port}: "
                                 f"{error.strerror or error} (port in use, or below 1024 "
                                 "without privileges?)") from None
        self._server.setblocking(False)
        self.address: tuple[str, int] = self._server.getsockname()[:2]
        self._selector.register(self._server, selectors.EVENT_READ)

    def poll(self, timeout: float) -> list[tuple[object, bytes]]:
        received: list[tuple[object, bytes]] = []
        for key, _ in self._selector.select(timeout):
            sock = key.fileobj
            if sock is self._server:
                connection, peer = self._server.accept()
                connection.setblocking(False)
                self._selector.register(connection, selectors.EVENT_READ)
                log.info("push connection from %s:%d", *peer[:2])
                continue
            try:
                data = sock.recv(_READ_SIZE)  # type: ignore[union-attr]
            except OSError:
                data = b""
            if not data:
                self._selector.unregister(sock)
                sock.close()  # type: ignore[union-attr]
            received.append((sock, data))
        return received

    def close(self) -> None:
        for key in list(self._selector.get_map().values()):
            key.fileobj.close()  # type: ignore[union-attr]
        self._selector.close()


def _open_line(source: Source) -> _Line:
    return _ServerLine(source) if isinstance(source, TcpServerSource) else _StreamLine(source)


# --- what to listen for ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PushSpec:
    """Everything a listener needs; :meth:`from_meter` builds it from the configuration."""

    meter_id: str | None
    format: str
    source: Source
    ek: Secret | None = None
    ak: Secret | None = None
    system_title: bytes | None = None  # the meter's, for glo- APDUs without one
    objects: tuple[PushObject, ...] | None = None
    interval: float | None = None  # expected seconds between pushes

    @property
    def expected_interval(self) -> float:
        return self.interval or DEFAULT_INTERVALS[self.format]

    @classmethod
    def from_meter(cls, meter: MeterConfig) -> PushSpec:
        push = meter.push
        if push is None:
            raise ConfigError(f"{meter.label}: no push section: nothing to listen to")
        if push.serial is not None:
            source: Source = _serial_source(push.serial)
        elif push.port is not None:
            source = TcpServerSource(push.bind, push.port)
        else:
            raise ConfigError(f"{meter.label}.push: give port: N or serial: {{device: ...}}")
        security = meter.security
        return cls(meter.id, push.format, source,
                   security.ek.resolve() if security.ek else None,
                   security.ak.resolve() if security.ak else None,
                   push.system_title,
                   parse_object_list(push.objects) if push.objects else None,
                   push.interval)


def _serial_source(serial: SerialSettings) -> SerialSource:
    return SerialSource(serial.device, serial.baud, serial.parity, serial.bytesize,
                        serial.stopbits)


def readings_of(message: PushMessage, received: dt.datetime) -> list[Reading]:
    """Readings of a push, time-stamped by the meter when its time is absolute (aware)."""
    stamp = message.timestamp
    when = stamp if stamp is not None and stamp.tzinfo is not None else received
    return [Reading(item.obis, item.class_id or usual_class(item.obis), plain(item.value),
                    item.unit, when, plain(item.raw), item.scaler) for item in message.items]


# --- the listener --------------------------------------------------------------------------------


def _no_tap(direction: str, frame: bytes) -> None:
    return None


class PushListener:
    """Listens on one line in a thread (``start``/``stop``) or in the caller's (``run``).

    ``state_dir``: keep the receive counters there (see the module docstring); None keeps
    them in memory only, and a restart forgets them.
    """

    def __init__(self, meter: MeterConfig | PushSpec, on_readings: ReadingsCallback,
                 on_problem: ProblemCallback, *, tap: Tap = _no_tap,
                 clock: Callable[[], float] = time.monotonic,
                 state_dir: str | os.PathLike[str] | None = None,
                 counter_flush_interval: float = DEFAULT_FLUSH_INTERVAL) -> None:
        self.spec = meter if isinstance(meter, PushSpec) else PushSpec.from_meter(meter)
        self.on_readings, self.on_problem, self.tap = on_readings, on_problem, tap
        self._clock = clock
        # One guard per meter, kept across reconnections (and restarts, with a state dir).
        self._stored_counters = None if state_dir is None else PersistentReceiveGuard(
            state_dir, self.spec.meter_id or _UNKNOWN_METER,
            flush_interval=counter_flush_interval, clock=clock)
        self.guard: ReceiveCounterGuard | PersistentReceiveGuard = (
            self._stored_counters or ReceiveCounterGuard())
        self._stop = threading.Event()
        self.ready = threading.Event()  # set once the line is open
        self.address: tuple[str, int] | None = None  # the bound address of a TCP server
        self._thread: threading.Thread | None = None
        self._decoders: dict[object, PushDecoder] = {}
        self._last_push = clock()
        self._stopped_reported = False
        self._bad_in_a_row = 0
        self.received = 0  # telegrams that gave readings
        self._seen_meter_id: str | None = None  # the id the pushes carry, when none is set

    @property
    def meter_id(self) -> str:
        return self.spec.meter_id or self._seen_meter_id or _UNKNOWN_METER

    @property
    def named(self) -> bool:
        """Whether the meter has an id yet: from the config, or from its pushes."""
        return (self.spec.meter_id or self._seen_meter_id) is not None

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> PushListener:
        self._thread = threading.Thread(target=self.run, name=f"push-{self.meter_id}",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 2.0) -> bool:
        """Ask the thread to end; True when it did within ``timeout``."""
        self._stop.set()
        if self._thread is None or self._thread is threading.current_thread():
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def run(self, retry: bool = True) -> None:
        """Listen until :meth:`stop`. ``retry`` False: a line that fails raises TransportError."""
        try:
            self._listen(retry)
        finally:
            if self._stored_counters is not None:
                self._stored_counters.close()

    def _listen(self, retry: bool) -> None:
        delay = _RETRY_FIRST
        while not self._stop.is_set():
            try:
                line = _open_line(self.spec.source)
            except TransportError as error:
                if not retry:
                    raise
                self._problem("unreachable", f"{error}; retrying in {delay:g} s")
                self._stop.wait(delay)
                delay = min(delay * 2, _RETRY_MAX)
                continue
            delay = _RETRY_FIRST
            self.address = getattr(line, "address", None)
            self._last_push = self._clock()
            self.ready.set()
            log.info("push listener %s: %s, format %s", self.meter_id,
                     self.spec.source.describe(), self.spec.format)
            try:
                self._serve(line)
            except TransportError as error:
                if not retry:
                    raise
                self._problem("unreachable", str(error))
            finally:
                line.close()
                self._decoders.clear()

    def _serve(self, line: _Line) -> None:
        while not self._stop.is_set():
            for channel, data in line.poll(_POLL):
                if not data:
                    self._decoders.pop(channel, None)
                    continue
                for event in self._decoder(channel).feed(data):
                    self._handle(event)
            self._watchdog()
            if self._stored_counters is not None:
                self._stored_counters.maybe_flush()

    def _decoder(self, channel: object) -> PushDecoder:
        decoder = self._decoders.get(channel)
        if decoder is None:
            spec = self.spec
            decoder = self._decoders[channel] = PushDecoder(
                spec.format, spec.ek, spec.ak, spec.system_title, spec.meter_id,
                objects=spec.objects, guard=self.guard)
        return decoder

    # --- events ---------------------------------------------------------------------------

    def _handle(self, event: PushEvent) -> None:
        if event.wire:
            self.tap("rx", event.wire)
        if isinstance(event, PushRejected):
            self._rejected(event)
            return
        self._last_push = self._clock()
        self._stopped_reported = False
        self._bad_in_a_row = 0
        self.received += 1
        readings = readings_of(event, dt.datetime.now(dt.UTC))
        self._seen_meter_id = event.meter_id or self._seen_meter_id
        meter_id = self.meter_id
        try:
            self.on_readings(meter_id, readings)
        except Exception:  # a consumer's bug must not end the listener
            log.exception("push listener %s: on_readings failed", meter_id)

    def _rejected(self, event: PushRejected) -> None:
        self._bad_in_a_row += 1
        message = event.message
        if event.code == "counter_out_of_step" and self._stored_counters is not None:
            message += f" (the counters are stored in {self._stored_counters.path})"
        log.warning("push listener %s: telegram rejected (%s): %s", self.meter_id, event.code,
                    message)
        if event.code in _IMMEDIATE_CODES or self._bad_in_a_row >= DECODE_ERRORS_BEFORE_PROBLEM:
            self._problem(_HEALTH_CODE_OF_REJECTION.get(event.code, event.code), message)

    def _watchdog(self) -> None:
        interval = self.spec.expected_interval
        silent = self._clock() - self._last_push
        if silent > STOPPED_AFTER_INTERVALS * interval and not self._stopped_reported:
            self._stopped_reported = True
            self._problem("push_stopped", (
                f"no push received for {silent:.0f} s (expected every {interval:g} s on "
                f"{self.spec.source.describe()}): check the cable, that the meter's customer "
                "interface is enabled (the grid operator does it), and the line settings"))

    def _problem(self, code: str, message: str) -> None:
        log.warning("push listener %s: %s: %s", self.meter_id, code, message)
        try:
            self.on_problem(self.meter_id, code, message)
        except Exception:
            log.exception("push listener %s: on_problem failed", self.meter_id)

    def __repr__(self) -> str:
        return f"<PushListener {self.meter_id} {self.spec.format} {self.spec.source.describe()}>"
