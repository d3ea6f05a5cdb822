"""The agent publishes the good values of a read when one answer of the meter is malformed.

A real simulator behind the scripted bad meter of tests/e2e/bad_meter.py (a proxy that
corrupts the answers for one object), a real agent and a real Mosquitto broker.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import sys
from pathlib import Path

from daemon_harness import Subscriber, make_agent, tcp_meter, write_config

from edge_agent.dlms.cosem.obis import Obis
from edge_agent.dlms.link.wrapper import WrapperFrame

_spec = importlib.util.spec_from_file_location("bad_meter", Path(__file__).parents[1] / "e2e" / "bad_meter.py")
bad_meter = sys.modules.setdefault("bad_meter", importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(bad_meter)

ENERGY, VOLTAGE = "1.0.1.8.0.255", "1.0.32.7.0.255"


def corrupt_voltage(request: bytes, answer: WrapperFrame) -> bytes:
    asked = bad_meter.asks_for(request)
    if (Obis.parse(VOLTAGE), 2) in asked:  # 0x0E is no A-XDR type
        bad = answer.apdu[:3] + (b"\x00\x0e\x01" if len(asked) == 1 else b"\x02\x00\x0e\x01")
        return bad_meter.frame(answer.source_wport, answer.destination_wport, bad)
    return answer.encode()


def test_a_malformed_answer_costs_only_its_own_value(tmp_path, mosquitto, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="edge_agent.agent.meter_worker")
    server, _, port = tcp_meter()
    proxy = bad_meter.BadMeter(f"127.0.0.1:{port}", corrupt_voltage)
    config = write_config(tmp_path, mosquitto, f"""\
        - id: m
          transport: {{tcp: "{proxy.address}"}}
          timeout: 2
          poll: [{{name: fast, interval: 1, objects: [{ENERGY}, {VOLTAGE}]}}]
        """)
    watcher = Subscriber(mosquitto.host, mosquitto.port, ["dlms/pi/m/#"])
    agent = make_agent(config).start()
    try:
        assert watcher.wait_count(f"dlms/pi/m/{ENERGY}", 2, 10)  # published, poll after poll
        energy = json.loads(watcher.on(f"dlms/pi/m/{ENERGY}")[0].payload)
        assert energy["unit"] == "Wh" and energy["value"] > 0
        assert watcher.on(f"dlms/pi/m/{VOLTAGE}") == []
        assert f"{VOLTAGE}: the meter's answer does not decode" in caplog.text
        assert "raw bytes c401" in caplog.text
    finally:
        agent.stop()
        watcher.close()
        proxy.close()
        server.stop()
