"""The interoperability matrix, first direction: gurux-dlms's client against our
simulator, every link x every security, every service.

Links: HDLC over a pty pair (a serial line), HDLC over TCP, the IEC 62056-47 wrapper.
Security: none (public client, SAP 16), LLS (management client, SAP 1), HLS-5 GMAC with
suite 0 and suite 1 and authenticated encryption (SAP 1). gurux builds every request and
parses every answer; we only carry its bytes. In every cell: GET-Request-Normal and
GET-Request-With-List of registers, the clock and the serial number, the load profile's
capture objects, the profile by range (a day, gurux asking for 256-byte PDUs: block
transfer) and by entry; with the management client also SET (the clock's time) and ACTION
(the clock's shift_time). Every value is compared with what our own client reads from the
same simulated meter on the same link (its clock is frozen); after gurux's SET and ACTION
our client reads the clock gurux set. docs/INTEROP.md shows the matrix.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from gurux_peer import (
    CLOCK,
    FROZEN,
    GENERAL_GLO_CIPHERING,
    GURUX_TITLE,
    LINKS,
    LOAD_PROFILE,
    SECURITIES,
    MeterOnLink,
    apdus_in,
    assert_gurux_reads_what_we_read,
    decipher,
    gurux,
    meter_on,  # noqa: F401 - the fixture
    objects,
    our_client,
    our_settings,
    simulator_options,
    their_client,
)

from edge_agent.dlms.cosem.interface_classes import entry_descriptor, range_descriptor
from edge_agent.dlms.cosem.obis import Obis
from edge_agent.dlms.encoding.date_time import CosemDateTime

pytestmark = pytest.mark.timeout(60)

DAY_END = FROZEN.replace(minute=0, second=0)
DAY_START = DAY_END - dt.timedelta(days=1)
GLO_GET_RESPONSE, GET_RESPONSE_WITH_DATABLOCK = 0xCC, b"\xc4\x02"


def our_row(row: Any) -> list:
    """One profile row as our client decoded it: (time, every other column)."""
    return [CosemDateTime.decode(bytes(row[0])).to_datetime(), *(int(value) for value in row[1:])]


def their_row(row: list) -> list:
    return [row[0].value, *(int(value) for value in row[1:])]


def our_view(meter: MeterOnLink, security: str, tmp_path: Path) -> dict[str, Any]:
    """What our own client reads from the meter: the readings gurux's GETs are compared
    with, and the profile by range and by entry."""
    settings, sap = our_settings(security)
    profile = Obis.parse(LOAD_PROFILE)
    with our_client(meter.connection(sap), settings, tmp_path) as client:
        readings = client.read([Obis.parse(code) for code in
                                ["1.0.1.8.0.255", "1.0.2.8.0.255", "1.0.32.7.0.255",
                                 "1.0.1.7.0.255", "1.0.14.7.0.255", "1.0.13.7.0.255",
                                 CLOCK, "0.0.96.1.0.255"]])
        by_range = client.get(profile, 7, 2, range_descriptor(
            CosemDateTime.from_datetime(DAY_START), CosemDateTime.from_datetime(DAY_END)))
        by_entry = client.get(profile, 7, 2, entry_descriptor(1, 5))
    return {"readings": {r.obis.dotted: r for r in readings},
            "by_range": [our_row(row) for row in by_range],
            "by_entry": [our_row(row) for row in by_entry]}


def our_clock(meter: MeterOnLink, security: str, tmp_path: Path) -> dt.datetime:
    settings, sap = our_settings(security)
    with our_client(meter.connection(sap), settings, tmp_path) as client:
        (reading,) = client.read([Obis.parse(CLOCK)])
    return dt.datetime.fromisoformat(reading.value)


# gurux's requests, by tag and choice (Green Book 9.5)
REQUESTS = {b"\x60": "AARQ", b"\x62": "RLRQ", b"\xc0\x01": "GET-Request-Normal",
            b"\xc0\x02": "GET-Request-Next", b"\xc0\x03": "GET-Request-With-List",
            b"\xc1\x01": "SET-Request-Normal", b"\xc3\x01": "ACTION-Request-Normal"}
GLO_REQUESTS = (0xC8, 0xC9, 0xCB, GENERAL_GLO_CIPHERING)


def requests_received(meter: MeterOnLink) -> Counter:
    """Every request the meter received, named; ciphered ones deciphered with gurux's
    system title (independently of both stacks)."""
    names: Counter = Counter()
    for apdu in apdus_in(meter.received, meter.hdlc):
        if apdu[0] in GLO_REQUESTS:
            apdu = decipher(apdu, GURUX_TITLE)
        names[REQUESTS.get(apdu[:1]) or REQUESTS.get(apdu[:2]) or apdu[:2].hex()] += 1
    return names


def datablocks_sent(meter: MeterOnLink, frames: list[bytes]) -> int:
    """GET-Response-With-Datablock among the APDUs of ``frames`` the meter sent; the
    ciphered ones deciphered with the meter's system title (independently of gurux)."""
    count = 0
    for apdu in apdus_in(frames, meter.hdlc):
        if apdu[0] in (GLO_GET_RESPONSE, GENERAL_GLO_CIPHERING):
            apdu = decipher(apdu, meter.station.model.system_title)
        count += apdu[:2] == GET_RESPONSE_WITH_DATABLOCK
    return count


