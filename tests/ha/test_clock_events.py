"""The meter's clock (drift sensor) and events (event entity, bus event), from the payloads
the agent publishes on `<base>/clock` and `<base>/event` (docs/mqtt-contract.md)."""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from freezegun.api import FrozenDateTimeFactory
from homeassistant.components.sensor import ATTR_STATE_CLASS
from homeassistant.const import (
    ATTR_DEVICE_CLASS,
    ATTR_UNIT_OF_MEASUREMENT,
    STATE_UNAVAILABLE,
    STATE_UNKNOWN,
    EntityCategory,
)
from homeassistant.core import Event, HomeAssistant, State, callback
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.event import async_track_state_change_event
from homeassistant.setup import async_setup_component
from payloads import (
    AGENT,
    BASE,
    FRAUD_LOG,
    METER,
    POWER_FAILURE_LOG,
    PREFIX,
    SERIAL,
    STANDARD_LOG,
    SYSTEM_TITLE,
    clock_payload,
    event_payload,
    info_payload,
)
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
    async_fire_time_changed,
    async_mock_service,
)
from registry import device_of

from custom_components.dlms_edge.const import (
    EVENT_METER_EVENT,
    EVENT_NAMES,
    EVENT_TYPES,
    LONG_POWER_FAILURE,
    UNKNOWN_EVENT,
)
from custom_components.dlms_edge.diagnostics import async_get_config_entry_diagnostics
from custom_components.dlms_edge.event_marks import EVENT_MARKS_STORAGE_KEY
from custom_components.dlms_edge.models import (
    MARKS_PER_LOG,
    ClockReading,
    InvalidPayload,
    MeterEvent,
    MeterEventMarks,
    Verdict,
)

ROOT = Path(__file__).parents[2]
INTEGRATION = ROOT / "custom_components" / "dlms_edge"
DRIFT = "sensor.sagemcom_t_210d_clock_drift"
EVENTS = "event.sagemcom_t_210d_events"
CLOCK_TOPIC = f"{BASE}/clock"
EVENT_TOPIC = f"{BASE}/event"
# The time Home Assistant starts watching the meter (the entry's set-up) in these tests.
T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def load(name: str) -> dict[str, Any]:
    return json.loads((INTEGRATION / name).read_text())


def contract_example(section: str) -> dict[str, Any]:
    """The JSON example of a section of docs/mqtt-contract.md."""
    text = (ROOT / "docs" / "mqtt-contract.md").read_text()
    body = text.split(f"\n## {section}\n", 1)[1]
    return json.loads(body.split("```json", 1)[1].split("```", 1)[0])


@pytest.fixture
async def watched(
    hass: HomeAssistant,
    mqtt_broker: Any,
    freezer: FrozenDateTimeFactory,
    config_entry: MockConfigEntry,
    fire: Any,
) -> MockConfigEntry:
    """The entry set up at T0 (from then on the meter's events are watched), online.

    Time is frozen after MQTT is set up: freezegun's datetime breaks the import of
    MQTT's config flow (mashumaro) when that comes first."""
    freezer.move_to(T0)
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    await online(fire)
    return config_entry


async def online(fire: Any, clock: bool = True) -> None:
    """The broker's retained replay: the agent and its meter online, the meter's info
    (without it the meter counts as gone two minutes later, and these tests move time)
    and its clock (the first one starts the watch of the meter's events)."""
    await fire(f"{PREFIX}/{AGENT}/status", "online", retain=True)
    await fire(f"{BASE}/info", info_payload(), retain=True)
    await fire(f"{BASE}/availability", "online", retain=True)
    if clock:
        await fire(CLOCK_TOPIC, clock_payload(agent_time=T0), retain=True)


def track(hass: HomeAssistant, entity_id: str) -> list[State]:
    """The new states of `entity_id` from now on."""
    states: list[State] = []

    @callback
    def _changed(event: Event[Any]) -> None:
        if (state := event.data["new_state"]) is not None:
            states.append(state)

    async_track_state_change_event(hass, [entity_id], _changed)
    return states


def fired_at(moment: datetime) -> str:
    """The event entity's state after it fired at `moment` (Home Assistant's time)."""
    return moment.isoformat(timespec="milliseconds")


async def restart(
    hass: HomeAssistant, entry: MockConfigEntry, fire: Any, clock: bool = True
) -> None:
    """Reload the entry (its entities are restored) with agent and meter online again."""
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    await online(fire, clock)


# --- the tables and texts ------------------------------------------------------------------


