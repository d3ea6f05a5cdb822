"""Issue 4 done-when through the CLI: `read` against `simulate --profile t210d --keys-dir K`.

Suite 1, authenticated encryption, HLS-5 (GMAC), management client SAP 1; the simulated
T-210D refuses an unsigned pass 3 with ExceptionResponse(service-not-allowed,
operation-not-possible) and accepts one wrapped in general-signing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_support import T210D_MANAGEMENT, Simulator, counter_log, dlms_edge

from edge_agent.dlms.link.wrapper import WrapperDecoder

pytestmark = pytest.mark.timeout(60)

ENERGY = "1.0.1.8.0.255"
_FRAME = re.compile(r"edge_agent\.frames: (tx|rx) ([0-9a-f]+)")
AARQ, GENERAL_GLO_CIPHERING, GLO_ACTION_REQUEST = 0x60, 0xDB, 0xCB


@pytest.fixture(scope="module")
def keys_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("keys")


@pytest.fixture(scope="module")
def t210d(keys_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Simulator]:
    log = tmp_path_factory.mktemp("meter") / "counters.log"
    with Simulator("--profile", "t210d", "--keys-dir", str(keys_dir), "--counter-log", str(log)) as sim:
        sim.counter_log = log  # type: ignore[attr-defined]
        yield sim


def read(sim: Simulator, keys_dir: Path, state: Path, mode: str, *extra: str):
    return dlms_edge(
        "read", "--tcp", sim.tcp, *T210D_MANAGEMENT, "--keys-dir", str(keys_dir), "--state-dir", str(state),
        "--pass3-signing", mode, "--json", *extra, ENERGY,
    )


def sent_apdus(stderr: str) -> list[bytes]:
    """The APDUs of the management association(s), from the --verbose frame log (wrapper)."""
    apdus = []
    for direction, frame in _FRAME.findall(stderr):
        if direction == "tx":
            (decoded,) = WrapperDecoder().feed(bytes.fromhex(frame))
            if decoded.source_wport == 1:  # the public client (frame counter) is SAP 16
                apdus.append(decoded.apdu)
    return apdus


def assert_energy(stdout: str) -> None:
    value = json.loads(stdout)[ENERGY]
    assert value["unit"] == "Wh" and isinstance(value["value"], int) and value["value"] > 0


def test_simulator_created_the_keys_dir_owner_only(t210d: Simulator, keys_dir: Path) -> None:
    names = {p.name for p in keys_dir.iterdir()}
    assert {"ek.hex", "ak.hex", "client.key.pem", "client.crt.pem", "meter.crt.pem", "meter.key.pem"} <= names
    for path in keys_dir.iterdir():
        assert path.stat().st_mode & 0o077 == 0, path


def test_never_fails_naming_service_not_allowed(t210d: Simulator, keys_dir: Path, tmp_path: Path) -> None:
    result = read(t210d, keys_dir, tmp_path, "never")
    assert result.returncode not in (0, 2)
    assert result.stdout == ""
    assert "ServiceNotAllowed" in result.stderr and "pass3_signing: always" in result.stderr
    assert "(command line: --pass3-signing always)" in result.stderr
    assert "Traceback" not in result.stderr


def test_always_succeeds_with_one_signed_association(t210d: Simulator, keys_dir: Path, tmp_path: Path) -> None:
    result = read(t210d, keys_dir, tmp_path, "always", "--verbose")
    assert result.returncode == 0, result.stderr
    assert_energy(result.stdout)
    apdus = sent_apdus(result.stderr)
    assert [a[0] for a in apdus].count(AARQ) == 1
    # pass 3 is general-signing inside general-glo-ciphering, as in the reference trace
    assert apdus[1][0] == GENERAL_GLO_CIPHERING
    assert GLO_ACTION_REQUEST not in [a[0] for a in apdus]


def test_auto_learns_then_remembers(t210d: Simulator, keys_dir: Path, tmp_path: Path) -> None:
    first = read(t210d, keys_dir, tmp_path, "auto", "-v")
    assert first.returncode == 0, first.stderr
    assert_energy(first.stdout)
    kinds = [a[0] for a in sent_apdus(first.stderr)]
    # unsigned pass 3 refused, then a second association, signed
    assert kinds.count(AARQ) == 2 and GLO_ACTION_REQUEST in kinds and GENERAL_GLO_CIPHERING in kinds
    facts = [json.loads(p.read_text()) for p in (tmp_path / "facts").glob("*.json")]
    assert any(f.get("pass3_signing_required") is True for f in facts)

    second = read(t210d, keys_dir, tmp_path, "auto", "-v")
    assert second.returncode == 0, second.stderr
    assert_energy(second.stdout)
    kinds = [a[0] for a in sent_apdus(second.stderr)]
    assert kinds.count(AARQ) == 1 and GLO_ACTION_REQUEST not in kinds and kinds[1] == GENERAL_GLO_CIPHERING


def test_signed_pass3_spends_the_inner_counter_first(t210d: Simulator, keys_dir: Path, tmp_path: Path) -> None:
    result = read(t210d, keys_dir, tmp_path, "always")
    assert result.returncode == 0, result.stderr
    log = counter_log(t210d.counter_log)  # type: ignore[attr-defined]
    inner = [c for _, c, where, _ in log if where == "f(StoC)"][-1]
    outer = [c for _, c, where, _ in log if where == "general-glo-ciphering"][-1]
    assert outer == inner + 1  # the trace's order: IC 1426 inside f(StoC), 1427 outside


def test_a_fresh_state_dir_learns_the_meter_frame_counter(t210d: Simulator, keys_dir: Path, tmp_path: Path) -> None:
    # Other state dirs have used the same key before: a client starting at IC 1 would be
    # refused as a replay. It reads 0.0.43.1.0.255 with the public client first.
    assert read(t210d, keys_dir, tmp_path / "one", "always").returncode == 0
    highest = max(c for _, c, _, verdict in counter_log(t210d.counter_log) if verdict == "accepted")  # type: ignore[attr-defined]
    assert highest > 1
    result = read(t210d, keys_dir, tmp_path / "fresh", "always")
    assert result.returncode == 0, result.stderr
    log = counter_log(t210d.counter_log)  # type: ignore[attr-defined]
    assert all(verdict == "accepted" for *_, verdict in log)
    public = dlms_edge("read", "--tcp", t210d.tcp, "--state-dir", str(tmp_path), "--json", "0.0.43.1.0.255")
    assert json.loads(public.stdout)["0.0.43.1.0.255"]["value"] == max(c for _, c, _, _ in log)


def test_wrong_authentication_key_is_a_clear_refusal(t210d: Simulator, keys_dir: Path, tmp_path: Path) -> None:
    assert read(t210d, keys_dir, tmp_path, "always").returncode == 0  # this state dir is in step
    result = read(t210d, keys_dir, tmp_path, "always", "--ak", "00112233445566778899aabbccddeeff")
    assert result.returncode == 5  # a wrong key is a security failure, however the meter words it
    assert "refused the association" in result.stderr
    assert "check the EK, the AK and the client system title" in result.stderr
    assert "00112233445566778899aabbccddeeff" not in result.stderr


def test_the_public_client_reads_the_clock_but_not_the_energy(t210d: Simulator, tmp_path: Path) -> None:
    clock = dlms_edge("read", "--tcp", t210d.tcp, "--state-dir", str(tmp_path), "--json", "0.0.1.0.0.255")
    assert clock.returncode == 0, clock.stderr
    energy = dlms_edge("read", "--tcp", t210d.tcp, "--state-dir", str(tmp_path), ENERGY)
    assert energy.returncode == 6
    assert ENERGY in energy.stderr


def test_always_over_hdlc(t210d: Simulator, keys_dir: Path, tmp_path: Path) -> None:
    result = read(t210d, keys_dir, tmp_path, "always", "--hdlc")
    assert result.returncode == 0, result.stderr
    assert_energy(result.stdout)


def test_auto_without_a_signing_key_says_which_file_is_missing(
    t210d: Simulator, keys_dir: Path, tmp_path: Path
) -> None:
    partial = tmp_path / "keys"
    partial.mkdir(mode=0o700)
    for name in ("ek.hex", "ak.hex"):
        (partial / name).write_bytes((keys_dir / name).read_bytes())
    for attempt in range(2):  # learning, then remembered: the same advice both times
        result = read(t210d, partial, tmp_path / "state", "auto")
        assert result.returncode == 2, result.stderr
        assert "no client signing key: put client.key.pem" in result.stderr, attempt
