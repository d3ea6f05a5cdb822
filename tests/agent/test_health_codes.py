"""Health codes the agent publishes: every error maps into the contract, and the two codes
added later (bad_data, access_denied) come out where they should."""

from __future__ import annotations

import socket
import threading
from datetime import UTC, datetime

import pytest

from edge_agent.agent.meter_worker import HEALTH_CODES_BY_ERROR, health_code
from edge_agent.agent.push_listener import PushListener, PushSpec, TcpServerSource
from edge_agent.dlms.association.client import Pass3SigningRequired
from edge_agent.dlms.errors import (
    AssociationError,
    AuthenticationError,
    ConfigError,
    DecodeError,
    DlmsError,
    ExceptionResponseError,
    FrameError,
    NoResponseError,
    ProtocolError,
    ReplayError,
    ServiceError,
    TransportError,
    TruncatedError,
)
from edge_agent.dlms.link.wrapper import WrapperFrame
from edge_agent.dlms.push.body import parse_object_list
from edge_agent.mqtt.payloads import HEALTH_CODES, health_payload

pytestmark = pytest.mark.timeout(20)

CONTRACT = {"wrong_key", "counter_out_of_step", "association_refused", "unreachable",
            "push_stopped", "signature_rejected", "config_error", "bad_data", "access_denied"}


def test_the_contract_lists_the_codes_and_only_grows() -> None:
    assert HEALTH_CODES == CONTRACT
    assert {code for _, code in HEALTH_CODES_BY_ERROR} <= HEALTH_CODES


@pytest.mark.parametrize("code", sorted(CONTRACT))
def test_every_code_makes_a_health_payload(code: str) -> None:
    payload = health_payload(code, "message", datetime(2026, 1, 1, tzinfo=UTC))
    assert f'"code":"{code}"'.encode() in payload and b'"state":"problem"' in payload


@pytest.mark.parametrize("error, code", [
    (ServiceError("read-write-denied: use a client SAP with more rights", "read-write-denied"),
     "access_denied"),
    (ExceptionResponseError("refused", "service-not-allowed", "service-unsupported"),
     "access_denied"),
    (Pass3SigningRequired("unsigned pass 3", "service-not-allowed", "operation-not-possible"),
     "signature_rejected"),
    (AssociationError("rejected-permanent: authentication-failure"), "association_refused"),
    (DecodeError("get-response: unknown tag 0x99"), "bad_data"),
    (TruncatedError("data: expected 4 bytes"), "bad_data"),
    (FrameError("HDLC FCS mismatch"), "bad_data"),
    (NoResponseError("no UA"), "unreachable"),
    (TransportError("connection reset"), "unreachable"),
    (ProtocolError("unexpected invoke-id"), "unreachable"),
    (AuthenticationError("GMAC mismatch"), "wrong_key"),
    (ReplayError("counter 5 not above 7"), "counter_out_of_step"),
    (ConfigError("ek file missing"), "config_error"),
    (DlmsError("anything else"), "unreachable"),
    (RuntimeError("a bug"), "unreachable"),
], ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else v)
def test_errors_map_to_health_codes(error: BaseException, code: str) -> None:
    assert health_code(error) == code


def test_garbled_pushes_are_reported_as_bad_data() -> None:
    problems: list[tuple[str, str, str]] = []
    reported = threading.Event()

    def on_problem(meter_id: str, code: str, message: str) -> None:
        problems.append((meter_id, code, message))
        reported.set()

    objects = parse_object_list(["0.0.1.0.0.255", "1.0.1.8.0.255"])
    spec = PushSpec("garbled", "wrapper", TcpServerSource("127.0.0.1", 0), objects=objects)
    listener = PushListener(spec, lambda meter_id, readings: None, on_problem).start()
    try:
        assert listener.ready.wait(5) and listener.address is not None
        # A DataNotification cut after its tag: it frames, but does not decode.
        garbled = WrapperFrame(1, 1, b"\x0f\x00\x00").encode()
        with socket.create_connection(listener.address, timeout=5) as connection:
            connection.sendall(garbled * 2)
            assert not reported.wait(0.3)  # one or two bad telegrams are tolerated
            connection.sendall(garbled)
            assert reported.wait(5)
    finally:
        listener.stop()
    ((meter_id, code, message),) = problems
    assert (meter_id, code) == ("garbled", "bad_data") and "truncated" in message
