"""`dlms-edge decode` prints, byte for byte, what the golden files hold.

Its output is a contract (JSON Lines for ``decode -``, the text tree and ``--json`` for one
frame): programs parse it, so making ``decode`` faster must not change a byte of it. The
golden files (tests/fixtures/decode-golden/) were written by ``decode`` before its output
path was optimised, over:

* every public capture of tests/fixtures/captures, as capture lines and as bare hex, without
  keys and again with each key its source published, and each alone as a text tree;
* the capture log of ``bench/bench_decode_process.py`` (ciphered glo-get-response with-list);
* odd input lines: comments, blanks, CR LF and lone CR line ends, ``0x`` and colons, bad
  hex, a bad time, a last line without its newline.

``decode -`` runs as a real process reading a real pipe, stdout a pipe (batched writes),
stderr and the exit code compared too; one frame at a time runs in-process. A further test
feeds a pipe one line at a time and requires each line's output before the next is written,
as ``tail -f capture | dlms-edge decode -`` needs.

Write the golden files again only to change the contract on purpose:
    .venv/bin/python tests/cli/test_decode_golden.py --write
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edge_agent.cli import main

pytestmark = pytest.mark.timeout(120)

TESTS = Path(__file__).resolve().parents[1]
CAPTURES = TESTS / "fixtures" / "captures"
GOLDEN = TESTS / "fixtures" / "decode-golden"
BENCH = TESTS.parent / "bench" / "bench_decode_process.py"
BENCH_LINES = 20

# Lines no capture has: comments, blanks, line ends and hex spellings parse_line accepts,
# and what it refuses (each refusal is a JSON line with "error" and a line on stderr).
ODD_LINES = (
    "# a comment\n"
    "\n"
    "   \n"
    "7ea0070321930f017e\r\n"
    "2026-11-25T01:02:03.456Z tx 7e:a0:07:03:21:93:0f:01:7e\r\n"
    "0x7ea0070321930f017e\r"
    "7e a0 07 03 21 93 0f 01 7e\r"
    "\r\n"
    "2026-11-25T01:02:03 rx 7ea0070321930f017e\n"
    "2026-11-25T01:02:03.456+01:00 rx 7ea0070321930f017e\n"
    "yesterday tx 7ea0070321930f017e\n"
    "not hex at all\n"
    "7ea007032\n"
    "c3\n"
    "7ea0070321930f017f\n"
)


def _captures() -> list[tuple[str, bytes, dict[str, str]]]:
    """(file, bytes, published keys) of every public capture, in file order."""
    entries = json.loads((CAPTURES / "captures.json").read_text())
    return [(entry["file"],
             bytes.fromhex(re.sub(r"[^0-9A-Fa-f]", "", (CAPTURES / entry["file"]).read_text())),
             entry.get("keys", {}))
            for entry in sorted(entries, key=lambda entry: entry["file"])]


def _as_lines(frames: list[bytes]) -> str:
    """Every other frame as a capture line (alternating tx/rx), the rest as bare hex."""
    lines = []
    for index, frame in enumerate(frames):
        if index % 2:
            lines.append(frame.hex())
        else:
            lines.append(f"2026-11-25T01:{index // 60 % 60:02d}:{index % 60:02d}.{index:03d}Z "
                         f"{('tx', 'rx')[index // 2 % 2]} {frame.hex()}")
    return "\n".join(lines) + "\n"


def _key_options(keys: dict[str, str]) -> list[str]:
    return [option for name in ("ek", "ak") if name in keys for option in (f"--{name}", keys[name])]


def _bench_case() -> tuple[list[str], str]:
    spec = importlib.util.spec_from_file_location("bench_decode_process", BENCH)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    options = ["--ek", bench.EK.hex(), "--ak", bench.AK.hex(),
               "--system-title", bench.METER_TITLE.hex()]
    return options, bench.capture_log(BENCH_LINES)


def stdin_cases() -> dict[str, tuple[list[str], str]]:
    """name -> (options of `decode -`, its stdin)."""
    captures = _captures()
    cases = {"captures-no-keys": ([], _as_lines([data for _, data, _ in captures]) + ODD_LINES)}
    key_sets = sorted({json.dumps(keys, sort_keys=True) for _, _, keys in captures if keys})
    for number, key_set in enumerate(key_sets, start=1):
        keys = json.loads(key_set)
        frames = [data for _, data, published in captures if published == keys]
        cases[f"captures-keys-{number}"] = (_key_options(keys), _as_lines(frames) + ODD_LINES)
    cases["bench-log"] = _bench_case()
    return cases


def decode_stdin(options: list[str], stdin: str) -> bytes:
    """Exit code, stderr and stdout of `python -m edge_agent decode - OPTIONS`, as bytes."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("DLMS_")}
    done = subprocess.run([sys.executable, "-m", "edge_agent", "decode", "-", *options],
                          input=stdin.encode(), capture_output=True, env=env, timeout=100,
                          check=False)
    return (f"exit {done.returncode}\n--- stderr\n".encode() + done.stderr
            + b"--- stdout\n" + done.stdout)


