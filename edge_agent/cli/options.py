"""Command-line options shared by the verbs that talk to a meter (read, profile, scan, keys).

The flags are the public CLI contract (README, "Command line"). Keys may come from flags, from the
environment (DLMS_EK, DLMS_AK, DLMS_PASSWORD) or from a keys directory; the values are
wrapped in :class:`Secret` at once and never printed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
from collections.abc import Callable
from typing import TextIO

from edge_agent.client.client import FRAME_COUNTER, MeterClient, default_state_dir
from edge_agent.client.connection import ConnectionSettings, parse_host_port
from edge_agent.dlms.association.client import ClientSettings
from edge_agent.dlms.association.settings import Authentication, Pass3Signing
from edge_agent.dlms.cosem.obis import Obis
from edge_agent.dlms.errors import ConfigError, DecodeError
from edge_agent.dlms.inspect import format_capture_line
from edge_agent.dlms.link.hdlc.frame import (
    LARGEST_MAX_INFO_LENGTH,
    LARGEST_WINDOW_SIZE,
    HdlcParameters,
)
from edge_agent.dlms.redact import redact_frame
from edge_agent.dlms.secret import Secret
from edge_agent.dlms.security.control import SecurityPolicy
from edge_agent.dlms.system_title import SystemTitle
from edge_agent.keystore import DEFAULT_CLIENT_SYSTEM_TITLE, KeyMaterial, KeysDir

log = logging.getLogger("edge_agent.frames")


def add_connection_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("connection")
    where = group.add_mutually_exclusive_group(required=True)
    where.add_argument("--tcp", metavar="HOST:PORT", help="TCP meter or gateway (IEC 62056-47 wrapper; port 4059 if omitted)")
    where.add_argument("--serial", metavar="DEV", help="serial device: optical head or RS-485 adapter (HDLC)")
    group.add_argument("--hdlc", action="store_true", help="with --tcp: HDLC over TCP (serial-to-Ethernet converters)")
    group.add_argument("--baud", type=int, default=9600, help="serial speed (default 9600; with --optical the highest to agree)")
    group.add_argument("--parity", choices="NEO", default="N", help="serial parity (default N)")
    group.add_argument("--optical", action="store_true", help="with --serial: IEC 62056-21 mode E sign-on at 300 baud, then HDLC")
    group.add_argument("--rs485", action="store_true", help="with --serial: let the kernel switch the RS-485 driver (HATs with RTS direction control)")
    group.add_argument("--client", type=int, default=16, metavar="SAP", help="client SAP: 16 public, 1 management (default 16)")
    group.add_argument("--logical", type=int, default=1, metavar="N", help="server logical device address (default 1)")
    group.add_argument("--physical", type=int, default=16, metavar="N", help="server physical address for HDLC (default 16)")
    group.add_argument("--address-size", type=int, choices=(1, 2, 4), default=4, help="HDLC server address bytes (default 4)")
    group.add_argument("--timeout", type=float, default=5.0, metavar="S", help="seconds to wait for each answer (default 5)")
    group.add_argument("--retries", type=int, default=3, help="HDLC retransmissions before giving up (default 3)")
    group.add_argument("--hdlc-max-info", type=_bounded(32, LARGEST_MAX_INFO_LENGTH), metavar="BYTES",
                       help=f"HDLC information field length to propose (32..{LARGEST_MAX_INFO_LENGTH}; default "
                       f"{LARGEST_MAX_INFO_LENGTH}: the meter grants what it can; 128 for a meter or a noisy "
                       "line that does not cope with longer frames)")
    group.add_argument("--hdlc-window", type=_bounded(1, LARGEST_WINDOW_SIZE), metavar="N",
                       help=f"HDLC window size to propose (1..{LARGEST_WINDOW_SIZE}; default {LARGEST_WINDOW_SIZE})")


def _bounded(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number {low}..{high}, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"expected {low}..{high}, got {value}")
        return value

    return parse


def _hdlc_parameters(args: argparse.Namespace) -> HdlcParameters | None:
    """What SNRM proposes: the flags given, the largest for the others; None without flags."""
    if args.hdlc_max_info is None and args.hdlc_window is None:
        return None
    size = args.hdlc_max_info or LARGEST_MAX_INFO_LENGTH
    window = args.hdlc_window or LARGEST_WINDOW_SIZE
    return HdlcParameters(size, size, window, window)


def add_security_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("security")
    group.add_argument("--security", choices=tuple(SecurityPolicy), default="none",
                       help="security policy of the association (default none)")
    group.add_argument("--suite", type=int, choices=(0, 1, 2), default=0, help="security suite (default 0)")
    group.add_argument("--auth", choices=tuple(Authentication), default="none",
                       help="authentication: none, low (LLS password), hls-gmac (HLS-5), hls-ecdsa (HLS-7)")
    group.add_argument("--password", help="LLS password (or env DLMS_PASSWORD)")
    group.add_argument("--ek", metavar="HEX", help="global unicast encryption key (or env DLMS_EK)")
    group.add_argument("--ak", metavar="HEX", help="authentication key (or env DLMS_AK)")
    group.add_argument("--keys-dir", metavar="DIR", help="keys directory (ek.hex, ak.hex, client.key.pem, meter.crt.pem, ...)")
    group.add_argument("--system-title", metavar="HEX", help="the client's system title (16 hex digits)")
    group.add_argument("--pass3-signing", choices=tuple(Pass3Signing), default="auto",
                       help="sign HLS pass 3 (general-signing, as the T-210D demands): auto tries "
                       "unsigned first and remembers per meter (default auto)")
    group.add_argument("--association", metavar="OBIS", default="0.0.40.0.0.255",
                       help="Association LN object that takes HLS pass 3 (default 0.0.40.0.0.255, the current association)")
    group.add_argument("--frame-counter", metavar="OBIS|none", default=FRAME_COUNTER.dotted,
                       help="the meter's frame counter, read with the public client (SAP 16) when our "
                       f"invocation counter is new or refused (default {FRAME_COUNTER.dotted}; none: never)")
    group.add_argument("--state-dir", metavar="DIR", help=f"invocation counters and learned facts (default {default_state_dir()})")
    group.add_argument("--meter-id", metavar="ID", help="name under which facts about this meter are kept (default: from the address)")


def add_output_arguments(parser: argparse.ArgumentParser, json_help: str = "print JSON") -> None:
    parser.add_argument("--json", action="store_true", help=json_help)
    parser.add_argument("--verbose", "-v", action="store_true", help="log every frame (keys never appear)")
    parser.add_argument("--capture", metavar="FILE", help="append raw frames with time and direction, readable by 'dlms-edge decode -'")


def connection_from_args(args: argparse.Namespace) -> ConnectionSettings:
    return ConnectionSettings(
        tcp=parse_host_port(args.tcp) if args.tcp else None,
        serial=args.serial,
        baud=args.baud,
        parity=args.parity,
        optical=args.optical,
        rs485=args.rs485,
        hdlc=args.hdlc,
        client_sap=args.client,
        server_logical=args.logical,
        server_physical=args.physical,
        address_size=args.address_size,
        timeout=args.timeout,
        retries=args.retries,
        hdlc_parameters=_hdlc_parameters(args),
    )


def _secret(value: str | None, env: str, name: str, length: int) -> Secret | None:
    text = value if value is not None else os.environ.get(env)
    return None if text is None else Secret.from_hex(text, name, length)


def load_keys(args: argparse.Namespace) -> KeyMaterial:
    return KeysDir(args.keys_dir).load() if args.keys_dir else KeyMaterial()


def client_settings_from_args(args: argparse.Namespace, keys: KeyMaterial | None = None) -> ClientSettings:
    keys = keys if keys is not None else load_keys(args)
    length = 32 if args.suite == 2 else 16
    ek = _secret(args.ek, "DLMS_EK", "EK", length) or keys.ek
    ak = _secret(args.ak, "DLMS_AK", "AK", length) or keys.ak
    password_text = args.password if args.password is not None else os.environ.get("DLMS_PASSWORD")
    password = Secret(password_text.encode(), "LLS password") if password_text is not None else keys.password
    if args.system_title:
        system_title = SystemTitle.from_hex(args.system_title)
    else:
        system_title = keys.client_system_title or DEFAULT_CLIENT_SYSTEM_TITLE
    return ClientSettings(
        security=args.security,
        suite=args.suite,
        authentication=args.auth,
        password=password,
        system_title=system_title,
        ek=ek,
        ak=ak,
        signing_key=keys.client_signing_key,
        server_public_key=keys.meter_certificate,
        association=bytes(_obis_option(args.association, "--association")),
    )


def _obis_option(text: str, flag: str) -> Obis:
    try:
        return Obis.parse(text)
    except DecodeError as error:
        raise ConfigError(f"{flag} {text!r} is not an OBIS code (e.g. 0.0.40.0.0.255): {error}") from None


def meter_id_from_args(args: argparse.Namespace) -> str:
    if args.meter_id:
        return args.meter_id
    where = args.tcp or args.serial
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in f"{where}-{args.logical}-{args.physical}")


class FrameTap:
    """Logs frames with --verbose and appends them to --capture FILE in the capture format
    of ``dlms-edge decode -``. Frames are ciphertext or what the meter sends anyway; the
    one secret sent in clear, an LLS password in the AARQ, is masked first."""

    def __init__(self, verbose: bool, capture: str | None) -> None:
        self.verbose = verbose
        self._file: TextIO | None = open(capture, "a", encoding="ascii") if capture else None  # noqa: SIM115

    def __call__(self, direction: str, frame: bytes) -> None:
        if not self.verbose and self._file is None:
            return
        frame = redact_frame(frame)
        if self.verbose:
            log.debug("%s %s", direction, frame.hex())
        if self._file is not None:
            self._file.write(format_capture_line(dt.datetime.now(dt.UTC), direction, frame) + "\n")
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


def client_from_args(args: argparse.Namespace, tap: Callable[[str, bytes], None]) -> MeterClient:
    connection = connection_from_args(args)
    settings = client_settings_from_args(args)
    if args.pass3_signing == "always" and settings.signing_key is None:
        raise ConfigError("--pass3-signing always needs the client signing key: --keys-dir DIR with client.key.pem")
    return MeterClient(
        connection,
        settings,
        meter_id=meter_id_from_args(args),
        state_dir=args.state_dir,
        pass3_signing=args.pass3_signing if settings.authentication.startswith("hls") else "never",
        tap=tap,
        frame_counter=frame_counter_from_args(args),
    )


def frame_counter_from_args(args: argparse.Namespace) -> Obis | None:
    text = getattr(args, "frame_counter", FRAME_COUNTER.dotted)
    if text is None or text.lower() == "none":
        return None
    return _obis_option(text, "--frame-counter")
