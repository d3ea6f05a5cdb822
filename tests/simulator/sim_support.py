"""Shared helpers of the simulator tests: a settable clock and association contexts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from edge_agent.dlms.apdu.conformance import CLIENT_DEFAULT, Conformance
from edge_agent.simulator.meter_models import SERVER_CONFORMANCE, SimulatedMeter, build
from edge_agent.simulator.objects import AssociationContext, Request

START = datetime(2025, 3, 10, 12, 7, 30, tzinfo=UTC)
NEGOTIATED = CLIENT_DEFAULT & SERVER_CONFORMANCE


class FakeClock:
    """The world's time, moved by the test."""

    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def make(profile: str = "t210d", seed: int = 42, now: datetime = START
         ) -> tuple[SimulatedMeter, FakeClock]:
    clock = FakeClock(now)
    return build(profile, seed, clock), clock


def context(meter: SimulatedMeter, client_sap: int = 1, *, max_pdu_size: int = 1024,
            conformance: Conformance = NEGOTIATED, authenticated: bool = True
            ) -> AssociationContext:
    return AssociationContext(client_sap, meter.view_for(client_sap), conformance,
                              max_pdu_size, authenticated=authenticated)


def request(meter: SimulatedMeter, client_sap: int = 1) -> Request:
    return Request(meter.meter.now(), meter.meter.world_now(), context(meter, client_sap))