def decode_frames() -> bytes:
    """Each capture as one frame on the command line, as the text tree (its --json is the
    tree of the JSON lines, indented)."""
    parts = []
    for file, data, keys in _captures():
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["decode", *_key_options(keys), data.hex()])
        parts.append(f"=== {file}: exit {code}\n"
                     f"--- stderr\n{err.getvalue()}--- stdout\n{out.getvalue()}")
    return "".join(parts).encode()


@pytest.mark.parametrize("name", sorted(stdin_cases()))
def test_decode_stdin_prints_the_golden_output(name: str, monkeypatch) -> None:
    for variable in [name for name in os.environ if name.startswith("DLMS_")]:
        monkeypatch.delenv(variable)
    options, stdin = stdin_cases()[name]
    expected = (GOLDEN / f"{name}.txt").read_bytes()
    assert decode_stdin(options, stdin) == expected


def test_decode_of_one_frame_prints_the_golden_output(monkeypatch) -> None:
    for variable in [name for name in os.environ if name.startswith("DLMS_")]:
        monkeypatch.delenv(variable)
    assert decode_frames() == (GOLDEN / "frames.txt").read_bytes()


def _read_line(stream: io.BufferedReader, timeout: float) -> bytes:
    """One line from a pipe, or b"" when none came within ``timeout`` seconds."""
    line, deadline = b"", time.monotonic() + timeout
    while not line.endswith(b"\n"):
        ready, _, _ = select.select([stream], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            return b""
        byte = os.read(stream.fileno(), 1)
        if not byte:
            return line
        line += byte
    return line


def test_decode_stdin_prints_each_line_as_it_comes_through_a_pipe() -> None:
    """A writer that keeps the pipe open (tail -f): each line's output comes before the next
    line is written, on a pipe as on a terminal."""
    options, log = _bench_case()
    lines = log.splitlines(keepends=True)[:3]
    process = subprocess.Popen([sys.executable, "-m", "edge_agent", "decode", "-", *options],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    assert process.stdin is not None and process.stdout is not None
    try:
        for number, line in enumerate(lines, start=1):
            process.stdin.write(line.encode())
            process.stdin.flush()
            printed = _read_line(process.stdout, timeout=30)
            assert printed, f"nothing printed for line {number} while the pipe stays open"
            assert json.loads(printed)["line"] == number
        process.stdin.close()
        assert process.wait(timeout=30) == 0
        assert process.stdout.read() == b""
    finally:
        process.kill()
        process.wait()


def test_decode_stdin_keeps_each_message_before_its_line_on_one_pipe(monkeypatch) -> None:
    """stdout and stderr on one pipe (2>&1): the JSON lines are written in batches, yet every
    message of line N comes after the JSON of the lines before N and before line N's own."""
    for variable in [name for name in os.environ if name.startswith("DLMS_")]:
        monkeypatch.delenv(variable)
    options, stdin = stdin_cases()["captures-no-keys"]
    done = subprocess.run([sys.executable, "-m", "edge_agent", "decode", "-", *options],
                          input=stdin.encode(), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, timeout=100, check=False)
    merged = done.stdout.decode().splitlines()
    json_lines = [json.loads(text)["line"] for text in merged if text.startswith("{")]
    printed, messages = 0, 0  # the last JSON line's number; messages checked
    for text in merged:
        if text.startswith("{"):
            printed = json.loads(text)["line"]
            continue
        number = int(re.match(r"dlms-edge decode: line (\d+): ", text).group(1))  # type: ignore[union-attr]
        before = max((line for line in json_lines if line < number), default=0)
        assert printed == before, f"message of line {number} after JSON line {printed}, not {before}"
        messages += 1
    assert messages > 100 and json_lines[-1] == stdin.count("\n")


def write() -> None:
    GOLDEN.mkdir(exist_ok=True)
    for name, (options, stdin) in stdin_cases().items():
        (GOLDEN / f"{name}.txt").write_bytes(decode_stdin(options, stdin))
    (GOLDEN / "frames.txt").write_bytes(decode_frames())


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        raise SystemExit(__doc__)
    write()
