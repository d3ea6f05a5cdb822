"""The exit codes: one table, shown by `dlms-edge --help` and README "Exit codes", and no
expected failure on 1 (reserved for bugs)."""

from __future__ import annotations

import importlib
import pkgutil
import re
import socket
import subprocess
import sys
import threading
from pathlib import Path

import edge_agent
from edge_agent.cli import EXIT_STATUS, exit_code_for
from edge_agent.dlms import errors

README = Path(__file__).resolve().parents[2] / "README.md"
_ROW = re.compile(r"^\| (\d+) \| (.+) \|$")


def readme_table() -> list[tuple[int, str]]:
    lines = README.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Exit codes"))
    rows = []
    for line in lines[start + 1:]:
        if rows and not line.startswith("|"):
            break
        if match := _ROW.match(line):
            rows.append((int(match.group(1)), match.group(2)))
    return rows


def test_readme_shows_the_table_of_the_code() -> None:
    assert readme_table() == list(EXIT_STATUS)


def test_help_ends_with_the_same_table() -> None:
    result = subprocess.run([sys.executable, "-m", "edge_agent", "--help"], capture_output=True,
                            text=True, timeout=30, check=False, env={"COLUMNS": "400", "PATH": ""})
    assert result.returncode == 0, result.stderr
    shown = result.stdout.split("exit codes:\n", 1)[1].splitlines()
    assert [tuple(line.strip().split("  ", 1)) for line in shown if line.strip()] == [
        (str(code), meaning) for code, meaning in EXIT_STATUS]


def _all_error_classes() -> set[type[errors.DlmsError]]:
    for module in pkgutil.walk_packages(edge_agent.__path__, "edge_agent."):
        if module.name.endswith("__main__") or module.name.startswith(("edge_agent.cli.", "edge_agent.demo")):
            continue  # verbs import optional extras; their errors come from the core
        try:
            importlib.import_module(module.name)
        except ImportError:
            continue
    found: set[type[errors.DlmsError]] = set()
    pending = [errors.DlmsError]
    while pending:
        for subclass in pending.pop().__subclasses__():
            found.add(subclass)
            pending.append(subclass)
    return found


def test_no_error_of_ours_exits_with_the_code_reserved_for_bugs() -> None:
    classes = _all_error_classes()
    assert errors.StaleAnswerError in classes and errors.MalformedAnswerError in classes
    documented = {code for code, _ in EXIT_STATUS}
    for kind in classes:
        instance = kind.__new__(kind)
        code = exit_code_for(instance)
        assert code != 1, f"{kind.__module__}.{kind.__qualname__} exits with 1, the code of bugs"
        assert code in documented


def test_a_meter_speaking_hdlc_to_the_wrapper_names_the_flag(tmp_path) -> None:
    """A TCP peer that answers in HDLC where the wrapper was asked for (a converter in
    front of an optical or RS-485 meter): said at once rather than a time-out; the core
    names the setting (link: hdlc), the command line adds its own flag."""
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def answer_in_hdlc() -> None:
        connection, _ = server.accept()
        with connection:
            connection.recv(4096)  # the AARQ in a wrapper frame
            connection.sendall(bytes.fromhex("7ea00a000200232193fd8a7e"))  # an HDLC frame

    thread = threading.Thread(target=answer_in_hdlc, daemon=True)
    thread.start()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "edge_agent", "read", "--tcp", f"127.0.0.1:{port}",
             "--timeout", "2", "--state-dir", str(tmp_path), "1.0.1.8.0.255"],
            capture_output=True, text=True, timeout=60, check=False)
    finally:
        thread.join(timeout=10)
        server.close()
    assert "answers with an HDLC frame (7ea00a" in done.stderr, done.stderr
    assert "set link: hdlc (command line: --hdlc)" in done.stderr, done.stderr
    assert done.returncode not in (0, 1)
