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
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from typing import Any

from edge_agent.client.client import MeterClient
from edge_agent.client.values import Reading
from edge_agent.dlms.apdu.results import DataAccessResult
from edge_agent.dlms.encoding.date_time import CosemDateTime, date_time_from_octets
from edge_agent.dlms.errors import DecodeError

log = logging.getLogger(__name__)

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


__all__ = ["CAPTURE_TIME", "captured_at", "stamp_capture_times"]
