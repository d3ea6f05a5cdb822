"""MeterClient against the simulator in the same process (127.0.0.1, a free port).

Batching with GET-Request-With-List, the scaler cache, the object-list fallback for a
wrong class guess, the invocation counter learned from the meter's frame counter, and the
errors a user sees.
"""

from __future__ import annotations

import datetime as dt
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge_agent.client import client as client_module
from edge_agent.client.client import FRAME_COUNTER, MeterClient, counter_identity
from edge_agent.client.connection import ConnectionSettings
from edge_agent.dlms.association.client import ClientSettings
from edge_agent.dlms.cosem.obis import Obis
from edge_agent.dlms.errors import (
    AssociationError,
    AuthenticationError,
    NoResponseError,
    ServiceError,
)
from edge_agent.dlms.secret import Secret
from edge_agent.simulator.meter import (
    EXAMPLE_AK,
    EXAMPLE_EK,
    SimulatedMeterStation,
    SimulatorOptions,
)
from edge_agent.simulator.server import MeterServer
from edge_agent.state.counters import InvocationCounterStore

pytestmark = pytest.mark.timeout(30)

FROZEN = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
ENERGY, VOLTAGE, SERIAL = Obis.parse("1.0.1.8.0.255"), Obis.parse("1.0.32.7.0.255"), Obis.parse("0.0.96.1.0.255")
CLOCK = Obis.parse("0.0.1.0.0.255")
HLS = SimulatorOptions(security="authenc", authentication="hls-gmac", suite=0, signed_pass3=False)
PUBLIC, GENERIC = ClientSettings(), SimulatorOptions()
CLIENT_TITLE = bytes.fromhex("444c4d5300000001")


def hls_settings(ak: bytes = EXAMPLE_AK) -> ClientSettings:
    return ClientSettings(
        security="authenc", suite=0, authentication="hls-gmac", system_title=CLIENT_TITLE,
        ek=Secret(EXAMPLE_EK, "EK"), ak=Secret(ak, "AK"),
    )


class Meter:
    def __init__(self, options: SimulatorOptions) -> None:
        self.station = SimulatedMeterStation(options, clock=lambda: FROZEN)
        self.server = MeterServer([self.station.station])
        self.address = self.server.start_tcp("127.0.0.1", 0)

    def client(self, state: Path, settings: ClientSettings = PUBLIC, *, hdlc: bool = False,
               sap: int = 16, **kwargs) -> MeterClient:
        connection = ConnectionSettings(tcp=self.address, hdlc=hdlc, client_sap=sap, timeout=2)
        return MeterClient(connection, settings, meter_id="m1", state_dir=state, pass3_signing="never",
                           clock=lambda: FROZEN, **kwargs)


@pytest.fixture
def meters() -> Iterator:
    started: list[Meter] = []

    def start(options: SimulatorOptions = GENERIC) -> Meter:
        started.append(Meter(options))
        return started[-1]

    yield start
    for meter in started:
        meter.server.stop()


@pytest.mark.parametrize("hdlc", [False, True], ids=["wrapper", "hdlc"])
def test_read_scales_and_names_values(meters, tmp_path: Path, hdlc: bool) -> None:
    with meters().client(tmp_path, hdlc=hdlc) as meter:
        energy, voltage, serial, clock = meter.read([ENERGY, VOLTAGE, SERIAL, CLOCK])
    assert (energy.obis, energy.unit, energy.class_id) == (ENERGY, "Wh", 3)
    assert voltage.unit == "V" and voltage.scaler == -1 and voltage.value == pytest.approx(voltage.raw / 10)
    assert serial.unit is None and serial.value.startswith("DLE")
    assert dt.datetime.fromisoformat(clock.value) == FROZEN
    assert clock.timestamp == FROZEN


