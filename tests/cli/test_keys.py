"""`dlms-edge keys`: files and modes offline; meter operations against the simulated meter side."""

from __future__ import annotations

import datetime as dt
import importlib.util
import io
import json
import shutil
import stat
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from edge_agent.cli import keys as keys_cli
from edge_agent.cli import main
from edge_agent.dlms.cosem.security_setup import KeyPair
from edge_agent.dlms.secret import Secret
from edge_agent.dlms.security import certificates
from edge_agent.keystore import KeysDir
from edge_agent.simulator.meter import SimulatedMeterStation, SimulatorOptions
from edge_agent.simulator.security_setup_server import (
    MeterKeyState,
    SecuritySetupServer,
)
from edge_agent.simulator.server import MeterServer

METER_ST = bytes.fromhex("5341476770067a23")
CLIENT_ST = bytes.fromhex("444c4d5300000001")
NOW = dt.datetime(2026, 11, 25, tzinfo=dt.UTC)


def keys(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["keys", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- offline ------------------------------------------------------------------------------------


def test_generate_writes_a_private_p256_key_0600(capsys, tmp_path) -> None:
    code, out, _ = keys(capsys, "generate", "--keys-dir", str(tmp_path / "k"))
    path = tmp_path / "k" / "client.key.pem"
    assert code == 0 and str(path) in out
    assert mode(path) == 0o600 and mode(tmp_path / "k") == 0o700
    key = certificates.load_private_key(path.read_bytes())
    assert key.curve.name == "secp256r1"
    assert path.read_bytes().decode() not in out


def test_generate_refuses_to_overwrite_unless_forced(capsys, tmp_path) -> None:
    out_file = tmp_path / "ka.pem"
    assert keys(capsys, "generate", "--usage", "key-agreement", "--suite", "2", "--out", str(out_file))[0] == 0
    first = out_file.read_bytes()
    code, _, err = keys(capsys, "generate", "--out", str(out_file))
    assert code == 2 and "--force" in err and out_file.read_bytes() == first
    assert keys(capsys, "generate", "--out", str(out_file), "--force")[0] == 0
    assert out_file.read_bytes() != first
    assert certificates.load_private_key(first).curve.name == "secp384r1"


def test_csr_and_self_signed_carry_the_system_title(capsys, tmp_path) -> None:
    k = str(tmp_path / "k")
    assert keys(capsys, "generate", "--keys-dir", k)[0] == 0
    assert keys(capsys, "csr", "--keys-dir", k, "--system-title", CLIENT_ST.hex(), "--out", str(tmp_path / "c.csr"))[0] == 0
    csr = certificates.load_csr((tmp_path / "c.csr").read_bytes())
    assert csr.is_signature_valid and certificates.system_title_from_name(csr.subject) == CLIENT_ST
    code, _, _ = keys(capsys, "self-signed", "--keys-dir", k, "--system-title", CLIENT_ST.hex(), "--days", "30")
    path = tmp_path / "k" / "client.crt.pem"
    certificate = certificates.load_certificate(path.read_bytes())
    assert code == 0 and mode(path) == 0o600
    assert certificates.system_title_from_certificate(certificate) == CLIENT_ST
    usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and not usage.key_agreement
    days = (certificate.not_valid_after_utc - certificate.not_valid_before_utc).days
    assert days == 31  # one day back for clock skew, 30 ahead
    key = certificates.load_private_key((tmp_path / "k" / "client.key.pem").read_bytes())
    assert certificate.public_key().public_numbers() == key.public_key().public_numbers()


def test_csr_without_a_key_is_a_config_error(capsys, tmp_path) -> None:
    code, _, err = keys(capsys, "csr", "--out", str(tmp_path / "x.csr"))
    assert code == 2 and "--key" in err


def test_show_never_prints_secret_values(capsys, tmp_path) -> None:
    store = KeysDir(tmp_path / "k")
    store.ensure_simulator_keys(METER_ST, CLIENT_ST)
    ek = (tmp_path / "k" / "ek.hex").read_text().strip()
    code, out, _ = keys(capsys, "show", "--keys-dir", str(tmp_path / "k"), "--json")
    summary = json.loads(out)
    assert code == 0 and ek not in out
    assert summary["ek"]["length"] == 16
    assert summary["meter_certificate"]["system_title"] == METER_ST.hex().upper()
    code, text, _ = keys(capsys, "show", "--keys-dir", str(tmp_path / "k"))
    assert code == 0 and ek not in text and "client_certificate: file=client.crt.pem" in text
    for name in ("client.key.pem", "meter.key.pem"):
        body = (tmp_path / "k" / name).read_text().splitlines()[1]
        assert body not in out + text


def test_import_meter_cert(capsys, tmp_path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    good = certificates.self_signed_certificate(key, METER_ST, not_before=NOW, not_after=NOW + dt.timedelta(days=9))
    (tmp_path / "meter.pem").write_bytes(certificates.certificate_pem(good))
    code, out, _ = keys(capsys, "import-meter-cert", str(tmp_path / "meter.pem"), "--keys-dir", str(tmp_path / "k"))
    assert code == 0 and METER_ST.hex().upper() in out
    assert KeysDir(tmp_path / "k").load().meter_certificate == good
    (tmp_path / "junk.pem").write_bytes(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    code, _, err = keys(capsys, "import-meter-cert", str(tmp_path / "junk.pem"), "--keys-dir", str(tmp_path / "k"), "--force")
    assert code == 7 and "X.509" in err


# --- meter operations against a T-210D simulator over TCP -----------------------------------------


@dataclass
class Installation:
    """A T-210D simulator on 127.0.0.1 and the keys dir it shares with the installer."""

    keys_dir: Path
    setup: SecuritySetupServer
    station: SimulatedMeterStation
    address: str
    state_dir: Path

    @property
    def state(self) -> MeterKeyState:
        return self.setup.state

    def management(self, keys_dir: Path | None = None) -> tuple[str, ...]:
        """Options of the management client (SAP 1: Suite 1, HLS-5, signed pass 3)."""
        return ("--tcp", self.address, "--client", "1", "--suite", "1", "--security", "authenc",
                "--auth", "hls-gmac", "--pass3-signing", "always", "--keys-dir",
                str(keys_dir or self.keys_dir), "--state-dir", str(self.state_dir), "--timeout", "3")

    def public(self, keys_dir: Path | None = None) -> tuple[str, ...]:
        return ("--tcp", self.address, "--keys-dir", str(keys_dir or self.keys_dir),
                "--state-dir", str(self.state_dir), "--timeout", "3")


@pytest.fixture
def installation(tmp_path) -> Iterator[Installation]:
    station = SimulatedMeterStation(SimulatorOptions(profile="t210d", keys_dir=str(tmp_path / "k")))
    server = MeterServer([station.station])
    host, port = server.start_tcp("127.0.0.1", 0)
    try:
        yield Installation(tmp_path / "k", station.security_setup, station, f"{host}:{port}", tmp_path / "state")
    finally:
        server.stop()


def read_energy(capsys, installation: Installation, keys_dir: Path | None = None) -> tuple[int, str, str]:
    code = main(["read", *installation.management(keys_dir), "--json", "1.0.1.8.0.255"])
    out, err = capsys.readouterr()
    return code, out, err


def fresh_client(capsys, installation: Installation, directory: Path, system_title: bytes) -> Path:
    """A second installer's keys dir: the meter's keys, a new signing key and certificate."""
    assert keys(capsys, "generate", "--keys-dir", str(directory))[0] == 0
    assert keys(capsys, "self-signed", "--keys-dir", str(directory), "--system-title", system_title.hex())[0] == 0
    for name in ("ek.hex", "ak.hex", "kek.hex"):
        (directory / name).write_bytes((installation.keys_dir / name).read_bytes())
    return directory


def test_imported_client_certificate_then_a_signed_pass3_with_it(capsys, installation, tmp_path) -> None:
    title = bytes.fromhex("444c4d5300000002")
    k2 = fresh_client(capsys, installation, tmp_path / "k2", title)
    code, _, err = read_energy(capsys, installation, k2)
    assert code == 5 and "meter-import-cert" in err  # the meter does not know this key yet
    code, out, err = keys(capsys, "meter-import-cert", *installation.public(k2))
    assert code == 0, err
    assert "client digital-signature certificate" in out and title.hex().upper() in out
    assert installation.station.client_public_keys[title] == KeysDir(k2).load().client_certificate
    code, out, err = read_energy(capsys, installation, k2)
    assert code == 0, err
    assert json.loads(out)["1.0.1.8.0.255"]["unit"] == "Wh"  # read over a signed pass 3, new key


def _e2e_support():
    """tests/e2e/e2e_support.py (the CLI as subprocesses), whichever test folder runs first."""
    path = Path(__file__).parents[1] / "e2e" / "e2e_support.py"
    spec = importlib.util.spec_from_file_location("e2e_support", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def test_done_when_keys_imports_a_client_certificate_into_simulate_t210d(tmp_path) -> None:
    """`dlms-edge simulate --profile t210d` and `dlms-edge keys` / `read` as a user runs them."""
    e2e = _e2e_support()
    k, k2, state = tmp_path / "k", tmp_path / "k2", str(tmp_path / "state")
    with e2e.Simulator("--profile", "t210d", "--keys-dir", str(k)) as sim:
        read = ("read", "--tcp", sim.tcp, *e2e.T210D_MANAGEMENT, "--pass3-signing", "always",
                "--keys-dir", str(k2), "--state-dir", state, "--json", "1.0.1.8.0.255")
        for step in (("keys", "generate", "--keys-dir", str(k2)),
                     ("keys", "self-signed", "--keys-dir", str(k2), "--system-title", "444c4d5300000002")):
            assert e2e.dlms_edge(*step).returncode == 0
        for name in ("ek.hex", "ak.hex"):
            (k2 / name).write_bytes((k / name).read_bytes())
        refused = e2e.dlms_edge(*read)
        assert refused.returncode == 5 and "meter-import-cert" in refused.stderr
        imported = e2e.dlms_edge("keys", "meter-import-cert", "--tcp", sim.tcp, "--keys-dir", str(k2))
        assert imported.returncode == 0, imported.stderr
        assert "system title 444C4D5300000002" in imported.stdout
        accepted = e2e.dlms_edge(*read)
        assert accepted.returncode == 0, accepted.stderr
        assert json.loads(accepted.stdout)["1.0.1.8.0.255"]["unit"] == "Wh"


def test_meter_fetch_certs_stores_the_meter_certificate(capsys, installation) -> None:
    (installation.keys_dir / "meter.crt.pem").unlink()  # the installer has not fetched it yet
    code, out, err = keys(capsys, "meter-fetch-certs", *installation.public())
    assert code == 0 and "meter.crt.pem" in out, err
    fetched = KeysDir(installation.keys_dir).load().meter_certificate
    assert certificates.system_title_from_certificate(fetched) == installation.station.model.system_title
    own = installation.state.key_pairs[KeyPair.DIGITAL_SIGNATURE]
    assert fetched.public_key().public_numbers() == own.public_key().public_numbers()


def test_rotate_keys_with_yes_then_the_next_association_uses_them(capsys, installation, tmp_path) -> None:
    k = installation.keys_dir
    old = KeysDir(k).load()
    stale = tmp_path / "stale"
    shutil.copytree(k, stale)
    code, out, err = keys(capsys, "meter-rotate-keys", *installation.management(), "--yes")
    assert code == 0, err
    new = KeysDir(k).load()
    assert new.ek != old.ek and new.ak != old.ak and new.kek == old.kek
    assert installation.state.ek == new.ek and installation.state.ak == new.ak
    assert not (k / keys_cli.PENDING_DIR).exists()
    assert new.ek.reveal().hex() not in out + err
    assert read_energy(capsys, installation)[0] == 0  # new keys
    assert read_energy(capsys, installation, stale)[0] != 0  # the old ones no longer work


def test_rotate_keys_refuses_without_a_terminal(capsys, installation, monkeypatch) -> None:
    before = installation.state.ek
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    code, _, err = keys(capsys, "meter-rotate-keys", *installation.management())
    assert code == 2 and "--yes" in err and installation.state.ek == before


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_rotate_keys_asks_and_a_no_changes_nothing(capsys, installation, monkeypatch) -> None:
    before = installation.state.ek
    asked: list[str] = []
    monkeypatch.setattr(sys, "stdin", _Terminal())
    monkeypatch.setattr("builtins.input", lambda question: asked.append(question) or "no")
    code, _, err = keys(capsys, "meter-rotate-keys", *installation.management(), "--rotate", "ek")
    assert code == 2 and "cancelled" in err
    assert asked and "replace ek" in asked[0] and installation.state.ek == before
    assert KeysDir(installation.keys_dir).load().ek == before


def test_rotate_keys_with_a_wrong_kek_keeps_the_keys_pending(capsys, installation) -> None:
    k = installation.keys_dir
    before = KeysDir(k).load().ek
    KeysDir(k).write_secret("kek", Secret(b"\x01" * 16))
    code, _, err = keys(capsys, "meter-rotate-keys", *installation.management(), "--yes", "--rotate", "ek")
    assert code == 6 and "other-reason" in err
    assert KeysDir(k).load().ek == before and installation.state.ek == before
    assert (k / keys_cli.PENDING_DIR / "ek.hex").exists()  # kept for the installer to judge
    assert "rotation_pending" in keys_cli.keys_dir_summary(k)


def test_meter_subcommands_need_a_keys_dir(capsys) -> None:
    code, _, err = keys(capsys, "meter-fetch-certs", "--tcp", "127.0.0.1:4059")
    assert code == 2 and "--keys-dir" in err
