"""`dlms-edge` command line: one module per verb, one table of verbs.

Every verb module has ``HELP`` (one line), ``EXAMPLES`` (shown under ``--help``),
``add_arguments(parser)`` and ``run(args) -> int``. Errors of the DlmsError hierarchy
become one clear line on stderr and an exit code from ``EXIT_CODES``; nothing else
escapes as a traceback unless ``--debug`` is given.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from edge_agent import __version__
from edge_agent.dlms import errors

# verb -> module under edge_agent.cli (imported lazily: `decode` must not pay for paho).
VERBS: dict[str, str] = {
    "read": "read",
    "profile": "profile",
    "scan": "scan",
    "listen": "listen",
    "decode": "decode",
    "simulate": "simulate",
    "keys": "keys",
    "run": "run",
    "demo": "demo",
    "config": "config",
}

# Most specific class first; the first match decides. Documented in README "Exit codes".
EXIT_CODES: tuple[tuple[type[BaseException], int], ...] = (
    (errors.ConfigError, 2),
    (errors.NoResponseError, 3),
    (errors.TransportError, 3),
    (errors.AssociationError, 4),
    (errors.SecurityError, 5),
    (errors.ServiceError, 6),
    (errors.DecodeError, 7),
    (errors.DlmsError, 1),
)


def exit_code_for(exc: BaseException) -> int:
    return next(code for kind, code in EXIT_CODES if isinstance(exc, kind))


def _load(verb: str):
    return importlib.import_module(f"edge_agent.cli.{VERBS[verb]}")


def build_parser(verbs: list[str] | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dlms-edge",
        description="Read DLMS/COSEM smart meters (HDLC, TCP, security suite 0/1/2) "
        "and publish their values on MQTT.",
        epilog="Run 'dlms-edge VERB --help' for the options and examples of each verb.",
    )
    parser.add_argument("--version", action="version", version=f"dlms-edge {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    sub = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    for verb in verbs or list(VERBS):
        module = _load(verb)
        verb_parser = sub.add_parser(
            verb,
            help=module.HELP,
            description=module.HELP,
            epilog="examples:\n" + module.EXAMPLES.rstrip(),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(verb_parser)
        verb_parser.set_defaults(_module=module)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # Build only the verb asked for, so `dlms-edge decode` starts fast.
    wanted = [a for a in argv if not a.startswith("-")][:1]
    parser = build_parser(wanted if wanted and wanted[0] in VERBS else None)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if getattr(args, "verbose", False) else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return int(args._module.run(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except errors.DlmsError as exc:
        if args.debug:
            raise
        print(f"dlms-edge {args.verb}: error: {exc}", file=sys.stderr)
        return exit_code_for(exc)
    except BrokenPipeError:
        return 0
