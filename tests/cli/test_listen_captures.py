"""`dlms-edge listen` and `dlms-edge decode` fed real meters' captures over TCP and a pty.

The bytes are public captures (tests/fixtures/captures, sources in captures.json), sent
as a serial line or a converter delivers them: in small pieces, with garbage around.
Exit code, message and the absence of a traceback are checked through the real command.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from push_sender import pieces, send_when_listening

from edge_agent.cli import main
from edge_agent.transport.pty import PtyPair

CAPTURES = Path(__file__).resolve().parents[1] / "fixtures" / "captures"
E570_EK = "101112131415161718191a1b1c1d1e1f"  # stated beside the capture by its source
GARBAGE = b"\x00\xffboot: meter reader v1\r\n"


def capture(name: str) -> bytes:
    return bytes.fromhex(re.sub(r"[^0-9A-Fa-f]", "", (CAPTURES / name).read_text()))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def listen(port: int, *argv: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "edge_agent", "listen", "--tcp-listen", f"127.0.0.1:{port}",
         "--format", "hdlc", *argv],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_listen_deciphers_the_e570_block_transfer_amid_garbage() -> None:
    """Landis+Gyr E570: a ciphered push in general-block-transfer over five HDLC frames,
    only the first with the LLC header; garbage before, between and after."""
    frames = capture("smartmeter-datacollector/lg-e570-ciphered-gbt.hex").split(b"\x7e\x7e")
    wire = GARBAGE + b"\x7e\x00garbage\x7e".join(frames) + GARBAGE
    port = free_port()
    process = listen(port, "--ek", E570_EK, "--count", "1", "--duration", "20", "--json")
    send_when_listening(port, pieces(wire, 16), pause=0.001, linger=1.0, patience=10)
    out, err = process.communicate(timeout=40)
    assert process.returncode == 0, err
    assert "Traceback" not in out + err and E570_EK not in out + err
    push = json.loads(out.splitlines()[0])
    assert push["meter_id"] == "LGZ1030769231253"  # the logical device name the source names
    assert push["values"]["1.1.1.8.0.255"]["value"] == 862055


def test_listen_without_a_key_names_the_meter_and_the_options() -> None:
    """Landis+Gyr E450 (Austria), ciphered GBT, no key: refused, never a framing error."""
    port = free_port()
    process = listen(port, "--duration", "4")
    data = capture("smartmeter-datacollector/lg-e450-ciphered-gbt.hex")
    send_when_listening(port, pieces(data, 16), pause=0.001, linger=1.0, patience=10)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 5, err  # a key problem, as every wrong or missing key
    assert "Traceback" not in out + err
    assert "system title 4C475A6773781FD0 (manufacturer LGZ)" in err
    assert "SC 0x30" in err and "--ek HEX" in err and "--ak HEX" in err


@pytest.fixture
def pty_pair():  # type: ignore[no-untyped-def]
    pair = PtyPair()
    yield pair
    pair.close()


class Meter:
    """Writes a capture on the meter's side of the pty every half second, as a meter pushes
    periodically, in small pieces, until stopped (the listener may open its side late)."""

    def __init__(self, path: str, data: bytes, piece: int = 9) -> None:
        self.stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(path, data, piece), daemon=True)
        self._thread.start()

    def _run(self, path: str, data: bytes, piece: int) -> None:
        fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
        try:
            while not self.stopped.wait(0.5):
                for start in range(0, len(data), piece):
                    os.write(fd, data[start : start + piece])
        finally:
            os.close(fd)

    def stop(self) -> None:
        self.stopped.set()
        self._thread.join(5)


def test_listen_on_a_pty_joins_iskraemeco_segmented_frames(
        pty_pair: PtyPair, capsys: pytest.CaptureFixture[str]) -> None:
    """Iskraemeco AM550 (Switzerland): one push over three segmented HDLC frames."""
    meter = Meter(pty_pair.path_a, GARBAGE + capture("tasmota/iskra-am550-ch-issue8790.hex"))
    try:
        code = main(["listen", "--serial", pty_pair.path_b, "--format", "hdlc", "--count", "1",
                     "--duration", "15", "--json"])
    finally:
        meter.stop()
    out, err = capsys.readouterr()
    assert code == 0, err
    values = json.loads(out.splitlines()[0])["values"]
    assert values["1.1.1.8.0.255"] == {**values["1.1.1.8.0.255"], "value": 58276, "unit": "Wh"}
    assert values["1.0.32.7.0.255"]["value"] == 233.6


def test_listen_on_a_pty_reads_kaifa_tagged_date_time(
        pty_pair: PtyPair, capsys: pytest.CaptureFixture[str]) -> None:
    """Kaifa MA304H3E (Norway, list 1): the date-time comes as 09 0C ..., which used to
    make the whole push undecodable; the value is the one of the push object list given
    (1-0:1.7.0, W). The meter's time has no UTC deviation, so the reading keeps the time
    of reception."""
    meter = Meter(pty_pair.path_a, capture("amsreader/kaifa/gh493-2.hex") + GARBAGE)
    try:
        code = main(["listen", "--serial", pty_pair.path_b, "--format", "hdlc", "--count", "1",
                     "--duration", "15", "--json", "--objects", "1.0.1.7.0.255@0,W"])
    finally:
        meter.stop()
    out, err = capsys.readouterr()
    assert code == 0, err
    push = json.loads(out.splitlines()[0])
    assert push["values"]["1.0.1.7.0.255"] == {**push["values"]["1.0.1.7.0.255"],
                                               "value": 2277, "unit": "W"}


def test_decode_of_a_partial_capture_prints_the_rest_and_says_what_is_missing() -> None:
    """The E450 log of esphome #16942 ends inside the fourth frame."""
    done = subprocess.run(
        [sys.executable, "-m", "edge_agent", "decode", "--json",
         capture("esphome/lg-e450-cyprus-pr16942.hex").hex()],
        capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 7, done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert "29 byte(s) missing" in done.stderr
    tree = json.loads(done.stdout)
    assert tree["apdu"]["meter_number"] == "LGZ1020782546371"


def test_decode_of_a_ciphered_frame_without_a_key_names_sender_and_options() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "edge_agent", "decode",
         capture("amsreader/kaifa/gh433-1.hex").hex()],
        capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert "system title 4B464D65509B6241 (manufacturer KFM)" in done.stderr
    assert "SC 0x20" in done.stderr and "--ek HEX" in done.stderr and "--ak" not in done.stderr


