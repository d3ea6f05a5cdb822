"""`dlms-edge simulate --push FORMAT --tcp HOST:PORT`: a pushing meter sends to a listener;
what arrives decodes with the receiving side's PushDecoder and carries increasing counters."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import pytest

from edge_agent import children
from edge_agent.dlms.push.body import parse_object_list
from edge_agent.dlms.push.decoder import PushDecoder, PushMessage
from edge_agent.dlms.secret import Secret

EK = "000102030405060708090a0b0c0d0e0f"
AK = "d0d1d2d3d4d5d6d7d8d9dadbdcdddedf"
# The simulator's push setup object list (IDIS pushes carry values only, in this order).
IDIS_PUSH_OBJECTS = parse_object_list(["0.0.25.9.0.255", "0.0.1.0.0.255", "1.0.1.8.0.255@0,Wh",
                                       "1.0.2.8.0.255@0,Wh", "1.0.1.7.0.255@0,W", "1.0.2.7.0.255@0,W"])


def _receive_pushes(fmt: str, extra: list[str], count: int) -> bytes:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        listener.settimeout(20)
        process = children.spawn(  # ends with this test process, however it ends
            [sys.executable, "-m", "edge_agent", "simulate", "--push", fmt, "--tcp", f"127.0.0.1:{port}",
             "--push-interval", "0.2", "--count", str(count), "--ek", EK, *extra],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        try:
            connection, _ = listener.accept()
            connection.settimeout(20)
            received = b""
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                chunk = connection.recv(65536)
                if not chunk:
                    break
                received += chunk
            connection.close()
            _, err = process.communicate(timeout=20)
        finally:
            process.kill()
    assert process.returncode == 0, err.decode()
    return received


@pytest.mark.parametrize(("fmt", "extra"), [("mbus", []), ("dsmr", ["--ak", AK]), ("hdlc", [])])
def test_pushes_arrive_decodable_with_increasing_counters(fmt: str, extra: list[str]) -> None:
    received = _receive_pushes(fmt, extra, count=3)
    decoder = PushDecoder(
        fmt, ek=Secret(bytes.fromhex(EK), "EK"),
        ak=Secret(bytes.fromhex(AK), "AK") if extra else None,
        objects=IDIS_PUSH_OBJECTS if fmt == "hdlc" else None,
    )
    messages = [m for m in decoder.feed(received) if isinstance(m, PushMessage)]
    assert len(messages) == 3
    counters = [m.invocation_counter for m in messages]
    assert counters == sorted(set(counters)), counters
    energy = [item for item in messages[0].items if item.obis.dotted == "1.0.1.8.0.255"]
    assert energy and isinstance(energy[0].value, int | float) and energy[0].value > 0


def test_push_without_key_is_a_clear_error() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "edge_agent", "simulate", "--push", "mbus", "--tcp", "127.0.0.1:9"],
        capture_output=True, text=True, timeout=30, check=False,
    )
    assert result.returncode == 2
    assert "--ek" in result.stderr
