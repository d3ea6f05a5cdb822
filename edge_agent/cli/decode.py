"""dlms-edge decode: any frame or APDU as a readable tree; deciphers and verifies with keys.

Reads one hex string from the command line, or with ``-`` one per line from stdin
(bare hex or capture lines ``<iso-time> <tx|rx> <hex>``) and prints JSON Lines. The
decoding itself is :func:`edge_agent.dlms.inspect.inspect`; this module gathers keys and
prints.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, TextIO

from edge_agent.dlms.errors import ConfigError, DlmsError
from edge_agent.dlms.inspect import (
    CAPTURE_FORMAT,
    CaptureLine,
    DecodeKeys,
    inspect,
    parse_hex,
    parse_line,
)
from edge_agent.dlms.secret import Secret
from edge_agent.dlms.security import certificates
from edge_agent.dlms.security.control import CipherKeys
from edge_agent.keystore import KeyMaterial, KeysDir

HELP = "decode a frame or APDU (HDLC, wrapper, M-Bus, ciphered, signed); decipher and verify with keys"
EXAMPLES = f"""\
  dlms-edge decode 7ea0070321930f017e
  dlms-edge decode --json --ek 000102030405060708090a0b0c0d0e0f --ak d0d1d2d3d4d5d6d7d8d9dadbdcdddedf \\
      --system-title 4d4d4d0000bc614e c81e3001234567411312ff935a47566827c467bc7d825c3be4a77c3fcc056b6b
  dlms-edge decode --ek 73dd8fdbecc7777382da96302fcd8379 "68fafa6853ff000167db08...16 68146853ff110167...16"
  dlms-edge decode --keys-dir ~/meter-keys - < capture.txt      (JSON Lines, one object per line)
  dlms-edge decode --public-key 04cce9... --ek ... --ak ... db08434c49...
  Capture lines: {CAPTURE_FORMAT}, e.g. 2026-11-25T01:02:03.456Z tx 7ea0...
  Keys may also come from the environment: DLMS_EK, DLMS_AK."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("hex", nargs="+", metavar="HEX",
                        help="the frame or APDU as hex (spaces allowed), or - to read lines from stdin")
    group = parser.add_argument_group("keys (all optional: without them ciphered APDUs are shown structurally)")
    group.add_argument("--ek", metavar="HEX", help="global unicast encryption key (or env DLMS_EK)")
    group.add_argument("--ak", metavar="HEX", help="authentication key (or env DLMS_AK)")
    group.add_argument("--system-title", metavar="HEX",
                       help="the sender's system title, for glo-/ded- APDUs that do not carry one")
    group.add_argument("--cert", metavar="PEM", action="append", default=[],
                       help="certificate of a signer (general-signing); may be repeated")
    group.add_argument("--public-key", metavar="HEX",
                       help="signer's public key, X||Y or 04||X||Y, for general-signing of any originator")
    group.add_argument("--keys-dir", metavar="DIR",
                       help="keys directory: EK, AK, KEK and the client/meter certificates")
    parser.add_argument("--json", action="store_true",
                        help="print the tree as JSON, with \"plaintext\" (hex) of a deciphered APDU")


# --- keys -------------------------------------------------------------------------------------


def _secret(value: str | None, env: str, name: str) -> Secret | None:
    text = value if value is not None else os.environ.get(env)
    if text is None or not text.strip():
        return None
    secret = Secret.from_hex(text, name)
    if len(secret) not in (16, 32):
        raise ConfigError(f"{name} must be 16 bytes (suites 0/1) or 32 bytes (suite 2), got {len(secret)}")
    return secret


def _file(path: str, what: str) -> bytes:
    try:
        return Path(path).expanduser().read_bytes()
    except OSError as error:
        raise ConfigError(f"cannot read {what} {path}: {error.strerror}") from None


def build_keys(args: argparse.Namespace) -> tuple[DecodeKeys, KeyMaterial]:
    """Keys from flags, then the environment, then --keys-dir (the first one given wins)."""
    stored = KeysDir(args.keys_dir).load() if args.keys_dir else KeyMaterial()
    cipher = CipherKeys(
        ek=_secret(args.ek, "DLMS_EK", "EK") or stored.ek,
        ak=_secret(args.ak, "DLMS_AK", "AK") or stored.ak,
        kek=stored.kek,
    )
    system_title = Secret.from_hex(args.system_title, "--system-title", 8).reveal() if args.system_title else None
    signers: dict[bytes, Any] = {}
    for certificate in (stored.client_certificate, stored.meter_certificate):
        if certificate is not None:
            signers[certificates.system_title_from_certificate(certificate)] = certificate
    for path in args.cert:
        certificate = certificates.load_certificate(_file(path, "certificate"))
        signers[certificates.system_title_from_certificate(certificate)] = certificate
    signer = None
    if args.public_key:
        signer = certificates.public_key_from_point(parse_hex(args.public_key))
    return DecodeKeys(cipher, system_title, signer, signers), stored


