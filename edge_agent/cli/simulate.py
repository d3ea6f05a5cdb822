"""dlms-edge simulate: a meter simulator on TCP (wrapper and HDLC) or a serial device/pty."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading

from edge_agent.cli.options import FrameTap
from edge_agent.client.connection import DEFAULT_TCP_PORT, parse_host_port
from edge_agent.dlms.association.settings import Authentication
from edge_agent.dlms.errors import ConfigError
from edge_agent.dlms.secret import Secret
from edge_agent.dlms.security import CipherKeys
from edge_agent.dlms.security.control import SecurityPolicy
from edge_agent.simulator.event_log import parse_every
from edge_agent.simulator.faults import DEFAULT_DELAY, FaultInjector, describe_faults
from edge_agent.simulator.meter import MIN_PDU_SIZE, SimulatedMeterStation, SimulatorOptions
from edge_agent.simulator.meter_models import MAX_PDU_SIZE
from edge_agent.simulator.push_telegrams import push_stream
from edge_agent.simulator.server import MeterServer
from edge_agent.state import default_state_dir
from edge_agent.transport.serial import SerialTransport
from edge_agent.transport.tcp import TcpTransport

# Line settings of pushing interfaces: wired M-Bus is 8E1 (the speed is --baud: 2400 there).
PUSH_LINE = {"mbus": ("E", 8)}

EXAMPLES = """\
  dlms-edge simulate --tcp 127.0.0.1:4059
  dlms-edge simulate --profile t210d --tcp 127.0.0.1:4059 --keys-dir K
      (Suite 1, HLS-5 management client SAP 1 that demands a signed pass 3; K is created
       with the meter's keys and a client key pair whose certificate the meter knows)
  dlms-edge simulate --serial /dev/pts/5 --baud 9600
  socat -d -d pty,raw,echo=0 pty,raw,echo=0     # makes a linked pty pair for --serial
  TCP serves both the IEC 62056-47 wrapper and HDLC-over-TCP on the same port.

  A pushing meter (no requests served: it sends every --push-interval seconds):
  dlms-edge simulate --push mbus --serial /dev/pts/5 --ek 000102030405060708090A0B0C0D0E0F
      (Austrian T-210D customer interface: two M-Bus long frames, SC 0x20)
  dlms-edge simulate --push dsmr --tcp 127.0.0.1:9000 --ek HEX --ak HEX
      (T-210D-r P1 telegrams in general-glo-ciphering, sent to a listener on that port)

  A meter that misbehaves (--fault KIND[:RATE], repeatable; RATE 0..1 is the chance at each
  opportunity, default 1; reproducible with --seed):
  dlms-edge simulate --tcp 127.0.0.1:4059 --fault drop:0.2 --fault garbage:0.5 --seed 7
  dlms-edge simulate --tcp 127.0.0.1:4059 --max-pdu 256    # long answers in GET datablocks
  dlms-edge simulate --tcp 127.0.0.1:4059 --events-every 30s   # a livelier event log
fault kinds:
""" + describe_faults() + """
  The meter's own invocation counter continues across restarts: it is kept in --state-dir
  (default: the keys dir, else a simulator dir in the default state dir)."""

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--tcp", metavar="HOST:PORT", help=f"listen on TCP (port {DEFAULT_TCP_PORT} if omitted; 0 picks a free port, printed on stderr)")
    where.add_argument("--serial", metavar="DEV", help="serve HDLC on a serial device or pty")
    parser.add_argument("--baud", type=int, default=9600, help="serial speed (default 9600)")
    parser.add_argument("--profile", choices=("generic", "t210d"), default="generic", help="object set and security (default generic)")
    parser.add_argument("--seed", type=int, default=1, help="values are deterministic from the seed and the time (default 1)")
    parser.add_argument("--logical", type=int, default=1, help="server logical address (default 1)")
    parser.add_argument("--physical", type=int, default=16, help="server physical address (default 16)")
    parser.add_argument("--management-client", type=int, default=1, metavar="SAP", help="management client SAP (default 1)")
    parser.add_argument("--security", choices=tuple(SecurityPolicy), help="management client policy (t210d: authenc)")
    parser.add_argument("--auth", choices=tuple(Authentication), help="management client authentication (generic: low, t210d: hls-gmac)")
    parser.add_argument("--suite", type=int, choices=(0, 1, 2), help="security suite (t210d: 1)")
    parser.add_argument("--password", help="LLS password of the generic management client (default 00000000)")
    parser.add_argument("--keys-dir", metavar="DIR", help="meter and client keys; missing ones are created (0600)")
    signing = parser.add_mutually_exclusive_group()
    signing.add_argument("--require-signed-pass3", dest="signed_pass3", action="store_true", default=None,
                         help="refuse an unsigned HLS pass 3 (t210d default)")
    signing.add_argument("--accept-unsigned-pass3", dest="signed_pass3", action="store_false",
                         help="accept the standard unsigned pass 3")
    push = parser.add_argument_group("push (the meter sends instead of answering)")
    push.add_argument("--push", choices=("mbus", "dsmr", "hdlc", "wrapper"),
                      help="send pushes of this format: to the serial device, or to a TCP listener at --tcp")
    push.add_argument("--push-interval", type=float, default=5.0, metavar="S", help="seconds between pushes (default 5)")
    push.add_argument("--ek", metavar="HEX", help="push encryption key (or env DLMS_EK; else the keys dir's)")
    push.add_argument("--ak", metavar="HEX", help="push authentication key (or env DLMS_AK); none: encryption only")
    push.add_argument("--count", type=int, metavar="N", help="stop after N pushes")
    parser.add_argument("--counter-log", metavar="FILE", help="append every client invocation counter received")
    parser.add_argument("--max-pdu", type=int, metavar="N",
                        help=f"the meter's PDU size ({MIN_PDU_SIZE}..65535; default per profile: "
                             + ", ".join(f"{p} {n}" for p, n in MAX_PDU_SIZE.items()) + ")")
    parser.add_argument("--state-dir", metavar="DIR",
                        help="where the meter keeps its own invocation counters (default: --keys-dir,"
                             f" else {default_state_dir() / 'simulator'})")
    parser.add_argument("--fault", action="append", default=[], metavar="KIND[:RATE]",
                        help="misbehave on purpose (repeatable); kinds below")
    parser.add_argument("--fault-delay", type=float, default=DEFAULT_DELAY, metavar="S",
                        help=f"seconds the delay fault holds an answer back (default {DEFAULT_DELAY:g})")
    parser.add_argument("--events-every", type=_every, default=600.0, metavar="DURATION",
                        help="log a head-end event in the standard event log (0.0.99.98.0.255) at"
                             " this pace of the clock while running: in turn a clock synchronisation"
                             " (codes 4 and 5, no step) and an alarm register clearing (11); values,"
                             " clock and profile stay as they are (30s, 10m, 1h; default 10m; 0: off)")
    parser.add_argument("--verbose", "-v", action="store_true", help="log every frame")


def _every(text: str) -> float:
    try:
        return parse_every(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _push_keys(args: argparse.Namespace, meter: SimulatedMeterStation) -> CipherKeys:
    ek_text = args.ek if args.ek is not None else os.environ.get("DLMS_EK")
    ak_text = args.ak if args.ak is not None else os.environ.get("DLMS_AK")
    ek = Secret.from_hex(ek_text, "EK", 16) if ek_text else meter.keys.ek
    ak = Secret.from_hex(ak_text, "AK", 16) if ak_text else (meter.keys.ak if not ek_text else None)
    if ek is None:
        raise ConfigError("pushes are encrypted: give --ek HEX (or DLMS_EK, or --keys-dir)")
    return CipherKeys(ek=ek, ak=ak)


def _send_pushes(args: argparse.Namespace, meter: SimulatedMeterStation, stop: threading.Event) -> int:
    keys = _push_keys(args, meter)
    if args.tcp:
        host, port = parse_host_port(args.tcp)
        transport = TcpTransport(host, port, timeout=5.0)
        where = f"{host}:{port}"
    else:
        transport = SerialTransport(args.serial, args.baud, *PUSH_LINE.get(args.push, ("N", 8)))
        where = args.serial
    print(f"pushing {args.push} every {args.push_interval:g} s to {where}; Ctrl-C stops", file=sys.stderr, flush=True)
    stream = push_stream(
        args.push, meter.model, keys, args.push_interval,
        invocation_counter=lambda: meter.next_invocation_counter(keys.ek), sleep=stop.wait,
    )
    with transport:
        for sent, frame in enumerate(stream, start=1):
            if stop.is_set():
                break
            transport.write(frame)
            log.debug("tx %s", frame.hex())
            if args.count is not None and sent >= args.count:
                break
    return 0


def run(args: argparse.Namespace) -> int:
    options = SimulatorOptions(
        profile=args.profile, seed=args.seed, logical=args.logical, physical=args.physical,
        management_sap=args.management_client, security=args.security, authentication=args.auth,
        suite=args.suite, password=args.password, keys_dir=args.keys_dir,
        signed_pass3=args.signed_pass3, counter_log=args.counter_log,
        max_receive_pdu_size=args.max_pdu, events_every=args.events_every,
        state_dir=args.state_dir or (None if args.keys_dir else str(default_state_dir() / "simulator")),
    )
    faults = FaultInjector.of(args.fault, seed=args.seed, delay=args.fault_delay)
    meter = SimulatedMeterStation(options)
    tap = FrameTap(args.verbose, None) if args.verbose else None
    server = MeterServer([meter.station], faults=faults, **({"tap": tap} if tap else {}))
    stop = threading.Event()
    # SIGTERM (systemd, timeout, CI), SIGINT (Ctrl-C) and SIGHUP (terminal closed) all stop
    # the meter the same way: sockets and the counter store are closed on the way out.
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, lambda *_: (stop.set(), server.stop()))
    print(meter.describe(), file=sys.stderr)
    if faults:
        print("faults: " + ", ".join(f"{f.kind.name} (rate {f.rate:g})" for f in faults.faults)
              + f"; seed {args.seed}", file=sys.stderr)
    try:
        if args.push:
            return _send_pushes(args, meter, stop)
        if args.tcp:
            host, port = server.bind_tcp(*parse_host_port(args.tcp, listening=True))
            print(f"listening on {host}:{port} (wrapper and HDLC); Ctrl-C stops", file=sys.stderr, flush=True)
            server.serve_tcp_forever()
        else:
            print(f"serving HDLC on {args.serial} at {args.baud} baud; Ctrl-C stops", file=sys.stderr, flush=True)
            server.serve_serial(args.serial, args.baud)
    finally:
        server.stop()
        meter.close()
    return 0
