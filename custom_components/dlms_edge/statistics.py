"""Long-term statistics from the meters' load profiles, for the Energy dashboard.

The agent publishes each row of a meter's load profile once, in time order, and after an
outage the rows it missed (`<prefix>/<agent>/<meter>/profile/<obis>`, QoS 1, not
retained; docs/mqtt-contract.md "Profile rows"). Each cumulative energy register in a
row (value group D = 8, Blue Book 7.5.3: active import/export, tariffs, reactive) feeds
an *external* statistic `dlms_edge:<meter>_<obis>`, hourly, in kWh or kvarh.

Why external statistics and not corrections of the live sensor's own statistics
(docs/home-assistant.md, "Energy dashboard"): the recorder compiles the sensor's hours
from its states on its own schedule, so imported corrections would race with it and a
late hour would have to rewrite every later `sum`; the profile series is instead owned
by this module alone, written from the meter's own record and nothing else. The live
sensor keeps its states and statistics (history, automations); the Energy dashboard uses
one of the two per register, so nothing is counted twice.

Rows published while Home Assistant was not listening (stopped, restarting, its broker
session lost, or before the agent's entry existed) are not retained by the broker. The
integration asks the agent for them again (`<prefix>/<agent>/<meter>/replay`,
docs/mqtt-contract.md "Replay"): for each meter that lists profiles, once per start and
per reconnection of Home Assistant to the broker, as soon as the meter's info is in and
the agent is online (its session is clean: a request it does not hear is lost), from the
end of the newest hour stored for the meter (all the agent keeps when none is); and
whenever a profile's rows jump by more than their usual spacing. Replayed rows fill the
hours in between with the meter's own values: the same rows give the same hours.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final, cast

from homeassistant.components import mqtt
from homeassistant.components.recorder.models import (
    StatisticData,
    StatisticMeanType,
    StatisticMetaData,
)
from homeassistant.components.recorder.statistics import (
    STATISTIC_UNIT_TO_UNIT_CONVERTER,
    async_add_external_statistics,
    get_last_statistics,
    get_metadata,
)
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers.recorder import get_instance
from homeassistant.util import dt as dt_util

from .const import DOMAIN
from .coordinator import DlmsEdgeAgent, DlmsEdgeMeter
from .models import OBIS_PATTERN, InvalidPayload, parse_time
from .profile_hours import HOUR, HourlySeries, HourStat

_LOGGER = logging.getLogger(__name__)

RECORDER: Final = "recorder"

# Blue Book unit symbols of cumulative energy registers -> (statistic unit, factor).
# Reactive energy stays in kvarh: Home Assistant converts it only within its own class.
ENERGY_UNITS: Final[dict[str, tuple[str, float]]] = {
    "Wh": ("kWh", 1e-3),
    "kWh": ("kWh", 1.0),
    "MWh": ("kWh", 1e3),
    "varh": ("kvarh", 1e-3),
    "kvarh": ("kvarh", 1.0),
    "Mvarh": ("kvarh", 1e3),
}
# Value group D = 8, "time integral 1": the register counts from its start to now. Other
# integrals (D = 9: since the billing period; D = 29: per capture period) are not
# cumulative, their profile rows cannot become a `sum`.
_CUMULATIVE_D: Final = "8"
_NOT_ID = re.compile(r"[^a-z0-9]+")
_OBIS_ID: Final = re.compile(r"(?:_\d{1,3}){6}")  # an OBIS code in a statistic id
# A jump larger than this many times the rows' usual spacing is a hole to ask for again.
GAP_FACTOR: Final = 1.5

# `unit_class` joined the statistic metadata in Home Assistant 2025.11 (required from
# 2026.11; from then on the Energy dashboard's picker takes the unit class from the
# metadata, no longer from the unit). Before that the metadata had no such key and the
# recorder refuses unknown keys, so the key is sent only where the release knows it.
_HAS_UNIT_CLASS: Final = "unit_class" in (
    StatisticMetaData.__required_keys__ | StatisticMetaData.__optional_keys__
)


def statistic_id(meter_key: str, obis: str) -> str:
    """`dlms_edge:<meter identity>_<obis with _>`: lower case, digits and single `_`."""
    object_id = _NOT_ID.sub("_", f"{meter_key}_{obis}".lower()).strip("_")
    return f"{DOMAIN}:{object_id}"


def meter_statistic_ids(meter_key: str, statistic_ids: Any) -> list[str]:
    """The ids among `statistic_ids` of the meter `meter_key`'s registers (not those of
    another meter whose key only starts like it)."""
    prefix = statistic_id(meter_key, "")
    return [
        sid
        for sid in statistic_ids
        if sid.startswith(prefix) and _OBIS_ID.fullmatch(sid[len(prefix) :])
    ]


def is_cumulative_energy(obis: str) -> bool:
    """An electricity register that counts from its start (Blue Book 7.5.3, D = 8)."""
    groups = obis.split(".")
    return len(groups) == 6 and groups[0] == "1" and groups[3] == _CUMULATIVE_D


def statistic_metadata(meter: DlmsEdgeMeter, obis: str, unit: str) -> StatisticMetaData:
    """Metadata of the profile statistic of `obis` on `meter`, in `unit` (kWh, kvarh)."""
    announced = next((obj for obj in meter.info.objects if obj.obis == obis), None)
    what = announced.name if announced and announced.name else f"OBIS {obis}"
    metadata: dict[str, Any] = {
        "has_sum": True,
        "mean_type": StatisticMeanType.NONE,
        "name": f"{meter.name} {what} (load profile)",
        "source": DOMAIN,
        "statistic_id": statistic_id(meter.key, obis),
        "unit_of_measurement": unit,
    }
    if _HAS_UNIT_CLASS:
        converter = STATISTIC_UNIT_TO_UNIT_CONVERTER.get(unit)
        metadata["unit_class"] = converter.UNIT_CLASS if converter else None
    return cast(StatisticMetaData, metadata)


@dataclass(frozen=True, slots=True)
class ProfileRow:
    """One row of `<prefix>/<agent>/<meter>/profile/<obis>` (docs/mqtt-contract.md)."""

    ts: datetime
    values: dict[str, float]  # OBIS -> number; null and non-numeric values left out
    units: dict[str, str]  # OBIS -> unit symbol; null units left out

    @classmethod
    def from_payload(cls, payload: str | bytes | bytearray) -> ProfileRow:
        try:
            data = json.loads(payload)
        except (ValueError, UnicodeDecodeError) as err:
            raise InvalidPayload(f"not JSON ({err})") from None
        if not isinstance(data, dict):
            raise InvalidPayload(f"expected a JSON object, got {type(data).__name__}")
        raw_ts, values, units = data.get("ts"), data.get("values"), data.get("units", {})
        ts = parse_time(raw_ts) if isinstance(raw_ts, str) else None
        if ts is None or ts.tzinfo is None:
            raise InvalidPayload(f"expected 'ts' as ISO 8601 UTC, got {raw_ts!r:.40}")
        if not isinstance(values, dict) or not isinstance(units, dict):
            raise InvalidPayload("expected 'values' and 'units' as JSON objects")
        numbers = {
            obis: float(value)
            for obis, value in values.items()
            if isinstance(obis, str)
            and OBIS_PATTERN.match(obis)
            and isinstance(value, int | float)
            and not isinstance(value, bool)
            and math.isfinite(value)
        }
        named = {obis: unit for obis, unit in units.items() if isinstance(unit, str)}
        return cls(ts.astimezone(UTC), numbers, named)


@dataclass(slots=True)
class _ProfileFlow:
    """The rows of one profile topic as they come: the newest, their usual spacing."""

    newest: datetime | None = None
    spacing: timedelta | None = None

    def gap_before(self, ts: datetime) -> datetime | None:
        """Take a row; the start of the hole before it (rows missed), if any."""
        newest, self.newest = self.newest, max(ts, self.newest or ts)
        if newest is None or ts <= newest:
            return None
        step = ts - newest
        if self.spacing is not None and step > self.spacing * GAP_FACTOR:
            return newest
        self.spacing = step if self.spacing is None else min(self.spacing, step)
        return None


@dataclass(slots=True)
class _Statistic:
    """One register's series: loaded from the recorder first, then fed row by row."""

    metadata: StatisticMetaData
    series: HourlySeries = field(default_factory=HourlySeries)
    loaded: bool = False
    waiting: list[tuple[datetime, float]] = field(default_factory=list)
    # Hours computed but not yet handed to the recorder, by start.
    unsent: dict[datetime, HourStat] = field(default_factory=dict)