def _for_line(keys: DecodeKeys, stored: KeyMaterial, line: CaptureLine) -> DecodeKeys:
    """A capture line says who sent the frame: tx is the client, rx the meter. With a keys
    directory that names both, the sender's system title needs no --system-title."""
    if keys.system_title is not None or line.direction is None:
        return keys
    title = stored.client_system_title if line.direction == "tx" else stored.meter_system_title
    return keys if title is None else DecodeKeys(keys.cipher, title, keys.signer, keys.signers)


# --- text output ------------------------------------------------------------------------------


def _scalar(node: Any) -> str | None:
    """One-line form of a Data node {"type", "value", ...}, or None if it nests."""
    if not isinstance(node, dict) or "type" not in node or "value" not in node:
        return None
    value = node["value"]
    if isinstance(value, list):
        return None
    notes = [f"{k} {node[k]}" for k in ("obis", "name", "date_time", "text") if k in node]
    extra = f" ({', '.join(notes)})" if notes else ""
    shown = "''" if value == "" else value
    return f"{shown} [{node['type']}]{extra}"


def render_text(node: Any, out: TextIO, indent: int = 0) -> None:
    pad = "  " * indent
    if isinstance(node, dict):
        for key, value in node.items():
            one_line = _scalar(value)
            if one_line is not None:
                out.write(f"{pad}{key}: {one_line}\n")
            elif isinstance(value, dict | list) and value:
                if isinstance(value, dict) and value.get("type") in ("structure", "array", "compact-array"):
                    out.write(f"{pad}{key}: {value['type']} of {len(value['value'])}\n")
                    render_text(value["value"], out, indent + 1)
                else:
                    out.write(f"{pad}{key}:\n")
                    render_text(value, out, indent + 1)
            else:
                out.write(f"{pad}{key}: {json.dumps(value) if value in ([], {}, None) else value}\n")
    elif isinstance(node, list):
        for item in node:
            one_line = _scalar(item)
            if one_line is not None:
                out.write(f"{pad}- {one_line}\n")
            elif isinstance(item, dict) and item.get("type") in ("structure", "array", "compact-array"):
                out.write(f"{pad}- {item['type']} of {len(item['value'])}\n")
                render_text(item["value"], out, indent + 1)
            else:
                out.write(f"{pad}-\n")
                render_text(item, out, indent + 1)
    else:
        out.write(f"{pad}{node}\n")


# --- run --------------------------------------------------------------------------------------


def _stdin(keys: DecodeKeys, stored: KeyMaterial) -> int:
    from edge_agent.cli import exit_code_for

    status = 0
    for number, text in enumerate(sys.stdin, start=1):
        record: dict[str, Any] = {"line": number}
        try:
            line = parse_line(text)
            if line is None:
                continue
            if line.timestamp is not None:
                record["timestamp"] = line.timestamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")
                record["direction"] = line.direction
            record.update(inspect(line.frame, _for_line(keys, stored, line)))
        except DlmsError as error:
            record["error"] = str(error)
            record["error_type"] = type(error).__name__
            print(f"dlms-edge decode: line {number}: error: {error}", file=sys.stderr)
            status = status or exit_code_for(error)
        print(json.dumps(record), flush=True)
    return status


def run(args: argparse.Namespace) -> int:
    keys, stored = build_keys(args)
    if args.hex == ["-"]:
        return _stdin(keys, stored)
    if "-" in args.hex:
        raise ConfigError("'-' (read stdin) cannot be combined with hex on the command line")
    line = parse_line(" ".join(args.hex))
    if line is None:
        raise ConfigError("nothing to decode: give a frame or APDU as hex, or - for stdin")
    tree = inspect(line.frame, _for_line(keys, stored, line))
    if args.json:
        print(json.dumps(tree, indent=2))
    else:
        render_text(tree, sys.stdout)
    return 0
