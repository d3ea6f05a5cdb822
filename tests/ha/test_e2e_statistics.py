"""End to end: the meter's load profile becomes Home Assistant's hourly energy statistics.

Real programs on 127.0.0.1 only (see test_e2e.py): Mosquitto, `dlms-edge simulate`, the
agent and `hass` with its recorder.

1. The agent runs six hours in the past (libfaketime moves its clock; the meter keeps
   the real time) with `profiles:` and publishes its backfill (a day) while Home
   Assistant is not listening -- a fresh install, or Home Assistant down. When the
   agent's entry is added, the integration asks the agent for those rows again
   (docs/mqtt-contract.md "Replay").
2. The agent stops and starts again at the real time: it was away for six simulated
   hours, and reads and publishes the 24 rows it missed.

Each time, every stored hour's change must equal the meter's own profile, read a second
time with `dlms-edge profile`, with no hour missing and none twice.
"""

from __future__ import annotations

import csv
import io
import os
import re
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from e2e_support import (
    HOST,
    HomeAssistantApi,
    Service,
    free_port,
    listening_port,
    port_open,
    python_tool,
    wait_for,
    write_agent_config,
    write_home_assistant_config,
    write_mosquitto_config,
)
from test_e2e import (  # the same chain as the sensors' end-to-end test
    AGENT_ID,
    HASS,
    INTEGRATION,
    START_TIMEOUT,
    _add_agent,
    _add_mqtt,
    _integration_problems,
    _mosquitto_binary,
    _onboarded,
    _start,
    services,
)

__all__ = ["services"]
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(420)]

IMPORT = "1.0.1.8.0.255"
PROFILE = "1.0.99.1.0.255"
BACKFILL_HOURS = 24
# Hours a day of rows gives at least, whatever the minute the agent starts at.
EXPECTED_HOURS = BACKFILL_HOURS - 2
STATISTICS_TIMEOUT = 150.0
HOUR = timedelta(hours=1)
OUTAGE = timedelta(hours=6)  # how long the agent is away, in simulated time
OUTAGE_ROWS = 6 * 4
# The agent's log lines for rows published first, and sent again on request.
PUBLISHED = re.compile(r"(\d+) row\(s\) of profile \S+ published")
SENT_AGAIN = re.compile(r"\d+ row\(s\) of profile \S+ sent again")


def _stored_hours(database: Path) -> tuple[str, list[tuple[datetime, float, float]]] | None:
    """(statistic id, [(start, state, sum)]) of the import profile statistic, if any."""
    if not database.exists():
        return None
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5) as db:
        found = db.execute(
            "SELECT id, statistic_id FROM statistics_meta WHERE statistic_id LIKE ?",
            (f"dlms_edge:%{IMPORT.replace('.', '_')}",),
        ).fetchone()
        if found is None:
            return None
        rows = db.execute(
            "SELECT start_ts, state, sum FROM statistics WHERE metadata_id = ? ORDER BY start_ts",
            (found[0],),
        ).fetchall()
    return found[1], [(datetime.fromtimestamp(r[0], UTC), r[1], r[2]) for r in rows]