def test_scalers_are_read_once_and_batched_with_the_values(meters, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(client_module, "WITH_LIST_LIMIT", 8)
    registers = [Obis.parse(f"1.0.{c}.7.0.255") for c in (1, 2, 13, 14, 31, 32, 33, 51, 52, 53)]
    meter = meters()
    with meter.client(tmp_path) as first:
        first.exchanges = 0
        readings = first.read(registers)
        assert first.exchanges == 3  # 20 attributes in lists of 8
    with meter.client(tmp_path) as second:  # scalers come from the state dir now
        second.exchanges = 0
        again = second.read(registers)
        assert second.exchanges == 2  # 10 values in lists of 8
    assert [r.unit for r in readings] == [r.unit for r in again]
    assert [r.value for r in readings] == [r.value for r in again]


def test_a_wrong_class_is_corrected_from_the_object_list(meters, tmp_path: Path) -> None:
    with meters().client(tmp_path) as meter:
        (serial,) = meter.read([SERIAL], class_ids={SERIAL: 3})  # it is a Data object (class 1)
    assert serial.class_id == 1 and serial.value.startswith("DLE")


def test_refused_objects_are_listed_unless_nothing_was_read(meters, tmp_path: Path) -> None:
    unknown = Obis.parse("1.0.1.8.9.255")
    with meters().client(tmp_path) as meter:
        readings = meter.read([ENERGY, unknown])
        assert [r.obis for r in readings] == [ENERGY]
        assert [(f.obis, f.error) for f in meter.failures] == [(unknown, "object-undefined")]
        with pytest.raises(ServiceError, match="object-undefined: the meter has no object 1.0.1.8.9.255") as error:
            meter.read([unknown])
        assert error.value.reason == "object-undefined"


def test_a_fresh_state_dir_continues_above_the_meter_frame_counter(meters, tmp_path: Path) -> None:
    meter = meters(HLS)
    for _ in range(2):
        with meter.client(tmp_path / "a", hls_settings(), sap=1) as other:
            other.read([ENERGY])
    highest = max(r.invocation_counter for r in meter.station.counters.received)
    with meter.client(tmp_path / "b", hls_settings(), sap=1) as fresh:
        fresh.read([ENERGY])
    refused = meter.station.counters.refused
    assert refused == []
    fresh_counters = [r.invocation_counter for r in meter.station.counters.received][-3:]
    assert min(fresh_counters) > highest


def test_a_stale_counter_is_refused_once_then_resynchronised(meters, tmp_path: Path) -> None:
    meter = meters(HLS)
    with meter.client(tmp_path / "a", hls_settings(), sap=1) as other:
        other.read([ENERGY])
    stale = InvocationCounterStore(tmp_path / "b", block_size=1)
    stale.next(*counter_identity(hls_settings()))  # used once, long ago: no fresh-store read
    stale.close()
    with meter.client(tmp_path / "b", hls_settings(), sap=1) as behind:
        (energy,) = behind.read([ENERGY])
    assert energy.unit == "Wh"
    assert len(meter.station.counters.refused) == 1  # the stale AARQ, then one retry above


def test_wrong_keys_are_not_blamed_on_the_counter(meters, tmp_path: Path) -> None:
    meter = meters(HLS)
    with meter.client(tmp_path, hls_settings(), sap=1) as good:
        good.read([ENERGY])
    # However the meter words it, a wrong key with keys in use is a security failure (exit 5).
    with pytest.raises(AuthenticationError, match="the counter is not the cause; wrong keys: check the EK, the AK") as error:
        meter.client(tmp_path, hls_settings(ak=bytes(16)), sap=1).connect()
    assert bytes(16).hex() not in str(error.value) and EXAMPLE_EK.hex() not in str(error.value)


def test_a_meter_without_the_frame_counter_object_is_still_read(meters, tmp_path: Path, caplog) -> None:
    meter = meters(HLS)
    missing = Obis.parse("0.0.43.1.9.255")
    assert missing != FRAME_COUNTER
    with caplog.at_level("INFO", logger="edge_agent.client.client"), meter.client(
        tmp_path, hls_settings(), sap=1, frame_counter=missing
    ) as reader:
        (energy,) = reader.read([ENERGY])  # the fresh store tried the public client first
    assert energy.unit == "Wh"
    assert "frame counter 0.0.43.1.9.255 not readable by the public client" in caplog.text


def test_wrong_lls_password_gives_the_aare_diagnostic(meters, tmp_path: Path) -> None:
    settings = ClientSettings(authentication="low", password=Secret(b"nope", "LLS password"))
    with pytest.raises(AssociationError, match="authentication-failure"):
        meters().client(tmp_path, settings, sap=1).connect()


def test_wrapper_without_answer_suggests_hdlc(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:
        accepted: list[socket.socket] = []
        threading.Thread(target=lambda: accepted.append(silent.accept()[0]), daemon=True).start()
        connection = ConnectionSettings(tcp=silent.getsockname()[:2], timeout=0.3)
        client = MeterClient(connection, ClientSettings(), meter_id="m", state_dir=tmp_path)
        with pytest.raises(NoResponseError, match="add --hdlc"):
            client.connect()
        for sock in accepted:
            sock.close()
    assert client.link is None and client.transport is None  # nothing left open


def test_with_list_requests_fit_the_meter_receive_pdu(meters, tmp_path: Path) -> None:
    meter = meters(SimulatorOptions(max_receive_pdu_size=140))  # room for 10 descriptors
    registers = [Obis.parse(f"1.0.{c}.7.0.255") for c in (1, 2, 13, 14, 31, 32, 33, 51, 52, 53)]
    with meter.client(tmp_path) as small:
        assert small.associated.server_max_receive_pdu_size == 140
        small.exchanges = 0
        readings = small.read(registers)  # 20 attributes
        assert small.exchanges == 2
    assert len(readings) == 10