class ProfileStatistics:
    """Feeds the profile rows of one agent's meters into hourly external statistics."""

    def __init__(self, hass: HomeAssistant, agent: DlmsEdgeAgent) -> None:
        self.hass = hass
        self.agent = agent
        self._statistics: dict[str, _Statistic] = {}
        self._flush_handle: asyncio.Handle | None = None
        self._flows: dict[str, _ProfileFlow] = {}  # profile topic -> its rows so far
        self._asked: set[tuple[str, str, datetime]] = set()  # holes asked for: meter, profile, from
        self._greeted: set[str] = set()  # meters asked for what they missed at this start

    async def async_start(self) -> CALLBACK_TYPE:
        """Subscribe to the rows of every meter of the agent; return what stops it."""
        unsubscribe = await mqtt.async_subscribe(
            self.hass,
            f"{self.agent.prefix}/{self.agent.agent}/+/profile/+",
            self._on_row,
            qos=1,
            encoding=None,
        )
        # Asked when a meter's info arrives (retained: at once after subscribing) or the
        # agent comes online, whichever is last; never from the meters stored in the
        # entry alone: the agent may have dropped them.
        stop_listening = self.agent.async_add_meter_listener(self._on_meter)
        stop_following = self.agent.async_add_status_listener(self._on_agent_status)
        # Rows published while Home Assistant's own broker connection was down are lost
        # to it (a clean session): after a reconnection, ask again as at a start.
        stop_watching = mqtt.async_subscribe_connection_status(self.hass, self._on_connection)

        @callback
        def _stop() -> None:
            stop_watching()
            stop_following()
            stop_listening()
            unsubscribe()
            self._flush()

        return _stop

    @callback
    def _on_connection(self, connected: bool) -> None:
        if not connected:
            self._greeted.clear()

    @callback
    def _on_agent_status(self) -> None:
        for meter in list(self.agent.meters.values()):
            self._on_meter(meter)

    @callback
    def _on_meter(self, meter: DlmsEdgeMeter) -> None:
        """Once per start, when the meter's info is in and the agent online (whichever
        comes last), ask for the rows missed meanwhile."""
        if (
            meter.info.profiles
            and meter.key not in self._greeted
            and self.agent.online
            and self.agent.announced(meter)
        ):
            self._greeted.add(meter.key)
            self.agent.entry.async_create_background_task(
                self.hass,
                self._async_ask_missed(meter),
                f"{DOMAIN} ask rows of {meter.name} again",
            )

    async def _async_ask_missed(self, meter: DlmsEdgeMeter) -> None:
        """Ask for each profile of `meter` from the end of its newest stored hour (none
        stored: from as far back as the agent keeps)."""
        recorder = get_instance(self.hass)
        await recorder.async_block_till_done()
        known = await recorder.async_add_executor_job(
            lambda: get_metadata(self.hass, statistic_source=DOMAIN)
        )
        ends: list[datetime] = []
        for sid in meter_statistic_ids(meter.key, known):
            stored = await recorder.async_add_executor_job(
                get_last_statistics, self.hass, 1, sid, False, {"state"}
            )
            if rows := stored.get(sid):
                ends.append(dt_util.utc_from_timestamp(rows[0]["start"]) + HOUR)
        start = min(ends) if ends else None
        for profile in meter.info.profiles:
            self._ask(meter, profile, start)

    @callback
    def _ask_once(self, meter: DlmsEdgeMeter, profile: str, start: datetime) -> None:
        """Ask for the rows after a hole in `profile`'s rows, once per hole."""
        if (meter.key, profile, start) not in self._asked:
            self._asked.add((meter.key, profile, start))
            self._ask(meter, profile, start)

    @callback
    def _ask(self, meter: DlmsEdgeMeter, profile: str, start: datetime | None) -> None:
        """Ask the agent for the rows of `profile` after `start` again."""
        when = "as far back as it keeps" if start is None else f"after {start.isoformat()}"
        _LOGGER.info(
            "Asking agent %s for the rows of profile %s of %s %s",
            self.agent.agent,
            profile,
            meter.name,
            when,
        )
        payload = json.dumps(
            {"profile": profile, "from": None if start is None else start.isoformat()}
        )
        self.agent.entry.async_create_background_task(
            self.hass,
            mqtt.async_publish(self.hass, f"{meter.base_topic}/replay", payload, 1, False),
            f"{DOMAIN} replay request {meter.name} {profile}",
        )

    @callback
    def _on_row(self, msg: mqtt.ReceiveMessage) -> None:
        meter_id = msg.topic[len(f"{self.agent.prefix}/{self.agent.agent}/") :].split("/")[0]
        if (meter := self.agent.meter_by_id(meter_id)) is None:
            _LOGGER.debug("Profile row of unknown meter %s ignored", meter_id)
            return
        try:
            row = ProfileRow.from_payload(msg.payload)
        except InvalidPayload as err:
            self.agent.report_malformed(msg.topic, str(err))
            return
        profile = msg.topic.rsplit("/", 1)[-1]
        flow = self._flows.setdefault(msg.topic, _ProfileFlow())
        if (hole := flow.gap_before(row.ts)) is not None:
            self._ask_once(meter, profile, hole)
        announced = {obj.obis: obj.unit for obj in meter.info.objects}
        for obis, value in row.values.items():
            unit = row.units.get(obis) or announced.get(obis)
            if not is_cumulative_energy(obis) or unit not in ENERGY_UNITS:
                continue
            statistic_unit, factor = ENERGY_UNITS[unit]
            self._add(meter, obis, statistic_unit, row.ts, value * factor)

    @callback
    def _add(self, meter: DlmsEdgeMeter, obis: str, unit: str, ts: datetime, value: float) -> None:
        key = statistic_id(meter.key, obis)
        if (statistic := self._statistics.get(key)) is None:
            statistic = _Statistic(statistic_metadata(meter, obis, unit))
            self._statistics[key] = statistic
            self.agent.entry.async_create_background_task(
                self.hass, self._async_load(statistic), f"{DOMAIN} load statistic {key}"
            )
        elif statistic.metadata["unit_of_measurement"] != unit:
            _LOGGER.warning(
                "Profile row of %s on %s in %s, its statistic is in %s: ignored",
                obis,
                meter.name,
                unit,
                statistic.metadata["unit_of_measurement"],
            )
            return
        if not statistic.loaded:
            statistic.waiting.append((ts, value))
            return
        self._import(statistic, statistic.series.add(ts, value))

    async def _async_load(self, statistic: _Statistic) -> None:
        """Continue the statistic from its newest stored hour, then take waiting rows."""
        key = statistic.metadata["statistic_id"]
        recorder = get_instance(self.hass)
        # Hours queued before (by this entry before a reload) are committed first.
        await recorder.async_block_till_done()
        stored = await recorder.async_add_executor_job(
            get_last_statistics, self.hass, 1, key, False, {"state", "sum"}
        )
        if rows := stored.get(key):
            last = rows[0]
            state, total = last.get("state"), last.get("sum")
            if state is not None and total is not None:
                start = dt_util.utc_from_timestamp(last["start"])
                statistic.series.continue_from(HourStat(start, state, total))
        statistic.loaded = True
        for ts, value in statistic.waiting:
            self._import(statistic, statistic.series.add(ts, value))
        statistic.waiting.clear()

    @callback
    def _import(self, statistic: _Statistic, hours: list[HourStat]) -> None:
        """Hand `hours` to the recorder with the others of this turn of the event loop.

        A backfill brings hundreds of rows at once (MQTT reads many per turn): one
        recorder job per statistic and burst, not one per row, keeps its queue short.
        """
        if not hours:
            return
        statistic.unsent.update((hour.start, hour) for hour in hours)
        if self._flush_handle is None:
            self._flush_handle = self.hass.loop.call_soon(self._flush)

    @callback
    def _flush(self) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        for statistic in self._statistics.values():
            if not statistic.unsent:
                continue
            data = [
                StatisticData(start=h.start, state=h.state, sum=h.sum)
                for h in sorted(statistic.unsent.values(), key=lambda hour: hour.start)
            ]
            statistic.unsent.clear()
            # The recorder may adjust the metadata it is given: hand it a copy.
            async_add_external_statistics(
                self.hass, cast(StatisticMetaData, dict(statistic.metadata)), data
            )


async def async_setup_statistics(hass: HomeAssistant, agent: DlmsEdgeAgent) -> CALLBACK_TYPE:
    """Start the profile statistics of `agent`; return what stops them.

    Without the recorder (not in the configuration) there is nowhere to keep them.
    """
    if RECORDER not in hass.config.components:
        _LOGGER.debug("No recorder: load-profile statistics of %s are off", agent.agent)
        return lambda: None
    return await ProfileStatistics(hass, agent).async_start()
