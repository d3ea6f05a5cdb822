"""Keys never reach output: every byte a verbose session writes (stdout, stderr, --capture,
the simulator's own verbose log) is searched for the EK, AK, KEK and the private keys."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from e2e_support import T210D_MANAGEMENT, Simulator, dlms_edge

pytestmark = pytest.mark.timeout(60)


def secret_spellings(keys: Path) -> dict[str, list[str]]:
    """Every way a key could show up in text: hex both cases, base64, the decimal scalar."""
    found: dict[str, list[str]] = {}
    for name in ("ek", "ak", "kek"):
        raw = bytes.fromhex((keys / f"{name}.hex").read_text().strip())
        found[name] = [raw.hex(), raw.hex().upper(), base64.b64encode(raw).decode(), repr(raw)[2:-1]]
    for name in ("client.key.pem", "meter.key.pem"):
        pem = (keys / name).read_bytes()
        key = serialization.load_pem_private_key(pem, password=None)
        scalar = key.private_numbers().private_value
        raw = scalar.to_bytes(32, "big")
        body = [line for line in pem.decode().splitlines() if line and not line.startswith("-----")]
        found[name] = [raw.hex(), raw.hex().upper(), str(scalar), base64.b64encode(raw).decode(), *body]
    return found


def assert_no_secret(text: str, spellings: dict[str, list[str]], where: str) -> None:
    for name, forms in spellings.items():
        for form in forms:
            assert form not in text, f"{name} appears in {where}"


def test_a_verbose_session_shows_no_key_material(tmp_path: Path) -> None:
    keys, state, capture = tmp_path / "keys", tmp_path / "state", tmp_path / "capture.txt"
    with Simulator("--profile", "t210d", "--keys-dir", str(keys), "--verbose") as sim:
        base = ["read", "--tcp", sim.tcp, *T210D_MANAGEMENT, "--keys-dir", str(keys), "--state-dir", str(state),
                "--verbose", "--capture", str(capture)]
        runs = [
            dlms_edge(*base, "--pass3-signing", "auto", "--json", "1.0.1.8.0.255", "0.0.1.0.0.255"),  # learns
            dlms_edge(*base, "--pass3-signing", "never", "1.0.1.8.0.255"),  # refused pass 3
            dlms_edge(*base, "--hdlc", "--pass3-signing", "always", "1.0.1.8.0.255"),
            dlms_edge(*base, "--pass3-signing", "always", "--all"),
            # a wrong AK: the error path must not echo the keys either
            dlms_edge(*base, "--ak", "00" * 16, "--pass3-signing", "always", "1.0.1.8.0.255"),
        ]
        spellings = secret_spellings(keys)
        # keys given through the environment, verbose
        ek, ak = (keys / "ek.hex").read_text().strip(), (keys / "ak.hex").read_text().strip()
        runs.append(dlms_edge(
            "read", "--tcp", sim.tcp, *T210D_MANAGEMENT, "--keys-dir", str(keys), "--state-dir", str(state),
            "-v", "1.0.1.8.0.255", env={"DLMS_EK": ek, "DLMS_AK": ak},
        ))
    simulator_log = sim.stderr
    assert [r.returncode for r in runs] == [0, 6, 0, 0, 5, 0], [r.stderr[-300:] for r in runs]
    assert "edge_agent.frames: tx" in runs[0].stderr  # the session really was verbose
    assert capture.read_text().count(" tx ") > 10
    assert "edge_agent.frames: rx " in simulator_log  # the simulator logged frames too
    for index, run in enumerate(runs):
        assert_no_secret(run.stdout, spellings, f"stdout of run {index}")
        assert_no_secret(run.stderr, spellings, f"stderr of run {index}")
    assert_no_secret(capture.read_text(), spellings, "the capture file")
    assert_no_secret(simulator_log, spellings, "the simulator's log")
    assert_no_secret("".join(p.read_text() for p in state.rglob("*") if p.is_file()), spellings, "the state dir")


def test_an_lls_password_is_masked_in_frames_logs_and_captures(tmp_path: Path) -> None:
    password = "Pw-7f3a9c"
    capture = tmp_path / "capture.txt"
    with Simulator("--password", password, "--verbose") as sim:
        result = dlms_edge(
            "read", "--tcp", sim.tcp, "--hdlc", "--client", "1", "--auth", "low", "--password", password,
            "--state-dir", str(tmp_path / "state"), "--capture", str(capture), "-v", "--json", "1.0.1.8.0.255",
        )
        simulator_log = sim.stop()
    assert result.returncode == 0, result.stderr
    spellings = {"LLS password": [password.encode().hex(), password]}
    for text, where in ((result.stdout, "stdout"), (result.stderr, "stderr"),
                        (capture.read_text(), "the capture"), (simulator_log, "the simulator log")):
        assert_no_secret(text, spellings, where)
    assert (b"*" * len(password)).hex() in capture.read_text()  # the AARQ is still there, masked
