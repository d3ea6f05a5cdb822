"""The interoperability matrix: gurux-dlms's client against our simulator, every link x
every security, every service.

Links: HDLC over a pty pair (a serial line), HDLC over TCP, the IEC 62056-47 wrapper.
Security: none (public client, SAP 16), LLS (management client, SAP 1), HLS-5 GMAC with
suite 0 and suite 1 and authenticated encryption (SAP 1). Services: GET normal,
GET-with-list, GET with block transfer (a day of load profile with gurux asking for
256-byte PDUs), the load profile by range and by entry, and, for the management client,
SET (the clock's time) and ACTION (the clock's shift_time). gurux builds every request
and parses every answer; the values are checked against what our own client reads from
the same simulated meter (its clock is frozen). docs/INTEROP.md shows the matrix.
"""

from __future__ import annotations

import datetime as dt
import os
import select
import threading
import tty
from pathlib import Path

import pytest
from test_gurux_client import (
    FROZEN,
    GURUX_TITLE,
    GuruxOverSocket,
    assert_gurux_reads_what_we_read,
    enums,
    gurux,
    gurux_client,
    objects,
    our_readings,
)

from edge_agent.dlms.association.client import ClientSettings
from edge_agent.dlms.secret import Secret
from edge_agent.simulator.meter import (
    EXAMPLE_AK,
    EXAMPLE_EK,
    SimulatedMeterStation,
    SimulatorOptions,
)
from edge_agent.simulator.server import MeterServer
from edge_agent.transport.pty import PtyPair

SecuritySuite = pytest.importorskip("gurux_dlms.objects.enums").SecuritySuite

pytestmark = pytest.mark.timeout(60)

LOAD_PROFILE = "1.0.99.1.0.255"
LINKS = ("hdlc-pty", "hdlc-tcp", "wrapper")
SECURITIES = ("none", "lls", "hls5-suite0", "hls5-suite1")
PASSWORD = "00000000"  # the generic simulator's LLS password


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
    def __init__(self, client, device: str) -> None:
        self.client = client
        self.hdlc = True
        self.sock = PtyEnd(device)


def simulator_options(security: str) -> SimulatorOptions:
    if security.startswith("hls5"):
        return SimulatorOptions(security="authenc", authentication="hls-gmac",
                                suite=int(security[-1]), signed_pass3=False)
    return SimulatorOptions()


def our_settings(security: str) -> tuple[ClientSettings, int]:
    if security == "none":
        return ClientSettings(), 16
    if security == "lls":
        return ClientSettings(authentication="low", password=Secret(PASSWORD.encode(), "LLS")), 1
    return ClientSettings(security="authenc", suite=int(security[-1]), authentication="hls-gmac",
                          system_title=bytes.fromhex("444c4d5300000001"),
                          ek=Secret(EXAMPLE_EK, "EK"), ak=Secret(EXAMPLE_AK, "AK")), 1


def their_client(security: str, hdlc: bool):
    if security == "none":
        return gurux_client(hdlc)
    if security == "lls":
        interface = enums.InterfaceType.HDLC if hdlc else enums.InterfaceType.WRAPPER
        server = gurux.GXDLMSClient.getServerAddress(1, 16, 4) if hdlc else 1
        return gurux.GXDLMSClient(True, 1, server, enums.Authentication.LOW, PASSWORD, interface)
    client = gurux_client(hdlc, client_sap=1, authentication=enums.Authentication.HIGH_GMAC)
    client.ciphering.securitySuite = SecuritySuite(int(security[-1]))
    return client


@pytest.fixture
def meter_on():
    """``meter_on(link, options) -> (station, peer factory)``: the simulator on that link."""
    cleanup: list = []  # run last first

    def start(link: str, options: SimulatorOptions):
        station = SimulatedMeterStation(options, clock=lambda: FROZEN)
        sent: list[bytes] = []
        station.sent = sent
        server = MeterServer([station.station],
                             tap=lambda direction, data: sent.append(bytes(data))
                             if direction == "tx" else None)
        if link == "hdlc-pty":
            pair = PtyPair()
            thread = threading.Thread(target=server.serve_serial, args=(pair.path_a,),
                                      daemon=True)
            thread.start()
            assert server.serial_open.wait(10), f"the simulator did not open {pair.path_a}"
            cleanup.append(pair.close)  # after the server stopped reading it
            cleanup.append(lambda: thread.join(timeout=5))
            cleanup.append(server.stop)
            return station, None, lambda client: GuruxOverPty(client, pair.path_b)
        cleanup.append(server.stop)
        address = server.start_tcp("127.0.0.1", 0)
        return station, address, lambda client: GuruxOverSocket(client, address)

    yield start
    for stop in reversed(cleanup):
        stop()


