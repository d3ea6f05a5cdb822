"""Hourly long-term statistics from the meter's load profile, under the real recorder.

Rows go in as the agent publishes them (`<base>/profile/<obis>`, docs/mqtt-contract.md);
the hours come back out of the recorder's database with `statistics_during_period`, the
query the Energy dashboard makes.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from homeassistant.components.recorder.statistics import (
    async_list_statistic_ids,
    statistics_during_period,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers.recorder import get_instance
from payloads import AGENT, BASE, INFO, PREFIX, SERIAL, value_payload
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    MockMqttReasonCode,
    async_fire_mqtt_message,
)
from pytest_homeassistant_custom_component.components.recorder.common import (
    async_wait_recording_done,
)

from custom_components.dlms_edge.profile_hours import MAX_ROWS, HourlySeries, HourStat
from custom_components.dlms_edge.statistics import statistic_id
from edge_agent.mqtt.payloads import ReplayRequest, profile_row_payload

IMPORT, EXPORT, REACTIVE = "1.0.1.8.0.255", "1.0.2.8.0.255", "1.0.3.8.0.255"
POWER, INTERVAL = "1.0.1.7.0.255", "1.0.1.29.0.255"
PROFILE = "1.0.99.1.0.255"
PROFILE_TOPIC = f"{BASE}/profile/{PROFILE}"
IMPORT_ID = statistic_id(SERIAL, IMPORT)
EXPORT_ID = statistic_id(SERIAL, EXPORT)
REACTIVE_ID = statistic_id(SERIAL, REACTIVE)
T0 = datetime(2026, 11, 24, 0, 0, tzinfo=UTC)
QUARTER = timedelta(minutes=15)
HOUR = timedelta(hours=1)
# One count of the meter's resolution (1 Wh) in the statistics' kWh.
COUNT = 1e-3


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(quiet_recorder: None) -> None:
    """The recorder before `hass` (conftest.quiet_recorder)."""


def register(quarters: int, start: float = 12_345_678.0) -> list[float]:
    """A Wh import register over `quarters` + 1 rows with an uneven load (one per 15 min)."""
    values = [start]
    for i in range(quarters):
        values.append(values[-1] + 40 + (i * 37) % 260)
    return values


def row(ts: datetime, values: dict[str, float | None], units: dict[str, str] | None = None) -> str:
    """A row as `edge_agent.mqtt.payloads.profile_row_payload` writes it."""
    return json.dumps(
        {
            "ts": ts.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "values": values,
            "units": units if units is not None else dict.fromkeys(values, "Wh"),
            "status": 0,
        },
        separators=(",", ":"),
    )


async def settle(hass: HomeAssistant) -> None:
    """Until the series are loaded from the recorder and every import is committed."""
    await hass.async_block_till_done(wait_background_tasks=True)
    await async_wait_recording_done(hass)


async def send(
    hass: HomeAssistant,
    fire: Callable[..., Any],
    rows: Iterable[tuple[datetime, float]],
    obis: str = IMPORT,
    unit: str = "Wh",
) -> None:
    for ts, value in rows:
        await fire(PROFILE_TOPIC, row(ts, {obis: value}, {obis: unit}))
    await settle(hass)


async def hours(
    hass: HomeAssistant, sid: str = IMPORT_ID, since: datetime = T0 - timedelta(days=2)
) -> list[dict[str, Any]]:
    """The stored hours of `sid`, oldest first: start (datetime), state, sum, change."""
    result = await get_instance(hass).async_add_executor_job(
        statistics_during_period,
        hass,
        since,
        None,
        {sid},
        "hour",
        None,
        {"state", "sum", "change"},
    )
    return [
        {
            "start": datetime.fromtimestamp(r["start"], UTC),
            "state": r["state"],
            "sum": r["sum"],
            "change": r["change"],
        }
        for r in result.get(sid, [])
    ]


def hourly_deltas_kwh(times: list[datetime], values: list[float]) -> dict[datetime, float]:
    """Each hour's growth in the profile (rows on the hour), in kWh, by hour start."""
    at = dict(zip(times, values, strict=True))
    return {t: (at[t + HOUR] - at[t]) / 1000 for t in times if t.minute == 0 and t + HOUR in at}


