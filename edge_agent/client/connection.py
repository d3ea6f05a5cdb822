"""How to reach a meter: the transport and link settings, and opening them."""

from __future__ import annotations

from dataclasses import dataclass

from edge_agent.client.link import (
    DEFAULT_PARAMETERS,
    HdlcLink,
    Link,
    Tap,
    WrapperLink,
    _no_tap,
    server_address,
)
from edge_agent.dlms.errors import ConfigError
from edge_agent.dlms.link.hdlc.frame import HdlcParameters
from edge_agent.transport.base import Transport

DEFAULT_TCP_PORT = 4059  # IANA "dlms-cosem"


@dataclass(frozen=True, slots=True)
class ConnectionSettings:
    """One way to reach one meter. Exactly one of ``tcp`` / ``serial`` is set."""

    tcp: tuple[str, int] | None = None
    serial: str | None = None
    baud: int = 9600
    parity: str = "N"
    bytesize: int = 8
    stopbits: float = 1
    optical: bool = False  # IEC 62056-21 mode E sign-on first (optical heads)
    rs485: bool = False
    hdlc: bool | None = None  # TCP: HDLC instead of the wrapper; serial: always HDLC
    client_sap: int = 16
    server_logical: int = 1
    server_physical: int | None = 16
    address_size: int = 4
    timeout: float = 5.0
    retries: int = 3
    hdlc_parameters: HdlcParameters | None = None  # proposed in SNRM; None: the largest

    def __post_init__(self) -> None:
        if (self.tcp is None) == (self.serial is None):
            raise ConfigError("give exactly one of --tcp HOST:PORT or --serial DEVICE")
        if not 0 <= self.client_sap <= 0x7F:
            raise ConfigError(f"client SAP must be 0..127, got {self.client_sap}")
        if self.address_size not in (1, 2, 4):
            raise ConfigError(f"HDLC server address size must be 1, 2 or 4 bytes, got {self.address_size}")
        if self.timeout <= 0:
            raise ConfigError("time-out must be positive")
        if self.tcp is not None and (self.optical or self.rs485):
            flag = "--optical (the IEC 62056-21 sign-on of an optical head)" if self.optical else "--rs485"
            raise ConfigError(f"{flag} is for a serial line (--serial DEVICE), not for --tcp: drop one of them")
        if self.hdlc_parameters is not None and not self.uses_hdlc:
            raise ConfigError("--hdlc-max-info and --hdlc-window set HDLC frames; over --tcp the meter "
                              "speaks the wrapper unless --hdlc is given: add --hdlc or drop them")

    @property
    def uses_hdlc(self) -> bool:
        return self.serial is not None or bool(self.hdlc)

    def describe(self) -> str:
        where = f"tcp://{self.tcp[0]}:{self.tcp[1]}" if self.tcp else f"{self.serial}@{self.baud}"
        link = "HDLC" if self.uses_hdlc else "wrapper"
        server = f"{self.server_logical}/{self.server_physical}" if self.uses_hdlc else str(self.server_logical)
        return f"{where} ({link}, client {self.client_sap} -> server {server})"


def parse_host_port(text: str, default_port: int = DEFAULT_TCP_PORT, *, listening: bool = False) -> tuple[str, int]:
    """``HOST:PORT`` (or ``HOST``, or ``[v6]:PORT``); a listener may ask for port 0 (any free one)."""
    if text.startswith("[") and text.endswith("]") or ":" not in text:
        host, port = text, str(default_port)
    else:
        host, _, port = text.rpartition(":")
    host = host.strip("[]")  # [::1]:4059
    try:
        number = int(port)
    except ValueError:
        raise ConfigError(f"bad TCP address {text!r}: expected HOST:PORT, e.g. 127.0.0.1:4059") from None
    if not host or not (0 if listening else 1) <= number < 65536:
        raise ConfigError(f"bad TCP address {text!r}: expected HOST:PORT, e.g. 127.0.0.1:4059")
    return host, number


def open_transport(settings: ConnectionSettings) -> Transport:
    if settings.tcp is not None:
        from edge_agent.transport.tcp import TcpTransport

        return TcpTransport(*settings.tcp, timeout=settings.timeout)
    from edge_agent.transport.serial import SerialTransport, optical_sign_on

    transport = SerialTransport(
        settings.serial, settings.baud, settings.parity, settings.bytesize, settings.stopbits,
        rs485=settings.rs485,
    )
    if settings.optical:
        try:
            optical_sign_on(transport, max_baud=settings.baud)
        except Exception:
            transport.close()
            raise
    return transport


def open_link(settings: ConnectionSettings, transport: Transport, tap: Tap = _no_tap) -> Link:
    if settings.uses_hdlc:
        return HdlcLink(
            transport,
            settings.client_sap,
            server_address(settings.server_logical, settings.server_physical, settings.address_size),
            timeout=settings.timeout,
            retries=settings.retries,
            parameters=DEFAULT_PARAMETERS if settings.hdlc_parameters is None else settings.hdlc_parameters,
            tap=tap,
        )
    return WrapperLink(transport, settings.client_sap, settings.server_logical, timeout=settings.timeout, tap=tap)
