"""`dlms-edge read` against meters that misbehave, one way each (README, "Exit codes").

Each test runs the real CLI as a subprocess against a scripted bad meter on 127.0.0.1
(tests/e2e/bad_meter.py: a proxy that bends a real simulator's answers, or an HDLC server
of its own) and checks the exit code, the message, that no traceback appears, that the
read ends within its time-out, and which values still came.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from bad_meter import BadMeter, HdlcBadMeter, asks_for, frame
from e2e_support import Simulator, dlms_edge

from edge_agent.dlms.apdu.acse import AARE, AcseServiceUser, AssociationResult
from edge_agent.dlms.cosem.obis import Obis
from edge_agent.dlms.link.hdlc.frame import FrameKind, HdlcFrame
from edge_agent.dlms.link.wrapper import WrapperFrame

pytestmark = pytest.mark.timeout(60)

ENERGY, VOLTAGE, CLOCK = "1.0.1.8.0.255", "1.0.32.7.0.255", "0.0.1.0.0.255"
TIMEOUT = 1.5  # --timeout of every read: each must end well within a few of these


@pytest.fixture(scope="module")
def simulator() -> Iterator[Simulator]:
    with Simulator() as sim:
        yield sim


def read(meter: BadMeter | HdlcBadMeter, state: Path, *args: str) -> tuple[int, str, str, float]:
    started = time.monotonic()
    result = dlms_edge("read", "--tcp", meter.address, "--timeout", str(TIMEOUT), "--retries", "1",
                       "--state-dir", str(state), *args)
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode, result.stdout, result.stderr, time.monotonic() - started


def is_get(request: bytes) -> bool:
    return bool(asks_for(request))


# --- a malformed answer costs only its own value --------------------------------------------


def test_a_malformed_value_is_reported_with_its_bytes_and_the_others_are_printed(
        simulator: Simulator, tmp_path: Path) -> None:
    voltage = (Obis.parse(VOLTAGE), 2)

    def fault(request: bytes, answer: WrapperFrame) -> bytes:
        asked = asks_for(request)
        if voltage in asked:  # 0x0E is no A-XDR type: the whole answer does not decode
            bad = answer.apdu[:3] + (b"\x00\x0e\x01" if len(asked) == 1 else b"\x02\x00\x0e\x01")
            return frame(answer.source_wport, answer.destination_wport, bad)
        return answer.encode()

    with BadMeter(simulator.tcp, fault) as meter:
        code, out, err, seconds = read(meter, tmp_path, "--json", ENERGY, VOLTAGE, CLOCK)
    assert code == 8, err  # partial read
    values = json.loads(out)
    assert values[ENERGY]["unit"] == "Wh" and values[ENERGY]["value"] > 0
    assert values[CLOCK]["value"].startswith("20")
    assert values[VOLTAGE]["error"] == "malformed" and values[VOLTAGE]["value"] is None
    assert values[VOLTAGE]["raw"].endswith("0e01")
    assert f"dlms-edge read: error: {VOLTAGE}: the meter's answer does not decode" in err
    assert "raw bytes c401" in err
    assert seconds < 4 * TIMEOUT


def test_a_list_answer_with_too_few_results_is_asked_again_one_by_one(
        simulator: Simulator, tmp_path: Path) -> None:
    def fault(request: bytes, answer: WrapperFrame) -> bytes:
        if len(asks_for(request)) > 1:  # a GET-Response-With-List holding no result at all
            return frame(answer.source_wport, answer.destination_wport, answer.apdu[:3] + b"\x00")
        return answer.encode()

    with BadMeter(simulator.tcp, fault) as meter:
        code, out, err, seconds = read(meter, tmp_path, "--json", ENERGY, VOLTAGE, CLOCK)
    assert code == 0, err
    assert set(json.loads(out)) == {ENERGY, VOLTAGE, CLOCK}
    assert "attributes asked, 0 results received" in err and "asking for each alone" in err
    assert seconds < 4 * TIMEOUT


def test_every_value_malformed_is_exit_7(simulator: Simulator, tmp_path: Path) -> None:
    def fault(request: bytes, answer: WrapperFrame) -> bytes:
        asked = asks_for(request)
        if asked:
            bad = answer.apdu[:3] + (b"\x00\x0e\x01" if len(asked) == 1 else b"\x02\x00\x0e\x01")
            return frame(answer.source_wport, answer.destination_wport, bad)
        return answer.encode()

    with BadMeter(simulator.tcp, fault) as meter:
        code, out, err, seconds = read(meter, tmp_path, ENERGY)
    assert code == 7, err
    assert out == "" and f"{ENERGY}: the meter's answer does not decode" in err and "raw bytes" in err
    assert seconds < 4 * TIMEOUT


# --- late and stale answers -------------------------------------------------------------------


def test_a_stale_answer_is_skipped_and_the_right_one_used(simulator: Simulator, tmp_path: Path) -> None:
    def fault(request: bytes, answer: WrapperFrame) -> bytes:
        if not is_get(request):
            return answer.encode()
        stale = bytearray(answer.apdu)
        stale[2] = (stale[2] & 0xF0) | ((stale[2] - 1) & 0x0F)  # the invoke-id of the request before
        return frame(answer.source_wport, answer.destination_wport, bytes(stale)) + answer.encode()

    with BadMeter(simulator.tcp, fault) as meter:
        code, out, err, seconds = read(meter, tmp_path, "--json", ENERGY, VOLTAGE)
    assert code == 0, err
    values = json.loads(out)
    assert values[ENERGY]["unit"] == "Wh" and values[VOLTAGE]["unit"] == "V"
    assert "a late or foreign answer, ignored" in err and "raw bytes c4" in err
    assert seconds < 4 * TIMEOUT


@pytest.mark.parametrize("link", [[], ["--hdlc"]], ids=["wrapper", "hdlc-over-tcp"])
def test_the_simulators_stale_fault_is_survived(tmp_path: Path, link: list[str]) -> None:
    # Over HDLC the stale answer takes the poll's final frame: the right one needs an RR.
    with Simulator("--fault", "stale") as sim:
        result = dlms_edge("read", "--tcp", sim.tcp, *link, "--timeout", str(TIMEOUT),
                           "--state-dir", str(tmp_path), "--json", ENERGY, VOLTAGE, CLOCK)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert set(json.loads(result.stdout)) == {ENERGY, VOLTAGE, CLOCK}
    assert "a late or foreign answer, ignored" in result.stderr


@pytest.mark.parametrize("link", [[], ["--hdlc"]], ids=["wrapper", "hdlc-over-tcp"])
@pytest.mark.parametrize("fault, warning", [
    ("garbage", "line noise"),  # HDLC resynchronises on flags silently
    ("trailing", "after a complete APDU dropped"),
])
def test_the_simulators_noise_and_trailing_bytes_are_survived(
        tmp_path: Path, link: list[str], fault: str, warning: str) -> None:
    with Simulator("--fault", fault) as sim:
        result = dlms_edge("read", "--tcp", sim.tcp, *link, "--timeout", str(TIMEOUT),
                           "--state-dir", str(tmp_path), "--json", ENERGY, VOLTAGE, CLOCK)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert set(json.loads(result.stdout)) == {ENERGY, VOLTAGE, CLOCK}
    if link == [] or fault == "trailing":
        assert warning in result.stderr


def test_only_stale_answers_end_with_the_time_out(simulator: Simulator, tmp_path: Path) -> None:
    def fault(request: bytes, answer: WrapperFrame) -> bytes:
        if not is_get(request):
            return answer.encode()
        stale = bytearray(answer.apdu)
        stale[2] ^= 0x08
        return frame(answer.source_wport, answer.destination_wport, bytes(stale))

    with BadMeter(simulator.tcp, fault) as meter:
        code, out, err, seconds = read(meter, tmp_path, ENERGY)
    assert code == 3, err
    assert "only answers to earlier ones" in err and out == ""
    assert TIMEOUT <= seconds < 4 * TIMEOUT


# --- known malformations, accepted with a warning ---------------------------------------------


def test_bytes_after_a_complete_apdu_are_dropped_with_a_warning(simulator: Simulator, tmp_path: Path) -> None:
    def fault(request: bytes, answer: WrapperFrame) -> bytes:
        return frame(answer.source_wport, answer.destination_wport, answer.apdu + b"\x00\x00\x7e")

    with BadMeter(simulator.tcp, fault) as meter:
        code, out, err, _ = read(meter, tmp_path, "--json", ENERGY, VOLTAGE)
    assert code == 0, err
    assert json.loads(out)[VOLTAGE]["unit"] == "V"
    assert "3 byte(s) after a complete APDU dropped" in err and "then 00007e" in err


def test_a_date_time_wrapped_twice_is_accepted_with_a_warning(simulator: Simulator, tmp_path: Path) -> None:
    def fault(request: bytes, answer: WrapperFrame) -> bytes:
        apdu = answer.apdu
        if asks_for(request) == [(Obis.parse(CLOCK), 2)] and apdu[4:6] == b"\x09\x0c":
            apdu = apdu[:4] + b"\x09\x0e" + apdu[4:]  # one octet-string more around 09 0C ...
        return frame(answer.source_wport, answer.destination_wport, apdu)

    with BadMeter(simulator.tcp, fault) as meter:
        code, out, err, _ = read(meter, tmp_path, "--json", CLOCK)
    assert code == 0, err
    assert json.loads(out)[CLOCK]["value"].startswith("20")
    assert "a date-time wrapped in one octet-string too many" in err and "raw bytes 090e090c" in err


def test_a_wrapper_length_longer_than_the_apdu_is_accepted_with_a_warning(
        simulator: Simulator, tmp_path: Path) -> None:
    def fault(request: bytes, answer: WrapperFrame) -> bytes:
        return frame(answer.source_wport, answer.destination_wport, answer.apdu, len(answer.apdu) + 4)

    with BadMeter(simulator.tcp, fault) as meter:
        code, out, err, seconds = read(meter, tmp_path, "--json", ENERGY)
    assert code == 0, err
    assert json.loads(out)[ENERGY]["unit"] == "Wh"
    assert "APDU bytes, the meter sent" in err and "that hold a complete APDU: accepted" in err
    assert seconds < 4 * TIMEOUT


# --- refused -------------------------------------------------------------------------------------


def test_answers_from_another_wrapper_port_are_refused(simulator: Simulator, tmp_path: Path) -> None:
    def fault(request: bytes, answer: WrapperFrame) -> bytes:
        if is_get(request):
            return frame(7, answer.destination_wport, answer.apdu)
        return answer.encode()

    with BadMeter(simulator.tcp, fault) as meter:
        code, out, err, seconds = read(meter, tmp_path, ENERGY)
    assert code == 7, err
    assert "refused a wrapper frame from port 7 to port 16" in err
    assert "only answers from wrapper port 7 to port 16 came" in err and "asked port 1" in err
    assert out == "" and seconds < 4 * TIMEOUT


def test_an_impossible_hdlc_n_r_is_refused_with_the_numbers(tmp_path: Path) -> None:
    def answer(request: HdlcFrame) -> bytes:  # acknowledges frames never sent: N(R)=5
        return HdlcFrame(request.source, request.destination, FrameKind.I, True, 0, 5,
                         info=b"\xe6\xe7\x00\x61\x00").encode()

    with HdlcBadMeter(answer) as meter:
        code, out, err, seconds = read(meter, tmp_path, "--hdlc", ENERGY)
    assert code == 7, err
    assert "N(R)=5, which is impossible" in err
    assert "our next N(S) is 1 with 1 frame(s) from N(S)=0 unacknowledged, so N(R) can only be 0 or 1" in err
    assert out == "" and seconds < 4 * TIMEOUT


def test_an_exception_response_to_an_aarq_without_hls_is_an_association_refusal(
        simulator: Simulator, tmp_path: Path) -> None:
    def fault(request: bytes, answer: WrapperFrame) -> bytes:
        if request[0] == 0x60:  # AARQ: service-not-allowed / operation-not-possible
            return frame(answer.source_wport, answer.destination_wport, b"\xd8\x01\x01")
        return answer.encode()

    with BadMeter(simulator.tcp, fault) as meter:
        code, _, err, _ = read(meter, tmp_path, ENERGY)
    assert code == 4, err
    assert "refused the association request (AARQ) with ExceptionResponse" in err
    assert "pass 3" not in err


# --- wrong keys are exit 5, however the meter words them -------------------------------------


KEYED = ["--client", "1", "--security", "authenc", "--auth", "hls-gmac", "--system-title",
         "444c4d5300000001", "--ek", "000102030405060708090a0b0c0d0e0f",
         "--ak", "d0d1d2d3d4d5d6d7d8d9dadbdcdddedf", "--frame-counter", "none"]
WRONG_KEYS = {
    "exception-response-deciphering-error": b"\xd8\x01\x05",
    "initiate-error": AARE(result=AssociationResult.REJECTED_PERMANENT,
                           result_source_diagnostic=AcseServiceUser.NO_REASON_GIVEN,
                           user_information=b"\x0e\x01\x00\x06").encode(),
    "calling-ap-title-not-recognized": AARE(
        result=AssociationResult.REJECTED_PERMANENT,
        result_source_diagnostic=AcseServiceUser.CALLING_AP_TITLE_NOT_RECOGNIZED).encode(),
}


@pytest.mark.parametrize("wording", list(WRONG_KEYS))
def test_wrong_keys_are_a_security_failure_however_the_meter_words_them(
        simulator: Simulator, tmp_path: Path, wording: str) -> None:
    def fault(request: bytes, answer: WrapperFrame) -> bytes:
        if request[0] == 0x60:
            return frame(answer.source_wport, answer.destination_wport, WRONG_KEYS[wording])
        return answer.encode()

    with BadMeter(simulator.tcp, fault) as meter:
        code, _, err, _ = read(meter, tmp_path, *KEYED, ENERGY)
    assert code == 5, err
    assert "wrong keys: check the EK, the AK and the client system title" in err
    assert "000102030405060708090a0b0c0d0e0f" not in err


@pytest.mark.parametrize("key", ["--ek", "--ak"])
def test_a_wrong_key_against_the_simulator_is_a_security_failure(tmp_path: Path, key: str) -> None:
    # The simulator keeps the example keys of KEYED; one of ours differs (a bad tag there).
    wrong = [*KEYED[:KEYED.index(key) + 1], "00112233445566778899aabbccddeeff",
             *KEYED[KEYED.index(key) + 2:]]
    with Simulator("--security", "authenc", "--auth", "hls-gmac") as sim:
        result = dlms_edge("read", "--tcp", sim.tcp, "--timeout", str(TIMEOUT), "--state-dir",
                           str(tmp_path), *wrong, ENERGY)
    assert result.returncode == 5, result.stderr
    assert "Traceback" not in result.stderr and "00112233445566778899aabbccddeeff" not in result.stderr


# --- options and scan ----------------------------------------------------------------------------


@pytest.mark.parametrize("verb", ["read", "scan"])
def test_optical_with_tcp_is_a_usage_error(tmp_path: Path, verb: str) -> None:
    extra = ["--state-dir", str(tmp_path), ENERGY] if verb == "read" else []
    result = dlms_edge(verb, "--tcp", "127.0.0.1:9", "--optical", *extra)
    assert result.returncode == 2
    assert "--optical" in result.stderr and "not for --tcp" in result.stderr
    assert "Traceback" not in result.stderr


def test_scan_says_no_wrong_keys_after_an_attempt_without_keys(simulator: Simulator, tmp_path: Path) -> None:
    refused = AARE(result=AssociationResult.REJECTED_PERMANENT,
                   result_source_diagnostic=AcseServiceUser.AUTHENTICATION_FAILURE).encode()

    def fault(request: bytes, answer: WrapperFrame) -> bytes:
        if request[0] == 0x60:
            return frame(answer.source_wport, answer.destination_wport, refused)
        return answer.encode()

    with BadMeter(simulator.tcp, fault) as meter:
        result = dlms_edge("scan", "--tcp", meter.address, "--link", "wrapper", "--clients", "16,1",
                           "--addresses", "1/16", "--timeout", str(TIMEOUT), "--write",
                           str(tmp_path / "meter.yaml"))
    text = result.stdout + result.stderr + (tmp_path / "meter.yaml").read_text()
    assert "Traceback" not in result.stderr
    assert "authentication-failure" in text and "no password or key was sent" in text
    assert "wrong keys" not in text and "wrong password" not in text
