"""gurux-dlms as a test-only peer (GPL; nothing in edge_agent imports it): the import that
fails under CI, its client carried over a socket or a pty to our simulator, the simulated
meter on each link of the matrix, and our own client's settings for each security.
"""

from __future__ import annotations

import datetime as dt
import importlib
import os
import select
import socket
import threading
import tty
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from edge_agent.client.client import MeterClient
from edge_agent.client.connection import ConnectionSettings
from edge_agent.dlms.association.client import ClientSettings
from edge_agent.dlms.cosem.obis import Obis
from edge_agent.dlms.secret import Secret
from edge_agent.simulator.meter import (
    EXAMPLE_AK,
    EXAMPLE_EK,
    SimulatedMeterStation,
    SimulatorOptions,
)
from edge_agent.simulator.server import MeterServer
from edge_agent.transport.pty import PtyPair


def require(module: str) -> ModuleType:
    """``module`` of gurux-dlms; skips the tests without it, except under CI (``CI=true``),
    where a missing peer must fail the run instead of shrinking the matrix to nothing."""
    if os.environ.get("CI") == "true":
        return importlib.import_module(module)
    return pytest.importorskip(module, reason="gurux-dlms is not installed (the test extra)")


gurux = require("gurux_dlms")
enums = require("gurux_dlms.enums")
objects = require("gurux_dlms.objects")
secure = require("gurux_dlms.secure")
SecuritySuite = require("gurux_dlms.objects.enums").SecuritySuite

FROZEN = dt.datetime(2026, 3, 14, 9, 26, 53, tzinfo=dt.UTC)
REGISTERS = ["1.0.1.8.0.255", "1.0.2.8.0.255", "1.0.32.7.0.255", "1.0.1.7.0.255",
             "1.0.14.7.0.255", "1.0.13.7.0.255"]
LOAD_PROFILE = "1.0.99.1.0.255"
CLOCK = "0.0.1.0.0.255"
PUBLIC = ClientSettings()
GURUX_TITLE = bytes.fromhex("4755525800000001")
OUR_TITLE = bytes.fromhex("444c4d5300000001")
PASSWORD = "00000000"  # the generic simulator's LLS password
LINKS = ("hdlc-pty", "hdlc-tcp", "wrapper")
SECURITIES = ("none", "lls", "hls5-suite0", "hls5-suite1")


class GuruxOverSocket:
    """gurux's client, its requests carried over a TCP socket to our simulator."""

    def __init__(self, client, address: tuple[str, int]) -> None:
        self.client = client
        self.hdlc = client.interfaceType == enums.InterfaceType.HDLC
        self.sock = socket.create_connection(address, timeout=5)
        self.next_blocks = 0  # GET-Request-Next gurux sent: it parsed a datablock, not the last

    def exchange(self, request, reply) -> None:
        if request:
            self.sock.sendall(bytes(request))
        received = gurux.GXByteBuffer()
        while not self.client.getData(received, reply, gurux.GXReplyData()):
            chunk = self.sock.recv(4096)
            assert chunk, "the simulator closed the connection"
            received.set(chunk)

    def exchange_all(self, requests) -> Any:
        reply = gurux.GXReplyData()
        for request in requests:
            reply.clear()
            self.exchange(request, reply)
            while reply.isMoreData():  # block transfer / HDLC segmentation, gurux drives it
                if reply.moreData == enums.RequestTypes.DATABLOCK:
                    self.next_blocks += 1
                self.exchange(self.client.receiverReady(reply), reply)
        return reply

    def connect(self) -> None:
        if self.hdlc:
            reply = gurux.GXReplyData()
            self.exchange(self.client.snrmRequest(), reply)
            self.client.parseUAResponse(reply.data)
        self.client.parseAareResponse(self.exchange_all(self.client.aarqRequest()).data)
        if self.client.getIsAuthenticationRequired():
            reply = self.exchange_all(self.client.getApplicationAssociationRequest())
            self.client.parseApplicationAssociationResponse(reply.data)  # verifies f(CtoS)

    def read(self, item, attribute: int):
        reply = self.exchange_all(self.client.read(item, attribute))
        return self.client.updateValue(item, attribute, reply.value)

    def read_list(self, pairs) -> None:
        values = []
        for requests in self.client.readList(pairs):  # one GET-Request-With-List per 10 items
            values.extend(self.exchange_all(requests).value)
        self.client.updateValues(pairs, values)

    def close(self) -> None:
        try:
            self.exchange_all(self.client.releaseRequest())
            if self.hdlc:
                self.exchange(self.client.disconnectRequest(), gurux.GXReplyData())
        finally:
            self.sock.close()


