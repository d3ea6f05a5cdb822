"""dlms-edge decode: any frame or APDU as a readable tree; deciphers and verifies with keys.

Reads one hex string from the command line, or with ``-`` one per line from stdin
(bare hex or capture lines ``<iso-time> <tx|rx> <hex>``) and prints JSON Lines: written
as they come on a terminal, otherwise in batches flushed before every read of stdin that
may block, so that a capture file is decoded at full speed and ``tail -f capture |
dlms-edge decode -`` still shows each frame as it arrives. The decoding itself is
:func:`edge_agent.dlms.inspect.inspect`; this module gathers keys and prints.
"""

from __future__ import annotations

import argparse
import codecs
import dataclasses
import json
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TextIO

from edge_agent.dlms import errors
from edge_agent.dlms.errors import ConfigError, DecodeError, DlmsError
from edge_agent.dlms.inspect import (
    CAPTURE_FORMAT,
    CaptureLine,
    DecodeKeys,
    inspect,
    parse_hex,
    parse_line,
)
from edge_agent.dlms.secret import Secret
from edge_agent.dlms.security.control import CipherKeys
from edge_agent.dlms.system_title import SystemTitle

if TYPE_CHECKING:
    from edge_agent.keystore import KeyMaterial

# Decoding logs nothing (the core is sans-IO; problems are printed): no logging set-up.
LOGS = False

EXAMPLES = f"""\
  dlms-edge decode 7ea0070321930f017e
  dlms-edge decode --json --ek 000102030405060708090a0b0c0d0e0f --ak d0d1d2d3d4d5d6d7d8d9dadbdcdddedf \\
      --system-title 4d4d4d0000bc614e c81e3001234567411312ff935a47566827c467bc7d825c3be4a77c3fcc056b6b
  dlms-edge decode --ek 73dd8fdbecc7777382da96302fcd8379 "68fafa6853ff000167db08...16 68146853ff110167...16"
  dlms-edge decode --keys-dir ~/meter-keys - < capture.txt      (JSON Lines, one object per line)
  dlms-edge decode --public-key 04cce9... --ek ... --ak ... db08434c49...
  Capture lines: {CAPTURE_FORMAT}, e.g. 2026-11-25T01:02:03.456Z tx 7ea0...
  Keys may also come from the environment: DLMS_EK, DLMS_AK."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("hex", nargs="+", metavar="HEX",
                        help="the frame or APDU as hex (spaces allowed), or - to read lines from stdin")
    group = parser.add_argument_group("keys (all optional: without them ciphered APDUs are shown structurally)")
    group.add_argument("--ek", metavar="HEX", help="global unicast encryption key (or env DLMS_EK)")
    group.add_argument("--ak", metavar="HEX", help="authentication key (or env DLMS_AK)")
    group.add_argument("--system-title", metavar="HEX",
                       help="the sender's system title, for glo-/ded- APDUs that do not carry one")
    group.add_argument("--cert", metavar="PEM", action="append", default=[],
                       help="certificate of a signer (general-signing); may be repeated")
    group.add_argument("--public-key", metavar="HEX",
                       help="signer's public key, X||Y or 04||X||Y, for general-signing of any originator")
    group.add_argument("--keys-dir", metavar="DIR",
                       help="keys directory: EK, AK, KEK and the client/meter certificates")
    parser.add_argument("--json", action="store_true",
                        help="print the tree as JSON, with \"plaintext\" (hex) of a deciphered APDU")


# --- keys -------------------------------------------------------------------------------------


def _secret(value: str | None, env: str, name: str) -> Secret | None:
    text = value if value is not None else os.environ.get(env)
    if text is None or not text.strip():
        return None
    secret = Secret.from_hex(text, name)
    if len(secret) not in (16, 32):
        raise ConfigError(f"{name} must be 16 bytes (suites 0/1) or 32 bytes (suite 2), got {len(secret)}")
    return secret


def _file(path: str, what: str) -> bytes:
    from pathlib import Path  # only for --cert: an installed `decode` starts without pathlib

    try:
        return Path(path).expanduser().read_bytes()
    except OSError as error:
        raise ConfigError(f"cannot read {what} {path}: {error.strerror}") from None


class _Signers(Mapping[bytes, Any]):
    """Certificates by their subject's system title: the keys directory's, then the --cert
    files (a later one wins). The files are read at once but parsed at the first look-up,
    which only a general-signing APDU makes: decoding anything else loads no x509."""

    def __init__(self, parsed: list[Any], files: list[bytes]) -> None:
        self._parsed, self._files = parsed, files
        self._by_title: dict[bytes, Any] | None = None

    def _table(self) -> dict[bytes, Any]:
        if self._by_title is None:
            from edge_agent.dlms.security import certificates

            loaded = [certificates.load_certificate(data) for data in self._files]
            self._by_title = {certificates.system_title_from_certificate(certificate): certificate
                              for certificate in self._parsed + loaded}
        return self._by_title

    def __getitem__(self, system_title: bytes) -> Any:
        return self._table()[system_title]

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._table())

    def __len__(self) -> int:
        return len(self._table())


def build_keys(args: argparse.Namespace) -> DirectedKeys:
    """Keys from flags, then the environment, then --keys-dir (the first one given wins)."""
    stored = _keys_dir(args.keys_dir)
    cipher = CipherKeys(
        ek=_secret(args.ek, "DLMS_EK", "EK") or (stored and stored.ek),
        ak=_secret(args.ak, "DLMS_AK", "AK") or (stored and stored.ak),
        kek=stored and stored.kek,
    )
    system_title = (SystemTitle(Secret.from_hex(args.system_title, "--system-title", 8).reveal())
                    if args.system_title else None)  # checked here once, not per APDU
    parsed = [c for c in (stored.client_certificate, stored.meter_certificate)
              if c is not None] if stored else []
    signers = _Signers(parsed, [_file(path, "certificate") for path in args.cert])
    signer = None
    if args.public_key:
        from edge_agent.dlms.security import certificates

        signer = certificates.public_key_from_point(parse_hex(args.public_key))
    keys = DecodeKeys(cipher, system_title, signer, signers)
    if system_title is not None or stored is None:
        return DirectedKeys(keys)
    # A capture line says who sent the frame: tx is the client, rx the meter. With a keys
    # directory that names both, the sender's system title needs no --system-title.
    by_direction = {direction: dataclasses.replace(keys, system_title=title)
                    for direction, title in (("tx", stored.client_system_title),
                                             ("rx", stored.meter_system_title))
                    if title is not None}
    return DirectedKeys(keys, by_direction)


def _keys_dir(path: str | None) -> KeyMaterial | None:
    """The keys directory's material; the keystore is loaded only when there is one."""
    if not path:
        return None
    from edge_agent.keystore import KeysDir

    return KeysDir(path).load()


