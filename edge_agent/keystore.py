"""A keys directory (`--keys-dir DIR`): the key material of one meter installation on disk.

Layout (every file 0600, the directory 0700)::

    ek.hex            global unicast encryption key (hex)
    ak.hex            authentication key (hex)
    kek.hex           master key, for key transfer (hex)
    password.txt      LLS password
    client.key.pem    the client's ECDSA signing key (PKCS #8)
    client.crt.pem    the client's certificate (subject CN = client system title)
    meter.crt.pem     the meter's signing certificate (subject CN = meter system title)
    meter.key.pem     the meter's signing key: only the simulator has it

The simulator creates what is missing (`ensure_simulator_keys`), and the client reads the
same directory, so `simulate --keys-dir K` and `read --keys-dir K` agree without copying
keys on a command line.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from edge_agent.dlms.errors import ConfigError
from edge_agent.dlms.secret import Secret
from edge_agent.state.counters import atomic_write

if TYPE_CHECKING:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec

# edge_agent.dlms.security.certificates (and with it cryptography and its x509, about
# 13 MB resident) is imported only when a key pair or certificate is read or made:
# keys directories with EK/AK/password alone, the common case, never need it.

# key name -> (file, human description)
SECRET_FILES: dict[str, tuple[str, str]] = {
    "ek": ("ek.hex", "global unicast encryption key (EK)"),
    "ak": ("ak.hex", "authentication key (AK)"),
    "kek": ("kek.hex", "master key (KEK)"),
}
PASSWORD_FILE = "password.txt"
CLIENT_KEY, CLIENT_CERT = "client.key.pem", "client.crt.pem"
METER_KEY, METER_CERT = "meter.key.pem", "meter.crt.pem"
# KeyMaterial field -> (file, loader in edge_agent.dlms.security.certificates)
SIGNING_FILES: dict[str, tuple[str, str]] = {
    "client_signing_key": (CLIENT_KEY, "load_private_key"),
    "client_certificate": (CLIENT_CERT, "load_certificate"),
    "meter_signing_key": (METER_KEY, "load_private_key"),
    "meter_certificate": (METER_CERT, "load_certificate"),
}

DEFAULT_CLIENT_SYSTEM_TITLE = bytes.fromhex("444c4d5300000001")  # "DLMS" + serial 1


@dataclass(frozen=True, slots=True)
class KeyMaterial:
    ek: Secret | None = None
    ak: Secret | None = None
    kek: Secret | None = None
    password: Secret | None = None
    client_signing_key: ec.EllipticCurvePrivateKey | None = None
    client_certificate: x509.Certificate | None = None
    meter_signing_key: ec.EllipticCurvePrivateKey | None = None
    meter_certificate: x509.Certificate | None = None

    def __repr__(self) -> str:
        present = [name for name in self.__dataclass_fields__ if getattr(self, name) is not None]
        return f"<KeyMaterial: {', '.join(present) or 'empty'}>"

    @property
    def client_system_title(self) -> bytes | None:
        if self.client_certificate is None:
            return None
        from edge_agent.dlms.security import certificates

        return certificates.system_title_from_certificate(self.client_certificate)

    @property
    def meter_system_title(self) -> bytes | None:
        if self.meter_certificate is None:
            return None
        from edge_agent.dlms.security import certificates

        return certificates.system_title_from_certificate(self.meter_certificate)


class KeysDir:
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path).expanduser()

    def _file(self, name: str) -> Path:
        return self.path / name

    def _read(self, name: str) -> bytes | None:
        path = self._file(name)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            return None
        except PermissionError:
            raise ConfigError(f"cannot read {path}: permission denied (run as the key owner)") from None

    def load(self) -> KeyMaterial:
        if not self.path.is_dir():
            raise ConfigError(f"keys directory {self.path} does not exist")
        values: dict[str, object] = {}
        for name, (filename, description) in SECRET_FILES.items():
            raw = self._read(filename)
            if raw is not None:
                values[name] = Secret.from_hex(raw.decode("ascii", "replace"), description)
        password = self._read(PASSWORD_FILE)
        if password is not None:
            values["password"] = Secret(password.rstrip(b"\r\n"), "LLS password")
        for field, (filename, loader) in SIGNING_FILES.items():
            raw = self._read(filename)
            if raw is not None:
                from edge_agent.dlms.security import certificates

                try:
                    values[field] = getattr(certificates, loader)(raw)
                except ConfigError as error:
                    raise ConfigError(f"{self._file(filename)}: {error}") from None
        return KeyMaterial(**values)

    def write_secret(self, name: str, value: Secret) -> None:
        self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
        atomic_write(self._file(SECRET_FILES[name][0]), value.reveal().hex().encode() + b"\n")

    def ensure_simulator_keys(
        self, meter_system_title: bytes, client_system_title: bytes = DEFAULT_CLIENT_SYSTEM_TITLE,
        suite: int = 1,
    ) -> list[str]:
        """Create every missing file; returns the names created. Existing ones are kept."""
        self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
        created: list[str] = []
        key_length = 32 if suite == 2 else 16
        for name, (filename, description) in SECRET_FILES.items():
            if not self._file(filename).exists():
                self.write_secret(name, Secret(secrets.token_bytes(key_length), description))
                created.append(filename)
        from edge_agent.dlms.security import certificates

        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        for key_file, cert_file, system_title in (
            (CLIENT_KEY, CLIENT_CERT, client_system_title),
            (METER_KEY, METER_CERT, meter_system_title),
        ):
            if self._file(key_file).exists() and self._file(cert_file).exists():
                continue
            key = certificates.generate_key_pair(suite if suite in (1, 2) else 1)
            certificate = certificates.self_signed_certificate(
                key, system_title, not_before=now - dt.timedelta(days=1),
                not_after=now + dt.timedelta(days=3650),
            )
            atomic_write(self._file(key_file), certificates.private_key_pem(key))
            atomic_write(self._file(cert_file), certificates.certificate_pem(certificate))
            created += [key_file, cert_file]
        return created