def _profile(meter_port: int, start: datetime, end: datetime) -> dict[datetime, float]:
    """The import register by row time, as `dlms-edge profile` reads it from the meter."""
    done = subprocess.run(
        [
            python_tool("dlms-edge"),
            "profile",
            "--tcp",
            f"{HOST}:{meter_port}",
            "--client",
            "16",
            "--obis",
            PROFILE,
            "--from",
            start.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "--to",
            end.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "--format",
            "csv",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return {
        datetime.fromisoformat(row["ts"]): float(row[IMPORT])
        for row in csv.DictReader(io.StringIO(done.stdout))
    }


def test_profile_backfill_becomes_hourly_statistics(
    socket_enabled: None, tmp_path: Path, services: dict[str, Service]
) -> None:
    ha_dir = tmp_path / "ha-config"
    ha_dir.mkdir()
    ha_port = free_port()
    write_home_assistant_config(ha_dir, ha_port, INTEGRATION)
    with (ha_dir / "configuration.yaml").open("a") as config:
        config.write("recorder:\n  commit_interval: 1\n")
    hass = _start(
        services,
        Service(
            HASS,
            [sys.executable, "-m", "homeassistant", "--config", str(ha_dir), "--skip-pip"],
            tmp_path / "home-assistant.out",
        ),
    )
    broker_port = free_port()
    broker_config = write_mosquitto_config(tmp_path, broker_port)
    broker = _start(
        services,
        Service(
            "mosquitto", [_mosquitto_binary(), "-c", str(broker_config)], tmp_path / "mosquitto.log"
        ),
    )
    simulator = _start(
        services,
        Service(
            "simulator",
            [python_tool("dlms-edge"), "simulate", "--tcp", f"{HOST}:0"],
            tmp_path / "simulator.log",
        ),
    )
    wait_for(
        "Mosquitto to listen", lambda: port_open(broker_port) or None, START_TIMEOUT, (broker,)
    )
    meter_port = wait_for(
        "the simulator to listen", lambda: listening_port(simulator), START_TIMEOUT, (simulator,)
    )
    agent_config = write_agent_config(
        tmp_path,
        broker_port,
        meter_port,
        AGENT_ID,
        10,
        objects=f"[{IMPORT}]",
        profile=(PROFILE, f"{BACKFILL_HOURS}h"),
    )
    agent = _start(
        services,
        Service(
            "agent",
            [python_tool("dlms-edge"), "run", "--config", str(agent_config)],
            tmp_path / "agent.log",
            env=six_hours_ago(),
        ),
    )
    chain = (broker, simulator, agent, hass)

    def backfill_published() -> int | None:
        rows = sum(map(int, PUBLISHED.findall(agent.log_path.read_text(errors="replace"))))
        return rows if rows >= EXPECTED_HOURS * 4 else None

    # The day of rows goes out before Home Assistant has an entry that could listen.
    wait_for("the agent's backfill", backfill_published, START_TIMEOUT, chain)

    api = HomeAssistantApi(ha_port)
    config = _onboarded(api, chain)
    assert "recorder" in config["components"], config["components"]
    _add_mqtt(api, broker_port)
    _add_agent(api, chain)

    database = ha_dir / "home-assistant_v2.db"

    def day_stored() -> tuple[str, list[tuple[datetime, float, float]]] | None:
        stored = _stored_hours(database)
        return stored if stored and len(stored[1]) >= EXPECTED_HOURS else None

    statistic_id, hours = wait_for(
        "a day of hourly statistics", day_stored, STATISTICS_TIMEOUT, chain, interval=2.0
    )
    assert statistic_id.startswith("dlms_edge:"), statistic_id
    assert hours[-1][0] < datetime.now(UTC) - OUTAGE + HOUR  # the agent's past
    assert_hours_are_the_profile(hours, meter_port)
    assert SENT_AGAIN.search(agent.log_path.read_text(errors="replace")), "no replay"

    # Six simulated hours later the agent is back, at the real time.
    agent.stop()
    agent.env = {}
    first_run = agent.log_path.read_text(errors="replace")
    agent.start()

    def outage_stored() -> list[tuple[datetime, float, float]] | None:
        stored = _stored_hours(database)
        late = stored is not None and stored[1][-1][0] >= datetime.now(UTC) - 2 * HOUR
        return stored[1] if stored is not None and late else None

    hours = wait_for("the outage's hours", outage_stored, STATISTICS_TIMEOUT, chain, interval=2.0)
    assert len(hours) >= EXPECTED_HOURS + 5
    assert_hours_are_the_profile(hours, meter_port)
    second_run = agent.log_path.read_text(errors="replace")[len(first_run) :]
    caught_up = sum(map(int, PUBLISHED.findall(second_run)))
    assert OUTAGE_ROWS - 4 <= caught_up <= OUTAGE_ROWS + 4, second_run[-3000:]
    assert _integration_problems(hass.log_path.read_text(errors="replace")) == []


def six_hours_ago() -> dict[str, str]:
    """The environment that runs a program with its clock OUTAGE in the past (libfaketime;
    monotonic clocks are left alone). Under CI=true a missing libfaketime is a failure."""
    library = next(iter(sorted(Path("/usr/lib").glob("*/faketime/libfaketime.so.1"))), None)
    if library is None:
        message = "libfaketime is missing: apt-get install faketime (scripts/test does)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return {
        "LD_PRELOAD": str(library),
        "FAKETIME": f"-{int(OUTAGE.total_seconds())}",
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
    }


def assert_hours_are_the_profile(
    hours: list[tuple[datetime, float, float]], meter_port: int
) -> None:
    """Contiguous hours, none twice, each one's change the meter's own profile's."""
    starts = [start for start, _state, _sum in hours]
    assert starts == [starts[0] + i * HOUR for i in range(len(starts))]  # no gap, none twice
    profile = _profile(meter_port, starts[0], starts[-1] + 2 * HOUR)
    # The series starts at the first row: the first hour holds what came after it.
    assert hours[0][2] <= (profile[starts[0] + HOUR] - profile[starts[0]]) / 1000 + 1e-6
    for (start, state, total), (_previous, _state, previous_total) in zip(
        hours[1:], hours, strict=False
    ):
        end = start + HOUR
        assert abs(state - profile[end] / 1000) < 1e-6, (start, state, profile[end])
        delta = (profile[end] - profile[start]) / 1000
        assert abs((total - previous_total) - delta) < 1e-6, (start, total - previous_total, delta)
