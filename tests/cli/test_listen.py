"""dlms-edge listen through its public CLI: JSON Lines, table, capture, clear errors."""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime
from pathlib import Path

import pytest
from push_sender import send_when_listening

from edge_agent.cli import main
from edge_agent.dlms.inspect import parse_line
from edge_agent.dlms.push.reassembly import Telegram, reassemble
from edge_agent.dlms.secret import Secret
from edge_agent.dlms.security import CipherKeys
from edge_agent.simulator import meter_models
from edge_agent.simulator.push_telegrams import build_push


def mbus_apdus(data: bytes) -> list[bytes]:
    """The APDUs of the M-Bus telegrams in ``data``, through the one push reassembler."""
    return [e.apdu for e in reassemble(data, ("mbus",)) if isinstance(e, Telegram)]

NOW = datetime(2026, 3, 2, 10, 30, tzinfo=UTC)
EK_HEX = "73dd8fdbecc7777382da96302fcd8379"
EK = Secret.from_hex(EK_HEX)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def pushes() -> list[bytes]:
    meter = meter_models.build("t210d", 3, lambda: NOW)
    return [build_push("mbus", meter, CipherKeys(ek=EK), n, NOW) for n in (1, 2)]


def test_listen_json_lines(pushes, capsys, tmp_path: Path) -> None:
    port = free_port()
    capture = tmp_path / "push.txt"
    send_when_listening(port, pushes)
    code = main(["listen", "--tcp-listen", f"127.0.0.1:{port}", "--format", "mbus", "--ek",
                 EK_HEX, "--json", "--count", "2", "--duration", "10", "--capture", str(capture)])
    out = capsys.readouterr()
    assert code == 0, out.err
    lines = [json.loads(line) for line in out.out.splitlines()]
    assert len(lines) == 2
    first = lines[0]
    assert first["meter_id"].startswith("1SAG")
    assert first["ts"] == "2026-03-02T10:30:00Z"
    energy = first["values"]["1.0.1.8.0.255"]
    assert energy["unit"] == "Wh" and isinstance(energy["value"], int)
    assert first["values"]["1.0.32.7.0.255"]["unit"] == "V"
    assert "listening" in out.err and EK_HEX not in out.out + out.err
    # The capture holds each telegram (both M-Bus frames) on one line, as decode reads it.
    captured = [parse_line(line) for line in capture.read_text().splitlines()]
    assert [c.direction for c in captured] == ["rx", "rx"]
    assert [c.frame for c in captured] == pushes
    assert len(mbus_apdus(captured[0].frame)) == 1
    assert EK_HEX not in capture.read_text()


def test_listen_table(pushes, capsys) -> None:
    port = free_port()
    send_when_listening(port, pushes[:1])
    code = main(["listen", "--tcp-listen", f"127.0.0.1:{port}", "--format", "mbus", "--ek",
                 EK_HEX, "--count", "1", "--duration", "10"])
    out = capsys.readouterr().out
    assert code == 0
    assert "meter 1SAG" in out and "1.0.1.8.0.255" in out and " Wh" in out


def test_listen_wrong_key_fails_clearly(pushes, capsys) -> None:
    port = free_port()
    send_when_listening(port, pushes)
    code = main(["listen", "--tcp-listen", f"127.0.0.1:{port}", "--format", "mbus", "--ek",
                 "00" * 16, "--duration", "1.5"])
    err = capsys.readouterr().err
    assert code == 5
    assert "wrong_key" in err and "wrong encryption key (EK)" in err
    assert "Traceback" not in err


def test_listen_nothing_received_is_an_error(capsys) -> None:
    code = main(["listen", "--tcp-listen", f"127.0.0.1:{free_port()}", "--format", "dsmr",
                 "--duration", "0.5"])
    err = capsys.readouterr().err
    assert code == 3 and "no push received" in err and "115200 8N1" in err


def test_listen_missing_serial_device(capsys) -> None:
    code = main(["listen", "--serial", "/dev/no-such-push-port", "--format", "mbus"])
    err = capsys.readouterr().err
    assert code == 3 and "not found" in err and err.count("\n") == 2  # banner and the error


@pytest.mark.parametrize("argv, words", [
    (["--ek", "abc"], "EK"),
    (["--objects", "1.0.1.8.0.255@volts"], "--objects"),
])
def test_listen_bad_options(argv: list[str], words: str, capsys) -> None:
    code = main(["listen", "--tcp-listen", "127.0.0.1:0", "--format", "mbus", *argv])
    assert code == 2 and words in capsys.readouterr().err


def test_listen_help_has_examples(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["listen", "--help"])
    assert "dlms-edge listen --serial" in capsys.readouterr().out


def test_listen_state_dir_rejects_a_replay_after_a_restart(pushes, capsys, tmp_path: Path) -> None:
    """With --state-dir the last accepted frame counter outlives the process: a telegram
    recorded before (counter 2) is refused by the next run, which exits 5."""

    def listen(telegrams: list[bytes]) -> tuple[int, str]:
        port = free_port()
        send_when_listening(port, telegrams)
        code = main(["listen", "--tcp-listen", f"127.0.0.1:{port}", "--format", "mbus", "--ek", EK_HEX,
                     "--state-dir", str(tmp_path / "state"), "--meter-id", "t210d", "--json",
                     "--count", str(len(telegrams)), "--duration", "10"])
        return code, capsys.readouterr().err

    assert listen(pushes)[0] == 0  # counters 1 and 2 accepted and kept
    code, err = listen(pushes[1:])  # counter 2 again
    assert code == 5 and "counter_out_of_step" in err