def test_event_names_equal_the_agents_table() -> None:
    """const.EVENT_NAMES is the agent's table copied as data: the same codes and names."""
    from edge_agent.dlms.cosem import event_codes

    assert dict(EVENT_NAMES) == {code: kind.name for code, kind in event_codes.EVENT_CODES.items()}
    assert len(EVENT_NAMES) == len(event_codes.EVENT_CODES)
    assert LONG_POWER_FAILURE == event_codes.LONG_POWER_FAILURE.name
    assert UNKNOWN_EVENT == event_codes.UNKNOWN
    assert EVENT_TYPES == (
        *(name for _code, name in EVENT_NAMES),
        LONG_POWER_FAILURE,
        UNKNOWN_EVENT,
    )


def test_event_types_translated_with_the_agents_texts() -> None:
    from edge_agent.dlms.cosem import event_codes

    kinds = [*event_codes.EVENT_CODES.values(), event_codes.LONG_POWER_FAILURE]
    for name in ("strings.json", "translations/en.json", "translations/de.json"):
        events = load(name)["entity"]["event"]["events"]
        assert list(events["state_attributes"]["event_type"]["state"]) == list(EVENT_TYPES), name
    english = load("strings.json")["entity"]["event"]["events"]["state_attributes"]
    assert english["event_type"]["state"] == {kind.name: kind.text for kind in kinds} | {
        UNKNOWN_EVENT: "Unknown event (manufacturer-specific code)"
    }
    icons = load("icons.json")["entity"]["event"]["events"]["state_attributes"]["event_type"]
    assert set(icons["state"]) <= set(EVENT_TYPES)


def test_contract_examples_parse() -> None:
    clock = ClockReading.from_payload(json.dumps(contract_example("Clock")))
    assert clock.drift == 17.0
    assert clock.meter_time == datetime(2026, 3, 10, 12, 0, 17, tzinfo=UTC)
    assert (clock.status, clock.clock_base, clock.daylight_saving_active) == (
        (),
        "internal_crystal",
        False,
    )
    assert (clock.sync.enabled, clock.sync.result, clock.sync.step) == (True, "shifted", -17)
    event = MeterEvent.from_payload(json.dumps(contract_example("Events")))
    assert (event.ts, event.log, event.code, event.name, event.text) == (
        datetime(2026, 2, 21, 21, 25, 44, tzinfo=UTC),
        STANDARD_LOG,
        1,
        "power_down",
        "Power down",
    )
    assert event.event_type == "power_down" and event.time_trusted


# --- the marks (pure) ------------------------------------------------------------------------


def _event(
    ts: datetime, code: int | None = 1, log: str = STANDARD_LOG, **changes: Any
) -> MeterEvent:
    payload = json.loads(event_payload(ts, code, log))
    return MeterEvent.from_payload(json.dumps(payload | changes))


def test_marks_judge_new_history_and_duplicates() -> None:
    marks = MeterEventMarks(since=T0)
    assert marks.judge(_event(T0 - MINUTE)) is Verdict.HISTORY
    assert marks.judge(_event(T0 - MINUTE)) is Verdict.DUPLICATE
    assert marks.judge(_event(T0 + MINUTE)) is Verdict.NEW
    # Same second, another code: another event (the contract's key is log, ts, code).
    assert marks.judge(_event(T0 + MINUTE, 2)) is Verdict.NEW
    # Same time stamp and code in another log: another event.
    assert marks.judge(_event(T0 + MINUTE, 1, FRAUD_LOG)) is Verdict.NEW
    # The meter's clock was set back: an older time stamp not seen before is new.
    assert marks.judge(_event(T0 + MINUTE / 2, 5)) is Verdict.NEW
    assert marks.last(STANDARD_LOG) == T0 + MINUTE


def test_marks_remember_a_window_per_log() -> None:
    marks = MeterEventMarks(since=T0)
    for i in range(MARKS_PER_LOG + 10):
        assert marks.judge(_event(T0 + i * MINUTE)) is Verdict.NEW
    assert len(marks.logs[STANDARD_LOG]) == MARKS_PER_LOG
    # Older than the whole (full) window: the log came in order, so it was seen.
    assert marks.judge(_event(T0 + 5 * MINUTE, 7)) is Verdict.DUPLICATE
    # ... unless the meter flags its time stamp unusable: then only the identity counts.
    assert marks.judge(_event(T0, 7, status=["invalid_value"])) is Verdict.NEW


def test_marks_untrusted_time_is_never_history() -> None:
    marks = MeterEventMarks(since=T0)
    old = datetime(2000, 1, 1, tzinfo=UTC)
    assert marks.judge(_event(old, 2, status=["invalid_value"])) is Verdict.NEW
    assert marks.judge(_event(old, 2, status=["invalid_value"])) is Verdict.DUPLICATE
    assert marks.judge(_event(old, 3, status=["doubtful_value"])) is Verdict.NEW


