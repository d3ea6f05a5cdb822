"""`dlms-edge decode` through the CLI: keys from flags/env/keys dir, JSON Lines, errors."""

from __future__ import annotations

import datetime as dt
import io
import json
import subprocess
import sys

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from known_answers import VECTORS

from edge_agent.cli import main
from edge_agent.dlms.secret import Secret
from edge_agent.dlms.security import certificates
from edge_agent.dlms.security.ciphering import protect
from edge_agent.dlms.security.control import CipherKeys, SecurityControl
from edge_agent.dlms.security.signing import sign
from edge_agent.keystore import KeysDir

SECURITY = {c["id"]: c for c in json.loads((VECTORS / "security.json").read_text())["cases"]}
MBUS = json.loads((VECTORS / "mbus-push.json").read_text())["cases"][0]
EK_HEX, AK_HEX = "000102030405060708090a0b0c0d0e0f", "d0d1d2d3d4d5d6d7d8d9dadbdcdddedf"
KEYS = CipherKeys(ek=Secret(bytes.fromhex(EK_HEX)), ak=Secret(bytes.fromhex(AK_HEX)))
GET_REQUEST = bytes.fromhex("c0010000080000010000ff0200")


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["decode", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def vector_args(case_id: str) -> list[str]:
    inputs = SECURITY[case_id]["inputs"]
    args = ["--json"]
    for flag, name in (("--ek", "ek"), ("--ak", "ak"), ("--system-title", "system_title"),
                       ("--public-key", "client_public_key")):
        if name in inputs:
            args += [flag, inputs[name]]
    return [*args, inputs.get("apdu") or inputs["frame"]]


@pytest.mark.parametrize("case_id", ["hdlc-iframe-glo-get", "glo-get-request-authenc",
                                     "general-glo-data-notification", "glo-get-request-enc-only"])
def test_vectors_decipher(capsys, case_id: str) -> None:
    code, out, err = run(capsys, *vector_args(case_id))
    assert code == 0, err
    assert json.loads(out)["plaintext"] == SECURITY[case_id]["expected"]["plaintext"]


def test_encryption_only_needs_no_ak(capsys) -> None:
    inputs = SECURITY["general-glo-push-enc-only"]["inputs"]
    code, out, _ = run(capsys, "--json", "--ek", inputs["ek"], inputs["apdu"])
    assert code == 0 and json.loads(out)["plaintext"] == SECURITY["general-glo-push-enc-only"]["expected"]["plaintext"]


def test_signed_pass3_verifies(capsys) -> None:
    code, out, _ = run(capsys, *vector_args("pass3-general-signing"))
    signed = json.loads(out)["apdu"]["content"]
    assert code == 0 and signed["signature_status"] == "valid"


def test_bad_tag_fails_without_plaintext(capsys) -> None:
    code, out, err = run(capsys, *vector_args("bad-tag"))
    assert code == 5
    assert "plaintext" not in out and out == ""
    assert "authentication tag does not match" in err and "needs the encryption key (EK) and the authentication key (AK)" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_keys_from_the_environment(capsys, monkeypatch) -> None:
    monkeypatch.setenv("DLMS_EK", EK_HEX)
    monkeypatch.setenv("DLMS_AK", AK_HEX)
    inputs = SECURITY["glo-get-request-authenc"]["inputs"]
    code, out, _ = run(capsys, "--json", "--system-title", inputs["system_title"], inputs["apdu"])
    assert code == 0 and "plaintext" in json.loads(out)


def test_mbus_push_with_ek(capsys) -> None:
    code, out, _ = run(capsys, "--json", "--ek", MBUS["inputs"]["ek"], MBUS["inputs"]["frames"])
    notification = json.loads(out)["apdu"]["content"]
    assert code == 0 and notification["meter_number"] == "1SAG67929081"
    assert notification["values"]["1.0.1.8.0.255"] == {"name": notification["values"]["1.0.1.8.0.255"]["name"],
                                                       "value": 13633036, "unit": "Wh"}


def test_text_output_is_an_indented_tree(capsys) -> None:
    code, out, _ = run(capsys, "--ek", MBUS["inputs"]["ek"], MBUS["inputs"]["frames"])
    assert code == 0
    assert "format: mbus" in out and "  type: general-glo-ciphering" in out
    assert "1.0.32.7.0.255:" in out and "value: 222.3" in out and "unit: V" in out
    assert not out.lstrip().startswith("{")


def test_without_keys_the_frame_is_structural(capsys) -> None:
    code, out, _ = run(capsys, "--json", SECURITY["glo-get-request-authenc"]["inputs"]["apdu"])
    tree = json.loads(out)
    assert code == 0 and "plaintext" not in tree and tree["apdu"]["deciphered"] is False


def test_certificate_verifies_general_signing(capsys, tmp_path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    title = bytes.fromhex("444c4d5300000001")
    now = dt.datetime.now(dt.UTC)
    cert = certificates.self_signed_certificate(key, title, not_before=now, not_after=now + dt.timedelta(days=30))
    (tmp_path / "c.pem").write_bytes(certificates.certificate_pem(cert))
    signed = sign(GET_REQUEST, signing_key=key, originator_system_title=title, recipient_system_title=b"SAG00001")
    code, out, _ = run(capsys, "--json", "--cert", str(tmp_path / "c.pem"), signed.encode().hex())
    assert code == 0 and json.loads(out)["apdu"]["signature_status"] == "valid"
    forged = bytearray(signed.encode())
    forged[-1] ^= 1
    code, out, err = run(capsys, "--json", "--cert", str(tmp_path / "c.pem"), forged.hex())
    assert code == 5 and out == "" and "signature" in err


@pytest.mark.parametrize("text", ["7ea0zz", "7ea00a00020021039323d57e", "db08", "c3"])
def test_malformed_input_one_line_error(capsys, text: str) -> None:
    code, out, err = run(capsys, text)
    assert code == 7 and out == ""
    assert err.startswith("dlms-edge decode: error:") and len(err.strip().splitlines()) == 1


def test_bad_key_option_is_a_config_error(capsys) -> None:
    code, _, err = run(capsys, "--ek", "xyz", "c3")
    assert code == 2 and "EK" in err


def test_stdin_json_lines_with_capture_lines(capsys, monkeypatch) -> None:
    inputs = SECURITY["hdlc-iframe-glo-get"]["inputs"]
    lines = "\n".join([
        "# capture of a read",
        "",
        f"2026-11-25T01:02:03.456Z tx {inputs['frame']}",
        "7ea0070321930f017e",
        SECURITY["bad-tag"]["inputs"]["apdu"],
        "not hex at all",
    ]) + "\n"
    monkeypatch.setattr(sys, "stdin", io.StringIO(lines))
    code, out, err = run(capsys, "--ek", EK_HEX, "--ak", AK_HEX, "--system-title", inputs["system_title"], "-")
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["line"] for r in records] == [3, 4, 5, 6]
    assert records[0]["timestamp"] == "2026-11-25T01:02:03.456Z" and records[0]["direction"] == "tx"
    assert records[0]["plaintext"] == SECURITY["hdlc-iframe-glo-get"]["expected"]["plaintext"]
    assert records[1]["format"] == "hdlc" and "error" not in records[1]
    assert records[2]["error_type"] == "AuthenticationError" and "plaintext" not in records[2]
    assert records[3]["error_type"] == "DecodeError"
    assert code == 5  # the first failure decides
    assert err.count("error:") == 2


def test_capture_direction_picks_the_system_title_from_the_keys_dir(capsys, monkeypatch, tmp_path) -> None:
    client, meter = bytes.fromhex("444c4d5300000001"), bytes.fromhex("5341476770067a23")
    store = KeysDir(tmp_path / "keys")
    store.ensure_simulator_keys(meter, client)
    store.write_secret("ek", KEYS.ek)
    store.write_secret("ak", KEYS.ak)
    sent = protect(GET_REQUEST, sc=SecurityControl(1, True, True), keys=KEYS, system_title=client,
                   invocation_counter=9)
    answer = protect(bytes.fromhex("c401c100090c07ea0b19ff010203ff800000"), sc=SecurityControl(1, True, True),
                     keys=KEYS, system_title=meter, invocation_counter=4)
    monkeypatch.setattr(sys, "stdin", io.StringIO(
        f"2026-11-25T01:02:03.456Z tx {sent.hex()}\n2026-11-25T01:02:03.789Z rx {answer.hex()}\n"))
    code, out, err = run(capsys, "--keys-dir", str(tmp_path / "keys"), "-")
    records = [json.loads(line) for line in out.splitlines()]
    assert code == 0, err
    assert records[0]["plaintext"] == GET_REQUEST.hex()
    assert records[1]["apdu"]["content"]["type"] == "get-response-normal"


def test_entry_point_as_a_subprocess() -> None:
    inputs = SECURITY["glo-get-request-enc-only"]["inputs"]
    done = subprocess.run([sys.executable, "-m", "edge_agent", "decode", "--json", "--ek", inputs["ek"],
                           "--system-title", inputs["system_title"], inputs["apdu"]],
                          capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["plaintext"] == SECURITY["glo-get-request-enc-only"]["expected"]["plaintext"]
    assert EK_HEX not in done.stdout + done.stderr  # the key never comes back out


def test_stdin_interrupted_still_prints_the_lines_decoded_before(capsys, monkeypatch, tmp_path) -> None:
    """Output is written in batches when stdout is no terminal: Ctrl-C in the middle of a
    batch still prints every line decoded before it."""
    from edge_agent.cli import decode

    capture = tmp_path / "capture.txt"
    capture.write_text("7ea0070321930f017e\n" * 5)
    real_inspect = decode.inspect

    def interrupted_at_line_4(frame: bytes, keys: object) -> dict[str, object]:
        if len(decoded) == 3:
            raise KeyboardInterrupt
        decoded.append(frame)
        return real_inspect(frame, keys)

    decoded: list[bytes] = []
    monkeypatch.setattr(decode, "inspect", interrupted_at_line_4)
    with capture.open() as stdin:  # a real file: read in chunks, as a redirected capture is
        monkeypatch.setattr(sys, "stdin", stdin)
        code, out, err = run(capsys, "-")
    assert code == 130 and "interrupted" in err
    assert [json.loads(line)["line"] for line in out.splitlines()] == [1, 2, 3]