class PtyEnd:
    """The client's end of a pty pair, with the socket calls GuruxOverSocket makes."""

    def __init__(self, device: str) -> None:
        self.fd = os.open(device, os.O_RDWR | os.O_NOCTTY)
        tty.setraw(self.fd)

    def sendall(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view):]

    def recv(self, size: int) -> bytes:
        readable, _, _ = select.select([self.fd], [], [], 5.0)
        assert readable, "the simulator did not answer within 5 s"
        return os.read(self.fd, size)

    def close(self) -> None:
        os.close(self.fd)


class GuruxOverPty(GuruxOverSocket):
    def __init__(self, client, device: str) -> None:  # no socket: the pty end instead
        self.client = client
        self.hdlc = True
        self.sock = PtyEnd(device)
        self.next_blocks = 0


# --- reading our frames (independently of edge_agent and of gurux) --------------------------


def hdlc_fields(frame: bytes) -> tuple[int, bytes, bool]:
    """(control, information field, segmented) of one HDLC frame (IEC 62056-46 8.4)."""
    assert frame[0] == frame[-1] == 0x7E and frame[1] >> 4 == 0xA, frame.hex()
    assert (frame[1] & 0x07) << 8 | frame[2] == len(frame) - 2, frame.hex()
    position = 3
    for _ in range(2):  # destination, then source address: until a byte with bit 0 set
        while not frame[position] & 1:
            position += 1
        position += 1
    control = frame[position]
    information = frame[position + 3:-3] if len(frame) - 2 > position + 2 else b""
    return control, information, bool(frame[1] & 0x08)


GENERAL_GLO_CIPHERING = 0xDB


def decipher(apdu: bytes, system_title: bytes) -> bytes:
    """The plaintext of a glo- or general-glo-ciphering APDU its sender (``system_title``)
    protected with the example EK and AK: AES-GCM, IV = system title + invocation counter,
    AAD = security control byte + AK, 12-byte tag (Green Book 9.2.7.2.4)."""
    position = 1
    if apdu[0] == GENERAL_GLO_CIPHERING:  # the sender's system title travels in the APDU
        assert apdu[2:2 + apdu[1]] == system_title, apdu.hex()
        position += 1 + apdu[1]
    length, position = apdu[position], position + 1
    if length & 0x80:
        size = length & 0x7F
        length, position = int.from_bytes(apdu[position:position + size], "big"), position + size
    body = apdu[position:position + length]
    assert len(body) == length, apdu.hex()
    security_control, counter = body[0], body[1:5]
    assert security_control & 0x30 == 0x30, f"not authenticated and encrypted: {apdu.hex()}"
    decryptor = Cipher(algorithms.AES(EXAMPLE_EK),
                       modes.GCM(system_title + counter, body[-12:], min_tag_length=12)).decryptor()
    decryptor.authenticate_additional_data(bytes([security_control]) + EXAMPLE_AK)
    return decryptor.update(body[5:-12]) + decryptor.finalize()