@pytest.mark.parametrize("security", SECURITIES)
@pytest.mark.parametrize("link", LINKS)
def test_gurux_client_against_our_simulator(meter_on, tmp_path: Path, link: str,
                                            security: str) -> None:
    station, address, peer_for = meter_on(link, simulator_options(security))
    hdlc = link != "wrapper"
    ours = None
    if address is not None:  # our own client reads the same values over TCP
        settings, sap = our_settings(security)
        ours = our_readings(address, hdlc, tmp_path, settings, sap=sap)
    client = their_client(security, hdlc)
    client.maxReceivePDUSize = 256  # a day of profile exceeds either side's PDU: datablocks
    peer = peer_for(client)
    try:
        peer.connect()
        # GET normal and GET-with-list
        if ours is not None:
            assert_gurux_reads_what_we_read(peer, ours)
        else:
            energy = objects.GXDLMSRegister("1.0.1.8.0.255")
            peer.read(energy, 3)
            peer.read(energy, 2)
            assert energy.value > 0
        # the load profile: capture objects, by range (a day: block transfer), by entry
        profile = objects.GXDLMSProfileGeneric(LOAD_PROFILE)
        peer.read(profile, 3)
        assert len(profile.captureObjects) >= 2
        day_end = FROZEN.replace(minute=0, second=0)
        reply = peer.exchange_all(client.readRowsByRange(
            profile, day_end - dt.timedelta(days=1), day_end))
        client.updateValue(profile, 2, reply.value)
        rows = list(profile.buffer)
        assert 90 <= len(rows) <= 97  # 15-minute rows; an outage may take some
        stamps = [row[0].value for row in rows]
        assert stamps == sorted(stamps) and stamps[-1] <= day_end
        if security in ("none", "lls"):  # plain APDUs: the day came in datablocks
            assert any(b"\xe6\xe7\x00\xc4\x02" in data or data[8:10] == b"\xc4\x02"
                       for data in station.sent), "no GET-Response-With-Datablock was sent"
        reply = peer.exchange_all(client.readRowsByEntry(profile, 1, 5))
        client.updateValue(profile, 2, reply.value)
        assert len(profile.buffer) == 5
        if security != "none":  # SET and ACTION need the management client
            clock = objects.GXDLMSClock("0.0.1.0.0.255")
            peer.read(clock, 2)
            clock.time = gurux.GXDateTime(FROZEN + dt.timedelta(hours=1))
            peer.exchange_all(client.write(clock, 2))
            peer.read(clock, 2)
            assert clock.time.value == FROZEN + dt.timedelta(hours=1)
            peer.exchange_all(clock.shiftTime(client, 60))
            peer.read(clock, 2)
            assert clock.time.value == FROZEN + dt.timedelta(hours=1, seconds=60)
    finally:
        peer.close()
    if security.startswith("hls5"):  # gurux really ciphered: the meter counted its ICs
        from_gurux = [r for r in station.counters.received if r.system_title == GURUX_TITLE]
        assert len(from_gurux) > 5 and all(r.accepted for r in from_gurux)


def our_session_frames(address, hdlc: bool, security: str, tmp_path: Path) -> list[bytes]:
    """Every frame our client sends in a session that uses each service once."""
    from edge_agent.client.client import MeterClient
    from edge_agent.client.connection import ConnectionSettings
    from edge_agent.client.load_profile import ProfileReader
    from edge_agent.dlms.cosem.interface_classes import entry_descriptor
    from edge_agent.dlms.cosem.obis import Obis
    from edge_agent.dlms.encoding.axdr import Long

    settings, sap = our_settings(security)
    sent: list[bytes] = []
    connection = ConnectionSettings(tcp=address, hdlc=hdlc, client_sap=sap, timeout=3)
    with MeterClient(connection, settings, meter_id="interop", state_dir=tmp_path,
                     pass3_signing="never", clock=lambda: FROZEN, frame_counter=None,
                     tap=lambda direction, frame: sent.append(bytes(frame))
                     if direction == "tx" else None) as meter:
        meter.read([Obis.parse(code) for code in ("1.0.1.8.0.255", "1.0.2.8.0.255",
                                                  "0.0.1.0.0.255")])
        end = FROZEN.replace(minute=0, second=0)
        assert list(ProfileReader(meter, Obis.parse(LOAD_PROFILE)).rows(
            end - dt.timedelta(hours=6), end))
        meter.get(Obis.parse(LOAD_PROFILE), 7, 2, entry_descriptor(1, 3))
        if security != "none":
            meter.action(Obis.parse("0.0.1.0.0.255"), 8, 6, Long(30))  # shift_time
    return sent


# What gurux's translator must name in the frames of that session (SIMPLE_XML tags).
SERVICES = ("AssociationRequest", "GetRequest", "ReleaseRequest")


@pytest.mark.parametrize("security", SECURITIES)
@pytest.mark.parametrize("link", ("hdlc-tcp", "wrapper"))
def test_gurux_translator_reads_every_frame_our_client_sends(meter_on, tmp_path: Path,
                                                             link: str, security: str) -> None:
    _, address, _ = meter_on(link, simulator_options(security))
    frames = our_session_frames(address, link != "wrapper", security, tmp_path)
    translator = gurux.GXDLMSTranslator(
        pytest.importorskip("gurux_dlms.enums").TranslatorOutputType.SIMPLE_XML)
    translator.comments = True  # gurux deciphers glo- APDUs only into comments
    if security.startswith("hls5"):
        translator.security = enums.Security.AUTHENTICATION_ENCRYPTION
        translator.securitySuite = SecuritySuite(int(security[-1]))
        translator.systemTitle = bytes.fromhex("444c4d5300000001")
        translator.blockCipherKey = EXAMPLE_EK
        translator.authenticationKey = EXAMPLE_AK
    xml = []
    for frame in frames:
        text = translator.messageToXml(gurux.GXByteBuffer(frame))
        assert text and "<" in text, frame.hex()
        xml.append(text)
    joined = "\n".join(xml)
    if security.startswith("hls5"):  # every ciphered request deciphered with our keys
        ciphered = sum(text.count("<glo_") for text in xml)
        assert ciphered >= 5 and joined.count("Decrypt") == ciphered, \
            [text for text in xml if "<glo_" in text and "Decrypt" not in text]
    for service in (*SERVICES, *(("ActionRequest",) if security != "none" else ())):
        assert f"<{service}" in joined, (service, joined[:3000])
    assert "<AccessSelector" in joined  # the profile by range and by entry
