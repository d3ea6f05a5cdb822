"""`dlms-edge keys`: files and modes offline; meter operations against the simulated meter side."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import stat
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from edge_agent.cli import keys as keys_cli
from edge_agent.cli import main
from edge_agent.client.security_setup import KeyPair
from edge_agent.dlms.apdu import (
    OMITTED,
    ActionRequestNormal,
    ActionResponseNormal,
    ActionResponseWithOptionalData,
    ActionResult,
    CosemAttributeDescriptor,
    CosemMethodDescriptor,
    GetRequestNormal,
    GetResponseNormal,
    decode_apdu,
)
from edge_agent.dlms.errors import ConfigError, ServiceError
from edge_agent.dlms.obis import Obis
from edge_agent.dlms.secret import Secret
from edge_agent.dlms.security import certificates
from edge_agent.keystore import KeysDir
from edge_agent.simulator.objects import Refused, Request
from edge_agent.simulator.security_setup import MeterKeyState, SecuritySetupServer

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


# --- meter operations against the simulated meter side --------------------------------------


class Loopback:
    """Requests encoded to APDUs, decoded, served by the simulator's Security setup."""

    def __init__(self, server: SecuritySetupServer) -> None:
        self.server = server
        self.request = Request(NOW, NOW, None)  # type: ignore[arg-type]

    def get(self, code: Obis, class_id: int, attribute: int) -> Any:
        request = decode_apdu(GetRequestNormal(0xC1, CosemAttributeDescriptor(class_id, bytes(code), attribute)).encode())
        value = self.server.attributes()[request.descriptor.attribute_id].get(self.request)
        return decode_apdu(GetResponseNormal(0xC1, value).encode()).result

    def action(self, code: Obis, class_id: int, method: int, parameters: Any = OMITTED) -> Any:
        request = decode_apdu(ActionRequestNormal(0xC1, CosemMethodDescriptor(class_id, bytes(code), method), parameters).encode())
        try:
            returned = self.server.invoke(self.request, request.descriptor.method_id, request.method_invocation_parameters)
            single = ActionResponseWithOptionalData(ActionResult.SUCCESS, OMITTED if returned is None else returned)
        except Refused as refusal:
            single = ActionResponseWithOptionalData(ActionResult(int(refusal.result)))
        answer = decode_apdu(ActionResponseNormal(0xC1, single).encode()).single_response
        if answer.result != ActionResult.SUCCESS:
            raise ServiceError(f"refused: {answer.result.standard_name}", answer.result.standard_name)
        return answer.return_parameters


@pytest.fixture
def installation(tmp_path, monkeypatch) -> tuple[Path, MeterKeyState]:
    """A keys dir as `simulate --keys-dir` makes it, a meter holding only its own certificate,
    and `keys.connect` bound to that meter."""
    store = KeysDir(tmp_path / "k")
    store.ensure_simulator_keys(METER_ST, CLIENT_ST)
    material = store.load()
    state = MeterKeyState(METER_ST, 1, client_system_title=CLIENT_ST, ek=material.ek, ak=material.ak, kek=material.kek)
    state.key_pairs[KeyPair.DIGITAL_SIGNATURE] = material.meter_signing_key
    server = SecuritySetupServer(state)
    server.import_certificate(Loopback(server).request, certificates.certificate_der(material.meter_certificate))
    (tmp_path / "k" / "meter.crt.pem").unlink()  # the client has not fetched it yet
    monkeypatch.setattr(keys_cli, "connect", lambda args: contextlib.nullcontext(Loopback(server)))
    return tmp_path / "k", state


METER_ARGS = ("--tcp", "127.0.0.1:4059")


def test_meter_import_cert_then_listed(capsys, installation) -> None:
    k, state = installation
    code, out, _ = keys(capsys, "meter-import-cert", *METER_ARGS, "--keys-dir", str(k))
    assert code == 0 and "client digital-signature certificate" in out and CLIENT_ST.hex().upper() in out
    assert state.signer(CLIENT_ST) == KeysDir(k).load().client_certificate


def test_meter_fetch_certs_stores_the_meter_certificate(capsys, installation) -> None:
    k, state = installation
    code, out, _ = keys(capsys, "meter-fetch-certs", *METER_ARGS, "--keys-dir", str(k))
    assert code == 0 and "meter.crt.pem" in out
    fetched = KeysDir(k).load().meter_certificate
    assert certificates.system_title_from_certificate(fetched) == METER_ST
    assert fetched.public_key().public_numbers() == state.key_pairs[KeyPair.DIGITAL_SIGNATURE].public_key().public_numbers()


def test_rotate_keys_with_yes(capsys, installation) -> None:
    k, state = installation
    old = KeysDir(k).load()
    code, out, err = keys(capsys, "meter-rotate-keys", *METER_ARGS, "--keys-dir", str(k), "--yes")
    assert code == 0, err
    new = KeysDir(k).load()
    assert new.ek != old.ek and new.ak != old.ak and new.kek == old.kek
    assert state.ek == new.ek and state.ak == new.ak
    assert not (k / keys_cli.PENDING_DIR).exists()
    assert new.ek.reveal().hex() not in out + err


def test_rotate_keys_refuses_without_a_terminal(capsys, installation, monkeypatch) -> None:
    k, state = installation
    before = state.ek
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    code, _, err = keys(capsys, "meter-rotate-keys", *METER_ARGS, "--keys-dir", str(k))
    assert code == 2 and "--yes" in err and state.ek == before


def test_rotate_keys_asks_and_a_no_changes_nothing(capsys, installation) -> None:
    k, state = installation
    before = state.ek
    asked = []
    with pytest.raises(ConfigError, match="cancelled"):
        keys_cli.rotate_keys(Loopback(SecuritySetupServer(state)), k, ["ek"], lambda q: asked.append(q) or False)
    assert asked and "replace ek" in asked[0] and state.ek == before
    assert keys_cli.rotate_keys(Loopback(SecuritySetupServer(state)), k, ["ek"], lambda q: True) == ["ek"]
    assert state.ek != before and KeysDir(k).load().ek == state.ek


def test_rotate_keys_with_a_wrong_kek_keeps_the_keys_pending(capsys, installation) -> None:
    k, state = installation
    before = KeysDir(k).load().ek
    KeysDir(k).write_secret("kek", Secret(b"\x01" * 16))
    code, _, err = keys(capsys, "meter-rotate-keys", *METER_ARGS, "--keys-dir", str(k), "--yes", "--rotate", "ek")
    assert code == 6 and "other-reason" in err
    assert KeysDir(k).load().ek == before and state.ek == before
    assert (k / keys_cli.PENDING_DIR / "ek.hex").exists()  # kept for the installer to judge
    assert "rotation_pending" in keys_cli.keys_dir_summary(k)


def test_meter_subcommands_need_a_keys_dir(capsys) -> None:
    code, _, err = keys(capsys, "meter-fetch-certs", *METER_ARGS)
    assert code == 2 and "--keys-dir" in err
