"""TcpTransport against a tiny 127.0.0.1 echo server, with time-outs."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from edge_agent.dlms.errors import TransportError
from edge_agent.transport.base import Transport
from edge_agent.transport.tcp import TcpTransport


@pytest.fixture
def echo_server() -> Iterator[tuple[str, int]]:
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(5)

    def serve() -> None:
        try:
            connection, _ = listener.accept()
        except OSError:
            return
        with connection:
            while data := connection.recv(4096):
                if data == b"bye":
                    break
                connection.sendall(data)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()
    listener.close()
    thread.join(timeout=5)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_echo_round_trip_and_protocol(echo_server) -> None:
    with TcpTransport(*echo_server, timeout=2) as transport:
        assert isinstance(transport, Transport)
        transport.write(b"\x00\x01\x00\x10\x00\x01\x00\x00")
        got = b""
        while len(got) < 8:
            got += transport.read(2)
        assert got == b"\x00\x01\x00\x10\x00\x01\x00\x00"
        transport.set_baud(9600)  # no-op on TCP


def test_read_times_out_with_empty_bytes(echo_server) -> None:
    with TcpTransport(*echo_server, timeout=2) as transport:
        start = time.monotonic()
        assert transport.read(0.2) == b""
        assert 0.15 < time.monotonic() - start < 2


def test_peer_close_is_a_transport_error(echo_server) -> None:
    with TcpTransport(*echo_server, timeout=2) as transport:
        transport.write(b"bye")
        with pytest.raises(TransportError, match="closed the connection"):
            transport.read(2)


def test_connection_refused_says_what_to_check() -> None:
    port = free_port()
    with pytest.raises(
        TransportError, match=f"connection refused by 127.0.0.1:{port}: is the meter"
    ):
        TcpTransport("127.0.0.1", port, timeout=2)


def test_unknown_host_is_a_transport_error() -> None:
    with pytest.raises(TransportError, match="cannot resolve host"):
        TcpTransport("no-such-host.invalid", 4059, timeout=2)


def test_close_is_idempotent(echo_server) -> None:
    transport = TcpTransport(*echo_server, timeout=2)
    transport.close()
    transport.close()
    with pytest.raises(TransportError):
        transport.write(b"x")