def assert_hours_match(
    stored: list[dict[str, Any]], times: list[datetime], values: list[float]
) -> None:
    """Every hour of the profile is stored once, with its change and end-of-hour state."""
    deltas = hourly_deltas_kwh(times, values)
    by_start = {h["start"]: h for h in stored}
    assert len(by_start) == len(stored)  # no hour twice
    for start, delta in deltas.items():
        assert start in by_start, f"hour {start} missing"
        assert by_start[start]["change"] == pytest.approx(delta, abs=COUNT)
        assert by_start[start]["state"] == pytest.approx(values[times.index(start + HOUR)] / 1000)


def quarters_from(start: datetime, values: list[float]) -> list[datetime]:
    return [start + i * QUARTER for i in range(len(values))]


def profile_rows(
    quarters: int, start: datetime = T0
) -> tuple[list[datetime], list[float], list[tuple[datetime, float]]]:
    """A profile from `start` over `quarters` + 1 rows (`register`): times, values, rows."""
    values = register(quarters)
    times = quarters_from(start, values)
    return times, values, list(zip(times, values, strict=True))


async def test_each_hour_is_the_profile_delta(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, fire: Callable[..., Any]
) -> None:
    values = register(6 * 4)
    times = quarters_from(T0, values)
    await send(hass, fire, zip(times, values, strict=True))

    stored = await hours(hass)
    # The hour ending at the first row starts the series: sum 0, no change.
    assert stored[0] == {
        "start": T0 - HOUR,
        "state": pytest.approx(values[0] / 1000),
        "sum": 0,
        "change": 0,
    }
    assert [h["start"] for h in stored] == [T0 + i * HOUR for i in range(-1, 6)]
    assert_hours_match(stored, times, values)
    assert stored[-1]["sum"] == pytest.approx((values[-1] - values[0]) / 1000)


async def test_statistics_are_offered_to_the_energy_dashboard(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, fire: Callable[..., Any]
) -> None:
    """Listed as sums with an energy unit class: what the dashboard's picker asks for."""
    await fire(
        PROFILE_TOPIC,
        row(
            T0,
            {IMPORT: 1000.0, EXPORT: 20.0, REACTIVE: 5000.0, POWER: 300.0, INTERVAL: 1.0},
            {IMPORT: "Wh", EXPORT: "kWh", REACTIVE: "varh", POWER: "W", INTERVAL: "Wh"},
        ),
    )
    await settle(hass)

    listed = {
        s["statistic_id"]: s for s in await async_list_statistic_ids(hass, statistic_type="sum")
    }
    # The live sensors are offered beside them, as separate series: the user picks one.
    assert "sensor.sagemcom_t_210d_energy_import" in listed
    assert {sid for sid in listed if sid.startswith("dlms_edge:")} == {
        IMPORT_ID,
        EXPORT_ID,
        REACTIVE_ID,
    }
    assert IMPORT_ID == "dlms_edge:1sag67929081_1_0_1_8_0_255"
    energy = listed[IMPORT_ID]
    assert energy["source"] == "dlms_edge"
    assert energy["statistics_unit_of_measurement"] == "kWh"
    assert energy["unit_class"] == "energy"
    assert energy["has_sum"] is True
    assert energy["name"] == "Sagemcom T-210D Active energy import (+A) (load profile)"
    assert listed[EXPORT_ID]["statistics_unit_of_measurement"] == "kWh"
    assert listed[REACTIVE_ID]["statistics_unit_of_measurement"] == "kvarh"
    assert (await hours(hass, EXPORT_ID))[0]["state"] == pytest.approx(20.0)
    assert (await hours(hass, REACTIVE_ID))[0]["state"] == pytest.approx(5.0)