def test_marks_round_trip_and_refuse_garbage() -> None:
    marks = MeterEventMarks(since=T0)
    marks.judge(_event(T0 + MINUTE))
    marks.judge(_event(T0 + MINUTE, None, POWER_FAILURE_LOG))
    again = MeterEventMarks.from_dict(json.loads(json.dumps(marks.as_dict())))
    assert again == marks
    for garbage in (
        None,
        [],
        {"since": "yesterday", "logs": {}},
        {"since": T0.isoformat()},
        {"since": T0.isoformat(), "logs": {"x": []}},
        {"since": T0.isoformat(), "logs": {STANDARD_LOG: [["2026", 1]]}},
    ):
        with pytest.raises(InvalidPayload):
            MeterEventMarks.from_dict(garbage)


# --- clock drift sensor ----------------------------------------------------------------------


async def test_drift_sensor_from_the_clock_topic(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, fire: Any
) -> None:
    # Not before the agent is seen reading the meter's clock (a push meter has none).
    assert hass.states.get(DRIFT) is None
    await fire(CLOCK_TOPIC, clock_payload(), retain=True)
    await hass.async_block_till_done()
    state = hass.states.get(DRIFT)
    assert state is not None
    assert state.state == "17.0"
    assert state.attributes[ATTR_UNIT_OF_MEASUREMENT] == "s"
    assert state.attributes[ATTR_DEVICE_CLASS] == "duration"
    assert state.attributes[ATTR_STATE_CLASS] == "measurement"
    assert state.attributes["meter_time"] == "2026-03-10T12:00:17+00:00"
    assert state.attributes["read_at"] == "2026-03-10T12:00:00+00:00"
    assert state.attributes["status"] == []
    assert state.attributes["clock_base"] == "internal_crystal"
    assert state.attributes["daylight_saving_active"] is False
    assert state.attributes["sync"] == "shifted"
    assert state.attributes["sync_message"] == "shift_time by -17 s"
    entry = er.async_get(hass).async_get(DRIFT)
    assert entry.entity_category is EntityCategory.DIAGNOSTIC
    assert entry.translation_key == "clock_drift"
    assert entry.options["sensor"]["suggested_display_precision"] == 1
    assert entry.unique_id == f"{SERIAL}_clock_drift"
    # On the meter's device page.
    assert entry.device_id == device_of(hass, loaded_entry, SERIAL).id
    # A meter whose clock the agent reads also gets its event entity.
    assert hass.states.get(EVENTS).state == STATE_UNKNOWN


async def test_drift_unavailable_while_the_meters_time_is_unusable(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, fire: Any
) -> None:
    await fire(CLOCK_TOPIC, clock_payload(None, status=["invalid_value"]))
    await hass.async_block_till_done()
    assert hass.states.get(DRIFT).state == STATE_UNAVAILABLE
    await fire(CLOCK_TOPIC, clock_payload(-3.25, sync={"enabled": False}))
    state = hass.states.get(DRIFT)
    assert state.state == "-3.25"
    assert (state.attributes["sync"], state.attributes["sync_message"]) == ("disabled", None)
    # The meter goes offline, comes back.
    await fire(f"{BASE}/availability", "offline")
    assert hass.states.get(DRIFT).state == STATE_UNAVAILABLE
    await fire(f"{BASE}/availability", "online")
    assert hass.states.get(DRIFT).state == "-3.25"
    # The agent clears the meter's retained clock (the meter left its config).
    await fire(CLOCK_TOPIC, b"")
    assert hass.states.get(DRIFT).state == STATE_UNAVAILABLE


async def test_drift_sensor_exists_at_the_next_start_before_the_clock(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, fire: Any
) -> None:
    await fire(CLOCK_TOPIC, clock_payload())
    await hass.async_block_till_done()
    await restart(hass, loaded_entry, fire, clock=False)
    # Added at set-up from its registry entry; its value comes with the retained clock.
    assert hass.states.get(DRIFT).state == STATE_UNAVAILABLE
    assert hass.states.get(EVENTS) is not None
    await fire(CLOCK_TOPIC, clock_payload(2.5))
    assert hass.states.get(DRIFT).state == "2.5"


async def test_drift_sensor_when_the_clock_comes_after_the_events(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, fire: Any
) -> None:
    """The agent read the meter's event logs before its clock (`clock:` turned on later):
    the first clock still adds the drift sensor, without a restart."""
    await fire(EVENT_TOPIC, event_payload(T0, 1))
    assert hass.states.get(EVENTS) is not None
    assert hass.states.get(DRIFT) is None
    await fire(CLOCK_TOPIC, clock_payload(), retain=True)
    await hass.async_block_till_done()
    assert hass.states.get(DRIFT).state == "17.0"


