"""dlms-edge keys: key pairs, CSR and certificates on disk; certificates and keys in the meter.

Offline subcommands work on files (a keys directory, see :mod:`edge_agent.keystore`).
The ``meter-*`` subcommands talk to the meter through Security setup (class 64):
import our certificate, fetch the meter's certificates, rotate keys with key_transfer.
Key rotation asks for confirmation unless ``--yes``, and refuses without a terminal.
Secret values are never printed; files with private material are created 0600.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import secrets
import shutil
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from edge_agent.client.security_setup_calls import CosemClient, SecuritySetup
from edge_agent.dlms.cosem.security_setup import ByEntity, CertificateEntity, CertificateType, KeyId
from edge_agent.dlms.errors import ConfigError, ProtocolError, SecurityError
from edge_agent.dlms.secret import Secret
from edge_agent.dlms.security import certificates
from edge_agent.keystore import (
    CLIENT_CERT,
    CLIENT_KEY,
    DEFAULT_CLIENT_SYSTEM_TITLE,
    METER_CERT,
    METER_KEY,
    SECRET_FILES,
    KeysDir,
)
from edge_agent.state.counters import atomic_write

EXAMPLES = """\
  dlms-edge keys generate --keys-dir ~/meter-keys                    (client.key.pem, P-256, 0600)
  dlms-edge keys generate --usage key-agreement --out client-ka.key.pem
  dlms-edge keys csr --keys-dir ~/meter-keys --system-title 444c4d5300000001 --out client.csr.pem
  dlms-edge keys self-signed --keys-dir ~/meter-keys --system-title 444c4d5300000001 --days 3650
  dlms-edge keys show --keys-dir ~/meter-keys
  dlms-edge keys import-meter-cert meter.crt.pem --keys-dir ~/meter-keys
  dlms-edge keys meter-import-cert --tcp 127.0.0.1:4059 --keys-dir ~/meter-keys   (public client)
  dlms-edge keys meter-fetch-certs --tcp 127.0.0.1:4059 --keys-dir ~/meter-keys
  dlms-edge keys meter-rotate-keys --tcp 127.0.0.1:4059 --client 1 --security authenc --suite 1 \\
      --auth hls-gmac --keys-dir ~/meter-keys --rotate ek,ak        (asks before changing keys)"""

KEY_AGREEMENT_KEY = "client-ka.key.pem"
_USAGES = {"signing": certificates.DIGITAL_SIGNATURE, "key-agreement": certificates.KEY_AGREEMENT}
_ROTATABLE = {"ek": KeyId.GLOBAL_UNICAST_ENCRYPTION_KEY, "ak": KeyId.AUTHENTICATION_KEY,
              "kek": KeyId.MASTER_KEY}
PENDING_DIR = "rotation-pending"


# --- files --------------------------------------------------------------------------------------


def write_private(path: Path, data: bytes, *, force: bool) -> None:
    """Create ``path`` 0600; an existing file is kept unless ``force``."""
    if path.exists() and not force:
        raise ConfigError(f"{path} exists: not overwritten (add --force to replace it)")
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    atomic_write(path, data, 0o600)


def _read(path: str | Path, what: str) -> bytes:
    try:
        return Path(path).expanduser().read_bytes()
    except OSError as error:
        raise ConfigError(f"cannot read {what} {path}: {error.strerror}") from None


def _target(args: argparse.Namespace, default_name: str) -> Path:
    if args.out:
        return Path(args.out).expanduser()
    if args.keys_dir:
        return Path(args.keys_dir).expanduser() / default_name
    raise ConfigError("say where to write: --out FILE or --keys-dir DIR")


def _private_key(args: argparse.Namespace) -> ec.EllipticCurvePrivateKey:
    if args.key:
        return certificates.load_private_key(_read(args.key, "private key"))
    if args.keys_dir:
        return certificates.load_private_key(_read(Path(args.keys_dir).expanduser() / CLIENT_KEY, "private key"))
    raise ConfigError("which key? --key PEM or --keys-dir DIR (client.key.pem)")


def _system_title(args: argparse.Namespace) -> bytes:
    if args.system_title:
        return Secret.from_hex(args.system_title, "--system-title", 8).reveal()
    return DEFAULT_CLIENT_SYSTEM_TITLE


# --- offline subcommands ---------------------------------------------------------------------------


def cmd_generate(args: argparse.Namespace) -> int:
    key = certificates.generate_key_pair(args.suite)
    default = CLIENT_KEY if args.usage == "signing" else KEY_AGREEMENT_KEY
    path = _target(args, default)
    write_private(path, certificates.private_key_pem(key), force=args.force)
    print(f"wrote {path} ({key.curve.name} {args.usage} key pair, mode 0600)")
    return 0


def cmd_csr(args: argparse.Namespace) -> int:
    csr = certificates.build_csr(_private_key(args), _system_title(args), usage=_USAGES[args.usage],
                                 organization=args.organization)
    path = _target(args, "client.csr.pem")
    write_private(path, certificates.csr_pem(csr), force=args.force)
    print(f"wrote {path} (CSR, subject CN={_system_title(args).hex().upper()})")
    return 0


def cmd_self_signed(args: argparse.Namespace) -> int:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    certificate = certificates.self_signed_certificate(
        _private_key(args), _system_title(args), not_before=now - dt.timedelta(days=1),
        not_after=now + dt.timedelta(days=args.days), usage=_USAGES[args.usage],
        organization=args.organization)
    path = _target(args, CLIENT_CERT)
    write_private(path, certificates.certificate_pem(certificate), force=args.force)
    print(f"wrote {path} (self-signed, CN={_system_title(args).hex().upper()}, {args.days} days)")
    return 0


def describe_certificate(certificate: x509.Certificate) -> dict[str, Any]:
    try:
        title: str | None = certificates.system_title_from_certificate(certificate).hex().upper()
    except SecurityError:
        title = None
    return {
        "system_title": title,
        "subject": certificate.subject.rfc4514_string(),
        "issuer": certificate.issuer.rfc4514_string(),
        "serial_number": f"{certificate.serial_number:x}",
        "not_after": certificate.not_valid_after_utc.isoformat(),
        "public_key": getattr(certificate.public_key(), "curve", None) and certificate.public_key().curve.name,
    }


def keys_dir_summary(path: Path) -> dict[str, Any]:
    """What a keys directory holds: names, sizes, certificate subjects; never a secret."""
    material = KeysDir(path).load()
    summary: dict[str, Any] = {"keys_dir": str(path)}
    for name, (filename, description) in SECRET_FILES.items():
        secret = getattr(material, name)
        summary[name] = None if secret is None else {"file": filename, "description": description,
                                                      "length": len(secret)}
    summary["password"] = "present" if material.password is not None else None
    for field, filename in (("client_signing_key", CLIENT_KEY), ("meter_signing_key", METER_KEY)):
        key = getattr(material, field)
        summary[field] = None if key is None else {"file": filename, "curve": key.curve.name}
    for field, filename in (("client_certificate", CLIENT_CERT), ("meter_certificate", METER_CERT)):
        certificate = getattr(material, field)
        summary[field] = None if certificate is None else {"file": filename, **describe_certificate(certificate)}
    ka = path / KEY_AGREEMENT_KEY
    summary["client_key_agreement_key"] = {"file": KEY_AGREEMENT_KEY} if ka.exists() else None
    if (path / PENDING_DIR).exists():
        summary["rotation_pending"] = (
            f"{path / PENDING_DIR} holds keys of an unfinished rotation: if the meter took them, "
            "move them into the keys directory; otherwise delete the folder")
    return summary


def cmd_show(args: argparse.Namespace) -> int:
    if not args.keys_dir:
        raise ConfigError("--keys-dir DIR is required")
    summary = keys_dir_summary(Path(args.keys_dir).expanduser())
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    for name, value in summary.items():
        if isinstance(value, dict):
            print(f"{name}: " + ", ".join(f"{k}={v}" for k, v in value.items()))
        else:
            print(f"{name}: {'-' if value is None else value}")
    return 0


def cmd_import_meter_cert(args: argparse.Namespace) -> int:
    if not args.keys_dir:
        raise ConfigError("--keys-dir DIR is required")
    certificate = certificates.load_certificate(_read(args.file, "certificate"))
    title = certificates.system_title_from_certificate(certificate)  # a DLMS end-entity one
    path = Path(args.keys_dir).expanduser() / METER_CERT
    write_private(path, certificates.certificate_pem(certificate), force=args.force)
    print(f"wrote {path} (meter system title {title.hex().upper()})")
    return 0


# --- meter operations (on any client with get/action) -----------------------------------------


def import_certificate_into_meter(client: CosemClient, certificate: x509.Certificate) -> list[str]:
    """Import ``certificate`` (ours) and return the meter's certificate list afterwards."""
    setup = SecuritySetup(client)
    setup.import_certificate(certificate)
    return [info.describe() for info in setup.certificates()]