async def test_fresh_install_gets_the_backfill_hour_by_hour(
    hass: HomeAssistant, loaded_entry: MockConfigEntry
) -> None:
    """The agent's first backfill: 30 days of rows (2 880) in one burst, as the broker
    hands them over, give 720 hours, each the profile's own."""
    values = register(30 * 24 * 4)
    times = quarters_from(T0 - timedelta(days=29), values)
    for ts, value in zip(times, values, strict=True):
        async_fire_mqtt_message(hass, PROFILE_TOPIC, row(ts, {IMPORT: value}), qos=1)
    await settle(hass)

    stored = await hours(hass, since=times[0] - HOUR)
    assert len(stored) == 30 * 24 + 1
    assert_hours_match(stored, times, values)


async def test_agent_outage_rows_arrive_late_in_order(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, fire: Callable[..., Any]
) -> None:
    """The agent was down six hours; its backfill comes in a burst before the live rows.

    The live sensor jumps by six hours' energy when the agent is back; the profile
    statistic shows each of those hours with its own consumption and nothing twice.
    """
    times, values, rows = profile_rows(14 * 4)
    await send(hass, fire, rows[: 4 * 4 + 1])  # live until 04:00, then the agent stops
    before = await hours(hass)
    assert before[-1]["start"] == T0 + 3 * HOUR

    # Back at 10:00: the live value jumps, then the 24 missed rows and the live ones.
    await fire(f"{BASE}/{IMPORT}", value_payload(values[40], "Wh", IMPORT))
    await send(hass, fire, rows[4 * 4 + 1 :])

    stored = await hours(hass)
    assert [h["start"] for h in stored] == [T0 + i * HOUR for i in range(-1, 14)]
    assert_hours_match(stored, times, values)
    # No hour holds more than the profile's largest hour: no spike where they arrived.
    assert max(h["change"] for h in stored) == pytest.approx(
        max(hourly_deltas_kwh(times, values).values()), abs=COUNT
    )
    assert sum(h["change"] for h in stored) == pytest.approx((values[-1] - values[0]) / 1000)


async def test_duplicate_rows_change_nothing(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, fire: Callable[..., Any]
) -> None:
    """QoS 1 may deliver a row twice; a late copy of old rows leaves every hour as it was."""
    *_, rows = profile_rows(5 * 4)
    await send(hass, fire, rows)
    first = await hours(hass)

    await send(hass, fire, rows[3:9] + [rows[-1]] + rows[10:12])

    assert await hours(hass) == first


async def test_late_rows_inside_a_gap_replace_the_interpolation(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, fire: Callable[..., Any]
) -> None:
    """Rows missing on both sides of a gap: its hours share the growth evenly (no spike);
    when the missing rows come after all, those hours get their real values and the
    hours after the gap keep theirs."""
    times, values, rows = profile_rows(9 * 4)
    gap = slice(2 * 4 + 1, 8 * 4)  # 02:15 .. 07:45 missing
    await send(hass, fire, rows[: gap.start] + rows[gap.stop :])

    interpolated = await hours(hass)
    by_start = {h["start"]: h for h in interpolated}
    even = (values[8 * 4] - values[2 * 4]) / 1000 / 6
    for hour in range(2, 8):
        assert by_start[T0 + hour * HOUR]["change"] == pytest.approx(even, abs=COUNT)
    after_gap = by_start[T0 + 8 * HOUR]

    await send(hass, fire, rows[gap])

    stored = await hours(hass)
    assert_hours_match(stored, times, values)
    assert {h["start"]: h for h in stored}[T0 + 8 * HOUR] == after_gap