@pytest.mark.parametrize(
    "payload",
    [
        "not json",
        "[17]",
        '{"ts": "2026-03-10T12:00:00Z"}',
        '{"ts": "2026-03-10T12:00:00Z", "drift": "17"}',
        '{"ts": "2026-03-10T12:00:00Z", "drift": true}',
        '{"ts": "2026-03-10T12:00:00Z", "drift": NaN}',
        '{"ts": "2026-03-10T12:00:00Z", "drift": Infinity}',
        '{"ts": "2026-03-10T12:00:00", "drift": 1.0}',
        '{"ts": "tomorrow", "drift": 1.0}',
        '{"ts": "2026-03-10T12:00:00Z", "drift": 1.0, "status": "invalid_value"}',
        '{"ts": "2026-03-10T12:00:00Z", "drift": 1.0, "status": ["Invalid Value"]}',
        '{"ts": "2026-03-10T12:00:00Z", "drift": 1.0, "sync": {"result": "set"}}',
        '{"ts": "2026-03-10T12:00:00Z", "drift": 1.0, "clock_base": 1}',
        '{"ts": "2026-03-10T12:00:00Z", "drift": 1.0, "daylight_saving": {"active": "no"}}',
        '{"ts": "2026-03-10T12:00:00Z", "drift": 1.0, "sync": {"enabled": true, "message": '
        + json.dumps("x" * 300)
        + "}}",
        b"\xff\xfe",
    ],
)
async def test_malformed_clock_is_ignored_and_logged_once(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    fire: Any,
    caplog: pytest.LogCaptureFixture,
    payload: str | bytes,
) -> None:
    await fire(CLOCK_TOPIC, clock_payload())
    await hass.async_block_till_done()
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="custom_components.dlms_edge"):
        for _ in range(3):
            await fire(CLOCK_TOPIC, payload)
        assert hass.states.get(DRIFT).state == "17.0"
        assert caplog.text.count(f"Ignoring malformed message on {CLOCK_TOPIC}") == 1
        await fire(CLOCK_TOPIC, clock_payload(5.0))
        assert hass.states.get(DRIFT).state == "5.0"
        assert f"Valid messages again on {CLOCK_TOPIC}" in caplog.text
    assert loaded_entry.state.recoverable


async def test_clock_of_a_meter_announced_later(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, fire: Any
) -> None:
    """A clock that arrives before the meter's info is kept and shown with the meter."""
    other = f"{PREFIX}/{AGENT}/2SAG1"
    await fire(f"{other}/clock", clock_payload(-1.0), retain=True)
    await fire(f"{other}/availability", "online", retain=True)
    await fire(
        f"{other}/info",
        info_payload(meter="2SAG1", serial="2SAG1", system_title=None, model="T-210D-b"),
        retain=True,
    )
    await hass.async_block_till_done()
    state = hass.states.get("sensor.sagemcom_t_210d_b_clock_drift")
    assert state is not None and state.state == "-1.0"


# --- event entity ------------------------------------------------------------------------------


async def test_new_event_triggers_the_entity(
    hass: HomeAssistant, watched: MockConfigEntry, fire: Any, freezer: FrozenDateTimeFactory
) -> None:
    bus = async_capture_events(hass, EVENT_METER_EVENT)
    await fire(CLOCK_TOPIC, clock_payload(agent_time=T0))
    await hass.async_block_till_done()
    state = hass.states.get(EVENTS)
    assert state.state == STATE_UNKNOWN
    assert state.attributes["event_types"] == list(EVENT_TYPES)
    # The agent reads the fraud log every 15 minutes: the cover came off 5 minutes ago.
    freezer.tick(10 * MINUTE)
    happened = T0 + 5 * MINUTE
    await fire(EVENT_TOPIC, event_payload(happened, 40, FRAUD_LOG))
    state = hass.states.get(EVENTS)
    assert state.state == fired_at(T0 + 10 * MINUTE)
    assert state.attributes["event_type"] == "terminal_cover_removed"
    assert state.attributes["code"] == 40
    assert state.attributes["log"] == FRAUD_LOG
    assert state.attributes["meter_time"] == happened.isoformat()
    assert state.attributes["text"] == "Terminal cover removed"
    assert state.attributes["clock_status"] == []
    assert state.attributes["raw"] == {
        "0.0.1.0.0.255": "2026-12-01T12:05:00Z",
        "0.0.96.11.1.255": 40,
    }
    registry_entry = er.async_get(hass).async_get(EVENTS)
    assert registry_entry.device_id == device_of(hass, watched, SERIAL).id
    assert registry_entry.translation_key == "events"
    # The bus event, for the logbook and automations: at the meter's time.
    [fired] = bus
    assert fired.time_fired == happened
    assert fired.data == {
        "log": FRAUD_LOG,
        "code": 40,
        "name": "terminal_cover_removed",
        "text": "Terminal cover removed",
        "meter_time": happened.isoformat(),
        "clock_status": [],
        "raw": {"0.0.1.0.0.255": "2026-12-01T12:05:00Z", "0.0.96.11.1.255": 40},
        "history": False,
        "device_id": registry_entry.device_id,
        "entity_id": EVENTS,
    }


