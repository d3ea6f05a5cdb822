"""dlms-edge scan: find link, baud, addresses and client SAPs; read the object list;
write a config stub for `dlms-edge run`."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from edge_agent.cli.options import FrameTap
from edge_agent.client.connection import DEFAULT_TCP_PORT, parse_host_port
from edge_agent.client.scan import (
    CLIENT_SAPS,
    SERIAL_SPEEDS,
    SERVER_ADDRESSES,
    TCP_LINKS,
    Attempt,
    MeterFound,
    Outcome,
    Scanner,
    ScanPlan,
    describe_connection,
)
from edge_agent.client.values import SCALED_CLASSES
from edge_agent.dlms.cosem import obis as obis_names
from edge_agent.dlms.errors import ConfigError, NoResponseError

EXAMPLES = """\
  dlms-edge scan --tcp 192.168.1.50:4059 --write meter.yaml
  dlms-edge scan --serial /dev/ttyUSB0                 (optical sign-on, then 9600/19200/115200)
  dlms-edge scan --serial /dev/ttyUSB0 --baud 9600 --addresses 1/16-31 --all   (an RS-485 bus)
  dlms-edge scan --tcp 10.0.0.7 --link hdlc --clients 16,1 --json
  Each attempt is an association without security; refusals are reported with the meter's
  reason (e.g. "authentication-mechanism-name-required": that client needs --auth)."""

# What an AARE diagnostic (Green Book 9.3, associate-source-diagnostic) asks for, in the
# config's terms: the stub lists it next to each client that refused.
_CONFIG_HINTS = (
    ("authentication-mechanism-name-required", ("security: {auth: low, keys: {password: {env: "
                                                "METER_PASSWORD}}} or auth: hls-gmac with keys ek/ak "
                                                "and system_title")),
    # Scan attempts carry no credentials: the meter asks for some, it judged none.
    ("authentication-failure", ("this client needs credentials: security: {auth: low, keys: "
                                "{password: ...}} or auth: hls-gmac with keys ek/ak and system_title")),
    ("application-context-name-not-supported", ("security: {policy: authenc, suite: 0|1, auth: "
                                                "hls-gmac, keys: {ek: {env: ...}, ak: {env: ...}}, "
                                                "system_title: ...}")),
    ("no-reason-given", "no such client on this meter, or refused without a reason"),
)
_POLL_INSTANTANEOUS = 10  # seconds; instantaneous values (OBIS D = 7)
_POLL_ENERGY = 60  # seconds; energy registers (OBIS D = 8)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--tcp", metavar="HOST:PORT", help=f"TCP meter or gateway (port {DEFAULT_TCP_PORT} if omitted)")
    where.add_argument("--serial", metavar="DEV", help="serial device: optical head or RS-485 adapter")
    parser.add_argument("--link", choices=("auto", *TCP_LINKS), default="auto",
                        help="TCP: the wrapper, HDLC over TCP, or auto: wrapper then HDLC (default)")
    parser.add_argument("--baud", type=int, action="append", metavar="N",
                        help="serial speeds to try, repeatable (default: optical sign-on, 9600, 19200, 115200)")
    parser.add_argument("--optical", action="store_true", help="serial: only the IEC 62056-21 optical sign-on")
    parser.add_argument("--clients", default=",".join(map(str, CLIENT_SAPS)), metavar="LIST",
                        help=f"client SAPs, the first one used to find the meter (default {','.join(map(str, CLIENT_SAPS))})")
    parser.add_argument("--addresses", default=",".join(f"{lo}/{ph}" for lo, ph in SERVER_ADDRESSES), metavar="LIST",
                        help="server addresses LOGICAL/PHYSICAL, ranges allowed: 1/16,1/17-31 (default "
                        + ",".join(f"{lo}/{ph}" for lo, ph in SERVER_ADDRESSES) + ")")
    parser.add_argument("--timeout", type=float, default=None, metavar="S",
                        help="seconds to wait for each answer (default 2 on TCP, 1 on serial)")
    parser.add_argument("--all", action="store_true", help="try every candidate instead of stopping at the first meter")
    parser.add_argument("--write", metavar="FILE", help="write a config stub for 'dlms-edge run --config FILE'")
    parser.add_argument("--json", action="store_true", help="print the findings as JSON")
    parser.add_argument("--verbose", "-v", action="store_true", help="log every frame")
    parser.add_argument("--capture", metavar="FILE", help="append raw frames, readable by 'dlms-edge decode -'")


def _numbers(text: str, option: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ConfigError(f"{option} {text!r}: expected numbers separated by commas, e.g. 16,1,32") from None


def parse_addresses(text: str) -> tuple[tuple[int, int], ...]:
    """``1/16,1/17-19`` -> ((1, 16), (1, 17), (1, 18), (1, 19))."""
    addresses = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        logical, _, physical = part.partition("/")
        low, _, high = physical.partition("-")
        try:
            first, last = int(low), int(high or low)
            numbers = (int(logical), first, last)
        except ValueError:
            raise ConfigError(f"--addresses {part!r}: expected LOGICAL/PHYSICAL or LOGICAL/FIRST-LAST, e.g. 1/16 or 1/16-31") from None
        if not all(0 <= n <= 0x3FFF for n in numbers) or last < first:
            raise ConfigError(f"--addresses {part!r}: addresses are 0..16383, ranges ascending")
        addresses += [(numbers[0], p) for p in range(first, last + 1)]
    if not addresses:
        raise ConfigError("--addresses is empty")
    return tuple(addresses)


def plan_from_args(args: argparse.Namespace) -> ScanPlan:
    clients = tuple(_numbers(args.clients, "--clients"))
    if not clients or not all(0 <= c <= 0x7F for c in clients):
        raise ConfigError(f"--clients {args.clients!r}: client SAPs are 0..127")
    choices: dict[str, Any] = {"clients": clients, "addresses": parse_addresses(args.addresses),
                               "exhaustive": args.all}
    if args.timeout is not None:
        if args.timeout <= 0:
            raise ConfigError("--timeout must be positive")
        choices["timeout"] = args.timeout
    if args.tcp:
        if args.optical or args.baud:
            raise ConfigError(f"{'--optical' if args.optical else '--baud'} is for a serial line"
                              " (--serial DEVICE), not for --tcp: drop one of them")
        if args.link != "auto":
            choices["links"] = (args.link,)
        return ScanPlan.for_tcp(parse_host_port(args.tcp), **choices)
    if args.link == "wrapper":
        raise ConfigError("--link wrapper is for TCP; serial lines speak HDLC")
    top = max(args.baud or [speed for speed, _ in SERIAL_SPEEDS])
    if args.optical:
        choices["speeds"] = ((top, True),)
    elif args.baud:
        choices["speeds"] = tuple((b, False) for b in args.baud)
    return ScanPlan.for_serial(args.serial, **choices)


# --- output -------------------------------------------------------------------------------


def _reason(attempt: Attempt) -> str:
    return attempt.detail.removeprefix("the meter refused the association: ")


def _values_attribute(class_id: int) -> int:
    return SCALED_CLASSES.get(class_id, (2, None))[0]


def _registers(found: MeterFound) -> list[str]:
    return [e.logical_name.dotted for e in found.objects
            if e.class_id in SCALED_CLASSES and e.attribute_readable(_values_attribute(e.class_id))]


def summary(found: MeterFound) -> str:
    c = found.connection
    where = f"tcp {c.tcp[0]}:{c.tcp[1]}" if c.tcp else f"{c.serial}"
    lines = [f"meter found: {where}, {describe_connection(c).split(', client')[0]}, server "
             + (f"logical {c.server_logical} physical {c.server_physical}" if c.uses_hdlc else f"logical {c.server_logical}")]
    lines += [f"  {key.replace('_', ' ')}: {value}" for key, value in found.identity.items()]
    lines.append("clients:")
    for attempt in found.clients:
        lines.append(f"  {attempt.connection.client_sap:>3}  {attempt.outcome.value}"
                     + (f": {_reason(attempt)}" if attempt.outcome is not Outcome.ACCEPTED else ""))
    if found.objects:
        lines.append(f"objects seen by client {c.client_sap}: {len(found.objects)}")
        for entry in found.objects:
            lines.append(f"  {entry.logical_name.dotted:<18} class {entry.class_id:<3} {obis_names.name(entry.logical_name)}")
    flags = [f"--tcp {c.tcp[0]}:{c.tcp[1]}" if c.tcp else f"--serial {c.serial}"]
    if c.tcp and c.uses_hdlc:
        flags.append("--hdlc")
    if c.serial and c.optical:
        flags.append("--optical")
    if c.serial:
        flags.append(f"--baud {c.baud}")
    flags.append(f"--client {c.client_sap} --logical {c.server_logical}")
    if c.uses_hdlc:
        flags.append(f"--physical {c.server_physical}")
    lines.append("read it: dlms-edge read " + " ".join(flags))
    return "\n".join(lines)


def _meter_id(found: MeterFound) -> str:
    raw = found.identity.get("serial") or found.identity.get("logical_device_name") or ""
    clean = "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in raw).strip("-.")
    return f"meter-{clean}" if clean and not clean[0].isalpha() else (clean or "meter-1")


def config_stub(found: MeterFound) -> str:
    """YAML for `dlms-edge run` (edge_agent/agent/config.py): the address found, the client
    that associated without security, poll groups from its object list."""
    c = found.connection
    if c.tcp:
        transport = f"    transport:\n      tcp: \"{c.tcp[0]}:{c.tcp[1]}\"\n    link: {'hdlc' if c.uses_hdlc else 'wrapper'}\n"
    else:
        optical = "\n        optical: true" if c.optical else ""
        transport = f"    transport:\n      serial:\n        device: {c.serial}\n        baud: {c.baud}{optical}\n"
    physical = f", physical: {c.server_physical}" if c.uses_hdlc else ""
    registers = _registers(found)
    instantaneous = [code for code in registers if code.split(".")[3] == "7"]
    energy = [code for code in registers if code.split(".")[3] == "8"]
    groups = [(name, interval, codes) for name, interval, codes in
              (("instantaneous", _POLL_INSTANTANEOUS, instantaneous), ("energy", _POLL_ENERGY, energy)) if codes]
    poll = "".join(f"      - name: {name}\n        interval: {interval}\n        objects: [{', '.join(codes)}]\n"
                   for name, interval, codes in groups) or "      - name: all\n        interval: 60\n        objects: all\n"
    notes = [f"#   client {a.connection.client_sap}: {_reason(a)}" + "".join(
        f"\n#     -> {hint}" for key, hint in _CONFIG_HINTS if key in a.detail)
        for a in found.clients if a.outcome is not Outcome.ACCEPTED]
    stamp = dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    header = [f"# Written by dlms-edge scan on {stamp}; check it with: dlms-edge config check FILE",
              "# Clients that refused an association without security (give them security: and keys):"]
    if not notes:
        header = header[:1]
    text = "\n".join(header + notes) + "\n\n"
    text += "mqtt:\n  host: localhost\n  prefix: dlms\n\n"
    text += f"meters:\n  - id: {_meter_id(found)}\n{transport}"
    text += f"    addresses: {{client: {c.client_sap}, logical: {c.server_logical}{physical}}}\n"
    text += "    security: {policy: none, auth: none}\n"
    text += "    # objects: all publishes everything the client sees\n    poll:\n" + poll
    return text


def write_stub(path: str, text: str) -> None:
    """Write ``text`` to ``path`` only if `dlms-edge run` accepts it (load_config)."""
    from edge_agent.agent.config import load_config

    target = Path(path)
    try:
        handle, temporary = tempfile.mkstemp(prefix=".scan-", suffix=".yaml", dir=target.parent or ".")
    except OSError as error:
        raise ConfigError(f"cannot write --write {path}: {error.strerror}; choose another path") from None
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        load_config(temporary)
        os.replace(temporary, target)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def _report_json(report_attempts: list[Attempt], found: list[MeterFound]) -> dict[str, Any]:
    return {
        "attempts": [a.as_json() for a in report_attempts],
        "found": [{
            "connection": next(a for a in f.clients if a.connection == f.connection).as_json(),
            "clients": [a.as_json() for a in f.clients],
            "identity": f.identity,
            "objects": [{"obis": e.logical_name.dotted, "class_id": e.class_id, "version": e.version,
                         "name": obis_names.name(e.logical_name)} for e in f.objects],
        } for f in found],
    }


def run(args: argparse.Namespace) -> int:
    plan = plan_from_args(args)
    tap = FrameTap(args.verbose, args.capture)

    def live(attempt: Attempt) -> None:
        # Silence and garbage are expected while searching: one short line each.
        text = attempt.describe() if attempt.outcome.answered else (
            f"{describe_connection(attempt.connection)}: {attempt.outcome.value}")
        print(f"  {text}", file=sys.stderr, flush=True)

    print(f"scanning {args.tcp or args.serial} ...", file=sys.stderr, flush=True)
    try:
        with tempfile.TemporaryDirectory(prefix="dlms-edge-scan-") as state:
            report = Scanner(plan, state_dir=state, tap=tap, on_attempt=live).run()
    finally:
        tap.close()
    if not report.found:
        raise NoResponseError(
            f"no meter answered on {args.tcp or args.serial} after {len(report.attempts)} attempts "
            f"(clients {args.clients}, addresses {args.addresses}): check the cable or network, the "
            "port, and widen the search with --addresses, --baud or --clients")
    if args.json:
        print(json.dumps(_report_json(list(report.attempts), list(report.found)), indent=2, ensure_ascii=False))
    else:
        print("\n\n".join(summary(found) for found in report.found))
    if args.write:
        write_stub(args.write, config_stub(report.found[0]))
        print(f"config stub written to {args.write} (run it: dlms-edge run --config {args.write})", file=sys.stderr)
    return 0