async def test_hours_without_rows_on_both_sides_are_left_out(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, fire: Callable[..., Any]
) -> None:
    """A series starting mid-hour begins at its first full boundary; the hour still in
    progress waits for the row at its end."""
    await send(
        hass,
        fire,
        [(T0 + QUARTER, 1000.0), (T0 + HOUR, 1300.0), (T0 + HOUR + 2 * QUARTER, 1500.0)],
    )
    stored = await hours(hass)
    # Only the hour ending at 01:00 (from the first row at 00:15: 300 Wh); 01:00-02:00
    # has no row at its end yet.
    assert [h["start"] for h in stored] == [T0]
    assert stored[0]["sum"] == pytest.approx(0.3)
    assert stored[0]["state"] == pytest.approx(1.3)

    await send(hass, fire, [(T0 + 2 * HOUR, 1600.0)])
    stored = await hours(hass)
    assert [h["start"] for h in stored] == [T0, T0 + HOUR]
    assert stored[1]["change"] == pytest.approx(0.3)


async def test_meter_reset_starts_a_new_cycle(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, fire: Callable[..., Any]
) -> None:
    values = [1000.0, 1100.0, 50.0, 150.0, 250.0, 400.0, 500.0, 600.0, 700.0]
    times = quarters_from(T0, values)
    await send(hass, fire, zip(times, values, strict=True))

    stored = await hours(hass)
    # 100 Wh, then a new cycle from 0 to 50, then 100 + 100: the sum keeps growing.
    assert stored[1]["start"] == T0
    assert stored[1]["change"] == pytest.approx(0.35)
    assert stored[1]["state"] == pytest.approx(0.25)
    assert stored[2]["change"] == pytest.approx(0.45)
    assert all(h["change"] >= 0 for h in stored)


async def test_units_are_converted_to_kwh(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, fire: Callable[..., Any]
) -> None:
    """The agent re-announces the register in kWh (a new scaler): one series in kWh."""
    await send(hass, fire, [(T0, 1000.0), (T0 + HOUR, 1500.0)], unit="Wh")
    await send(hass, fire, [(T0 + 2 * HOUR, 2.25)], unit="kWh")
    stored = await hours(hass)
    assert [h["change"] for h in stored[1:]] == pytest.approx([0.5, 0.75])
    assert stored[-1]["state"] == pytest.approx(2.25)


async def test_restart_continues_the_sum(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, fire: Callable[..., Any]
) -> None:
    """Home Assistant restarts (the entry is set up anew, nothing kept in memory): the sum
    goes on from the last stored hour; rows it had already counted change nothing."""
    times, values, rows = profile_rows(8 * 4)
    await send(hass, fire, rows[: 3 * 4 + 1])

    assert await hass.config_entries.async_reload(loaded_entry.entry_id)
    await settle(hass)
    # A QoS 1 copy of counted rows, then the rows from 03:15 on.
    await send(hass, fire, rows[2 * 4 : 3 * 4 + 1] + rows[3 * 4 + 1 :])

    stored = await hours(hass)
    assert [h["start"] for h in stored] == [T0 + i * HOUR for i in range(-1, 8)]
    assert_hours_match(stored, times, values)
    assert stored[-1]["sum"] == pytest.approx((values[-1] - values[0]) / 1000)


async def test_restart_after_missed_rows_spreads_them(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, fire: Callable[..., Any]
) -> None:
    """Rows published while Home Assistant was down never reach it: the hours between
    the last stored one and the first row after the restart share that growth evenly,
    never as one spike."""
    _times, values, rows = profile_rows(9 * 4)
    await send(hass, fire, rows[: 2 * 4 + 1])
    assert await hass.config_entries.async_reload(loaded_entry.entry_id)
    await settle(hass)
    await send(hass, fire, rows[8 * 4 :])

    stored = {h["start"]: h for h in await hours(hass)}
    even = (values[8 * 4] - values[2 * 4]) / 1000 / 6
    for hour in range(2, 8):
        assert stored[T0 + hour * HOUR]["change"] == pytest.approx(even, abs=COUNT)
    assert stored[T0 + 8 * HOUR]["change"] == pytest.approx((values[9 * 4] - values[8 * 4]) / 1000)