async def test_backfill_goes_to_the_logbook_only(
    hass: HomeAssistant, watched: MockConfigEntry, fire: Any, freezer: FrozenDateTimeFactory
) -> None:
    """The agent's first read of a log publishes the last day's events, oldest first:
    history, not something that just happened."""
    bus = async_capture_events(hass, EVENT_METER_EVENT)
    changes = track(hass, EVENTS)
    backfill = [
        (T0 - timedelta(hours=23), 1),
        (T0 - timedelta(hours=22, minutes=59), 2),
        (T0 - timedelta(hours=2), 40),
        (T0 - timedelta(hours=1), 41),
    ]
    for ts, code in backfill:
        await fire(EVENT_TOPIC, event_payload(ts, code, FRAUD_LOG if code >= 40 else STANDARD_LOG))
    # The entity exists (the first event made it appear) but did not fire.
    assert hass.states.get(EVENTS).state == STATE_UNKNOWN
    assert [event.data["history"] for event in bus] == [True] * 4
    assert [event.time_fired for event in bus] == [ts for ts, _code in backfill]
    freezer.tick(20 * MINUTE)
    await fire(EVENT_TOPIC, event_payload(T0 + 10 * MINUTE, 1))
    assert [state.attributes["event_type"] for state in changes if state.state != "unknown"] == [
        "power_down"
    ]
    assert bus[-1].data["history"] is False


async def test_events_of_a_meter_without_clock(
    hass: HomeAssistant,
    mqtt_broker: Any,
    freezer: FrozenDateTimeFactory,
    config_entry: MockConfigEntry,
    fire: Any,
) -> None:
    """Without a clock reading the watch starts with the first event, which is history
    (the agent's first read of its logs); the entity appears with it and gets the next."""
    freezer.move_to(T0)
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    await online(fire, clock=False)
    freezer.tick(timedelta(days=3))  # the agent is upgraded to read events days later
    now = T0 + timedelta(days=3)
    bus = async_capture_events(hass, EVENT_METER_EVENT)
    assert hass.states.get(EVENTS) is None
    await fire(EVENT_TOPIC, event_payload(now - timedelta(hours=10), 1))
    await fire(EVENT_TOPIC, event_payload(now - timedelta(hours=9), 2))
    await hass.async_block_till_done()
    assert hass.states.get(EVENTS).state == STATE_UNKNOWN
    freezer.tick(15 * MINUTE)
    await fire(EVENT_TOPIC, event_payload(now + 5 * MINUTE, 40, FRAUD_LOG))
    state = hass.states.get(EVENTS)
    assert state.state == fired_at(now + 15 * MINUTE)
    assert state.attributes["event_type"] == "terminal_cover_removed"
    assert [event.data["history"] for event in bus] == [True, True, False]


async def test_a_new_event_right_after_the_first_clock_reaches_the_entity(
    hass: HomeAssistant, watched: MockConfigEntry, fire: Any, freezer: FrozenDateTimeFactory
) -> None:
    """The entity is added after the first clock message; an event in the same burst,
    before it is added, is handed to it (when the addition had to wait, the event was
    kept for it)."""
    er.async_get(hass).async_remove(EVENTS)  # as if it had never been added
    await restart(hass, watched, fire, clock=False)
    assert hass.states.get(EVENTS) is None
    freezer.tick(10 * MINUTE)
    meter = watched.runtime_data.meter_by_id(METER)
    meter.handle("clock", clock_payload(agent_time=T0 + 10 * MINUTE))
    meter.handle("event", event_payload(T0 + 9 * MINUTE, 2))
    await hass.async_block_till_done()
    assert hass.states.get(EVENTS).attributes["event_type"] == "power_up"
    # The same with the addition waiting: the event is kept until the entity listens.
    er.async_get(hass).async_remove(EVENTS)
    await restart(hass, watched, fire, clock=False)
    meter = watched.runtime_data.meter_by_id(METER)
    meter.unclaimed_events.append(MeterEvent.from_payload(event_payload(T0 + 9 * MINUTE, 1)))
    meter.handle("clock", clock_payload(agent_time=T0 + 10 * MINUTE))
    await hass.async_block_till_done()
    assert not meter.unclaimed_events
    assert hass.states.get(EVENTS).attributes["event_type"] == "power_down"


