"""Decoding a capture log as a whole process: ``dlms-edge decode -`` against the peers.

    .venv/bin/python bench/bench_decode_process.py [--lines 5000] [--rounds 3] [--breakdown]

A capture log of ``--lines`` lines (``dlms-edge read --capture`` format: time, direction,
hex), each a TCP-wrapper frame holding the glo-get-response a T-210D answers a 20-register
poll with (GET-Response-With-List, AES-GCM-128 authenticated encryption, its own
invocation counter). Each contender is one process that reads the log on stdin, deciphers
and decodes every APDU and prints one line per APDU:

* dlms-edge: ``python -m edge_agent decode - --ek .. --ak .. --system-title ..`` (one JSON
  tree per line, what users run);
* gurux-dlms: a script with ``GXDLMSSecureClient.getData`` per APDU (its client path),
  printing the values;
* dlms-cosem 21.3.2 cannot decipher glo-get-response (no class for it): it sits out, as in
  bench_decode.py.

Wall time per process, start-up included, best of ``--rounds``; APDUs/s and the ratio.
Each contender also reads a one-line log: its start-up (interpreter, imports, first line),
so that the rest, divided by the other lines, is its cost per line. ``python -c pass``
is the interpreter's share of every start-up.

Both run as installed packages would: with compiled bytecode (a warm-up run writes it to
a temporary ``PYTHONPYCACHEPREFIX``; pip compiles it at install, while an editable install
under ``PYTHONDONTWRITEBYTECODE`` compiles every module at every start) and without
``PYTHONUNBUFFERED`` (which a user's shell does not set). Target: >= 15x gurux. Printed,
never asserted.

``--breakdown`` adds where dlms-edge's time goes: its start-up in parts (a fresh
interpreter), and a line's stages, each timed alone over the log in this process (in the
real loop they interleave and cost somewhat more).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_decode import AK, CLIENT_TITLE, EK, KEYS, METER_TITLE, WITH_LIST

from edge_agent.dlms.apdu import decode_apdu
from edge_agent.dlms.inspect import DecodeKeys, format_capture_line, inspect, parse_line
from edge_agent.dlms.link.wrapper import WrapperFrame
from edge_agent.dlms.push.reassembly import Telegram, reassemble
from edge_agent.dlms.security.ciphering import CipheredApdu, decipher, protect
from edge_agent.dlms.security.control import SecurityControl

GURUX_SCRIPT = f"""
import sys
from gurux_dlms import GXByteBuffer, GXReplyData
from gurux_dlms.enums import InterfaceType, Security
from gurux_dlms.secure import GXDLMSSecureClient
client = GXDLMSSecureClient(True, interfaceType=InterfaceType.PDU)
client.settings.cipher.security = Security.AUTHENTICATION_ENCRYPTION
client.settings.cipher.systemTitle = bytes.fromhex("{CLIENT_TITLE.hex()}")
client.settings.cipher.blockCipherKey = bytes.fromhex("{EK.hex()}")
client.settings.cipher.authenticationKey = bytes.fromhex("{AK.hex()}")
client.settings.sourceSystemTitle = bytes.fromhex("{METER_TITLE.hex()}")
real, quiet = sys.stdout, open("/dev/null", "w")
for line in sys.stdin:
    frame = bytes.fromhex(line.split()[2])
    reply = GXReplyData()
    sys.stdout = quiet  # gurux prints per APDU
    client.getData(GXByteBuffer(frame[8:]), reply)
    sys.stdout = real
    real.write(repr(reply.value) + "\\n")
"""


# Start-up of `decode` in parts, in a fresh interpreter: its imports, and how many frozen
# dataclasses they create at what cost each (a class made the same way, timed); the
# command line, and what the first line loads: cryptography and the GET service's APDUs.
START_UP_PARTS = """
import dataclasses, json, sys, time

def dataclasses_loaded():
    return len({id(value) for name, module in list(sys.modules.items())
                if name.startswith("edge_agent") for value in vars(module).values()
                if isinstance(value, type) and dataclasses.is_dataclass(value)
                and value.__module__ == name})

t0 = time.perf_counter()
import edge_agent.cli, edge_agent.cli.decode
imports = time.perf_counter() - t0
classes = dataclasses_loaded()
t1 = time.perf_counter()
edge_agent.cli.build_parser("decode")
t2 = time.perf_counter()
import edge_agent.dlms.apdu.get
t3 = time.perf_counter()
from edge_agent.dlms.security import crypto
crypto.Cipher
t4 = time.perf_counter()
spec = {"__annotations__": {"a": "int", "b": "bytes", "c": "int | None"}, "c": None,
        "__module__": __name__, "__doc__": "A sample."}  # as a module with
t5 = time.perf_counter()                  # `from __future__ import annotations` has them
for _ in range(50):
    dataclasses.dataclass(frozen=True, slots=True)(type("Sample", (), dict(spec)))
each = (time.perf_counter() - t5) / 50
print(json.dumps({"imports": imports, "dataclasses": classes, "each": each,
                  "command line": t2 - t1, "GET APDU classes": t3 - t2,
                  "cryptography": t4 - t3}))