def replay_requests(mqtt_broker: Any) -> list[ReplayRequest]:
    """What the integration asked the agent for on `<base>/replay`, parsed by the agent's
    own reader of that message (docs/mqtt-contract.md "Replay")."""
    return [
        ReplayRequest.decode(c.args[1].encode())
        for c in mqtt_broker.async_publish.call_args_list
        if c.args[0] == f"{BASE}/replay"
    ]


async def announce_profiles(fire: Callable[..., Any], profiles: list[str]) -> None:
    """The agent's retained info, listing the profiles it publishes."""
    await fire(f"{BASE}/info", json.dumps(INFO | {"profiles": profiles}), retain=True)


async def answer(
    hass: HomeAssistant,
    fire: Callable[..., Any],
    request: ReplayRequest,
    rows: list[tuple[datetime, float]],
) -> None:
    """Answer as the agent does: the rows after `from`, flagged as replayed."""
    for ts, value in rows:
        if request.start is None or ts > request.start:
            payload = profile_row_payload(ts, {IMPORT: value}, {IMPORT: "Wh"}, 0, replay=True)
            await fire(PROFILE_TOPIC, payload)
    await settle(hass)


async def test_home_assistant_down_asks_again_and_every_hour_is_the_meter_s(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    fire: Callable[..., Any],
    mqtt_broker: Any,
) -> None:
    """Home Assistant is down six hours while the agent publishes: at its start it asks
    for the rows after its newest stored hour, and the answer gives each missed hour the
    meter's own consumption -- no even share, no spike, nothing twice."""
    times, values, rows = profile_rows(10 * 4)
    await send(hass, fire, rows[: 2 * 4 + 1])  # live until 02:00
    assert await hass.config_entries.async_reload(loaded_entry.entry_id)
    await settle(hass)
    mqtt_broker.async_publish.reset_mock()

    await fire(f"{PREFIX}/{AGENT}/status", "online", retain=True)  # the broker's retained copy
    await announce_profiles(fire, [PROFILE])
    await settle(hass)
    requests = replay_requests(mqtt_broker)
    assert [(r.profile, r.start) for r in requests] == [(PROFILE, T0 + 2 * HOUR)]
    # A live row may come first (08:00): the hours before it are spread, then replaced.
    await send(hass, fire, rows[8 * 4 : 8 * 4 + 1])
    await answer(hass, fire, requests[0], rows[: 8 * 4])
    await send(hass, fire, rows[8 * 4 + 1 :])

    stored = await hours(hass)
    assert [h["start"] for h in stored] == [T0 + i * HOUR for i in range(-1, 10)]
    assert_hours_match(stored, times, values)
    assert stored[-1]["sum"] == pytest.approx((values[-1] - values[0]) / 1000)
    # Announced again (the agent reconnects): the start's question is not repeated.
    await announce_profiles(fire, [PROFILE])
    await settle(hass)
    assert len(replay_requests(mqtt_broker)) == 1