async def test_duplicates_fire_nothing(
    hass: HomeAssistant, watched: MockConfigEntry, fire: Any, freezer: FrozenDateTimeFactory
) -> None:
    await fire(CLOCK_TOPIC, clock_payload(agent_time=T0))
    await hass.async_block_till_done()
    bus = async_capture_events(hass, EVENT_METER_EVENT)
    changes = track(hass, EVENTS)
    freezer.tick(15 * MINUTE)
    batch = [event_payload(T0 + i * MINUTE, code) for i, code in ((1, 1), (2, 2), (2, 6))]
    for payload in batch:
        await fire(EVENT_TOPIC, payload)
    # QoS 1 delivers the batch again after a broker restart.
    for payload in batch:
        await fire(EVENT_TOPIC, payload)
    assert len(bus) == 3
    assert [state.attributes["event_type"] for state in changes] == [
        "power_down",
        "power_up",
        "clock_invalid",
    ]


async def test_events_after_a_restart_fire_once(
    hass: HomeAssistant, watched: MockConfigEntry, fire: Any, freezer: FrozenDateTimeFactory
) -> None:
    """Home Assistant restarts, then the agent (its state dir lost) reads its logs again
    from a day back: what was seen before fires nothing, what is new fires once."""
    freezer.tick(30 * MINUTE)
    seen = [
        event_payload(T0 + 5 * MINUTE, 40, FRAUD_LOG),
        event_payload(T0 + 6 * MINUTE, 41, FRAUD_LOG),
    ]
    for payload in seen:
        await fire(EVENT_TOPIC, payload)
    before = hass.states.get(EVENTS)
    assert before.attributes["event_type"] == "terminal_cover_closed"
    freezer.tick(MINUTE)
    async_fire_time_changed(hass)  # the marks are written
    await hass.async_block_till_done()

    await restart(hass, watched, fire)
    restored = hass.states.get(EVENTS)
    assert (restored.state, restored.attributes["event_type"]) == (
        before.state,
        "terminal_cover_closed",
    )
    assert restored.attributes["meter_time"] == (T0 + 6 * MINUTE).isoformat()
    bus = async_capture_events(hass, EVENT_METER_EVENT)
    changes = track(hass, EVENTS)
    freezer.tick(10 * MINUTE)
    for payload in [event_payload(T0 - timedelta(hours=3), 1), *seen]:
        await fire(EVENT_TOPIC, payload)
    assert changes == []
    assert [event.data["history"] for event in bus] == [True]  # the old one: logbook only
    await fire(EVENT_TOPIC, event_payload(T0 + 35 * MINUTE, 44, FRAUD_LOG))
    assert [state.attributes["event_type"] for state in changes] == ["meter_cover_removed"]