def test_decode_of_a_damaged_frame_says_so_and_names_what_it_saw() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "edge_agent", "decode", capture("amsreader/kamstrup/gh157-1.hex").hex()],
        capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 7
    assert "Traceback" not in done.stdout + done.stderr
    assert "FCS mismatch" in done.stderr
    assert "system title 4B414D4501AE90F6 (manufacturer KAM)" in done.stderr


def test_objects_option_keeps_scaler_and_unit_with_their_entry() -> None:
    from edge_agent.cli.listen import object_entries

    assert object_entries("0.0.25.9.0.255,1.0.1.8.0.255@0,Wh,3/1.0.32.7.0.255@-1,V,1.0.1.7.0.255") \
        == ["0.0.25.9.0.255", "1.0.1.8.0.255@0,Wh", "3/1.0.32.7.0.255@-1,V", "1.0.1.7.0.255"]


def test_decode_of_capture_lines_names_each_problem_and_the_options(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import io

    lines = "\n".join(capture(name).hex() for name in (
        "amsreader/kamstrup/gh157-1.hex", "amsreader/kaifa/gh180-1.hex",
        "amsreader/sagemcom/gh867-1.hex"))
    monkeypatch.setattr("sys.stdin", io.StringIO(lines + "\n"))
    code = main(["decode", "-"])
    out, err = capsys.readouterr()
    assert code == 7  # the damaged first line
    records = [json.loads(line) for line in out.splitlines()]
    assert records[0]["problems"][0]["kind"] == "damaged"
    assert records[1]["apdu"]["notes"]  # the tagged date-time, read
    assert records[2]["apdu"]["deciphered"] is False
    assert "line 1: error: HDLC frame of 491 bytes at offset 0 is damaged" in err
    assert "line 3: note: general-glo-ciphering from system title 5341475905E894B6" in err
    assert "--ek HEX" in err and "Traceback" not in err