async def test_a_lost_broker_connection_asks_again_from_the_newest_hour(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    fire: Callable[..., Any],
    mqtt_broker: Any,
    mqtt_client_mock: Any,
) -> None:
    """Home Assistant's own connection to the broker drops (rows go out meanwhile, lost
    to its clean session): when the retained info comes back, it asks again."""
    times, values, rows = profile_rows(6 * 4)
    await announce_profiles(fire, [PROFILE])
    await send(hass, fire, rows[: 2 * 4 + 1])
    assert [r.start for r in replay_requests(mqtt_broker)] == [None]
    await announce_profiles(fire, [PROFILE])  # a re-announcement alone asks nothing
    await settle(hass)
    assert len(replay_requests(mqtt_broker)) == 1

    mqtt_client_mock.on_disconnect(None, None, 0, MockMqttReasonCode())
    await hass.async_block_till_done()
    mqtt_client_mock.on_connect(None, None, 0, MockMqttReasonCode())
    await hass.async_block_till_done()
    # The broker's retained copies, resubscribed.
    await fire(f"{PREFIX}/{AGENT}/status", "online", retain=True)
    await announce_profiles(fire, [PROFILE])
    await settle(hass)
    requests = replay_requests(mqtt_broker)
    assert [r.start for r in requests] == [None, T0 + 2 * HOUR]
    await answer(hass, fire, requests[-1], rows[: 5 * 4])
    await send(hass, fire, rows[5 * 4 :])
    assert_hours_match(await hours(hass), times, values)


async def test_a_fresh_install_asks_for_all_the_agent_keeps(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    fire: Callable[..., Any],
    mqtt_broker: Any,
) -> None:
    """The agent published its backfill before the entry existed: the first start asks
    from null, and the weeks the agent sends again become the statistics."""
    await announce_profiles(fire, [PROFILE])
    await settle(hass)
    requests = replay_requests(mqtt_broker)
    assert [(r.profile, r.start) for r in requests] == [(PROFILE, None)]
    values = register(14 * 24 * 4)
    times = quarters_from(T0 - timedelta(days=13), values)
    await answer(hass, fire, requests[0], list(zip(times, values, strict=True)))
    stored = await hours(hass, since=times[0] - HOUR)
    assert len(stored) == 14 * 24 + 1
    assert_hours_match(stored, times, values)


async def test_a_hole_in_the_rows_is_asked_for_once(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    fire: Callable[..., Any],
    mqtt_broker: Any,
) -> None:
    """Rows jump by more than their spacing (Home Assistant's broker session was lost):
    the rows after the last one before the hole are asked for, once."""
    times, values, rows = profile_rows(6 * 4)
    await send(hass, fire, rows[:9] + rows[14:16])  # 02:15..03:15 missed
    requests = replay_requests(mqtt_broker)
    assert [(r.profile, r.start) for r in requests] == [(PROFILE, times[8])]
    await answer(hass, fire, requests[0], rows[:14])
    await send(hass, fire, rows[14:])  # the rows go on: nothing more is asked
    assert len(replay_requests(mqtt_broker)) == 1
    stored = await hours(hass)
    assert_hours_match(stored, times, values)


async def test_an_agent_without_profiles_is_not_asked(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    fire: Callable[..., Any],
    mqtt_broker: Any,
) -> None:
    """Older agents list no profiles (and read no requests): nothing is published."""
    await fire(f"{BASE}/info", json.dumps(INFO), retain=True)
    await announce_profiles(fire, [])
    await settle(hass)
    assert replay_requests(mqtt_broker) == []


async def test_rows_as_the_agent_publishes_them(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, fire: Callable[..., Any]
) -> None:
    """The agent's own payload writer (the contract's producer): status column, a value
    the meter left out (null), numbers by OBIS with their units."""
    values = register(2 * 4)
    times = quarters_from(T0, values)
    for i, (ts, value) in enumerate(zip(times, values, strict=True)):
        export = None if i == 4 else 500.0 + i
        payload = profile_row_payload(
            ts,
            {IMPORT: value, EXPORT: export, "0.0.96.10.1.255": 8},
            {IMPORT: "Wh", EXPORT: "Wh", "0.0.96.10.1.255": None},
            8,
        )
        await fire(PROFILE_TOPIC, payload)
    await settle(hass)

    assert_hours_match(await hours(hass), times, values)
    # 01:00 had no export value: the hour ends between the rows around it.
    assert [h["state"] for h in await hours(hass, EXPORT_ID)] == pytest.approx([0.5, 0.504, 0.508])