@dataclass(frozen=True, slots=True)
class DirectedKeys:
    """The keys for every input line, worked out once: ``keys``, or for a capture line of a
    direction whose sender the keys directory names, the keys with that sender's title."""

    keys: DecodeKeys
    by_direction: Mapping[str, DecodeKeys] = field(default_factory=dict)

    def __repr__(self) -> str:
        return "<DirectedKeys>"

    def for_line(self, line: CaptureLine) -> DecodeKeys:
        return self.by_direction.get(line.direction, self.keys) if line.direction else self.keys


# --- text output ------------------------------------------------------------------------------


def _scalar(node: Any) -> str | None:
    """One-line form of a Data node {"type", "value", ...}, or None if it nests."""
    if not isinstance(node, dict) or "type" not in node or "value" not in node:
        return None
    value = node["value"]
    if isinstance(value, list):
        return None
    notes = [f"{k} {node[k]}" for k in ("obis", "name", "date_time", "text") if k in node]
    extra = f" ({', '.join(notes)})" if notes else ""
    shown = "''" if value == "" else value
    return f"{shown} [{node['type']}]{extra}"


def render_text(node: Any, out: TextIO, indent: int = 0) -> None:
    pad = "  " * indent
    if isinstance(node, dict):
        for key, value in node.items():
            one_line = _scalar(value)
            if one_line is not None:
                out.write(f"{pad}{key}: {one_line}\n")
            elif isinstance(value, dict | list) and value:
                if isinstance(value, dict) and value.get("type") in ("structure", "array", "compact-array"):
                    out.write(f"{pad}{key}: {value['type']} of {len(value['value'])}\n")
                    render_text(value["value"], out, indent + 1)
                else:
                    out.write(f"{pad}{key}:\n")
                    render_text(value, out, indent + 1)
            else:
                out.write(f"{pad}{key}: {json.dumps(value) if value in ([], {}, None) else value}\n")
    elif isinstance(node, list):
        for item in node:
            one_line = _scalar(item)
            if one_line is not None:
                out.write(f"{pad}- {one_line}\n")
            elif isinstance(item, dict) and item.get("type") in ("structure", "array", "compact-array"):
                out.write(f"{pad}- {item['type']} of {len(item['value'])}\n")
                render_text(item["value"], out, indent + 1)
            else:
                out.write(f"{pad}-\n")
                render_text(item, out, indent + 1)
    else:
        out.write(f"{pad}{node}\n")


