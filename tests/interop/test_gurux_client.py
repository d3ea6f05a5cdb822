"""Interoperability: gurux-dlms's client (GXDLMSClient, LN referencing) reads our simulator.

Gurux (GPL) is a test-only peer. It builds every request (SNRM, AARQ, HLS pass 3, GET,
GET-with-list, RLRQ, DISC) and parses every answer; we only carry its bytes over a
127.0.0.1 socket to our simulator, over HDLC-over-TCP and over the IEC 62056-47 wrapper.
The simulator runs with a frozen clock, so the values gurux reads equal the values our
own client reads from the same meter.
"""

from __future__ import annotations

import datetime as dt
import socket
from pathlib import Path

import pytest

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

gurux = pytest.importorskip("gurux_dlms", reason="gurux-dlms is not installed (test extra)")
enums = pytest.importorskip("gurux_dlms.enums")
objects = pytest.importorskip("gurux_dlms.objects")
secure = pytest.importorskip("gurux_dlms.secure")
SecuritySuite = pytest.importorskip("gurux_dlms.objects.enums").SecuritySuite

pytestmark = pytest.mark.timeout(30)

FROZEN = dt.datetime(2026, 3, 14, 9, 26, 53, tzinfo=dt.UTC)
REGISTERS = ["1.0.1.8.0.255", "1.0.2.8.0.255", "1.0.32.7.0.255", "1.0.1.7.0.255", "1.0.14.7.0.255", "1.0.13.7.0.255"]
PUBLIC = ClientSettings()
GURUX_TITLE = bytes.fromhex("4755525800000001")


class GuruxOverSocket:
    """gurux's client, its requests carried over a TCP socket to our simulator."""

    def __init__(self, client, address: tuple[str, int]) -> None:
        self.client = client
        self.hdlc = client.interfaceType == enums.InterfaceType.HDLC
        self.sock = socket.create_connection(address, timeout=5)

    def exchange(self, request, reply) -> None:
        if request:
            self.sock.sendall(bytes(request))
        received = gurux.GXByteBuffer()
        while not self.client.getData(received, reply, gurux.GXReplyData()):
            chunk = self.sock.recv(4096)
            assert chunk, "the simulator closed the connection"
            received.set(chunk)

    def exchange_all(self, requests) -> object:
        reply = gurux.GXReplyData()
        for request in requests:
            reply.clear()
            self.exchange(request, reply)
            while reply.isMoreData():  # block transfer / HDLC segmentation, gurux drives it
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


@pytest.fixture
def serve():
    servers: list[MeterServer] = []

    def start(options: SimulatorOptions) -> tuple[SimulatedMeterStation, tuple[str, int]]:
        meter = SimulatedMeterStation(options, clock=lambda: FROZEN)
        server = MeterServer([meter.station])
        servers.append(server)
        return meter, server.start_tcp("127.0.0.1", 0)

    yield start
    for server in servers:
        server.stop()


def gurux_client(hdlc: bool, client_sap: int = 16, authentication=None):
    interface = enums.InterfaceType.HDLC if hdlc else enums.InterfaceType.WRAPPER
    server = gurux.GXDLMSClient.getServerAddress(1, 16, 4) if hdlc else 1
    if authentication is None:
        return gurux.GXDLMSClient(True, client_sap, server, enums.Authentication.NONE, None, interface)
    client = secure.GXDLMSSecureClient(True, client_sap, server, authentication, None, interface)
    client.ciphering.security = enums.Security.AUTHENTICATION_ENCRYPTION
    client.ciphering.systemTitle = GURUX_TITLE
    client.ciphering.blockCipherKey = EXAMPLE_EK
    client.ciphering.authenticationKey = EXAMPLE_AK
    return client


def our_readings(address, hdlc: bool, tmp_path: Path, settings: ClientSettings = PUBLIC, sap: int = 16):
    connection = ConnectionSettings(tcp=address, hdlc=hdlc, client_sap=sap, timeout=3)
    with MeterClient(connection, settings, meter_id="interop", state_dir=tmp_path, pass3_signing="never",
                     clock=lambda: FROZEN, frame_counter=None) as meter:
        readings = meter.read([Obis.parse(code) for code in [*REGISTERS, "0.0.1.0.0.255", "0.0.96.1.0.255"]])
    return {r.obis.dotted: r for r in readings}


