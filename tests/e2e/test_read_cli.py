"""Issue 3 done-when, as a user runs it: `dlms-edge simulate` + `dlms-edge read`.

Every test runs the real CLI as a subprocess against a simulator subprocess on 127.0.0.1
(TCP wrapper, HDLC over TCP) or on a pty pair (HDLC over a serial line at 9600 baud).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_support import Simulator, dlms_edge

from edge_agent.dlms.link.wrapper import WrapperDecoder
from edge_agent.transport.pty import PtyPair

pytestmark = pytest.mark.timeout(60)

DONE_WHEN = ["1.0.1.8.0.255", "1.0.32.7.0.255", "1.0.1.7.0.255", "0.0.1.0.0.255"]
TWENTY_REGISTERS = [
    f"1.0.{c}.{d}.{e}.255"
    for c, d, e in (
        (1, 8, 0), (2, 8, 0), (3, 8, 0), (4, 8, 0), (1, 8, 1), (1, 8, 2), (2, 8, 1), (2, 8, 2),
        (1, 7, 0), (2, 7, 0), (14, 7, 0), (13, 7, 0), (32, 7, 0), (31, 7, 0), (33, 7, 0),
        (52, 7, 0), (51, 7, 0), (53, 7, 0), (72, 7, 0), (71, 7, 0),
    )
]
_FRAME = re.compile(r"edge_agent\.frames: (tx|rx) ([0-9a-f]+)")


@pytest.fixture(scope="module")
def simulator() -> Iterator[Simulator]:
    with Simulator() as sim:
        yield sim


def assert_done_when_output(stdout: str) -> None:
    values = json.loads(stdout)
    assert list(values) == DONE_WHEN
    energy, voltage, power, clock = (values[code] for code in DONE_WHEN)
    assert energy["unit"] == "Wh" and isinstance(energy["value"], int) and energy["value"] > 0
    # scaler -1: the raw long-unsigned in 0.1 V became volts
    assert voltage["unit"] == "V" and voltage["scaler"] == -1 and 200 < voltage["value"] < 260
    assert power["unit"] == "W" and isinstance(power["value"], (int, float))
    assert clock["unit"] is None
    moment = dt.datetime.fromisoformat(clock["value"])
    assert abs(moment - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=2)
    for entry in values.values():
        assert {"value", "unit", "ts"} <= set(entry)


@pytest.mark.parametrize("link", [[], ["--hdlc"]], ids=["wrapper", "hdlc-over-tcp"])
def test_read_done_when_over_tcp(simulator: Simulator, tmp_path: Path, link: list[str]) -> None:
    result = dlms_edge("read", "--tcp", simulator.tcp, *link, "--state-dir", str(tmp_path), "--json", *DONE_WHEN)
    assert result.returncode == 0, result.stderr
    assert_done_when_output(result.stdout)
    assert result.stderr == ""


def test_read_done_when_over_a_pty_pair(tmp_path: Path) -> None:
    pair = PtyPair()
    try:
        with Simulator("--serial", pair.path_a, "--baud", "9600", tcp=False):
            result = dlms_edge(
                "read", "--serial", pair.path_b, "--baud", "9600", "--state-dir", str(tmp_path), "--json", *DONE_WHEN
            )
    finally:
        pair.close()
    assert result.returncode == 0, result.stderr
    assert_done_when_output(result.stdout)


def test_read_prints_a_human_table(simulator: Simulator, tmp_path: Path) -> None:
    result = dlms_edge("read", "--tcp", simulator.tcp, "--state-dir", str(tmp_path), "1-0:1.8.0*255", "1.0.32.7.0.255")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert re.fullmatch(r"1\.0\.1\.8\.0\.255\s+Active energy import \(\+A\)\s+\d+ Wh", lines[0])
    assert re.fullmatch(r"1\.0\.32\.7\.0\.255\s+Voltage L1\s+\d+\.\d V", lines[1])


def _requests_after_association(stderr: str) -> list[bytes]:
    """The APDUs the client sent after the AARQ and before the RLRQ (wrapper frames)."""
    apdus = []
    for direction, frame in _FRAME.findall(stderr):
        if direction == "tx":
            (decoded,) = WrapperDecoder().feed(bytes.fromhex(frame))
            apdus.append(decoded.apdu)
    assert apdus[0][0] == 0x60 and apdus[-1][0] == 0x62, "AARQ first, RLRQ last"
    return apdus[1:-1]


def test_twenty_registers_take_at_most_three_exchanges(simulator: Simulator, tmp_path: Path) -> None:
    first = dlms_edge("read", "--tcp", simulator.tcp, "--state-dir", str(tmp_path), "--verbose", "--json", *TWENTY_REGISTERS)
    assert first.returncode == 0, first.stderr
    assert list(json.loads(first.stdout)) == TWENTY_REGISTERS
    requests = _requests_after_association(first.stderr)
    # values and scalers of 20 registers: 40 attributes in GET-Request-With-List (C0 03)
    assert 1 <= len(requests) <= 3
    assert all(apdu[:2] == b"\xc0\x03" for apdu in requests)
    assert re.search(rf"{len(requests)} request/response exchanges for 20 objects", first.stderr)

    # Scalers are cached in the state dir: the second read needs one with-list only.
    second = dlms_edge("read", "--tcp", simulator.tcp, "--state-dir", str(tmp_path), "-v", *TWENTY_REGISTERS)
    assert second.returncode == 0, second.stderr
    requests = _requests_after_association(second.stderr)
    assert len(requests) == 1 and requests[0][:2] == b"\xc0\x03"
    assert requests[0][3] == 20, "one GET-Request-With-List of the 20 value attributes"


def test_read_all_objects_of_the_object_list(simulator: Simulator, tmp_path: Path) -> None:
    result = dlms_edge("read", "--tcp", simulator.tcp, "--state-dir", str(tmp_path), "--json", "--all")
    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout)
    assert {*DONE_WHEN, "0.0.96.1.0.255"} <= set(values)
    assert values["1.0.14.7.0.255"]["unit"] == "Hz"


# --- errors: one clear line, the documented exit code -------------------------------------


def _unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


def test_nothing_listening_is_connection_refused(tmp_path: Path) -> None:
    result = dlms_edge("read", "--tcp", f"127.0.0.1:{_unused_port()}", "--state-dir", str(tmp_path), "1.0.1.8.0.255")
    assert result.returncode == 3
    assert "connection refused" in _one_error_line(result.stderr)
    assert result.stdout == ""


def test_wrong_hdlc_server_address_names_it(simulator: Simulator, tmp_path: Path) -> None:
    started = time.monotonic()
    result = dlms_edge(
        "read", "--tcp", simulator.tcp, "--hdlc", "--physical", "17", "--timeout", "0.3", "--retries", "2",
        "--state-dir", str(tmp_path), "1.0.1.8.0.255",
    )
    assert time.monotonic() - started < 10
    assert result.returncode == 3
    line = _one_error_line(result.stderr)
    assert "no answer from HDLC server address 1/17" in line


def test_wrong_lls_password_is_an_association_refusal(simulator: Simulator, tmp_path: Path) -> None:
    result = dlms_edge(
        "read", "--tcp", simulator.tcp, "--client", "1", "--auth", "low", "--password", "wrong",
        "--state-dir", str(tmp_path), "1.0.1.8.0.255",
    )
    assert result.returncode == 4
    line = _one_error_line(result.stderr)
    assert "refused the association" in line and "authentication-failure" in line  # the AARE diagnostic


def test_the_right_lls_password_from_the_environment_is_accepted(simulator: Simulator, tmp_path: Path) -> None:
    result = dlms_edge(
        "read", "--tcp", simulator.tcp, "--client", "1", "--auth", "low", "--state-dir", str(tmp_path),
        "--json", "1.0.1.8.0.255", env={"DLMS_PASSWORD": "00000000"},
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["1.0.1.8.0.255"]["unit"] == "Wh"


def test_unknown_obis_is_object_undefined(simulator: Simulator, tmp_path: Path) -> None:
    result = dlms_edge("read", "--tcp", simulator.tcp, "--state-dir", str(tmp_path), "1.0.1.8.9.255")
    assert result.returncode == 6
    line = _one_error_line(result.stderr)
    assert "object-undefined" in line and "1.0.1.8.9.255" in line


def test_one_unknown_obis_among_known_ones_is_a_partial_read(simulator: Simulator, tmp_path: Path) -> None:
    result = dlms_edge("read", "--tcp", simulator.tcp, "--state-dir", str(tmp_path), "--json", "1.0.1.8.0.255", "1.0.1.8.9.255")
    assert result.returncode == 8  # partial read (README, "Exit codes")
    values = json.loads(result.stdout)
    assert values["1.0.1.8.0.255"]["unit"] == "Wh"
    assert values["1.0.1.8.9.255"]["value"] is None and values["1.0.1.8.9.255"]["error"] == "object-undefined"
    assert "object-undefined" in _one_error_line(result.stderr)


@pytest.mark.parametrize("text", ["1.0.x.8.0.255", "1.0.1.8.0.256", "01000108"])
def test_bad_obis_text_is_a_usage_error(text: str, tmp_path: Path) -> None:
    # No meter needed: the codes are checked before connecting.
    result = dlms_edge("read", "--tcp", f"127.0.0.1:{_unused_port()}", "--state-dir", str(tmp_path), text)
    assert result.returncode == 2
    line = _one_error_line(result.stderr)
    assert f"{text!r} is not an OBIS code" in line


def test_bad_tcp_address_is_a_usage_error(tmp_path: Path) -> None:
    result = dlms_edge("read", "--tcp", "127.0.0.1:notaport", "--state-dir", str(tmp_path), "1.0.1.8.0.255")
    assert result.returncode == 2
    assert "HOST:PORT" in _one_error_line(result.stderr)


def test_simulate_on_a_busy_port_says_so() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        result = dlms_edge("simulate", "--tcp", f"127.0.0.1:{busy.getsockname()[1]}", timeout=10)
    assert result.returncode == 3
    assert "cannot listen on" in result.stderr and "Traceback" not in result.stderr