# --- problems: what a capture lacked or held besides frames ----------------------------------


def _problem_error(problem: dict[str, Any]) -> DlmsError:
    """The error a problem of the tree stands for (its exit code): an APDU's own error
    class by name, DecodeError for damaged and cut-off frames."""
    kind = getattr(errors, str(problem.get("kind")), None)
    cause = kind if isinstance(kind, type) and issubclass(kind, DlmsError) else DecodeError
    return cause(str(problem["message"]))


def _first_problem(tree: dict[str, Any]) -> DlmsError | None:
    problems = tree.get("problems")
    return _problem_error(problems[0]) if problems else None


def _problem_messages(tree: dict[str, Any]) -> list[str]:
    """A warning for each run of skipped bytes, an error for each problem."""
    return ([f"warning: skipped {skipped['length']} byte(s) at offset {skipped['offset']}: "
             "not part of a frame" for skipped in tree.get("skipped", ())]
            + [f"error: {problem['message']}" for problem in tree.get("problems", ())])


_KEY_OPTIONS = {"ek": "--ek HEX", "ak": "--ak HEX"}


def _locked(node: Any) -> list[dict[str, Any]]:
    """Ciphered APDUs shown without being opened, and what damaged frames showed of them."""
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        if node.get("deciphered") is False:
            found.append(node)
        elif isinstance(node.get("seen"), dict):
            found.append({"note": node["seen"]["keys_needed"], "keys": node["seen"]["keys"],
                          **node["seen"]})
        for value in node.values():
            found += _locked(value)
    elif isinstance(node, list):
        for value in node:
            found += _locked(value)
    return found


def _key_hints(tree: dict[str, Any]) -> list[str]:
    """A note naming the options that would open each ciphered APDU (once per sender)."""
    said: set[tuple[str, ...]] = set()
    hints = []
    for node in _locked(tree):
        keys = tuple(node.get("keys") or ("ek", "ak"))
        title = node.get("system_title")
        sender = title.get("hex") if isinstance(title, dict) else title
        if (str(sender), *keys) in said:
            continue
        said.add((str(sender), *keys))
        options = " and ".join(_KEY_OPTIONS[key] for key in keys if key in _KEY_OPTIONS)
        hints.append(f"note: {node['note']}: give {options} (or DLMS_EK/DLMS_AK, --keys-dir) "
                     "to decipher it")
    return hints


def _say(prefix: str, messages: list[str]) -> None:
    for message in messages:
        print(f"{prefix}{message}", file=sys.stderr)


def _decoded_anything(tree: dict[str, Any]) -> bool:
    return any(key in tree for key in ("apdu", "apdus", "frames"))


# --- stdin: JSON Lines ------------------------------------------------------------------------

_CHUNK = 1 << 16


def _json_line_encoder() -> Callable[[Any], str]:
    """json.dumps' output, without its check for reference cycles (a tree has none).

    JSONEncoder.encode makes json's C encoder anew at every call; it holds no state between
    calls (no cycle markers), so it is made here once, with the arguments encode gives it.
    Where json has no C accelerator, JSONEncoder.encode itself."""
    encoder = json.JSONEncoder(check_circular=False)
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return encoder.encode
    c_encode = make(None, encoder.default, json.encoder.encode_basestring_ascii, None,
                    encoder.key_separator, encoder.item_separator, False, False, True)
    return lambda tree: "".join(c_encode(tree, 0))


_JSON_LINE = _json_line_encoder()


