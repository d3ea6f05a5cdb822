"""Interoperability: gurux-dlms's client (GXDLMSClient, LN referencing) reads our simulator.

Gurux (GPL) is a test-only peer. It builds every request (SNRM, AARQ, HLS pass 3, GET,
GET-with-list, RLRQ, DISC) and parses every answer; we only carry its bytes over a
127.0.0.1 socket to our simulator, over HDLC-over-TCP and over the IEC 62056-47 wrapper.
The simulator runs with a frozen clock, so the values gurux reads equal the values our
own client reads from the same meter.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from gurux_peer import (
    FROZEN,
    GURUX_TITLE,
    OUR_TITLE,
    GuruxOverSocket,
    SecuritySuite,
    assert_gurux_reads_what_we_read,
    enums,
    gurux,
    gurux_client,
    our_readings,
)

from edge_agent.client.client import MeterClient
from edge_agent.client.connection import ConnectionSettings
from edge_agent.dlms.association.client import ClientSettings
from edge_agent.dlms.secret import Secret
from edge_agent.simulator.meter import (
    EXAMPLE_AK,
    EXAMPLE_EK,
    SimulatedMeterStation,
    SimulatorOptions,
)
from edge_agent.simulator.server import MeterServer

pytestmark = pytest.mark.timeout(30)


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


@pytest.mark.parametrize("hdlc", [True, False], ids=["hdlc-over-tcp", "wrapper"])
def test_gurux_public_client_reads_our_simulator(serve, tmp_path: Path, hdlc: bool) -> None:
    _, address = serve(SimulatorOptions())
    ours = our_readings(ConnectionSettings(tcp=address, hdlc=hdlc, timeout=3), tmp_path)
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
        ConnectionSettings(tcp=address, hdlc=hdlc, client_sap=1, timeout=3), tmp_path,
        ClientSettings(security="authenc", suite=suite, authentication="hls-gmac", system_title=OUR_TITLE,
                       ek=Secret(EXAMPLE_EK, "EK"), ak=Secret(EXAMPLE_AK, "AK")),
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
