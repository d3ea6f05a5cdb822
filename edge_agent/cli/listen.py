"""dlms-edge listen: receive what a meter pushes (M-Bus, DSMR P1, HDLC, wrapper) and print it."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import threading
from typing import Any

from edge_agent.agent.push_listener import (
    DEFAULT_INTERVALS,
    PushListener,
    PushSpec,
    SerialSource,
    Source,
    TcpClientSource,
    TcpServerSource,
)
from edge_agent.cli.options import FrameTap
from edge_agent.client.connection import parse_host_port
from edge_agent.client.values import Reading
from edge_agent.dlms.errors import (
    AuthenticationError,
    ConfigError,
    DecodeError,
    NoResponseError,
    ReplayError,
)
from edge_agent.dlms.push.body import parse_object_list
from edge_agent.dlms.secret import Secret
from edge_agent.keystore import KeyMaterial, KeysDir

EXAMPLES = """\
  dlms-edge listen --serial /dev/ttyUSB0 --format mbus --ek 73dd8fdbecc7777382da96302fcd8379
      (Austrian T-210D customer interface: 2400 8E1, encryption only, no AK needed)
  dlms-edge listen --serial /dev/ttyUSB0 --format dsmr --ek HEX --ak HEX --json
      (T-210D-r P1 port: 115200 8N1, DSMR telegrams in general-glo-ciphering)
  dlms-edge listen --tcp-listen 0.0.0.0:4059 --format wrapper --ek HEX --ak HEX \\
      --objects 0.0.25.9.0.255,0.0.1.0.0.255,1.0.1.8.0.255@0,Wh
      (meters connect to us; IDIS pushes carry bare values: give the push object list)
  dlms-edge listen --tcp 192.168.1.20:8888 --format mbus --ek HEX --count 3 --capture push.txt
      (a serial-to-Ethernet converter; the capture reads back with 'dlms-edge decode -')"""

_LINE_DEFAULTS = {"mbus": (2400, "E"), "dsmr": (115200, "N"), "hdlc": (9600, "N"),
                  "wrapper": (9600, "N")}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    where = parser.add_argument_group("line").add_mutually_exclusive_group(required=True)
    where.add_argument("--serial", metavar="DEV", help="serial device the meter pushes on")
    where.add_argument("--tcp", metavar="HOST:PORT",
                       help="connect to a TCP stream of the pushes (serial-to-Ethernet converter)")
    where.add_argument("--tcp-listen", metavar="HOST:PORT",
                       help="accept the meter's push connections (its Push setup destination)")
    parser.add_argument("--format", choices=sorted(DEFAULT_INTERVALS), required=True,
                        help="mbus: wired M-Bus long frames (T-210D customer interface); "
                        "dsmr: P1 telegrams in general-glo-ciphering (T-210D-r); hdlc: UI/I "
                        "frames; wrapper: IEC 62056-47")
    parser.add_argument("--baud", type=int, help="serial speed (default: mbus 2400, dsmr 115200, "
                        "hdlc 9600)")
    parser.add_argument("--parity", choices="NEO", help="serial parity (default: mbus E, else N)")
    keys = parser.add_argument_group("keys")
    keys.add_argument("--ek", metavar="HEX", help="the meter's encryption key (or env DLMS_EK)")
    keys.add_argument("--ak", metavar="HEX",
                      help="authentication key (or env DLMS_AK); not needed for SC 0x20")
    keys.add_argument("--keys-dir", metavar="DIR", help="keys directory with ek.hex, ak.hex")
    keys.add_argument("--system-title", metavar="HEX",
                      help="the meter's system title, for glo- APDUs that do not carry it")
    parser.add_argument("--meter-id", metavar="ID",
                        help="name to show (default: the meter number the push carries)")
    parser.add_argument("--objects", metavar="LIST",
                        help="push object list for IDIS-style pushes, comma separated: "
                        "[CLASS/]OBIS[:ATTR][@SCALER[,UNIT]]")
    parser.add_argument("--interval", type=float, metavar="S",
                        help="expected seconds between pushes: warn after 3 times that")
    parser.add_argument("--count", type=int, metavar="N", help="stop after N pushes")
    parser.add_argument("--duration", type=float, metavar="S", help="stop after S seconds")
    parser.add_argument("--json", action="store_true",
                        help="one JSON object per push (JSON Lines) instead of a table")
    parser.add_argument("--verbose", "-v", action="store_true",
                        help="log every telegram (keys never appear)")
    parser.add_argument("--state-dir", metavar="DIR",
                        help="keep the last accepted invocation counter of each meter in DIR "
                        "(e.g. the agent's state dir), so telegrams recorded before a restart "
                        "are still rejected as replays; one file per --meter-id, else 'unknown' (default: "
                        "in memory only)")
    parser.add_argument("--capture", metavar="FILE",
                        help="append each telegram with time and direction, readable by "
                        "'dlms-edge decode -'")


def _key(value: str | None, env: str, name: str, stored: Secret | None) -> Secret | None:
    text = value if value is not None else os.environ.get(env)
    if text is None or not text.strip():
        return stored
    secret = Secret.from_hex(text, name)
    if len(secret) not in (16, 32):
        raise ConfigError(f"{name} must be 16 bytes (32 hex digits; suite 2: 32 bytes), got "
                          f"{len(secret)}")
    return secret


def _source(args: argparse.Namespace) -> Source:
    if args.serial:
        baud, parity = _LINE_DEFAULTS[args.format]
        return SerialSource(args.serial, args.baud or baud, args.parity or parity)
    if args.tcp:
        return TcpClientSource(*parse_host_port(args.tcp))
    return TcpServerSource(*parse_host_port(args.tcp_listen, listening=True))


def object_entries(text: str) -> list[str]:
    """``--objects`` split on commas, keeping ``@SCALER,UNIT`` whole: a unit symbol never
    starts with a digit, an entry (``[CLASS/]OBIS...``) always does."""
    entries: list[str] = []
    for token in text.split(","):
        previous = entries[-1] if entries else ""
        if "@" in previous and "," not in previous.partition("@")[2] \
                and not token.strip()[:1].isdigit():
            entries[-1] = f"{previous},{token}"
        else:
            entries.append(token)
    return entries


def spec_from_args(args: argparse.Namespace) -> PushSpec:
    stored = KeysDir(args.keys_dir).load() if args.keys_dir else KeyMaterial()
    system_title = (Secret.from_hex(args.system_title, "--system-title", 8).reveal()
                    if args.system_title else None)
    try:
        objects = parse_object_list(object_entries(args.objects)) if args.objects else None
    except DecodeError as error:
        raise ConfigError(f"--objects: {error}") from None
    return PushSpec(args.meter_id, args.format, _source(args),
                    _key(args.ek, "DLMS_EK", "EK", stored.ek),
                    _key(args.ak, "DLMS_AK", "AK", stored.ak), system_title, objects,
                    args.interval)


def _json_line(meter_id: str, readings: list[Reading]) -> str:
    stamp = readings[0].timestamp if readings else dt.datetime.now(dt.UTC)
    return json.dumps({
        "meter_id": meter_id,
        "ts": stamp.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
        "values": {r.obis.dotted: _value_json(r) for r in readings},
    }, ensure_ascii=False)


def _value_json(reading: Reading) -> dict[str, Any]:
    out = reading.as_json()
    out.pop("ts", None)  # one time stamp per push, on the line
    return out


def _table(meter_id: str, readings: list[Reading]) -> str:
    stamp = readings[0].timestamp.isoformat() if readings else "-"
    width = max((len(r.name) for r in readings), default=0)
    rows = [f"{r.obis.dotted:<18} {r.name:<{width}}  "
            f"{r.value if r.unit is None else f'{r.value} {r.unit}'}" for r in readings]
    return "\n".join([f"{stamp}  meter {meter_id}", *rows, ""])


class _Printer:
    """Prints pushes as they come; remembers the last problem for the exit status."""

    def __init__(self, json_lines: bool, count: int | None, stop: threading.Event,
                 keys_given: bool = True) -> None:
        self.json_lines, self.count, self.stop = json_lines, count, stop
        self.keys_given = keys_given
        self.printed = 0
        self.problems: list[tuple[str, str]] = []

    def readings(self, meter_id: str, readings: list[Reading]) -> None:
        print(_json_line(meter_id, readings) if self.json_lines else _table(meter_id, readings),
              flush=True)
        self.printed += 1
        if self.count is not None and self.printed >= self.count:
            self.stop.set()

    def problem(self, meter_id: str, code: str, message: str) -> None:
        if code == "wrong_key" and not self.keys_given:
            message += (" (give the meter's keys: --ek HEX, and --ak HEX when its frames are "
                        "authenticated; or DLMS_EK/DLMS_AK, --keys-dir)")
        self.problems.append((code, message))
        print(f"dlms-edge listen: {meter_id}: {code}: {message}", file=sys.stderr, flush=True)


_FAILURE_OF_CODE = {"wrong_key": AuthenticationError, "counter_out_of_step": ReplayError}


def run(args: argparse.Namespace) -> int:
    spec = spec_from_args(args)
    done = threading.Event()
    printer = _Printer(args.json, args.count, done, keys_given=spec.ek is not None)
    tap = FrameTap(args.verbose, args.capture)
    listener = PushListener(spec, printer.readings, printer.problem, tap=tap,
                            state_dir=args.state_dir)
    print(f"listening: {spec.source.describe()}, format {spec.format} (Ctrl-C to stop)",
          file=sys.stderr, flush=True)
    watcher = threading.Thread(target=lambda: (done.wait(args.duration), listener.stop()),
                               daemon=True)
    watcher.start()
    try:
        listener.run(retry=False)
    finally:
        done.set()
        tap.close()
    if printer.printed == 0:
        code, message = printer.problems[-1] if printer.problems else ("", "")
        failure = _FAILURE_OF_CODE.get(code)
        if failure is not None:
            raise failure(message)
        raise NoResponseError(
            f"no push received on {spec.source.describe()}"
            + (f" within {args.duration:g} s" if args.duration else "")
            + ": check the cable, the format and the line settings (T-210D M-Bus: 2400 8E1, "
            "P1: 115200 8N1), and that the meter's customer interface is enabled")
    return 0
