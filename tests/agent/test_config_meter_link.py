"""Per-meter link and retry keys: retries, backoff, security.association and
security.frame_counter, from the YAML to the objects the worker and scheduler use."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml

from edge_agent.agent.config import load_config
from edge_agent.agent.config_model import (
    DEFAULT_ASSOCIATION,
    DEFAULT_FRAME_COUNTER,
    BackOffSettings,
)
from edge_agent.agent.meter_settings import client_settings, connection_settings, frame_counter
from edge_agent.agent.meter_worker import MeterWorker
from edge_agent.agent.scheduler import BackOff, LaneSchedule
from edge_agent.client import client as client_module
from edge_agent.dlms.cosem.obis import Obis
from edge_agent.dlms.errors import ConfigError

BASE = {"id": "m", "transport": {"tcp": "10.0.0.1:4059"}, "link": "hdlc"}


class NoSink:
    """The workers here never poll: nothing reaches the sink."""

    def identify(self, meter_id, identity) -> None: ...

    def submit(self, meter_id, readings) -> None: ...

    def problem(self, meter_id, code, message) -> None: ...


def load_meter(tmp_path: Path, **keys):
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"meters": [{**BASE, **keys}]}))
    (meter,) = load_config(path).meters
    return meter


def problems(tmp_path: Path, **keys) -> list[str]:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"meters": [{**BASE, **keys}]}))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return info.value.problems


def test_defaults_are_the_clients(tmp_path: Path) -> None:
    meter = load_meter(tmp_path)
    assert (meter.retries, meter.backoff) == (3, None)
    assert meter.security.association == DEFAULT_ASSOCIATION == client_module.ASSOCIATION.dotted
    assert (meter.security.frame_counter == DEFAULT_FRAME_COUNTER
            == client_module.FRAME_COUNTER.dotted)
    assert connection_settings(meter).retries == 3
    assert meter.hdlc is None and connection_settings(meter).hdlc_parameters is None
    assert client_settings(meter.security, "meters[0].security").association == bytes(
        client_module.ASSOCIATION)
    assert frame_counter(meter.security) == client_module.FRAME_COUNTER


def test_retries_timeout_and_backoff_reach_the_link_and_the_scheduler(tmp_path: Path) -> None:
    meter = load_meter(tmp_path, retries=1, timeout="2s",
                       backoff={"initial": "10s", "maximum": "10m"})
    assert meter.retries == 1 and meter.backoff == BackOffSettings(10.0, 600.0)
    connection = connection_settings(meter)
    assert (connection.retries, connection.timeout) == (1, 2.0)
    worker = MeterWorker(meter, state_dir=tmp_path / "state", sink=NoSink())
    assert worker.backoff == BackOff(10.0, 600.0)
    lane_default = BackOff(1.0, 2.0)
    schedule = LaneSchedule.start([worker], 0.0, lane_default, random=lambda: 0.5)
    (entry,) = schedule.meters
    assert schedule.done(entry, entry.due_groups(0.0), False, 0.0) == 10.0  # the meter's
    assert schedule.done(entry, entry.due_groups(0.0), False, 0.0) == 20.0


def test_a_meter_without_backoff_uses_the_lanes(tmp_path: Path) -> None:
    worker = MeterWorker(load_meter(tmp_path), state_dir=tmp_path / "state", sink=NoSink())
    assert worker.backoff is None
    schedule = LaneSchedule.start([worker], 0.0, BackOff(1.0, 2.0), random=lambda: 0.5)
    (entry,) = schedule.meters
    assert schedule.done(entry, entry.due_groups(0.0), False, 0.0) == 1.0


def test_backoff_keys_default_each_other(tmp_path: Path) -> None:
    assert load_meter(tmp_path, backoff={"maximum": "1h"}).backoff == BackOffSettings(5.0, 3600.0)
    assert load_meter(tmp_path, backoff={"initial": 30}).backoff == BackOffSettings(30.0, 300.0)


def test_association_and_frame_counter(tmp_path: Path) -> None:
    meter = load_meter(tmp_path, security={"association": "0.0.40.0.3.255",
                                           "frame_counter": "0-0:43.1.3.255"})
    assert meter.security.association == "0.0.40.0.3.255"
    settings = client_settings(meter.security, "meters[0].security")
    assert settings.association == bytes(Obis(0, 0, 40, 0, 3, 255))
    assert settings.hls_method.instance_id == bytes(Obis(0, 0, 40, 0, 3, 255))
    assert frame_counter(meter.security) == Obis(0, 0, 43, 1, 3, 255)


@pytest.mark.parametrize("off", ["none", "None", None])
def test_frame_counter_none_switches_the_read_off(tmp_path: Path, off) -> None:
    meter = load_meter(tmp_path, security={"frame_counter": off})
    assert meter.security.frame_counter is None and frame_counter(meter.security) is None


BAD = [
    ("retries negative", {"retries": -1}, "meters[0].retries", "0..10"),
    ("retries too many", {"retries": 11}, "meters[0].retries", "0..10"),
    ("retries text", {"retries": "many"}, "meters[0].retries", ""),
    ("retries on the wrapper", {"retries": 2, "link": "wrapper"}, "meters[0].retries",
     "HDLC links only"),
    ("backoff reversed", {"backoff": {"initial": "10m", "maximum": "1m"}}, "meters[0].backoff",
     "above maximum"),
    ("backoff typo", {"backoff": {"inital": 5}}, "meters[0].backoff.inital",
     "did you mean 'initial'"),
    ("backoff zero", {"backoff": {"initial": 0}}, "meters[0].backoff.initial", ">= 0.1"),
    ("backoff unit", {"backoff": {"maximum": "soon"}}, "meters[0].backoff.maximum", "5m"),
    ("backoff not a mapping", {"backoff": 5}, "meters[0].backoff", ""),
    ("hdlc max_info too small", {"hdlc": {"max_info": 16}}, "meters[0].hdlc.max_info",
     "32..2030"),
    ("hdlc window too large", {"hdlc": {"window": 8}}, "meters[0].hdlc.window", "1..7"),
    ("hdlc typo", {"hdlc": {"window_size": 1}}, "meters[0].hdlc.window_size",
     "did you mean 'window'"),
    ("hdlc on the wrapper", {"hdlc": {"max_info": 128}, "link": "wrapper"}, "meters[0].hdlc",
     "set link: hdlc"),
    ("association not OBIS", {"security": {"association": "40.0"}},
     "meters[0].security.association", "OBIS"),
    ("frame counter not OBIS", {"security": {"frame_counter": "off"}},
     "meters[0].security.frame_counter", "OBIS"),
]


@pytest.mark.parametrize(("keys", "path", "hint"), [case[1:] for case in BAD],
                         ids=[case[0] for case in BAD])
def test_bad_keys_name_their_path(tmp_path: Path, keys: dict, path: str, hint: str) -> None:
    lines = problems(tmp_path, **keys)
    assert any(line.startswith(path + ":") and hint in line for line in lines), lines


def test_the_keys_in_an_example_file(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(textwrap.dedent("""\
        buses: [{id: rs485, device: /dev/ttyUSB0}]
        meters:
          - id: flat-1
            transport: {bus: rs485}
            addresses: {physical: 17}
            timeout: 1.5s
            retries: 2
            backoff: {initial: 2s, maximum: 2m}
            security: {association: 0.0.40.0.1.255, frame_counter: none}
        """))
    (meter,) = load_config(path).meters
    assert (meter.timeout, meter.retries, meter.backoff) == (1.5, 2, BackOffSettings(2.0, 120.0))
    assert (meter.security.association, meter.security.frame_counter) == ("0.0.40.0.1.255", None)
