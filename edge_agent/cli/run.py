"""dlms-edge run: the agent daemon (what the systemd unit starts)."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import signal
import sys
import threading
from types import FrameType

from edge_agent import __version__
from edge_agent.agent.config import LoggingConfig, load_config
from edge_agent.agent.daemon import DEFAULT_SHUTDOWN_TIMEOUT, Agent

EXAMPLES = """\
  dlms-edge config check /etc/dlms-edge/config.yaml     # first
  dlms-edge run --config /etc/dlms-edge/config.yaml
  dlms-edge run --config examples/tcp-meter.yaml --verbose
  dlms-edge run --config config.yaml --capture /tmp/frames.txt   # for a bug report
  (SIGTERM or Ctrl-C: associations released, meters offline, queue flushed, exit 0)"""

log = logging.getLogger("edge_agent.run")

# LogRecord attributes every record has; anything else came in through extra={...}.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line (journald, Loki): ts, level, logger, message, and the
    ``extra`` fields the agent adds (meter, code, retry_in). Key material never reaches
    a log record: Secrets render as their name."""

    def format(self, record: logging.LogRecord) -> str:
        document = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC)
            .isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        document.update({key: value for key, value in vars(record).items()
                         if key not in _STANDARD})
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        return json.dumps(document, ensure_ascii=False, default=str)


def configure_logging(settings: LoggingConfig, verbose: bool = False) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if settings.format == "json" else logging.Formatter(
        "%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.DEBUG if verbose else settings.level,
                        handlers=[handler], force=True)
    if not verbose:
        logging.getLogger("edge_agent.frames").setLevel(logging.INFO)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, metavar="FILE",
                        help="the YAML config (check it with 'dlms-edge config check FILE')")
    parser.add_argument("--verbose", "-v", action="store_true",
                        help="log at DEBUG level whatever logging.level says")
    parser.add_argument("--capture", metavar="FILE",
                        help="append every frame with time and direction, readable by "
                             "'dlms-edge decode -' (no keys; an LLS password is masked)")
    parser.add_argument("--shutdown-timeout", type=float, default=DEFAULT_SHUTDOWN_TIMEOUT,
                        metavar="S", help="seconds to finish transactions and flush the "
                                          f"queue on SIGTERM (default {DEFAULT_SHUTDOWN_TIMEOUT:g})")


class _LockedTap:
    """The capture file shared by every lane's thread."""

    def __init__(self, path: str) -> None:
        from edge_agent.cli.options import FrameTap

        self._tap = FrameTap(False, path)
        self._lock = threading.Lock()

    def __call__(self, direction: str, frame: bytes) -> None:
        with self._lock:
            self._tap(direction, frame)

    def close(self) -> None:
        self._tap.close()


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    configure_logging(config.logging, args.verbose)
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        log.info("%s received; shutting down", signal.Signals(signum).name)
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, request_stop)
    tap = _LockedTap(args.capture) if args.capture else None
    log.info("dlms-edge %s, config %s", __version__, config.source)
    agent = Agent(config, **({"tap": tap} if tap else {}))
    try:
        agent.start()
        while not stop.wait(1.0):
            pass
    finally:
        agent.stop(args.shutdown_timeout)
        if tap is not None:
            tap.close()
    return 0
