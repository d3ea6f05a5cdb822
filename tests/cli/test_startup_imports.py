"""What `dlms-edge` imports before it does anything: `--help` and `--version` no verb module,
a verb only its own. Import sets, not timings (bench/bench_startup.py measures those)."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from edge_agent.cli import VERBS
from edge_agent.dlms.security import certificates

pytestmark = pytest.mark.timeout(60)

# Never loaded by start-up or by `decode`: the simulator, the agent, MQTT, and cryptography's
# x509 (about 13 MB resident, loaded only to check a certificate).
FORBIDDEN = ("edge_agent.simulator", "edge_agent.agent", "edge_agent.mqtt", "paho",
             "cryptography.x509")
HDLC_FRAME = "7ea0070321930f017e"
# glo-get-request (suite 0, authenticated encryption) and its keys, from `dlms-edge decode --help`
GLO = ["--ek", "000102030405060708090a0b0c0d0e0f", "--ak", "d0d1d2d3d4d5d6d7d8d9dadbdcdddedf",
       "--system-title", "4d4d4d0000bc614e",
       "c81e3001234567411312ff935a47566827c467bc7d825c3be4a77c3fcc056b6b"]
# The same APDU in one wrapper frame (IEC 62056-47), as a capture line of a TCP meter holds it
WRAPPED = [*GLO[:-1], "0001001000010020" + GLO[-1]]

# Runs the CLI as `python -m edge_agent` does, then writes the names of all loaded modules to
# the file named by argv[1] (also when argparse exits, as it does after --help and --version).
_RUNNER = """\
import json, runpy, sys
out, sys.argv = sys.argv[1], ["dlms-edge", *sys.argv[2:]]
try:
    runpy.run_module("edge_agent", run_name="__main__", alter_sys=True)
except SystemExit as exit:
    code = exit.code
else:
    code = 0
with open(out, "w") as file:
    json.dump({"code": code, "modules": sorted(sys.modules)}, file)
"""


def start(tmp_path: Path, *argv: str) -> tuple[int, set[str], str]:
    """Exit code, loaded modules and stdout of `dlms-edge ARGV`, in a fresh interpreter."""
    report = tmp_path / "modules.json"
    env = {name: value for name, value in os.environ.items() if not name.startswith("DLMS_")}
    result = subprocess.run([sys.executable, "-c", _RUNNER, str(report), *argv],
                            capture_output=True, text=True, check=False, timeout=50, env=env)
    assert report.exists(), result.stderr
    loaded = json.loads(report.read_text())
    return loaded["code"], set(loaded["modules"]), result.stdout


def forbidden_in(loaded: set[str]) -> set[str]:
    return {name for name in loaded
            if any(name == root or name.startswith(root + ".") for root in FORBIDDEN)}


def verb_modules_in(loaded: set[str]) -> set[str]:
    return {f"edge_agent.cli.{verb}" for verb in VERBS} & loaded


@pytest.mark.parametrize("argv", [["--version"], ["--help"], []], ids=["version", "help", "none"])
def test_start_up_imports_no_verb(tmp_path, argv: list[str]) -> None:
    code, loaded, out = start(tmp_path, *argv)
    assert code == (2 if not argv else 0)
    assert "edge_agent.cli" in loaded
    assert verb_modules_in(loaded) == set()
    assert forbidden_in(loaded) == set()
    assert "cryptography" not in loaded and "logging" not in loaded
    if argv == ["--help"]:  # every verb still listed with its one-line help
        words = " ".join(out.split())
        assert all(f"{verb} {help_line}" in words for verb, help_line in VERBS.items())


@pytest.mark.parametrize("argv", [[HDLC_FRAME], ["--json", *GLO], ["--json", *WRAPPED]],
                         ids=["hdlc", "ciphered", "wrapped"])
def test_decode_imports_decode_alone(tmp_path, argv: list[str]) -> None:
    code, loaded, out = start(tmp_path, "decode", *argv)
    assert code == 0 and out
    assert verb_modules_in(loaded) == {"edge_agent.cli.decode"}
    assert forbidden_in(loaded) == set()
    # The APDU services' modules load with their first APDU, the security package's with
    # their first use: a GET answer, plain or ciphered, needs none of these.
    assert NOT_NEEDED & loaded == set()
    assert "logging" not in loaded  # decode logs nothing (LOGS = False): no set-up to pay for
    # One whole wrapper frame is taken without the reassembler's scanner: neither it nor the
    # HDLC and M-Bus frame classes load; any other capture goes through the scanner.
    assert (SCANNER & loaded == set()) == (argv[-1] == WRAPPED[-1])


# xDLMS services (and ACSE) whose classes a glo-get-request or an HDLC control frame never
# needs, and the security modules that deciphering does not use.
NOT_NEEDED = {f"edge_agent.dlms.apdu.{service}" for service in (
    "set", "action", "initiate", "notification", "service_errors", "acse", "conformance",
    "general_block_transfer")} | {
    f"edge_agent.dlms.security.{module}" for module in ("signing", "layers", "replay", "header")}

# The stream scanner, the link frames only it finds, and the clear security header it reads
# of a frame it cannot use (decode reads it of an APDU it cannot decipher).
SCANNER = {"edge_agent.dlms.push.reassembler", "edge_agent.dlms.push.frame_scan",
           "edge_agent.dlms.link.hdlc.frame", "edge_agent.dlms.link.mbus",
           "edge_agent.dlms.push.security_header"}


def test_decode_parses_a_certificate_only_for_a_signed_apdu(tmp_path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    title = bytes.fromhex("444c4d5300000001")
    now = dt.datetime.now(dt.UTC)
    certificate = certificates.self_signed_certificate(
        key, title, not_before=now, not_after=now + dt.timedelta(days=30))
    pem = tmp_path / "signer.pem"
    pem.write_bytes(certificates.certificate_pem(certificate))
    code, loaded, _ = start(tmp_path, "decode", "--cert", str(pem), HDLC_FRAME)
    assert code == 0 and forbidden_in(loaded) == set()

    from edge_agent.dlms.security.signing import sign

    signed = sign(bytes.fromhex("c0010000080000010000ff0200"), signing_key=key,
                  originator_system_title=title, recipient_system_title=b"SAG00001")
    code, loaded, out = start(tmp_path, "decode", "--json", "--cert", str(pem),
                              signed.encode().hex())
    assert code == 0 and json.loads(out)["apdu"]["signature_status"] == "valid"
    assert "cryptography.x509" in loaded


@pytest.mark.parametrize("verb", sorted(VERBS))
def test_each_verb_module_keeps_the_contract(verb: str) -> None:
    """The table names every verb's help; its module the rest, and no second help line."""
    module = __import__(f"edge_agent.cli.{verb}", fromlist=["run"])
    assert callable(module.add_arguments) and callable(module.run) and module.EXAMPLES.strip()
    assert not hasattr(module, "HELP")
