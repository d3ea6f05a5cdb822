"""TLS to Mosquitto with a CA, server and client certificates made here."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from edge_agent.dlms.errors import ConfigError
from edge_agent.mqtt.publisher import Publisher, tls_context
from edge_agent.mqtt.queue import OfflineQueue
from edge_agent.mqtt.settings import MqttSettings, TlsSettings

pytestmark = pytest.mark.mosquitto


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _issue(subject: str, key, issuer_key, issuer: str, *, ca: bool = False,
           dns: str | None = None) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    builder = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(_name(issuer))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(minutes=5))
               .not_valid_after(now + dt.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if dns:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(dns)]),
                                        critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _write(path: Path, cert: x509.Certificate, key) -> None:
    path.with_suffix(".crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    path.with_suffix(".key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("pki")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    _write(directory / "ca", _issue("test CA", ca_key, ca_key, "test CA", ca=True), ca_key)
    for name, dns in (("server", "localhost"), ("client", None)):
        key = ec.generate_private_key(ec.SECP256R1())
        _write(directory / name, _issue(name, key, ca_key, "test CA", dns=dns), key)
    return directory


@pytest.fixture
def tls_broker(mosquitto_factory, pki, free_port):
    port = free_port()
    broker = mosquitto_factory(extra_config="\n".join([
        f"listener {port} 127.0.0.1",
        f"cafile {pki / 'ca.crt'}", f"certfile {pki / 'server.crt'}",
        f"keyfile {pki / 'server.key'}", "require_certificate true"]))
    broker.tls_port = port
    return broker


def _publisher(broker, tmp_path: Path, host: str, tls: TlsSettings) -> Publisher:
    settings = MqttSettings(host=host, port=broker.tls_port, tls=tls, reconnect_min=0.1,
                            reconnect_max=0.5)
    return Publisher(settings, "tls", OfflineQueue.in_state_dir(tmp_path)).start()


def test_tls_with_client_certificate(tls_broker, pki, subscribe, tmp_path):
    watcher = subscribe(["dlms/#"], broker=tls_broker)  # on the plain listener
    publisher = _publisher(tls_broker, tmp_path, "localhost", TlsSettings(
        pki / "ca.crt", pki / "client.crt", pki / "client.key"))
    try:
        publisher.publish("dlms/tls/m/availability", b"online")
        assert publisher.wait_idle(10)
    finally:
        publisher.close(timeout=5)
    assert watcher.wait_count("dlms/tls/m/availability", 1)


def test_host_name_checked_unless_insecure(tls_broker, pki, tmp_path):
    # The server certificate names "localhost" only; 127.0.0.1 does not match it.
    tls = TlsSettings(pki / "ca.crt", pki / "client.crt", pki / "client.key")
    strict = _publisher(tls_broker, tmp_path / "a", "127.0.0.1", tls)
    loose = _publisher(tls_broker, tmp_path / "b", "127.0.0.1",
                       TlsSettings(tls.ca, tls.cert, tls.key, insecure=True))
    try:
        deadline = time.monotonic() + 10
        while not loose.connected and time.monotonic() < deadline:
            time.sleep(0.02)
        assert loose.connected
        time.sleep(0.5)
        assert not strict.connected
    finally:
        strict.close(timeout=0.2)
        loose.close(timeout=2)


def test_unreadable_ca_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="mqtt.tls"):
        tls_context(TlsSettings(ca=tmp_path / "missing.crt"))