"""


def capture_log(lines: int) -> str:
    start = datetime(2026, 3, 2, tzinfo=UTC)
    out = []
    for index in range(lines):
        apdu = protect(WITH_LIST, sc=SecurityControl(0, True, True), keys=KEYS,
                       system_title=METER_TITLE, invocation_counter=0x1000 + index)
        frame = WrapperFrame(1, 16, apdu).encode()
        out.append(format_capture_line(start + timedelta(seconds=index), "rx", frame))
    return "\n".join(out) + "\n"


def run(command: list[str], log: Path, rounds: int, env: dict[str, str]) -> tuple[float, int]:
    """(best wall seconds, lines printed) of ``command`` reading ``log``."""
    best, printed = float("inf"), 0
    for _ in range(rounds):
        with log.open("rb") as stdin:
            started = time.perf_counter()
            result = subprocess.run(command, stdin=stdin, capture_output=True, check=False,
                                    env=env)
            elapsed = time.perf_counter() - started
        if result.returncode != 0:
            raise SystemExit(f"{command[:4]} failed ({result.returncode}): "
                             f"{result.stderr.decode()[-400:]}")
        best, printed = min(best, elapsed), result.stdout.count(b"\n")
    return best, printed


def per_line(function: Callable[[Any], object], items: list[Any], rounds: int = 5) -> float:
    """Best seconds per item of ``function`` over ``items``."""
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        for item in items:
            function(item)
        best = min(best, time.perf_counter() - started)
    return best / len(items)


def breakdown(log: str, env: dict[str, str]) -> None:
    """Print where `decode -` spends its start-up and each line."""
    done = subprocess.run([sys.executable, "-c", START_UP_PARTS], capture_output=True,
                          text=True, env=env, check=True)
    parts = json.loads(done.stdout)
    print("  dlms-edge start-up, in parts:")
    print(f"    imports                {parts['imports'] * 1e3:6.1f} ms, of which creating "
          f"{parts['dataclasses']} frozen dataclasses ~{parts['dataclasses'] * parts['each'] * 1e3:.0f} ms "
          f"({parts['each'] * 1e6:.0f} µs each)")
    for name in ("command line", "GET APDU classes", "cryptography"):
        print(f"    {name:22} {parts[name] * 1e3:6.1f} ms")
    keys = DecodeKeys(KEYS, METER_TITLE)
    lines = log.splitlines()
    captured = [parse_line(line) for line in lines]
    frames = [line.frame for line in captured if line is not None]
    apdus = [event.apdu for frame in frames for event in reassemble(frame)
             if isinstance(event, Telegram)]
    ciphered = [CipheredApdu.decode(apdu)[0] for apdu in apdus]
    plaintexts = [decipher(apdu, KEYS, METER_TITLE).plaintext for apdu in ciphered]
    encoder = json.JSONEncoder(check_circular=False)
    trees = [inspect(frame, keys) for frame in frames]
    stages = {
        "capture line to bytes": per_line(parse_line, lines),
        "link frame": per_line(reassemble, frames),
        "ciphered APDU header": per_line(CipheredApdu.decode, apdus),
        "AES-GCM decipher": per_line(lambda apdu: decipher(apdu, KEYS, METER_TITLE), ciphered),
        "APDU decode": per_line(decode_apdu, plaintexts),
        "JSON encoding": per_line(encoder.encode, trees),
    }
    whole = per_line(lambda frame: inspect(frame, keys), frames)
    core = sum(stages[name] for name in ("link frame", "ciphered APDU header", "AES-GCM decipher",
                                         "APDU decode"))
    stages["tree (inspect, less the above)"] = whole - core
    print("  dlms-edge a line, stage by stage (each timed alone, in this process):")
    for name, seconds in stages.items():
        print(f"    {name:30} {seconds * 1e6:6.1f} µs")
    print(f"    {'sum':30} {sum(stages.values()) * 1e6:6.1f} µs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--breakdown", action="store_true",
                        help="also print where dlms-edge spends its start-up and each line")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        log, one = Path(work) / "capture.txt", Path(work) / "one-line.txt"
        log.write_text(capture_log(args.lines))
        one.write_text(capture_log(1))
        env = {name: value for name, value in os.environ.items()
               if name not in ("PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED")}
        env["PYTHONPYCACHEPREFIX"] = str(Path(work) / "bytecode")
        contenders = {
            "dlms-edge decode -": [sys.executable, "-m", "edge_agent", "decode", "-",
                                   "--ek", EK.hex(), "--ak", AK.hex(),
                                   "--system-title", METER_TITLE.hex()],
        }
        try:
            import gurux_dlms  # noqa: F401

            contenders["gurux-dlms script"] = [sys.executable, "-c", GURUX_SCRIPT]
        except ImportError:
            print("gurux-dlms not installed: skipped")
        for command in contenders.values():
            run(command, one, 1, env)  # warm-up: writes the bytecode
        bare, _ = run([sys.executable, "-c", "pass"], one, args.rounds, env)
        print(f"{args.lines} capture lines of glo-get-response with-list (20 registers, "
              f"AES-GCM-128), one process each, best of {args.rounds}; bytecode compiled")
        rates = {}
        for name, command in contenders.items():
            seconds, printed = run(command, log, args.rounds, env)
            start_up, _ = run(command, one, args.rounds, env)
            rates[name] = args.lines / seconds
            per_line = (seconds - start_up) / (args.lines - 1) if args.lines > 1 else 0.0
            print(f"  {name:20} {seconds:7.3f} s  {rates[name]:9,.0f} APDUs/s  "
                  f"({printed} lines out); start-up + 1 line {start_up * 1e3:5.0f} ms, "
                  f"then {per_line * 1e6:6.1f} µs a line")
        print(f"  python -c pass       {bare * 1e3:5.0f} ms (the interpreter's part of each start-up)")
        print("  dlms-cosem 21.3.2    no glo-get-response class: sits out")
        if len(rates) == 2:
            ratio = rates["dlms-edge decode -"] / rates["gurux-dlms script"]
            print(f"  dlms-edge / gurux-dlms: {ratio:.1f}x (target >= 15x)")
        if args.breakdown:
            breakdown(log.read_text(), env)


if __name__ == "__main__":
    main()
