"""Pty pairs: bytes both ways, pyserial on top, and HDLC client/server across them."""

from __future__ import annotations

import os
import threading
import time

from edge_agent.dlms.link.hdlc.connection import DataReceived, HdlcConnection, Role, State
from edge_agent.dlms.link.hdlc.frame import HdlcAddress
from edge_agent.transport.pty import PtyPair, open_pty
from edge_agent.transport.serial import SerialTransport


def read_exactly(fd: int, count: int, timeout: float = 2.0) -> bytes:
    import select

    got = b""
    deadline = time.monotonic() + timeout
    while len(got) < count and time.monotonic() < deadline:
        if select.select([fd], [], [], 0.1)[0]:
            got += os.read(fd, count - len(got))
    return got


def test_pty_pair_relays_both_ways() -> None:
    with PtyPair() as pair:
        a = os.open(pair.path_a, os.O_RDWR | os.O_NOCTTY)
        b = os.open(pair.path_b, os.O_RDWR | os.O_NOCTTY)
        try:
            frame = bytes(range(256)) * 4  # binary, incl. 0x0a/0x0d/0x03: raw mode matters
            os.write(a, frame)
            assert read_exactly(b, len(frame)) == frame
            os.write(b, b"\x7e\xa0\x07\x03\x21\x93\x0f\x01\x7e")
            assert read_exactly(a, 9) == b"\x7e\xa0\x07\x03\x21\x93\x0f\x01\x7e"
        finally:
            os.close(a)
            os.close(b)


def test_single_pty_is_raw() -> None:
    pty = open_pty()
    try:
        os.write(pty.master_fd, b"\r\n\x03x")
        assert read_exactly(pty.slave_fd, 4) == b"\r\n\x03x"
        assert pty.path.startswith("/dev/")
    finally:
        pty.close()


def test_serial_transports_over_a_pty_pair() -> None:
    with (
        PtyPair() as pair,
        SerialTransport(pair.path_a, 9600) as meter,
        SerialTransport(pair.path_b, 9600) as client,
    ):
        client.write(b"/?!\r\n")
        got = b""
        while len(got) < 5:
            chunk = meter.read(1.0)
            assert chunk, "relay lost the bytes"
            got += chunk
        assert got == b"/?!\r\n"
        assert client.read(0.1) == b""  # time-out gives empty bytes
        client.set_baud(19200)


def test_hdlc_client_and_server_over_a_pty_pair() -> None:
    server_address, client_address = HdlcAddress.server(1, 16), HdlcAddress.client(16)

    def meter(path: str, stop: threading.Event) -> None:
        with SerialTransport(path, 9600) as line:
            conn = HdlcConnection(Role.SERVER, server_address)
            while not stop.is_set():
                data = line.read(0.05)
                if not data:
                    conn.on_timeout()
                    continue
                conn.receive_data(data)
                for frame in conn.data_to_send():
                    line.write(frame)
                while (event := conn.next_event()) is not None:
                    if isinstance(event, DataReceived):
                        for frame in conn.send_data(event.apdu[::-1] * 3):
                            line.write(frame)

    with PtyPair() as pair:
        stop = threading.Event()
        thread = threading.Thread(target=meter, args=(pair.path_a, stop), daemon=True)
        thread.start()
        try:
            with SerialTransport(pair.path_b, 9600) as line:
                conn = HdlcConnection(Role.CLIENT, client_address, server_address)
                received = []

                def pump(frames: list[bytes]) -> None:
                    for frame in frames:
                        line.write(frame)
                    deadline = time.monotonic() + 5
                    while time.monotonic() < deadline:
                        data = line.read(0.3)
                        if not data:
                            pump_frames = conn.on_timeout()
                            for frame in pump_frames:
                                line.write(frame)
                            continue
                        conn.receive_data(data)
                        for frame in conn.data_to_send():
                            line.write(frame)
                        while (event := conn.next_event()) is not None:
                            received.append(event)
                        if received:
                            return

                pump([conn.send_connect()])
                assert conn.state is State.CONNECTED
                received.clear()
                pump(conn.send_data(bytes(range(100))))  # response of 300 bytes: 3 segments
                assert received == [DataReceived(bytes(range(100))[::-1] * 3)]
        finally:
            stop.set()
            thread.join(timeout=5)
