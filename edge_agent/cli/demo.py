"""dlms-edge demo: simulator + MQTT broker + agent, and a live table of what arrives."""

from __future__ import annotations

import argparse
import datetime as dt
import signal
import sys
import time
from typing import TextIO

from edge_agent.children import stop_on_signals
from edge_agent.demo import BROKER_ENV, BROKERS, PROFILES, Demo, DemoOptions, LiveValue, LiveValues
from edge_agent.dlms.errors import ConfigError

EXAMPLES = f"""\
  dlms-edge demo                                   # until Ctrl-C
  dlms-edge demo --duration 40 --mqtt-port 18830   # bounded run on another port
  mosquitto_sub -p 18830 -t 'dlms/#' -v            # in a second terminal: the topics
  dlms-edge demo --broker amqtt                    # the embedded broker even with Mosquitto
  dlms-edge demo --profile generic                 # a plain meter, public client, no security
  The default profile t210d is a simulated Sagemcom T-210D as met in the field: suite 1,
  authenticated encryption, HLS-5, and an unsigned pass 3 refused; the agent (management
  client 1, pass3_signing auto) re-associates with a general-signing pass 3 and says so.
  The broker is Mosquitto when installed, else amqtt (pip extra "demo", what scripts/demo
  installs); {BROKER_ENV}=amqtt chooses it too. When the MQTT port is busy a free one is used."""

_TTY_REFRESH = 1.0  # seconds between redraws on a terminal
_PLAIN_REFRESH = 10.0  # seconds between tables when stdout is a file or pipe


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--mqtt-port", type=int, default=1883, metavar="P",
                        help="broker port on 127.0.0.1 (default 1883; a free one if busy)")
    parser.add_argument("--broker", choices=BROKERS, default="auto",
                        help="auto: Mosquitto when installed, else amqtt (default auto)")
    parser.add_argument("--duration", type=float, default=0, metavar="S",
                        help="stop after S seconds (default: run until Ctrl-C)")
    parser.add_argument("--interval", type=float, default=3.0, metavar="S",
                        help="seconds between polls of the meter (default 3)")
    parser.add_argument("--agent-id", default="demo", help="the <agent> level of the topics (default demo)")
    parser.add_argument("--profile", choices=PROFILES, default=PROFILES[0],
                        help=f"the simulated meter (default {PROFILES[0]}: Sagemcom T-210D, suite 1, "
                             "HLS-5, pass 3 only signed; generic: no security)")
    parser.add_argument("--verbose", "-v", action="store_true", help="log what the agent does")


def _age(ts: dt.datetime | None, now: dt.datetime) -> str:
    if ts is None:
        return "-"
    seconds = max(0, int((now - ts).total_seconds()))
    return f"{seconds}s" if seconds < 120 else f"{seconds // 60}min"


def _value(row: LiveValue) -> str:
    if isinstance(row.value, float):
        return f"{row.value:g}"
    return str(row.value)


PASS3_SIGNED = "pass 3: unsigned refused (ServiceNotAllowed), re-associated with general-signing"
PASS3_WAITING = "pass 3: (waiting for the first association)"


def pass3_line(demo: Demo) -> list[str]:
    """What the agent learned about pass 3 -- only for a meter that wants it signed."""
    if demo.options.profile != "t210d":
        return []
    return [PASS3_SIGNED if demo.pass3_signing_learned() else PASS3_WAITING]


def render(values: LiveValues, now: dt.datetime, notes: list[str] | None = None) -> list[str]:
    """The table: OBIS, name, value, unit, age (since the meter's reading); ``notes``
    (what the agent learned about the meter) under the status line."""
    rows = values.rows()
    meters = ", ".join(sorted(values.info)) or "(waiting for info)"
    lines = [f"status: {values.status or '(waiting)'}   meter: {meters}   messages: {values.messages}",
             *(notes or [])]
    if not rows:
        return lines + ["(no values yet: the agent's first poll comes within seconds)"]
    table = [("OBIS", "name", "value", "unit", "age")] + [
        (r.obis, r.name, _value(r), r.unit or "", _age(r.ts, now)) for r in rows]
    widths = [max(len(cells[i]) for cells in table) for i in range(5)]
    for position, cells in enumerate(table):
        lines.append("  ".join(c.rjust(w) if i in (2, 4) and position else c.ljust(w)
                               for i, (c, w) in enumerate(zip(cells, widths))).rstrip())
    return lines