async def test_marks_are_kept_in_storage(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    mqtt_broker: Any,
    freezer: FrozenDateTimeFactory,
    config_entry: MockConfigEntry,
    fire: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """What an earlier run saw comes from Home Assistant's storage; entries and meters
    that are gone are dropped, an unusable record starts afresh."""
    freezer.move_to(T0)
    since = T0 - timedelta(days=30)
    hass_storage[EVENT_MARKS_STORAGE_KEY] = {
        "version": 1,
        "minor_version": 1,
        "key": EVENT_MARKS_STORAGE_KEY,
        "data": {
            "entries": {
                config_entry.entry_id: {
                    SERIAL: {
                        "since": since.isoformat(),
                        "logs": {FRAUD_LOG: [[(T0 - MINUTE).isoformat(), 40]]},
                    },
                    "GONE-METER": {"since": since.isoformat(), "logs": {}},
                    "BROKEN": {"since": "never"},
                },
                "an-entry-that-was-deleted": {SERIAL: {"since": since.isoformat(), "logs": {}}},
            }
        },
    }
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    assert "Starting the events of meter BROKEN afresh" in caplog.text
    await online(fire)
    bus = async_capture_events(hass, EVENT_METER_EVENT)
    # Seen by the earlier run: nothing. Unseen, after `since` (a day ago): new.
    await fire(EVENT_TOPIC, event_payload(T0 - MINUTE, 40, FRAUD_LOG))
    await fire(EVENT_TOPIC, event_payload(T0 - timedelta(days=1), 41, FRAUD_LOG))
    assert [(event.data["code"], event.data["history"]) for event in bus] == [(41, False)]
    assert hass.states.get(EVENTS).attributes["event_type"] == "terminal_cover_closed"
    freezer.tick(MINUTE)
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    stored = hass_storage[EVENT_MARKS_STORAGE_KEY]["data"]["entries"]
    assert list(stored) == [config_entry.entry_id]
    assert list(stored[config_entry.entry_id]) == [SERIAL]
    assert stored[config_entry.entry_id][SERIAL]["since"] == since.isoformat()
    assert stored[config_entry.entry_id][SERIAL]["logs"][FRAUD_LOG] == [
        [(T0 - timedelta(days=1)).isoformat(), 41],
        [(T0 - MINUTE).isoformat(), 40],
    ]


async def test_removing_the_entry_drops_its_marks(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    watched: MockConfigEntry,
    fire: Any,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A deleted agent entry leaves nothing of its meters' events in storage."""
    freezer.tick(10 * MINUTE)
    await fire(EVENT_TOPIC, event_payload(T0 + MINUTE, 40, FRAUD_LOG))
    freezer.tick(MINUTE)
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    assert list(hass_storage[EVENT_MARKS_STORAGE_KEY]["data"]["entries"]) == [watched.entry_id]

    assert await hass.config_entries.async_remove(watched.entry_id)
    await hass.async_block_till_done()
    freezer.tick(MINUTE)
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    assert hass_storage[EVENT_MARKS_STORAGE_KEY]["data"]["entries"] == {}


async def test_unknown_codes_and_names(
    hass: HomeAssistant, watched: MockConfigEntry, fire: Any, freezer: FrozenDateTimeFactory
) -> None:
    freezer.tick(10 * MINUTE)
    await fire(EVENT_TOPIC, event_payload(T0 + MINUTE, 231))
    state = hass.states.get(EVENTS)
    assert (state.attributes["event_type"], state.attributes["code"]) == ("unknown", 231)
    assert state.attributes["text"].startswith("Event code 231 (")
    # A name from a newer agent's table: the entity shows it as unknown, with its text.
    newer = json.loads(event_payload(T0 + 2 * MINUTE, 90))
    newer |= {"name": "phase_sequence_reversal", "text": "Phase sequence reversal"}
    await fire(EVENT_TOPIC, json.dumps(newer))
    state = hass.states.get(EVENTS)
    assert (state.attributes["event_type"], state.attributes["text"]) == (
        "unknown",
        "Phase sequence reversal",
    )
    # A power failure log row: no code.
    await fire(
        EVENT_TOPIC,
        event_payload(T0 + 3 * MINUTE, None, POWER_FAILURE_LOG, raw={"0.0.96.7.19.255": 5400}),
    )
    state = hass.states.get(EVENTS)
    assert state.attributes["event_type"] == "long_power_failure"
    assert state.attributes["code"] is None
    assert state.attributes["raw"]["0.0.96.7.19.255"] == 5400


async def test_time_stamps_the_meter_distrusts_or_from_the_future(
    hass: HomeAssistant, watched: MockConfigEntry, fire: Any, freezer: FrozenDateTimeFactory
) -> None:
    """A meter that lost its clock logs in 2000 with `invalid_value`: new, at Home
    Assistant's time. A time stamp ahead of Home Assistant's is logged now, not later."""
    bus = async_capture_events(hass, EVENT_METER_EVENT)
    freezer.tick(5 * MINUTE)
    now = T0 + 5 * MINUTE
    await fire(
        EVENT_TOPIC, event_payload(datetime(2000, 1, 1, tzinfo=UTC), 2, status=["invalid_value"])
    )
    state = hass.states.get(EVENTS)
    assert state.state == fired_at(now)
    assert state.attributes["clock_status"] == ["invalid_value"]
    await fire(EVENT_TOPIC, event_payload(now + timedelta(hours=2), 1))
    assert [event.time_fired for event in bus] == [now, now]
    assert [event.data["history"] for event in bus] == [False, False]


async def test_event_entity_availability_follows_the_meter(
    hass: HomeAssistant, watched: MockConfigEntry, fire: Any
) -> None:
    await fire(CLOCK_TOPIC, clock_payload(agent_time=T0))
    await hass.async_block_till_done()
    await fire(f"{BASE}/availability", "offline")
    assert hass.states.get(EVENTS).state == STATE_UNAVAILABLE
    await fire(f"{BASE}/availability", "online")
    assert hass.states.get(EVENTS).state == STATE_UNKNOWN


def _event_json(**changes: Any) -> str:
    return json.dumps(json.loads(event_payload(T0 + MINUTE, 40, FRAUD_LOG)) | changes)


@pytest.mark.parametrize(
    "payload",
    [
        "not json",
        '"power_down"',
        json.dumps({"log": FRAUD_LOG, "code": 40, "name": "terminal_cover_removed"}),
        _event_json(ts="2026-12-01T12:01:00"),
        _event_json(ts=1764590460),
        _event_json(log="0.0.99.98.1"),
        _event_json(code="40"),
        _event_json(code=True),
        _event_json(code=4.0),
        _event_json(name="Terminal cover removed"),
        _event_json(name=None),
        _event_json(text="x" * 256),
        _event_json(text="line\nbreak"),
        _event_json(status="invalid_value"),
        _event_json(raw=[1, 2]),
        _event_json(raw={"0.0.1.0.0.255": {"nested": 1}}),
        _event_json(raw={f"col{i}": "x" * 100 for i in range(30)}),
        b"\xff\xfe",
    ],
)
async def test_malformed_event_is_ignored_and_logged_once(
    hass: HomeAssistant,
    watched: MockConfigEntry,
    fire: Any,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
    payload: str | bytes,
) -> None:
    await fire(CLOCK_TOPIC, clock_payload(agent_time=T0))
    await hass.async_block_till_done()
    bus = async_capture_events(hass, EVENT_METER_EVENT)
    freezer.tick(5 * MINUTE)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="custom_components.dlms_edge"):
        for _ in range(3):
            await fire(EVENT_TOPIC, payload)
        assert bus == []
        assert hass.states.get(EVENTS).state == STATE_UNKNOWN
        assert caplog.text.count(f"Ignoring malformed message on {EVENT_TOPIC}") == 1
        await fire(EVENT_TOPIC, event_payload(T0 + 2 * MINUTE, 40, FRAUD_LOG))
        assert hass.states.get(EVENTS).attributes["event_type"] == "terminal_cover_removed"
        assert f"Valid messages again on {EVENT_TOPIC}" in caplog.text
    assert watched.state.recoverable


async def test_automation_example_of_the_docs(
    hass: HomeAssistant, watched: MockConfigEntry, fire: Any, freezer: FrozenDateTimeFactory
) -> None:
    """docs/home-assistant.md's automation on a removed terminal cover runs once per new
    removal: not for the backfill, not for other events, not when the meter or Home
    Assistant come back."""
    docs = (ROOT / "docs" / "home-assistant.md").read_text()
    [block] = [
        b
        for b in re.findall(r"```yaml\n(.*?)```", docs, re.DOTALL)
        if "terminal_cover_removed" in b
    ]
    automations = yaml.safe_load(block)["automation"]
    calls = async_mock_service(hass, "notify", "notify")
    assert await async_setup_component(hass, "automation", {"automation": automations})
    await hass.async_block_till_done()

    await fire(EVENT_TOPIC, event_payload(T0 - timedelta(hours=5), 40, FRAUD_LOG))  # backfill
    freezer.tick(10 * MINUTE)
    await fire(EVENT_TOPIC, event_payload(T0 + MINUTE, 1))
    assert calls == []
    # (Home Assistant 2025.4 gives two events in one millisecond the same state.)
    freezer.tick(1)
    await fire(EVENT_TOPIC, event_payload(T0 + 2 * MINUTE, 40, FRAUD_LOG))
    await hass.async_block_till_done()
    assert len(calls) == 1
    assert calls[0].data["message"] == (
        "Terminal cover removed on the electricity meter at 2026-12-01 04:02:00-08:00."
    )
    await fire(f"{BASE}/availability", "offline")
    await fire(f"{BASE}/availability", "online")
    await restart(hass, watched, fire)
    await hass.async_block_till_done()
    assert len(calls) == 1
    # The next removal, and the same again (a second removal right after closing).
    freezer.tick(10 * MINUTE)
    await fire(EVENT_TOPIC, event_payload(T0 + 15 * MINUTE, 40, FRAUD_LOG))
    freezer.tick(1)
    await fire(EVENT_TOPIC, event_payload(T0 + 16 * MINUTE, 40, FRAUD_LOG))
    await hass.async_block_till_done()
    assert len(calls) == 3


async def test_diagnostics_show_clock_and_events_without_identity(
    hass: HomeAssistant, watched: MockConfigEntry, fire: Any, freezer: FrozenDateTimeFactory
) -> None:
    await fire(CLOCK_TOPIC, clock_payload(agent_time=T0))
    freezer.tick(10 * MINUTE)
    # An M-Bus event log may capture the M-Bus device's identification.
    await fire(
        EVENT_TOPIC,
        event_payload(T0 + MINUTE, 100, "0.0.99.98.3.255", raw={"0.1.96.1.0.255": SERIAL}),
    )
    await fire(EVENT_TOPIC, event_payload(T0 + MINUTE, 100, "0.0.99.98.3.255"))  # again
    diagnostics = await async_get_config_entry_diagnostics(hass, watched)
    text = json.dumps(diagnostics)
    for secret in (SERIAL, SYSTEM_TITLE):
        assert secret not in text
    [meter] = diagnostics["state"]["meters"]
    assert meter["clock"]["drift"] == 17.0
    assert meter["clock"]["sync"]["result"] == "shifted"
    assert meter["events"] == {
        "watched_since": T0.isoformat(),
        "last_seen_per_log": {"0.0.99.98.3.255": (T0 + MINUTE).isoformat()},
        "received": {"new": 1, "duplicate": 1},
        "last": {
            "ts": (T0 + MINUTE).isoformat(),
            "log": "0.0.99.98.3.255",
            "code": 100,
            "name": "m_bus_1_communication_error",
        },
    }