def fetch_meter_certificates(client: CosemClient, keys_dir: Path, *, force: bool = True) -> list[Path]:
    """Export the meter's own certificates and store them; the signing one as meter.crt.pem."""
    setup = SecuritySetup(client)
    server_title = setup.server_system_title()
    written = []
    for info in setup.certificates():
        if info.entity is not CertificateEntity.SERVER:
            continue
        certificate = setup.export_certificate(ByEntity(info.entity, info.type, info.system_title or server_title))
        if certificates.system_title_from_certificate(certificate) != server_title:
            raise ProtocolError("the meter exported a certificate of another system title than its own")
        name = METER_CERT if info.type is CertificateType.DIGITAL_SIGNATURE else f"meter-{info.type.name.lower()}.crt.pem"
        write_private(keys_dir / name, certificates.certificate_pem(certificate), force=force)
        written.append(keys_dir / name)
    if not written:
        raise ProtocolError("the meter lists no certificate of its own (certificates attribute)")
    return written


def rotate_keys(client: CosemClient, keys_dir: Path, names: list[str],
                confirm: Callable[[str], bool]) -> list[str]:
    """New random keys for ``names`` (ek/ak/kek) sent with key_transfer under the current KEK.

    The new keys are written to ``keys_dir/rotation-pending`` (0600, fsync'd) before the
    meter sees them, so a crash in between never loses the keys the meter may have taken.
    """
    store = KeysDir(keys_dir)
    material = store.load()
    if material.kek is None:
        raise ConfigError(f"{keys_dir / 'kek.hex'} missing: key_transfer wraps new keys with the master key (KEK)")
    unknown = [n for n in names if n not in _ROTATABLE]
    if unknown or not names:
        raise ConfigError(f"keys to rotate: one or more of {', '.join(_ROTATABLE)}, got {', '.join(unknown) or 'none'}")
    question = (f"replace {', '.join(names)} in the meter? Readers using the old keys stop working "
                "until they get the new ones")
    if not confirm(question):
        raise ConfigError("key rotation cancelled: nothing was sent to the meter")
    length = len(material.kek)
    new = {name: Secret(secrets.token_bytes(length), SECRET_FILES[name][1]) for name in names}
    pending = KeysDir(keys_dir / PENDING_DIR)
    for name, key in new.items():
        pending.write_secret(name, key)
    SecuritySetup(client).key_transfer(material.kek, {_ROTATABLE[n]: k for n, k in new.items()})
    for name, key in new.items():
        store.write_secret(name, key)
    shutil.rmtree(keys_dir / PENDING_DIR)
    return names


