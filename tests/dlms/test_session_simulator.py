"""The session pair in front of the simulator's object model (its RequestHandler)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from session_harness import AK, CLIENT_TITLE, CTOS, EK, STOC, Link

from edge_agent.dlms import apdu as x
from edge_agent.dlms.association.client import ClientSession, ClientSettings, Pass3SigningRequired
from edge_agent.dlms.association.server import (
    AssociationFacts,
    ClientAccess,
    CounterLog,
    ServerSession,
    ServerSettings,
)

simulator = pytest.importorskip("edge_agent.simulator.handler")
profiles = pytest.importorskip("edge_agent.simulator.meter_models")

ENERGY = x.CosemAttributeDescriptor(3, bytes((1, 0, 1, 8, 0, 255)), 2)
PROFILE = x.CosemAttributeDescriptor(7, bytes((1, 0, 99, 1, 0, 255)), 2)
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def t210d_link(settings: ClientSettings, client_key: ec.EllipticCurvePrivateKey) -> Link:
    meter = profiles.build("t210d", seed=7, clock=lambda: NOW)
    handler = simulator.RequestHandler(meter)

    def make_context(facts: AssociationFacts):
        return profiles.AssociationContext(
            client_sap=facts.client_sap,
            view=meter.view_for(facts.client_sap),
            conformance=facts.conformance,
            max_pdu_size=facts.max_pdu_size,
            mechanism_id=facts.mechanism_id,
            context_id=facts.context_id,
            authenticated=facts.authenticated,
            session=facts.session,
        )

    server_settings = ServerSettings(
        system_title=meter.system_title,
        clients={
            1: ClientAccess(
                1, security="authenc", authentication="hls-gmac", require_signed_pass3=True
            ),
            16: ClientAccess(16),
        },
        suite=1,
        ek=EK,
        ak=AK,
        client_public_keys={CLIENT_TITLE: client_key.public_key()},
    )
    server = ServerSession(
        server_settings,
        1,
        handler=handler.handle,
        make_context=make_context,
        next_invocation_counter=itertools.count(9000).__next__,
        next_challenge=lambda: STOC,
        counters=CounterLog(),
    )
    return Link(ClientSession(settings, itertools.count(1).__next__, CTOS), server, None)  # type: ignore[arg-type]


def settings(signing: str, key: ec.EllipticCurvePrivateKey) -> ClientSettings:
    return ClientSettings(
        security="authenc",
        suite=1,
        authentication="hls-gmac",
        system_title=CLIENT_TITLE,
        ek=EK,
        ak=AK,
        signing_key=key,
        pass3_signing=signing,
        max_receive_pdu_size=512,
    )


def test_t210d_management_client_never_then_always() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(Pass3SigningRequired):
        t210d_link(settings("never", key), key).associate()
    link = t210d_link(settings("always", key), key)
    assert link.associate().pass3_signed
    energy = link.exchange(link.client.get(ENERGY)).value
    assert isinstance(energy, int) and energy > 0
    rows = link.exchange(link.client.get(PROFILE))
    assert rows.blocks > 1 and len(rows.value) > 96
