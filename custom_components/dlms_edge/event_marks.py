"""The events seen per meter, kept in Home Assistant's storage (`.storage/dlms_edge.event_marks`).

The coordinator judges each meter event against them (MeterEventMarks.judge): a duplicate
is dropped, an event from before the integration began watching the meter is history
(docs/home-assistant.md, "Meter events").
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.storage import Store
from homeassistant.util import dt as dt_util
from homeassistant.util.hass_dict import HassKey

from .const import DOMAIN
from .models import InvalidPayload, MeterEvent, MeterEventMarks, Verdict

_LOGGER = logging.getLogger(__name__)

_EVENT_MARKS: HassKey[EventMarkStore] = HassKey(f"{DOMAIN}_event_marks")
EVENT_MARKS_STORAGE_KEY = f"{DOMAIN}.event_marks"
_EVENT_MARKS_VERSION = 1
# Seconds between an event and the write of the marks (Home Assistant writes pending
# data when it stops).
_EVENT_MARKS_SAVE_DELAY = 10


def event_mark_store(hass: HomeAssistant) -> EventMarkStore:
    """The one store of event marks of this Home Assistant (all entries share it)."""
    if (store := hass.data.get(_EVENT_MARKS)) is None:
        store = hass.data[_EVENT_MARKS] = EventMarkStore(hass)
    return store


class EventMarkStore:
    """The events seen per entry and meter (MeterEventMarks), in Home Assistant's storage.

    Kept apart from the event entity on purpose: the logbook needs the same
    deduplication when the user disabled the entity, and an entity restores only its
    last event, while a meter has several logs. One file for every entry, keyed by entry
    id: a removed entry's marks go with it, and those of an entry that no longer exists
    otherwise are dropped when the file is next loaded.
    """

    def __init__(self, hass: HomeAssistant) -> None:
        self.hass = hass
        self._store: Store[dict[str, Any]] = Store(
            hass, _EVENT_MARKS_VERSION, EVENT_MARKS_STORAGE_KEY
        )
        self._entries: dict[str, dict[str, MeterEventMarks]] = {}
        self._lock = asyncio.Lock()
        self._loaded = False

    async def async_load(self) -> None:
        """Read the file once; unusable parts are dropped with a warning."""
        async with self._lock:
            if self._loaded:
                return
            stored = await self._store.async_load()
            entries = stored.get("entries") if isinstance(stored, dict) else None
            existing = {entry.entry_id for entry in self.hass.config_entries.async_entries(DOMAIN)}
            for entry_id, meters in (entries if isinstance(entries, dict) else {}).items():
                if entry_id not in existing or not isinstance(meters, dict):
                    continue
                for key, data in meters.items():
                    try:
                        self._entries.setdefault(entry_id, {})[key] = MeterEventMarks.from_dict(
                            data
                        )
                    except InvalidPayload as err:
                        _LOGGER.warning("Starting the events of meter %s afresh: %s", key, err)
            self._loaded = True

    @callback
    def meter(self, entry_id: str, key: str) -> MeterEventMarks:
        """The marks of a meter; a meter without is watched from now on (called with its
        first clock or event message)."""
        meters = self._entries.setdefault(entry_id, {})
        if (marks := meters.get(key)) is None:
            marks = meters[key] = MeterEventMarks(since=dt_util.utcnow())
            self._schedule_save()
        return marks

    @callback
    def peek(self, entry_id: str, key: str) -> MeterEventMarks | None:
        """The marks of a meter, without starting to watch it."""
        return self._entries.get(entry_id, {}).get(key)

    @callback
    def retain(self, entry_id: str, keys: set[str]) -> None:
        """Keep the marks of these meters of the entry only."""
        meters = self._entries.get(entry_id, {})
        if gone := set(meters) - keys:
            for key in gone:
                del meters[key]
            self._schedule_save()

    async def async_forget_entry(self, entry_id: str) -> None:
        """Drop the marks of a removed entry (read first: the write keeps the others')."""
        await self.async_load()
        if self._entries.pop(entry_id, None) is not None:
            self._schedule_save()

    @callback
    def forget(self, entry_id: str, key: str) -> None:
        if self._entries.get(entry_id, {}).pop(key, None) is not None:
            self._schedule_save()

    @callback
    def judge(self, entry_id: str, key: str, event: MeterEvent) -> Verdict:
        """Classify and remember an event of a meter (MeterEventMarks.judge)."""
        verdict = self.meter(entry_id, key).judge(event)
        if verdict is not Verdict.DUPLICATE:
            self._schedule_save()
        return verdict

    @callback
    def _schedule_save(self) -> None:
        self._store.async_delay_save(self._data, _EVENT_MARKS_SAVE_DELAY)

    @callback
    def _data(self) -> dict[str, Any]:
        return {
            "entries": {
                entry_id: {key: marks.as_dict() for key, marks in meters.items()}
                for entry_id, meters in self._entries.items()
            }
        }