def _connect(args: argparse.Namespace) -> AbstractContextManager[Any]:
    from edge_agent.cli.options import FrameTap, client_from_args

    return client_from_args(args, FrameTap(args.verbose, args.capture))


connect = _connect  # tests replace it with a client bound to the simulator


def _ask(question: str) -> bool:
    answer = input(f"{question}. Type 'yes' to continue: ")
    return answer.strip().lower() == "yes"


def confirmation(args: argparse.Namespace) -> Callable[[str], bool]:
    if args.yes:
        return lambda question: True
    if not sys.stdin.isatty():
        raise ConfigError("refusing to change the meter's keys without a terminal to confirm: add --yes")
    return _ask


def cmd_meter_import_cert(args: argparse.Namespace) -> int:
    keys_dir = Path(args.keys_dir).expanduser()
    source = args.cert or keys_dir / CLIENT_CERT
    certificate = certificates.load_certificate(_read(source, "certificate"))
    with connect(args) as client:
        listed = import_certificate_into_meter(client, certificate)
    print(f"imported {source} into the meter; it now holds:")
    for line in listed:
        print(f"  {line}")
    return 0


def cmd_meter_fetch_certs(args: argparse.Namespace) -> int:
    with connect(args) as client:
        written = fetch_meter_certificates(client, Path(args.keys_dir).expanduser())
    for path in written:
        print(f"wrote {path}")
    return 0


