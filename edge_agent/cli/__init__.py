"""`dlms-edge` command line: one module per verb, one table of verbs.

Every verb has its one-line help in ``VERBS`` and a module ``edge_agent.cli.<verb>`` with
``EXAMPLES`` (shown under ``dlms-edge VERB --help``), ``add_arguments(parser)`` and
``run(args) -> int``, imported only when that verb is asked for (and ``LOGS = False`` when
nothing it runs logs: logging is then not even loaded). Errors of the DlmsError
hierarchy become one clear line on stderr and an exit code from ``EXIT_CODES``; nothing else
escapes as a traceback unless ``--debug`` is given.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import sys
from collections.abc import Callable

from edge_agent import __version__
from edge_agent.dlms import errors

# verb -> its one-line help. The verb's module, edge_agent.cli.<verb>, is imported only when
# that verb is asked for: `--help` and `--version` import none, `decode` pays for no paho.
VERBS: dict[str, str] = {
    "read": "read values (registers, clock, any attribute) from a meter and print them",
    "profile": "read a load profile by time range; CSV, JSON or a table",
    "scan": "find how a meter answers (link, baud, addresses, clients), list its objects, "
            "write a config stub",
    "listen": "receive pushed meter data (M-Bus customer interface, DSMR P1, HDLC, TCP) and print it",
    "decode": "decode a frame or APDU (HDLC, wrapper, M-Bus, ciphered, signed); decipher and "
              "verify with keys",
    "simulate": "run a meter simulator (generic or Sagemcom T-210D) on TCP or a serial device",
    "keys": "make key pairs, CSRs and certificates; exchange certificates and rotate keys with a meter",
    "run": "run the agent: poll and listen to the configured meters, publish on MQTT",
    "demo": "simulated T-210D (suite 1, HLS-5, signed pass 3) + MQTT broker + agent: live values "
            "on MQTT within seconds, no config",
    "config": "check a config file: every problem with its key path and the fix",
    "forget": "clear a removed meter's retained MQTT topics (info, values, state, health, discovery)",
}

# Exit codes and what each means: `dlms-edge --help` prints this table and README "Exit
# codes" shows it (a test checks that they agree, and that no DlmsError maps to 1).
PARTIAL_READ = 8
EXIT_STATUS: tuple[tuple[int, str], ...] = (
    (0, "success: everything asked for was done"),
    (1, "a bug in dlms-edge: please report it with the output of --debug"),
    (2, "bad option or configuration"),
    (3, "meter unreachable: no answer, connection refused or lost"),
    (4, "the meter refused the association: client address, authentication, password"),
    (5, ("security: wrong EK, AK or client system title (however the meter words it),"
         " signature, replay, missing key")),
    (6, ("the meter refused a service: for every object asked (object undefined, access denied),"
         " or an unsigned HLS pass 3 (see --pass3-signing)")),
    (7, ("malformed data: an answer that does not decode or breaks the protocol (e.g. an"
         " impossible HDLC N(R), a wrapper answer from another port)")),
    (PARTIAL_READ, ("partial read: the values read are printed, each object that failed is"
                    " named on stderr (and in --json, with the raw bytes of a malformed answer)")),
    (130, "interrupted (Ctrl-C)"),
)
# Error class -> exit code; most specific class first, the first match decides.
EXIT_CODES: tuple[tuple[type[BaseException], int], ...] = (
    (errors.ConfigError, 2),
    (errors.EncodeError, 2),
    (errors.TimeoutError_, 3),
    (errors.TransportError, 3),
    (errors.AssociationError, 4),
    (errors.SecurityError, 5),
    (errors.ServiceError, 6),
    (errors.DecodeError, 7),
    (errors.ProtocolError, 7),
    (errors.DlmsError, 1),  # a DlmsError of no class above is a bug
)


# Settings the core names in a fix (DlmsError.fix) -> their command-line spelling.
_OPTIONS: dict[str, Callable[[str], str]] = {
    "pass3_signing": lambda value: f"--pass3-signing {value}",
    "link": lambda value: f"--{value}",
}


def _command_line_fix(exc: errors.DlmsError) -> str:
    """`` (command line: --pass3-signing always)`` for an error whose fix is a setting."""
    if exc.fix is None or exc.fix[0] not in _OPTIONS:
        return ""
    setting, value = exc.fix
    return f" (command line: {_OPTIONS[setting](value)})"


def exit_code_for(exc: BaseException) -> int:
    return next(code for kind, code in EXIT_CODES if isinstance(exc, kind))


def exit_status_text() -> str:
    """The exit codes as `--help` shows them."""
    return "exit codes:\n" + "\n".join(f"  {code}  {meaning}" for code, meaning in EXIT_STATUS)


def build_parser(verb: str | None = None) -> argparse.ArgumentParser:
    """The command line: with ``verb``, that verb alone with its options (its module loaded);
    without, every verb with its one-line help."""
    parser = argparse.ArgumentParser(
        prog="dlms-edge",
        description="Read DLMS/COSEM smart meters (HDLC, TCP, security suite 0/1/2) "
        "and publish their values on MQTT.",
        epilog="Run 'dlms-edge VERB --help' for the options and examples of each verb.\n\n"
        + exit_status_text(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"dlms-edge {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    sub = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    for name, help_line in VERBS.items():
        if verb is not None and name != verb:
            continue  # the command line names this verb only: no parser for the others
        verb_parser = sub.add_parser(name, help=help_line, description=help_line,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
        if name == verb:
            module = importlib.import_module(f"edge_agent.cli.{verb}")
            verb_parser.epilog = "examples:\n" + module.EXAMPLES.rstrip()
            module.add_arguments(verb_parser)
            verb_parser.set_defaults(_module=module)
    return parser


def main(argv: list[str] | None = None) -> int:
    if argv is None:  # run as the program (console script, python -m): the process ends next
        # The verb's imports and the command line make objects that live as long as the
        # process: no collection walks them while they are made (see _main).
        gc.disable()
        try:
            return _main(sys.argv[1:], program=True)
        finally:
            # What is still alive goes to the permanent generation, which the interpreter's
            # collections at exit do not walk again (`decode` exits ~8 ms sooner).
            gc.freeze()
    return _main(argv)


def _main(argv: list[str], program: bool = False) -> int:
    # The verb is the first word that is not an option (the top-level options take no value).
    verb = next((word for word in argv if not word.startswith("-")), None)
    args = build_parser(verb if verb in VERBS else None).parse_args(argv)
    if program:
        # Modules, classes and the parser into the permanent generation, then collections
        # resume for what the verb makes: `decode` starts ~3 ms sooner.
        gc.freeze()
        gc.enable()
    if getattr(args._module, "LOGS", True):  # a verb that logs nothing says LOGS = False
        import logging  # after parsing: `--version` and `--help` exit without it

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
        print(f"dlms-edge {args.verb}: error: {exc}{_command_line_fix(exc)}", file=sys.stderr)
        return exit_code_for(exc)
    except BrokenPipeError:
        return 0