def assert_gurux_reads_what_we_read(peer: GuruxOverSocket, ours: dict) -> None:
    registers = [objects.GXDLMSRegister(code) for code in REGISTERS]
    first, rest = registers[0], registers[1:]
    peer.read(first, 3)  # scaler_unit, then the value: one GET-Request-Normal each
    peer.read(first, 2)
    peer.read_list([(r, 3) for r in rest] + [(r, 2) for r in rest])  # GET-Request-With-List
    for register in registers:
        reading = ours[register.logicalName]
        assert register.value == pytest.approx(reading.value), register.logicalName
        assert register.scaler == pytest.approx(10.0 ** reading.scaler)
    clock = objects.GXDLMSClock("0.0.1.0.0.255")
    peer.read(clock, 2)
    assert clock.time.value == dt.datetime.fromisoformat(ours["0.0.1.0.0.255"].value)
    assert clock.time.value == FROZEN
    serial = objects.GXDLMSData("0.0.96.1.0.255")
    peer.read(serial, 2)
    assert bytes(serial.value).decode() == ours["0.0.96.1.0.255"].value


@pytest.mark.parametrize("hdlc", [True, False], ids=["hdlc-over-tcp", "wrapper"])
def test_gurux_public_client_reads_our_simulator(serve, tmp_path: Path, hdlc: bool) -> None:
    _, address = serve(SimulatorOptions())
    ours = our_readings(address, hdlc, tmp_path)
    peer = GuruxOverSocket(gurux_client(hdlc), address)
    try:
        peer.connect()
        assert_gurux_reads_what_we_read(peer, ours)
    finally:
        peer.close()


@pytest.mark.parametrize("hdlc", [True, False], ids=["hdlc-over-tcp", "wrapper"])
def test_gurux_reads_our_object_list(serve, tmp_path: Path, hdlc: bool) -> None:
    _, address = serve(SimulatorOptions())
    with MeterClient(ConnectionSettings(tcp=address, hdlc=hdlc), ClientSettings(), meter_id="interop",
                     state_dir=tmp_path, frame_counter=None) as meter:
        ours = {(e.class_id, e.logical_name.dotted) for e in meter.object_list()}
    peer = GuruxOverSocket(gurux_client(hdlc), address)
    try:
        peer.connect()
        reply = peer.exchange_all([peer.client.getObjectsRequest()])  # one message, not a list
        theirs = peer.client.parseObjects(reply.data, False, False)
    finally:
        peer.close()
    assert {(int(o.objectType), o.logicalName) for o in theirs} == ours
    assert len(ours) > 20


@pytest.mark.parametrize("suite", [0, 1])
@pytest.mark.parametrize("hdlc", [True, False], ids=["hdlc-over-tcp", "wrapper"])
def test_gurux_hls5_management_client_reads_our_simulator(serve, tmp_path: Path, hdlc: bool, suite: int) -> None:
    options = SimulatorOptions(security="authenc", authentication="hls-gmac", suite=suite, signed_pass3=False)
    meter, address = serve(options)
    ours = our_readings(
        address, hdlc, tmp_path,
        ClientSettings(security="authenc", suite=suite, authentication="hls-gmac", system_title=bytes.fromhex("444c4d5300000001"),
                       ek=Secret(EXAMPLE_EK, "EK"), ak=Secret(EXAMPLE_AK, "AK")),
        sap=1,
    )
    client = gurux_client(hdlc, client_sap=1, authentication=enums.Authentication.HIGH_GMAC)
    client.ciphering.securitySuite = SecuritySuite(suite)
    peer = GuruxOverSocket(client, address)
    try:
        peer.connect()
        assert_gurux_reads_what_we_read(peer, ours)
    finally:
        peer.close()
    # gurux really ciphered and passed HLS pass 3: the meter accepted its counters
    from_gurux = [r for r in meter.counters.received if r.system_title == GURUX_TITLE]
    assert any(r.where == "f(StoC)" for r in from_gurux)
    assert len(from_gurux) > 5 and all(r.accepted for r in from_gurux)


def test_gurux_with_a_wrong_authentication_key_is_refused(serve) -> None:
    meter, address = serve(SimulatorOptions(security="authenc", authentication="hls-gmac", suite=0, signed_pass3=False))
    client = gurux_client(True, client_sap=1, authentication=enums.Authentication.HIGH_GMAC)
    client.ciphering.authenticationKey = bytes(16)
    peer = GuruxOverSocket(client, address)
    with pytest.raises(gurux.GXDLMSException, match="permanently rejected"):
        peer.connect()  # the ciphered InitiateRequest does not authenticate: AARE rejected
    peer.sock.close()
    assert not any(r.accepted for r in meter.counters.received)
