"""Time stamps of captured values: an extended register's value carries its capture time.

A maximum demand register (1.0.1.6.0.255 "maximum demand import, current billing period",
and its peers x.x.C.6.x.x) is an extended register (class 4, Blue Book 4.3.4): its
``value`` is the largest average power of one demand period since the billing period
began, and ``capture_time`` (attribute 5) says when that peak happened. The value topic's
``ts`` is then that capture time, not the time of the read: the peak of the month
happened when the meter says (power-based grid tariffs bill the kW and its moment).

:func:`stamp_capture_times` reads the capture times of the class 4 readings of a poll in
one GET-with-list and puts them into the readings. A capture time the meter refuses or
leaves "not specified" (no peak yet in this billing period) keeps the read time.

A meter without such a register still has its load profile: :class:`ProfilePeak`
computes the same figure from the profile rows the agent publishes -- the energy import
gained in each 15-minute capture period, times four, the largest of the calendar month
(in the profile's ``timezone``, else the agent host's, the meter's neighbour) -- and the
agent publishes it on the register's topic, 1.0.1.6.0.255, with the end of that period as
``ts``, unless the meter's own register is published. The energy import is the total
(1.0.1.8.0.255) when the profile captures it, else the sum of the import tariff registers
it captures (1.0.1.8.1.255, 1.0.1.8.2.255, ...: OBIS value group E 1..63 are the tariff
rates, IEC 62056-61), as profiles of meters billed by tariff often hold. Its running state
(month, peak, last row) travels in the durable queue with the rows it came from, so a
restart neither forgets a peak nor counts a period twice.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from edge_agent.client.client import MeterClient
from edge_agent.client.values import Reading
from edge_agent.dlms.apdu.results import DataAccessResult
from edge_agent.dlms.cosem.obis import Obis
from edge_agent.dlms.encoding.date_time import CosemDateTime, date_time_from_octets
from edge_agent.dlms.errors import DecodeError

log = logging.getLogger(__name__)


class ProfileRowLike(Protocol):
    """What :class:`ProfilePeak` needs of a load-profile row (the feed's ProfileRow)."""

    @property
    def ts(self) -> dt.datetime: ...

    @property
    def values(self) -> Mapping[str, Any]: ...

    @property
    def units(self) -> Mapping[str, str | None]: ...

# Interface class -> its capture_time attribute. Only the extended register's value is
# the captured one; a demand register (class 5) publishes current_average_value, whose
# time is the read, while its capture_time belongs to last_average_value.
CAPTURE_TIME = {4: 5}


def captured_at(value: Any) -> dt.datetime | None:
    """A capture_time value as an aware datetime; None when not a usable instant (a meter
    without deviation: the agent host's zone, as for profile rows)."""
    try:
        if isinstance(value, bytes | bytearray | memoryview):
            value = date_time_from_octets(bytes(value))
        if not isinstance(value, CosemDateTime):
            return None
        moment = value.to_datetime()
    except DecodeError:
        return None
    return moment if moment.tzinfo is not None else moment.astimezone()


def stamp_capture_times(client: MeterClient, readings: list[Reading]) -> list[Reading]:
    """``readings`` with each extended register's ``timestamp`` set to its capture time."""
    wanted = [r for r in readings if r.class_id in CAPTURE_TIME and r.value is not None]
    if not wanted:
        return readings
    answers = client.get_many([(r.obis, r.class_id, CAPTURE_TIME[r.class_id])
                               for r in wanted])
    stamps: dict[object, dt.datetime] = {}
    for reading, answer in zip(wanted, answers):
        if isinstance(answer, DataAccessResult):
            log.info("capture_time of %s refused (%s): published with the read time",
                     reading.obis.dotted, answer.name.lower())
            continue
        moment = captured_at(answer)
        if moment is not None:
            stamps[reading.obis] = moment
    return [dataclasses.replace(r, timestamp=stamps[r.obis]) if r.obis in stamps else r
            for r in readings]


# --- the peak from load-profile rows -------------------------------------------------------

MAXIMUM_DEMAND = "1.0.1.6.0.255"  # maximum demand import, current billing period
ENERGY_IMPORT = "1.0.1.8.0.255"
# Value group E of the tariff rates of a quantity (IEC 62056-61: 0 total, 1..63 rates).
TARIFF_RATES = range(1, 64)
DEMAND_PERIOD = dt.timedelta(minutes=15)
# Energy units of the profile column -> Wh per unit.
WATT_HOURS = {"Wh": 1.0, "kWh": 1000.0, "MWh": 1_000_000.0}
PEAK_NAME = "Maximum demand import (+A), from the load profile"


@dataclass(frozen=True, slots=True)
class Peak:
    """The largest 15-minute average import power (W) of a month and the end of its
    period."""

    watts: float
    at: dt.datetime


class ProfilePeak:
    """The month's peak demand from consecutive load-profile rows (no I/O).

    ``state`` is JSON-able: ``{"month": "YYYY-MM", "watts", "at", "last": [ts, Wh]}``."""

    def __init__(self, zone: dt.tzinfo | None = None) -> None:
        self.zone = zone  # None: the host's local zone

    def _month(self, moment: dt.datetime) -> str:
        local = moment.astimezone(self.zone)
        return f"{local.year:04d}-{local.month:02d}"

    def observe(self, state: dict[str, Any] | None, rows: Iterable[ProfileRowLike]
                ) -> tuple[dict[str, Any], Peak | None]:
        """The new state after ``rows`` (oldest first) and the peak when it changed."""
        state = dict(state or {})
        last = state.get("last")
        changed = False
        for row in rows:
            watt_hours = import_watt_hours(row)
            if watt_hours is None:
                last = None  # a row without the register: the next step has no start
                continue
            if last is not None:
                start = dt.datetime.fromisoformat(last[0])
                if row.ts - start == DEMAND_PERIOD:
                    month = self._month(start)  # a period belongs to the month it began in
                    if state.get("month") != month:
                        state.update(month=month, watts=None, at=None)
                        changed = True
                    watts = (watt_hours - float(last[1])) * (3600 / DEMAND_PERIOD.total_seconds())
                    if state.get("watts") is None or watts > state["watts"]:
                        state.update(watts=watts, at=row.ts.isoformat())
                        changed = True
            last = [row.ts.isoformat(), watt_hours]
        state["last"] = last
        if not changed or state.get("watts") is None:
            return state, None
        return state, Peak(state["watts"], dt.datetime.fromisoformat(state["at"]))


def import_watt_hours(row: ProfileRowLike) -> float | None:
    """The energy import of ``row`` in Wh: the total register when the profile captures
    it, else the sum of the import tariff registers it captures (module docstring); None
    when a value needed is missing or not an energy."""
    codes = [ENERGY_IMPORT] if ENERGY_IMPORT in row.values else tariff_codes(row.values)
    if not codes:
        return None
    total = 0.0
    for code in codes:
        energy = row.values[code]
        scale = WATT_HOURS.get(row.units.get(code) or "")
        if not isinstance(energy, int | float) or isinstance(energy, bool) or scale is None:
            return None
        total += float(energy) * scale
    return total


def tariff_codes(values: Mapping[str, Any]) -> list[str]:
    """The import tariff registers (1.0.1.8.e.255, e a tariff rate) among ``values``."""
    codes = []
    for key in values:
        try:
            code = Obis.parse(key)
        except (DecodeError, ValueError):
            continue
        if (code.a, code.b, code.c, code.d, code.f) == (1, 0, 1, 8, 255) and code.e in TARIFF_RATES:
            codes.append(key)
    return codes


__all__ = ["CAPTURE_TIME", "MAXIMUM_DEMAND", "PEAK_NAME", "Peak", "ProfilePeak",
           "captured_at", "import_watt_hours", "stamp_capture_times", "tariff_codes"]
