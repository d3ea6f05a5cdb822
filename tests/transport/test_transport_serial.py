"""SerialTransport errors and the optical mode E sign-on against a fake meter on a pty."""

from __future__ import annotations

import errno
import threading

import pytest

from edge_agent.dlms.errors import NoResponseError, TransportError
from edge_agent.transport.pty import PtyPair
from edge_agent.transport.serial import SerialTransport, _explain_open_error, optical_sign_on


def test_missing_device_names_the_fix(tmp_path) -> None:
    with pytest.raises(TransportError, match="not found: check the cable"):
        SerialTransport(str(tmp_path / "ttyUSB9"))


def test_permission_error_names_the_dialout_group() -> None:
    message = _explain_open_error("/dev/ttyUSB0", OSError(errno.EACCES, "Permission denied"))
    assert "add your user to the dialout group" in message


def test_bad_parity_is_rejected_before_opening() -> None:
    with pytest.raises(TransportError, match="parity"):
        SerialTransport("/dev/null", parity="X")


def test_rs485_falls_back_to_software_direction_control() -> None:
    # A pty has no kernel RS-485 mode (TIOCSRS485): the transport must fall back, not fail.
    with (
        PtyPair() as pair,
        SerialTransport(pair.path_a, 9600, rs485=True, rs485_delay_before_rx=0.001) as line,
    ):
        assert line.rs485_driver == "software"
    with PtyPair() as pair, SerialTransport(pair.path_a, 9600) as line:
        assert line.rs485_driver is None


@pytest.fixture
def line_settings(monkeypatch) -> list[tuple]:
    """Record SerialTransport.configure calls; apply only the baud rate.

    Some kernels' pty drivers refuse CS7 or a parity change (EINVAL) although real UARTs
    accept 7E1; a pty ignores the character format, so the recorded calls are checked.
    """
    calls: list[tuple] = []
    original = SerialTransport.configure

    def configure(self, baud: int, parity: str = "N", bytesize: int = 8) -> None:
        calls.append((baud, parity, bytesize))
        original(self, baud, "N", 8)

    monkeypatch.setattr(SerialTransport, "configure", configure)
    return calls


def test_optical_sign_on_switches_to_the_agreed_baud(line_settings) -> None:
    with PtyPair() as pair:
        seen: list[bytes] = []
        ready = threading.Event()  # the relay drops bytes sent before the meter side is open

        def fake_meter() -> None:
            with SerialTransport(pair.path_a, 300) as meter:
                ready.set()
                request = b""
                while not request.endswith(b"\r\n"):
                    request += meter.read(2)
                seen.append(request)
                meter.write(b"/SAG5\\2T210D\r\n")
                ack = b""
                while not ack.endswith(b"\r\n"):
                    ack += meter.read(2)
                seen.append(ack)

        thread = threading.Thread(target=fake_meter, daemon=True)
        thread.start()
        assert ready.wait(5)
        with SerialTransport(pair.path_b, 9600) as client:
            identification = optical_sign_on(client, max_baud=19200, settle=0.0)
            assert (identification.manufacturer, identification.identification) == ("SAG", "T210D")
        thread.join(timeout=5)
        assert line_settings == [(300, "E", 7), (9600, "N", 8)]
        assert seen == [b"/?!\r\n", b"\x06252\r\n"]


def test_optical_sign_on_without_answer_is_no_response(line_settings) -> None:
    with (
        PtyPair() as pair,
        SerialTransport(pair.path_b) as client,
        pytest.raises(NoResponseError, match="optical head"),
    ):
        optical_sign_on(client, timeout=0.3)