def frames_in(chunks: list[bytes], hdlc: bool) -> list[bytes]:
    """The frames of a byte stream read or written in ``chunks``: HDLC frames (one flag
    each side, IEC 62056-46 8.4) or wrapper frames (8-byte header, IEC 62056-47)."""
    stream, frames, position = b"".join(chunks), [], 0
    while position < len(stream):
        if hdlc:
            assert stream[position] == 0x7E, stream[position:].hex()
            end = position + 2 + ((stream[position + 1] & 0x07) << 8 | stream[position + 2])
        else:
            end = position + 8 + int.from_bytes(stream[position + 6:position + 8], "big")
        assert end <= len(stream), f"a cut frame: {stream[position:].hex()}"
        frames.append(stream[position:end])
        position = end
    return frames


def apdus_in(chunks: list[bytes], hdlc: bool) -> list[bytes]:
    """The APDUs in a stream of wrapper frames, or of HDLC frames whose I-frames may carry
    an APDU in segments; the LLC header goes."""
    frames = frames_in(chunks, hdlc)
    if not hdlc:
        return [frame[8:] for frame in frames]
    apdus, pending = [], b""
    for frame in frames:
        control, information, segmented = hdlc_fields(frame)
        if control & 0x01:  # S- or U-frame
            continue
        pending += information
        if not segmented:
            assert pending[:2] in (b"\xe6\xe6", b"\xe6\xe7"), pending.hex()
            apdus.append(pending[3:])
            pending = b""
    return apdus


# --- the client settings of each security, ours and gurux's ---------------------------------


def simulator_options(security: str) -> SimulatorOptions:
    if security.startswith("hls5"):
        return SimulatorOptions(security="authenc", authentication="hls-gmac",
                                suite=int(security[-1]), signed_pass3=False)
    return SimulatorOptions()


def our_settings(security: str) -> tuple[ClientSettings, int]:
    """Our client's settings and client SAP for ``security``."""
    if security == "none":
        return PUBLIC, 16
    if security == "lls":
        return ClientSettings(authentication="low", password=Secret(PASSWORD.encode(), "LLS")), 1
    return ClientSettings(security="authenc", suite=int(security[-1]), authentication="hls-gmac",
                          system_title=OUR_TITLE, ek=Secret(EXAMPLE_EK, "EK"),
                          ak=Secret(EXAMPLE_AK, "AK")), 1


def gurux_client(hdlc: bool, client_sap: int = 16, authentication=None):
    interface = enums.InterfaceType.HDLC if hdlc else enums.InterfaceType.WRAPPER
    server = gurux.GXDLMSClient.getServerAddress(1, 16, 4) if hdlc else 1
    if authentication is None:
        return gurux.GXDLMSClient(True, client_sap, server, enums.Authentication.NONE, None,
                                  interface)
    client = secure.GXDLMSSecureClient(True, client_sap, server, authentication, None, interface)
    client.ciphering.security = enums.Security.AUTHENTICATION_ENCRYPTION
    client.ciphering.systemTitle = GURUX_TITLE
    client.ciphering.blockCipherKey = EXAMPLE_EK
    client.ciphering.authenticationKey = EXAMPLE_AK
    return client


def their_client(security: str, hdlc: bool):
    """gurux's client for ``security``: the public one, or the management one (SAP 1)."""
    if security == "none":
        return gurux_client(hdlc)
    if security == "lls":
        interface = enums.InterfaceType.HDLC if hdlc else enums.InterfaceType.WRAPPER
        server = gurux.GXDLMSClient.getServerAddress(1, 16, 4) if hdlc else 1
        return gurux.GXDLMSClient(True, 1, server, enums.Authentication.LOW, PASSWORD, interface)
    client = gurux_client(hdlc, client_sap=1, authentication=enums.Authentication.HIGH_GMAC)
    client.ciphering.securitySuite = SecuritySuite(int(security[-1]))
    return client


# --- our simulator on each link --------------------------------------------------------------


