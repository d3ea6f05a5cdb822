"""In-memory client <-> meter harness for the session tests: no sockets, no clock.

``Meter`` is a tiny object model (a dict of attribute values) behind the same
``handler(request, context)`` contract as the simulator's RequestHandler.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from edge_agent.dlms import apdu as x
from edge_agent.dlms.association.client import ClientSession, ClientSettings
from edge_agent.dlms.association.events import SendApdu
from edge_agent.dlms.association.server import (
    AssociationFacts,
    ClientAccess,
    CounterLog,
    ServerSession,
    ServerSettings,
)
from edge_agent.dlms.secret import Secret

EK = Secret(bytes.fromhex("000102030405060708090a0b0c0d0e0f"), "EK")
AK = Secret(bytes.fromhex("d0d1d2d3d4d5d6d7d8d9dadbdcdddedf"), "AK")
CLIENT_TITLE = bytes.fromhex("434c496a2ae598ef")
METER_TITLE = bytes.fromhex("5341477df129c270")
CTOS = bytes.fromhex("6e637c1b76087bc1ee6992c1fbde1808")
STOC = bytes.fromhex("de7d378e5d7e2aab24ffbc77ceae5208")

ENERGY = x.CosemAttributeDescriptor(3, bytes((1, 0, 1, 8, 0, 255)), 2)
VOLTAGE = x.CosemAttributeDescriptor(3, bytes((1, 0, 32, 7, 0, 255)), 2)
PROFILE = x.CosemAttributeDescriptor(7, bytes((1, 0, 99, 1, 0, 255)), 2)
MISSING = x.CosemAttributeDescriptor(3, bytes((1, 0, 99, 99, 0, 255)), 2)
CLOCK_SHIFT = x.CosemMethodDescriptor(8, bytes((0, 0, 1, 0, 0, 255)), 6)


def counter(start: int) -> Iterator[int]:
    return itertools.count(start)


@dataclass
class Meter:
    """Attribute values by (class, OBIS, attribute); GET datablocks like a real meter."""

    values: dict[tuple[int, bytes, int], Any] = field(
        default_factory=lambda: {
            (ENERGY.class_id, ENERGY.instance_id, 2): 123456,
            (VOLTAGE.class_id, VOLTAGE.instance_id, 2): 2301,
            (PROFILE.class_id, PROFILE.instance_id, 2): bytes(range(256)) * 8,
        }
    )
    blocks: list[Any] = field(default_factory=list)
    actions: list[Any] = field(default_factory=list)

    def _read(self, descriptor: x.CosemAttributeDescriptor) -> Any:
        key = (descriptor.class_id, bytes(descriptor.instance_id), descriptor.attribute_id)
        return self.values.get(key, x.DataAccessResult.OBJECT_UNDEFINED)

    def handle(self, request: Any, context: AssociationFacts) -> Any:
        invoke = request.invoke_id_and_priority
        if isinstance(request, x.GetRequestNormal):
            response = x.GetResponseNormal(invoke, self._read(request.descriptor))
            return self._maybe_blocks(response, 4, context)
        if isinstance(request, x.GetRequestWithList):
            results = tuple(
                self._read(item.descriptor) for item in request.attribute_descriptor_list
            )
            return self._maybe_blocks(x.GetResponseWithList(invoke, results), 3, context)
        if isinstance(request, x.GetRequestNext):
            return self.blocks.pop(0)
        if isinstance(request, x.SetRequestNormal):
            descriptor = request.descriptor
            self.values[
                (descriptor.class_id, bytes(descriptor.instance_id), descriptor.attribute_id)
            ] = request.value
            return x.SetResponseNormal(invoke, x.DataAccessResult.SUCCESS)
        if isinstance(request, x.ActionRequestNormal):
            self.actions.append(request.method_invocation_parameters)
            return x.ActionResponseNormal(
                invoke, x.ActionResponseWithOptionalData(x.ActionResult.SUCCESS)
            )
        return x.ExceptionResponse(
            x.StateError.SERVICE_UNKNOWN, x.ExceptionServiceError.SERVICE_NOT_SUPPORTED
        )

    def _maybe_blocks(self, response: Any, head: int, context: AssociationFacts) -> Any:
        encoded = response.encode()
        if len(encoded) <= context.max_pdu_size:
            return response
        blocks = x.split_get_response(
            response.invoke_id_and_priority, encoded[head:], context.max_pdu_size
        )
        self.blocks = blocks[1:]
        return blocks[0]


@dataclass
class Link:
    """One client session and one meter session wired back to back, with a wire log."""

    client: ClientSession
    server: ServerSession
    meter: Meter
    wire: list[tuple[str, bytes]] = field(default_factory=list)

    def exchange(self, apdu: bytes) -> Any:
        """Send ``apdu``, answer every SendApdu, return the final event."""
        while True:
            self.wire.append(("client", apdu))
            reply = self.server.receive_apdu(apdu)
            assert reply is not None
            self.wire.append(("meter", reply))
            event = self.client.receive_apdu(reply)
            if not isinstance(event, SendApdu):
                return event
            apdu = event.apdu

    def associate(self) -> Any:
        return self.exchange(self.client.associate())


def make_link(
    client_settings: ClientSettings,
    access: ClientAccess,
    *,
    meter_keys: tuple[Secret, Secret] = (EK, AK),
    suite: int | None = None,
    client_public_keys: dict[bytes, Any] | None = None,
    meter_signing_key: ec.EllipticCurvePrivateKey | None = None,
    client_ic: int = 1,
    server_ic: int = 1000,
    stoc: bytes = STOC,
    ctos: bytes = CTOS,
    counters: CounterLog | None = None,
    meter: Meter | None = None,
) -> Link:
    meter = meter or Meter()
    settings = ServerSettings(
        system_title=METER_TITLE,
        clients={access.sap: access},
        suite=client_settings.suite if suite is None else suite,
        ek=meter_keys[0],
        ak=meter_keys[1],
        signing_key=meter_signing_key,
        client_public_keys=client_public_keys or {},
    )
    server = ServerSession(
        settings,
        access.sap,
        handler=meter.handle,
        make_context=lambda facts: facts,
        next_invocation_counter=counter(server_ic).__next__,
        next_challenge=lambda: stoc,
        counters=counters,
    )
    client = ClientSession(client_settings, counter(client_ic).__next__, ctos)
    return Link(client, server, meter)