@pytest.mark.parametrize("security", SECURITIES)
@pytest.mark.parametrize("link", LINKS)
def test_gurux_client_against_our_simulator(meter_on, tmp_path: Path, link: str,  # noqa: F811
                                            security: str) -> None:
    meter = meter_on(link, simulator_options(security))
    ours = our_view(meter, security, tmp_path)
    meter.received.clear()  # gurux's requests follow
    assert 90 <= len(ours["by_range"]) <= 97 and len(ours["by_entry"]) == 5
    client = their_client(security, meter.hdlc)
    client.maxReceivePDUSize = 256  # a day of profile exceeds either side's PDU: datablocks
    management = security != "none"
    peer = meter.gurux_peer(client)
    try:
        peer.connect()
        assert_gurux_reads_what_we_read(peer, ours["readings"])  # GET normal, with-list
        profile = objects.GXDLMSProfileGeneric(LOAD_PROFILE)
        peer.read(profile, 3)
        assert [o.logicalName for o, _ in profile.captureObjects][:1] == [CLOCK]
        assert len(profile.captureObjects) == len(ours["by_range"][0])
        # by range: a day in GET-Response-With-Datablock
        sent_before, next_before = len(meter.sent), peer.next_blocks
        reply = peer.exchange_all(client.readRowsByRange(profile, DAY_START, DAY_END))
        client.updateValue(profile, 2, reply.value)
        assert [their_row(row) for row in profile.buffer] == ours["by_range"]
        blocks = datablocks_sent(meter, meter.sent[sent_before:])
        assert blocks >= 2, "the day came without block transfer"
        assert peer.next_blocks - next_before == blocks - 1  # each block after the first
        # by entry
        reply = peer.exchange_all(client.readRowsByEntry(profile, 1, 5))
        client.updateValue(profile, 2, reply.value)
        assert [their_row(row) for row in profile.buffer] == ours["by_entry"]
        if management:  # SET and ACTION need the management client
            clock = objects.GXDLMSClock(CLOCK)
            clock.time = gurux.GXDateTime(FROZEN + dt.timedelta(hours=1))
            peer.exchange_all(client.write(clock, 2))
            peer.read(clock, 2)
            assert clock.time.value == FROZEN + dt.timedelta(hours=1)
            peer.exchange_all(clock.shiftTime(client, 60))
            peer.read(clock, 2)
            assert clock.time.value == FROZEN + dt.timedelta(hours=1, seconds=60)
    finally:
        peer.close()
    # what gurux sent, as the meter received it: exactly the services above
    hls = security.startswith("hls5")
    assert requests_received(meter) == +Counter({
        "AARQ": 1, "RLRQ": 1, "GET-Request-With-List": 1,
        # scaler_unit, value, clock, serial number, capture objects, by range, by entry
        # (+ the clock read back after SET and after ACTION)
        "GET-Request-Normal": 7 + 2 * management, "GET-Request-Next": peer.next_blocks,
        "SET-Request-Normal": int(management),
        "ACTION-Request-Normal": int(management) + int(hls),  # shift_time, pass 3
    })
    meter.received.clear()  # our client's requests follow
    if management:  # what gurux wrote and did is what the meter keeps: our client sees it
        assert our_clock(meter, security, tmp_path) == FROZEN + dt.timedelta(hours=1, seconds=60)
    if hls:  # gurux really ciphered: the meter counted its ICs
        from_gurux = [r for r in meter.station.counters.received if r.system_title == GURUX_TITLE]
        assert any(r.where == "f(StoC)" for r in from_gurux)
        assert len(from_gurux) > 5 and all(r.accepted for r in from_gurux)