async def test_malformed_rows_are_reported_once(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    fire: Callable[..., Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING):
        await fire(PROFILE_TOPIC, "not json")
        await fire(PROFILE_TOPIC, json.dumps({"ts": "2026-11-24T00:00:00", "values": {}}))
    await settle(hass)
    assert caplog.text.count(f"Ignoring malformed message on {PROFILE_TOPIC}") == 1
    assert not [
        s
        for s in await async_list_statistic_ids(hass, statistic_type="sum")
        if s["statistic_id"].startswith("dlms_edge:")
    ]


def _all_hours(
    series: HourlySeries, rows: list[tuple[datetime, float]]
) -> dict[datetime, HourStat]:
    written: dict[datetime, HourStat] = {}
    for ts, value in rows:
        written.update((hour.start, hour) for hour in series.add(ts, value))
    return written


@pytest.mark.parametrize("seed", range(5))
def test_the_same_rows_in_any_order_give_the_same_hours(seed: int) -> None:
    """Order independence of the arithmetic, resets and gaps included."""
    values = register(6 * 4)
    values[13:] = [v - values[12] + 7 for v in values[13:]]  # a reset after row 12
    rows = [
        r for i, r in enumerate(zip(quarters_from(T0, values), values)) if i not in {5, 6, 7, 17}
    ]
    in_order = _all_hours(HourlySeries(), rows)
    shuffled = rows[:]
    random.Random(seed).shuffle(shuffled)
    assert _all_hours(HourlySeries(), shuffled) == in_order


def test_rows_older_than_those_kept_are_ignored() -> None:
    """Past MAX_ROWS the oldest rows are folded away; a copy of one changes nothing."""
    values = register(MAX_ROWS + 100)
    times = quarters_from(T0, values)
    series = HourlySeries()
    written = _all_hours(series, list(zip(times, values, strict=True)))
    assert len(written) == (len(values) - 1) // 4 + 1
    assert series.add(times[10], values[10] + 5000) == []
    assert series.add(times[-1] + QUARTER, values[-1] + 100) == []  # the hour is not over
    assert series.add(times[-1] + HOUR, values[-1] + 400) == [
        HourStat(times[-1], round(values[-1] + 400, 6), round(values[-1] + 400 - values[0], 6))
    ]


def test_continue_from_the_stored_hour() -> None:
    series = HourlySeries()
    series.continue_from(HourStat(T0 - HOUR, 10.0, 4.0))
    assert series.add(T0, 10.0) == []  # counted before the restart
    assert series.add(T0 + QUARTER, 10.1) == []
    assert series.add(T0 + 2 * HOUR, 10.5) == [
        # 01:00 lies 45 of the 105 minutes from 00:15 to 02:00.
        HourStat(T0, round(10.1 + 0.4 * 3 / 7, 6), round(4.1 + 0.4 * 3 / 7, 6)),
        HourStat(T0 + HOUR, 10.5, 4.5),
    ]


async def test_an_offline_agent_is_asked_once_it_is_back(
    hass: HomeAssistant,
    mqtt_broker: Any,
    config_entry: MockConfigEntry,
    fire: Callable[..., Any],
) -> None:
    """Home Assistant starts while the agent is offline (its retained Last Will): the
    agent's clean session would lose a request now, so it is asked when it comes online;
    once only, its own backfill covers its later outages."""
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    status = f"{PREFIX}/{AGENT}/status"
    await fire(status, "offline", retain=True)
    await announce_profiles(fire, [PROFILE])
    await settle(hass)
    assert replay_requests(mqtt_broker) == []

    await fire(status, "online")
    await settle(hass)
    assert [(r.profile, r.start) for r in replay_requests(mqtt_broker)] == [(PROFILE, None)]
    await fire(status, "offline")
    await fire(status, "online")
    await announce_profiles(fire, [PROFILE])
    await settle(hass)
    assert len(replay_requests(mqtt_broker)) == 1
