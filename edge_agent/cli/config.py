"""dlms-edge config check: validate a config file and what it points to, before running."""

from __future__ import annotations

import argparse
import json

from edge_agent.agent.config import (
    BusTransport,
    Config,
    MeterConfig,
    SerialTransport,
    TcpTransport,
    check_config,
    load_config,
)
from edge_agent.dlms.errors import ConfigError

EXAMPLES = """\
  dlms-edge config check /etc/dlms-edge/config.yaml
  dlms-edge config check examples/rs485-bus.yaml --json
  (exit 0: valid, warnings printed; exit 2: invalid, every problem printed)"""

EXIT_INVALID = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    check = actions.add_parser("check", help="validate FILE, the key files and certificates "
                                             "it names, and the serial devices")
    check.add_argument("file", metavar="FILE")
    check.add_argument("--json", action="store_true",
                       help='print {"ok", "errors", "warnings", "meters"}')


def _where(meter: MeterConfig, config: Config) -> str:
    transport, parts = meter.transport, []
    if isinstance(transport, TcpTransport):
        parts.append(f"tcp {transport.host}:{transport.port} ({meter.link})")
    elif isinstance(transport, SerialTransport):
        serial = transport.serial
        kind = "optical" if serial.optical else "rs485" if serial.rs485 else "serial"
        parts.append(f"{kind} {serial.device} {serial.baud} {serial.bytesize}"
                     f"{serial.parity}{serial.stopbits}")
    elif isinstance(transport, BusTransport):
        device = config.bus(transport.bus).serial.device
        parts.append(f"bus {transport.bus} ({device}), physical {meter.addresses.physical}")
    if meter.push is not None:
        source = (meter.push.serial.device if meter.push.serial is not None
                  else f"{meter.push.bind}:{meter.push.port}")
        parts.append(f"push {meter.push.format} on {source}")
    return "; ".join(parts)


def _summary(config: Config) -> list[str]:
    mqtt = config.mqtt
    lines = [(f"agent {config.agent_id}, MQTT {mqtt.host}:{mqtt.port} prefix {mqtt.prefix}, "
              f"state dir {config.state_dir}")]
    for meter in config.meters:
        security = meter.security
        groups = ", ".join(f"{g.name} every {g.interval:g} s "
                           f"({'all' if g.objects == 'all' else len(g.objects)} objects)"
                           for g in meter.poll) or "not polled"
        lines.append(f"meter {meter.label}: {_where(meter, config)}; client "
                     f"{meter.addresses.client}, security {security.policy}/{security.auth}"
                     f" suite {security.suite}; {groups}")
    return lines


def run(args: argparse.Namespace) -> int:
    try:
        warnings = check_config(args.file)
    except ConfigError as error:
        problems = getattr(error, "problems", None) or [str(error)]
        if args.json:
            print(json.dumps({"ok": False, "errors": problems, "warnings": [], "meters": []},
                             indent=2))
        else:
            print(f"{args.file}: INVALID, {len(problems)} problem(s):")
            for problem in problems:
                print(f"  error: {problem}")
        return EXIT_INVALID
    config = load_config(args.file)
    if args.json:
        print(json.dumps({"ok": True, "errors": [], "warnings": warnings,
                          "meters": [m.label for m in config.meters]}, indent=2))
        return 0
    print(f"{args.file}: OK")
    for line in _summary(config):
        print(f"  {line}")
    for warning in warnings:
        print(f"  warning: {warning}")
    return 0