def cmd_meter_rotate_keys(args: argparse.Namespace) -> int:
    confirm = confirmation(args)  # before connecting: no TTY and no --yes stops here
    names = [n.strip() for n in args.rotate.split(",") if n.strip()]
    with connect(args) as client:
        done = rotate_keys(client, Path(args.keys_dir).expanduser(), names, confirm)
    print(f"the meter took new {', '.join(done)}; {args.keys_dir} holds them (the old ones are gone)")
    return 0


# --- argparse ---------------------------------------------------------------------------------------


def _file_options(parser: argparse.ArgumentParser, *, key: bool, title: bool) -> None:
    parser.add_argument("--keys-dir", metavar="DIR", help="keys directory (default file names)")
    parser.add_argument("--out", metavar="FILE", help="write here instead of the keys directory")
    parser.add_argument("--force", action="store_true", help="replace an existing file")
    parser.add_argument("--usage", choices=tuple(_USAGES), default="signing",
                        help="signing (ECDSA, default) or key-agreement (ECDH)")
    if key:
        parser.add_argument("--key", metavar="PEM", help="private key (default: DIR/client.key.pem)")
    if title:
        parser.add_argument("--system-title", metavar="HEX",
                            help=f"16 hex digits, the certificate's CN (default {DEFAULT_CLIENT_SYSTEM_TITLE.hex()})")
        parser.add_argument("--organization", metavar="NAME", help="optional O= of the subject")


def _meter_options(parser: argparse.ArgumentParser) -> None:
    from edge_agent.cli.options import (
        add_connection_arguments,
        add_output_arguments,
        add_security_arguments,
    )

    add_connection_arguments(parser)
    add_security_arguments(parser)
    add_output_arguments(parser)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="keys_command", metavar="SUBCOMMAND", required=True)
    p = sub.add_parser("generate", help="make a P-256 (or P-384) key pair, PEM, mode 0600")
    _file_options(p, key=False, title=False)
    p.add_argument("--suite", type=int, choices=(1, 2), default=1, help="1: P-256 (default), 2: P-384")
    p.set_defaults(keys_run=cmd_generate)
    p = sub.add_parser("csr", help="certificate signing request, subject CN = system title")
    _file_options(p, key=True, title=True)
    p.set_defaults(keys_run=cmd_csr)
    p = sub.add_parser("self-signed", help="self-signed certificate, subject CN = system title")
    _file_options(p, key=True, title=True)
    p.add_argument("--days", type=int, default=3650, help="validity in days (default 3650)")
    p.set_defaults(keys_run=cmd_self_signed)
    p = sub.add_parser("show", help="what a keys directory holds (never the secret values)")
    p.add_argument("--keys-dir", metavar="DIR", required=True)
    p.add_argument("--json", action="store_true")
    p.set_defaults(keys_run=cmd_show)
    p = sub.add_parser("import-meter-cert", help="store the meter's certificate (file) as DIR/meter.crt.pem")
    p.add_argument("file", metavar="FILE", help="the meter's certificate, PEM or DER")
    p.add_argument("--keys-dir", metavar="DIR", required=True)
    p.add_argument("--force", action="store_true", help="replace an existing meter.crt.pem")
    p.set_defaults(keys_run=cmd_import_meter_cert)
    p = sub.add_parser("meter-import-cert", help="import our certificate into the meter (Security setup method 6)")
    p.add_argument("--cert", metavar="PEM", help="certificate to import (default DIR/client.crt.pem)")
    _meter_options(p)
    p.set_defaults(keys_run=cmd_meter_import_cert)
    p = sub.add_parser("meter-fetch-certs", help="export the meter's certificates into DIR (method 7)")
    _meter_options(p)
    p.set_defaults(keys_run=cmd_meter_fetch_certs)
    p = sub.add_parser("meter-rotate-keys", help="new keys into the meter with key_transfer (method 2); asks first")
    p.add_argument("--rotate", metavar="LIST", default="ek,ak", help="keys to replace: ek,ak,kek (default ek,ak)")
    p.add_argument("--yes", action="store_true", help="do not ask (needed without a terminal)")
    _meter_options(p)
    p.set_defaults(keys_run=cmd_meter_rotate_keys)


def run(args: argparse.Namespace) -> int:
    needs_dir = args.keys_command.startswith("meter-")
    if needs_dir and not getattr(args, "keys_dir", None):
        raise ConfigError("--keys-dir DIR is required: it holds the certificates and keys exchanged")
    return int(args.keys_run(args))


__all__ = ["connect", "fetch_meter_certificates", "import_certificate_into_meter",
           "keys_dir_summary", "rotate_keys", "write_private"]