def _input_lines(stdin: TextIO, before_wait: Callable[[], None]) -> Iterator[str]:
    """The lines of ``stdin``, split and decoded as iterating it does; ``before_wait()`` runs
    before each read that may block, so what was printed goes out before more input is
    waited for: a capture file is read a large chunk at a time, ``tail -f`` line by line."""
    binary = getattr(stdin, "buffer", None)
    if binary is None:  # a stream in memory: nothing to wait for
        yield from stdin
        return
    read = getattr(binary, "read1", binary.read)
    decoder = codecs.getincrementaldecoder(stdin.encoding)(stdin.errors)
    pending = ""
    while True:
        before_wait()
        chunk = read(_CHUNK)
        *lines, pending = (pending + decoder.decode(chunk, final=not chunk)).split("\n")
        yield from lines
        if not chunk:
            break
    if pending:
        yield pending


# Gathered output is written once it reaches this size: half of what a Linux pipe holds
# (64 KiB), so that a write seldom waits for the reader, which drains the pipe meanwhile.
_WRITE_SIZE = 1 << 15


class _JsonLines:
    """JSON lines to a stream: on a terminal each at once; otherwise gathered and written
    together by flush() (before waiting for input, before a message on stderr, at the end,
    and whenever _WRITE_SIZE characters are gathered)."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._pending: list[str] = []
        self._size = 0
        self._limit = 0 if stream.isatty() else _WRITE_SIZE

    def write(self, tree: dict[str, Any]) -> None:
        line = _JSON_LINE(tree)
        self._pending += (line, "\n")
        self._size += len(line)
        if self._size >= self._limit:
            self.flush()

    def flush(self) -> None:
        if self._pending:
            self._stream.write("".join(self._pending))
            self._pending.clear()
            self._size = 0
            self._stream.flush()


def _stdin(keys: DirectedKeys) -> int:
    out = _JsonLines(sys.stdout)
    try:
        return _decode_lines(keys, _input_lines(sys.stdin, out.flush), out)
    finally:
        out.flush()  # also what was decoded before an interruption


def _decode_lines(keys: DirectedKeys, lines: Iterator[str], out: _JsonLines) -> int:
    from edge_agent.cli import exit_code_for

    can_decipher = keys.keys.can_decipher
    status = 0
    for number, text in enumerate(lines, start=1):
        record: dict[str, Any] = {"line": number}
        messages: list[str] = []
        try:
            line = parse_line(text)
            if line is None:
                continue
            if line.timestamp is not None:
                record["timestamp"] = line.timestamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")
                record["direction"] = line.direction
            tree = inspect(line.frame, keys.for_line(line))
            record.update(tree)
            if "skipped" in tree or "problems" in tree:  # most frames have neither
                messages = _problem_messages(tree)
                problem = _first_problem(tree)
                if problem is not None:
                    status = status or exit_code_for(problem)
            if not can_decipher:
                messages += _key_hints(record)
        except DlmsError as error:
            record["error"] = str(error)
            record["error_type"] = type(error).__name__
            messages.append(f"error: {error}")
            status = status or exit_code_for(error)
        if messages:
            out.flush()  # the JSON lines before it first, as when both go to one pipe (2>&1)
            _say(f"dlms-edge decode: line {number}: ", messages)
        out.write(record)
    return status


# --- run --------------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    keys = build_keys(args)
    if args.hex == ["-"]:
        return _stdin(keys)
    if "-" in args.hex:
        raise ConfigError("'-' (read stdin) cannot be combined with hex on the command line")
    line = parse_line(" ".join(args.hex))
    if line is None:
        raise ConfigError("nothing to decode: give a frame or APDU as hex, or - for stdin")
    from edge_agent.cli import exit_code_for

    line_keys = keys.for_line(line)
    tree = inspect(line.frame, line_keys)
    hints = [] if line_keys.can_decipher else _key_hints(tree)
    if not _decoded_anything(tree) and tree.get("problems"):
        # Nothing but problems: one error line per problem, the exit code of the first.
        first, *rest = tree["problems"]
        _say("dlms-edge decode: ", _problem_messages({"skipped": tree.get("skipped", []),
                                                       "problems": rest}) + hints)
        raise _problem_error(first)
    if args.json:
        print(json.dumps(tree, indent=2))
    else:
        render_text(tree, sys.stdout)
    _say("dlms-edge decode: ", _problem_messages(tree) + hints)
    problem = _first_problem(tree)
    return exit_code_for(problem) if problem is not None else 0
