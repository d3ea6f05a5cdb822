"""dlms-edge read: connect, read OBIS codes (or everything in the object list), print values."""

from __future__ import annotations

import argparse
import json
import logging
import sys

from edge_agent.cli import PARTIAL_READ
from edge_agent.cli.options import (
    FrameTap,
    add_connection_arguments,
    add_output_arguments,
    add_security_arguments,
    client_from_args,
)
from edge_agent.client.values import SCALED_CLASSES, VALUE_ATTRIBUTE
from edge_agent.dlms.cosem.obis import Obis
from edge_agent.dlms.errors import ConfigError, DecodeError

EXAMPLES = """\
  dlms-edge read --tcp 127.0.0.1:4059 1.0.1.8.0.255 1.0.32.7.0.255 0.0.1.0.0.255
  dlms-edge read --tcp 127.0.0.1:4059 --json 1-0:1.8.0*255 1-0:1.7.0*255
  dlms-edge read --serial /dev/ttyUSB0 --baud 9600 --all
  dlms-edge read --serial /dev/serial/by-id/usb-FTDI-if00 --optical --client 1 \\
      --security authenc --suite 1 --auth hls-gmac --keys-dir ~/meter-keys --json 1.0.1.8.0.255
  (OBIS codes in any form: 1.0.1.8.0.255, 1-0:1.8.0*255, 1.8.0 for electricity)"""

log = logging.getLogger(__name__)

# Classes whose value attribute is worth printing when reading "everything".
READABLE_CLASSES = frozenset({1, 3, 4, 5, 8, 70})


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("obis", nargs="*", help="OBIS codes to read; none (or --all) reads every object of the association")
    parser.add_argument("--all", action="store_true", help="read every data/register/clock object of the object list")
    add_connection_arguments(parser)
    add_security_arguments(parser)
    add_output_arguments(parser, "print one JSON object keyed by OBIS (1.0.1.8.0.255): value, unit, ts, ...")


def _codes(texts: list[str]) -> list[Obis]:
    codes = []
    for text in texts:
        try:
            codes.append(Obis.parse(text))
        except DecodeError as error:
            raise ConfigError(f"{text!r} is not an OBIS code: {error}") from None
    return codes


def _value_attribute(class_id: int) -> int:
    return SCALED_CLASSES.get(class_id, (VALUE_ATTRIBUTE.get(class_id, 2),))[0]


def run(args: argparse.Namespace) -> int:
    codes = _codes(args.obis)
    tap = FrameTap(args.verbose, args.capture)
    try:
        with client_from_args(args, tap) as meter:
            class_ids = None
            if args.all or not codes:
                entries = meter.object_list()
                readable = [
                    e for e in entries
                    if e.class_id in READABLE_CLASSES and e.attribute_readable(_value_attribute(e.class_id))
                ]
                class_ids = {e.logical_name: e.class_id for e in readable}
                codes = list(class_ids)
            meter.exchanges = 0
            readings = meter.read(codes, class_ids=class_ids)
            log.debug("%d request/response exchanges for %d objects", meter.exchanges, len(codes))
    finally:
        tap.close()
    failures = meter.failures
    for failure in failures:
        print(f"dlms-edge read: error: {failure.message}", file=sys.stderr)
    if args.json:
        found = {r.obis: r.as_json() for r in readings}
        found.update({failure.obis: failure.as_json() for failure in failures})
        out = {code.dotted: found[code] for code in codes if code in found}
        print(json.dumps(out, indent=2, ensure_ascii=False))
    else:
        width = max((len(r.name) for r in readings), default=0)
        for r in readings:
            value = r.value if r.unit is None else f"{r.value} {r.unit}"
            print(f"{r.obis.dotted:<18} {r.name:<{width}}  {value}")
    # Exit code 0 only when every object asked for was read (README, "Exit codes"); with
    # none read, the first failure was raised and has its own code.
    return PARTIAL_READ if failures else 0