class Screen:
    """Redraws the table in place on a terminal; prints it now and then otherwise."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.interactive = stream.isatty()
        self.refresh = _TTY_REFRESH if self.interactive else _PLAIN_REFRESH
        self._drawn = 0

    def show(self, lines: list[str]) -> None:
        if self.interactive:
            # Cursor up over the previous table, erase to the end of the screen, redraw.
            prefix = f"\x1b[{self._drawn}F\x1b[J" if self._drawn else ""
            self.stream.write(prefix + "\n".join(lines) + "\n")
            self._drawn = len(lines)
        else:
            stamp = dt.datetime.now().strftime("%H:%M:%S")
            self.stream.write(f"--- {stamp}\n" + "\n".join(lines) + "\n")
        self.stream.flush()


def run(args: argparse.Namespace) -> int:
    if not 0 < args.mqtt_port < 65536:
        raise ConfigError(f"--mqtt-port must be 1..65535, got {args.mqtt_port}")
    if args.interval < 1 or args.duration < 0:
        raise ConfigError("--interval must be at least 1 s and --duration not negative")
    if args.verbose:
        import logging

        logging.getLogger("edge_agent").setLevel(logging.INFO)
    options = DemoOptions(mqtt_port=args.mqtt_port, broker=args.broker, interval=args.interval,
                          agent_id=args.agent_id, profile=args.profile)
    demo = Demo(options)
    out = sys.stdout
    # SIGTERM (systemd, timeout, CI), SIGHUP (terminal closed) and SIGINT (Ctrl-C) stop the
    # demo the same way: agent, watcher, broker, meter, in that order, to the end.
    with stop_on_signals() as received:
        return _run(args, options, demo, out, received)


def _run(args: argparse.Namespace, options: DemoOptions, demo: Demo, out: TextIO,
         received: list[int]) -> int:
    try:
        demo.start()
        if demo.port_note:
            print(f"note: {demo.port_note}", file=out)
        host, port = demo.meter_address
        print(f"simulated {demo.meter_description}", file=out)
        print(f"simulated meter on {host}:{port} (wrapper); broker {demo.broker_kind} on 127.0.0.1:"
              f"{demo.mqtt_port}; agent '{args.agent_id}' polls every {args.interval:g} s", file=out)
        print(f"subscribe: {demo.subscribe_command()}", file=out)
        print(f"topics: {options.prefix}/{args.agent_id}/status, {options.prefix}/{args.agent_id}/<meter>/info,"
              f" {options.prefix}/{args.agent_id}/<meter>/<obis>, .../state, .../availability, .../health", file=out)
        print("Ctrl-C stops." if not args.duration else f"stops after {args.duration:g} s (or Ctrl-C).", file=out)
        out.flush()
        screen = Screen(out)
        started = time.monotonic()
        deadline = started + args.duration if args.duration else None
        while deadline is None or time.monotonic() < deadline:
            wait = screen.refresh if deadline is None else min(screen.refresh, max(0.0, deadline - time.monotonic()))
            time.sleep(wait)
            screen.show(render(demo.values, dt.datetime.now(dt.UTC), pass3_line(demo)))
    except KeyboardInterrupt:
        name = signal.Signals(received[0]).name if received else "SIGINT"
        print(f"\nstopping ({name}) ...", file=out, flush=True)
    finally:
        learned = pass3_line(demo)  # before stop() removes the state dir
        demo.stop()
    if learned:
        print(learned[0], file=out)
    changed = sum(1 for v in demo.values.rows() if v.changes)
    print(f"stopped: {demo.values.messages} messages received, {changed} values changed while running",
          file=out, flush=True)
    return 0