@dataclass
class MeterOnLink:
    """The simulated meter on one link: how our client and gurux's reach it, and the
    frames the meter received and sent."""

    link: str
    station: SimulatedMeterStation
    address: tuple[str, int] | None = None  # TCP
    device: str | None = None  # the pty end for the clients
    received: list[bytes] = field(default_factory=list)
    sent: list[bytes] = field(default_factory=list)

    @property
    def hdlc(self) -> bool:
        return self.link != "wrapper"

    def connection(self, client_sap: int) -> ConnectionSettings:
        if self.device is not None:
            return ConnectionSettings(serial=self.device, client_sap=client_sap, timeout=3)
        return ConnectionSettings(tcp=self.address, hdlc=self.hdlc, client_sap=client_sap,
                                  timeout=3)

    def gurux_peer(self, client) -> GuruxOverSocket:
        if self.device is not None:
            return GuruxOverPty(client, self.device)
        return GuruxOverSocket(client, self.address)


@pytest.fixture
def meter_on():
    """``meter_on(link, options) -> MeterOnLink``: our simulator (clock frozen) on that link."""
    cleanup: list[Callable[[], object]] = []  # run last first

    def start(link: str, options: SimulatorOptions) -> MeterOnLink:
        station = SimulatedMeterStation(options, clock=lambda: FROZEN)
        meter = MeterOnLink(link, station)
        server = MeterServer([station.station], tap=lambda direction, data: (
            meter.sent if direction == "tx" else meter.received).append(bytes(data)))
        if link == "hdlc-pty":
            pair = PtyPair()
            thread = threading.Thread(target=server.serve_serial, args=(pair.path_a,),
                                      daemon=True)
            thread.start()
            # gurux's client does not retry: a request sent before the meter opened its end
            # of the line would be lost.
            assert server.serial_open.wait(10), f"the simulator did not open {pair.path_a}"
            cleanup.append(pair.close)  # after the server stopped reading it
            cleanup.append(lambda: thread.join(timeout=5))
            cleanup.append(server.stop)
            meter.device = pair.path_b
        else:
            cleanup.append(server.stop)
            meter.address = server.start_tcp("127.0.0.1", 0)
        return meter

    yield start
    for stop in reversed(cleanup):
        stop()


def our_client(connection: ConnectionSettings, settings: ClientSettings, state_dir: Path,
               **options: Any) -> MeterClient:
    return MeterClient(connection, settings, meter_id="interop", state_dir=state_dir,
                       pass3_signing="never", clock=lambda: FROZEN, frame_counter=None,
                       **options)


def our_readings(connection: ConnectionSettings, tmp_path: Path,
                 settings: ClientSettings = PUBLIC) -> dict:
    with our_client(connection, settings, tmp_path) as meter:
        readings = meter.read([Obis.parse(code)
                               for code in [*REGISTERS, CLOCK, "0.0.96.1.0.255"]])
    return {r.obis.dotted: r for r in readings}


def assert_gurux_reads_what_we_read(peer: GuruxOverSocket, ours: dict) -> None:
    """GET-Request-Normal (scaler_unit, then value) and GET-Request-With-List of the
    registers, the clock and the serial number: gurux's values are ours."""
    registers = [objects.GXDLMSRegister(code) for code in REGISTERS]
    first, rest = registers[0], registers[1:]
    peer.read(first, 3)  # scaler_unit, then the value: one GET-Request-Normal each
    peer.read(first, 2)
    peer.read_list([(r, 3) for r in rest] + [(r, 2) for r in rest])  # GET-Request-With-List
    for register in registers:
        reading = ours[register.logicalName]
        assert register.value == pytest.approx(reading.value), register.logicalName
        assert register.scaler == pytest.approx(10.0 ** reading.scaler)
    clock = objects.GXDLMSClock(CLOCK)
    peer.read(clock, 2)
    assert clock.time.value == dt.datetime.fromisoformat(ours[CLOCK].value)
    assert clock.time.value == FROZEN
    serial = objects.GXDLMSData("0.0.96.1.0.255")
    peer.read(serial, 2)
    assert bytes(serial.value).decode() == ours["0.0.96.1.0.255"].value
