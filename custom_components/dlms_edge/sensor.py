"""Sensors built from the objects a meter announces in its `info` message.

Known electricity OBIS codes (value group A = 1) get a description from the table below:
translated name, device class, state class, display hints. Anything else becomes a
generic sensor, disabled by default, typed by what `info` says about it.

A captured value (an extended register, class 4, or a figure the agent computes from a
profile, class 7: the month's peak demand 1.0.1.6.0.255) carries the time it was
captured in its `ts`; its sensor shows it as the attribute `capture_time`.

Each meter whose clock the agent reads also gets a *Clock drift* sensor (diagnostic)
from the retained `clock` topic.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from datetime import datetime
from functools import partial
from typing import Any

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.components.sensor.const import DEVICE_CLASS_STATE_CLASSES, DEVICE_CLASS_UNITS
from homeassistant.const import (
    PERCENTAGE,
    EntityCategory,
    Platform,
    UnitOfApparentPower,
    UnitOfElectricCurrent,
    UnitOfElectricPotential,
    UnitOfEnergy,
    UnitOfFrequency,
    UnitOfPower,
    UnitOfReactivePower,
    UnitOfTemperature,
    UnitOfTime,
    UnitOfVolume,
)
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.typing import UNDEFINED
from homeassistant.util import dt as dt_util

from .const import CONF_EXCLUDED_OBJECTS
from .coordinator import DlmsEdgeConfigEntry, DlmsEdgeMeter
from .entity import DlmsEdgeEntity, MeterEntities, async_add_meter_entities, registered
from .models import InvalidPayload, MeterInfo, MeterObject, Reading, parse_time

_LOGGER = logging.getLogger(__name__)

# Push integration: the entity platform must not limit parallel updates.
PARALLEL_UPDATES = 0

# Reactive energy got a device class after 2025.4 (the oldest release we support);
# without it such sensors are still total_increasing and keep their `varh` unit (Home
# Assistant converts units only within a device class).
_REACTIVE_ENERGY: SensorDeviceClass | None = getattr(SensorDeviceClass, "REACTIVE_ENERGY", None)

# Blue Book unit symbols (DLMS UA 1000-1, table "Enumerated values for physical units")
# to Home Assistant units. Symbols missing here are passed through unchanged.
UNITS: dict[str, str | None] = {
    "Wh": UnitOfEnergy.WATT_HOUR,
    "kWh": UnitOfEnergy.KILO_WATT_HOUR,
    "MWh": UnitOfEnergy.MEGA_WATT_HOUR,
    "W": UnitOfPower.WATT,
    "kW": UnitOfPower.KILO_WATT,
    "V": UnitOfElectricPotential.VOLT,
    "A": UnitOfElectricCurrent.AMPERE,
    "Hz": UnitOfFrequency.HERTZ,
    "var": UnitOfReactivePower.VOLT_AMPERE_REACTIVE,
    "varh": "varh",
    "kvarh": "kvarh",
    "VA": UnitOfApparentPower.VOLT_AMPERE,
    "VAh": "VAh",
    "%": PERCENTAGE,
    "°C": UnitOfTemperature.CELSIUS,
    "K": UnitOfTemperature.KELVIN,
    "s": UnitOfTime.SECONDS,
    "min": UnitOfTime.MINUTES,
    "h": UnitOfTime.HOURS,
    "d": UnitOfTime.DAYS,
    "m³": UnitOfVolume.CUBIC_METERS,
    "m3": UnitOfVolume.CUBIC_METERS,
    "l": UnitOfVolume.LITERS,
    # Blue Book unit 255 "no unit" and 0 are reported as null or an empty string.
    "": None,
}

_ENERGY = {
    "device_class": SensorDeviceClass.ENERGY,
    "state_class": SensorStateClass.TOTAL_INCREASING,
    "suggested_unit_of_measurement": UnitOfEnergy.KILO_WATT_HOUR,
    "suggested_display_precision": 3,
}
_REACTIVE_ENERGY_KW = {
    "device_class": _REACTIVE_ENERGY,
    "state_class": SensorStateClass.TOTAL_INCREASING,
} | (
    # Shown in kvarh beside kWh energy where Home Assistant can convert it.
    {"suggested_unit_of_measurement": "kvarh", "suggested_display_precision": 3}
    if _REACTIVE_ENERGY is not None
    else {}
)
_APPARENT_ENERGY = {"state_class": SensorStateClass.TOTAL_INCREASING}
_POWER = {
    "device_class": SensorDeviceClass.POWER,
    "state_class": SensorStateClass.MEASUREMENT,
    "suggested_display_precision": 0,
}
_REACTIVE_POWER = {
    "device_class": SensorDeviceClass.REACTIVE_POWER,
    "state_class": SensorStateClass.MEASUREMENT,
}
_APPARENT_POWER = {
    "device_class": SensorDeviceClass.APPARENT_POWER,
    "state_class": SensorStateClass.MEASUREMENT,
}
_MEASURE = {"state_class": SensorStateClass.MEASUREMENT}
# Maximum demand (D 6, Blue Book 7.5.3.3): the largest average power of one demand period
# in the billing period; power-based grid tariffs bill it in kW.
_MAX_DEMAND = {
    "device_class": SensorDeviceClass.POWER,
    "state_class": SensorStateClass.MEASUREMENT,
    "suggested_unit_of_measurement": UnitOfPower.KILO_WATT,
    "suggested_display_precision": 2,
}

# Value groups C (quantity) and D (processing) of IEC 62056-61 / Blue Book 7.5.3.
# C 1..20 are totals over all phases; C + 20, + 40, + 60 are the same quantity on
# L1, L2, L3. D 7 = instantaneous value, D 8 = time integral 1 (the energy register).
# Value (C, D) -> (translation key, description fields, variants allowed).
_PHASE, _TARIFF = "phase", "tariff"
_DESCRIPTIONS: dict[tuple[int, int], tuple[str, dict[str, Any], frozenset[str]]] = {
    (1, 8): ("energy_import", _ENERGY, frozenset({_PHASE, _TARIFF})),
    (2, 8): ("energy_export", _ENERGY, frozenset({_PHASE, _TARIFF})),
    (3, 8): ("reactive_energy_import", _REACTIVE_ENERGY_KW, frozenset({_TARIFF})),
    (4, 8): ("reactive_energy_export", _REACTIVE_ENERGY_KW, frozenset({_TARIFF})),
    (5, 8): ("reactive_energy_q1", _REACTIVE_ENERGY_KW, frozenset()),
    (6, 8): ("reactive_energy_q2", _REACTIVE_ENERGY_KW, frozenset()),
    (7, 8): ("reactive_energy_q3", _REACTIVE_ENERGY_KW, frozenset()),
    (8, 8): ("reactive_energy_q4", _REACTIVE_ENERGY_KW, frozenset()),
    (9, 8): ("apparent_energy_import", _APPARENT_ENERGY, frozenset()),
    (10, 8): ("apparent_energy_export", _APPARENT_ENERGY, frozenset()),
    (1, 6): ("max_demand_import", _MAX_DEMAND, frozenset({_TARIFF})),
    (2, 6): ("max_demand_export", _MAX_DEMAND, frozenset({_TARIFF})),
    (1, 7): ("power_import", _POWER, frozenset({_PHASE})),
    (2, 7): ("power_export", _POWER, frozenset({_PHASE})),
    (3, 7): ("reactive_power_import", _REACTIVE_POWER, frozenset({_PHASE})),
    (4, 7): ("reactive_power_export", _REACTIVE_POWER, frozenset({_PHASE})),
    (9, 7): ("apparent_power_import", _APPARENT_POWER, frozenset({_PHASE})),
    (10, 7): ("apparent_power_export", _APPARENT_POWER, frozenset({_PHASE})),
    (11, 7): (
        "current",
        {"device_class": SensorDeviceClass.CURRENT, **_MEASURE, "suggested_display_precision": 2},
        frozenset({_PHASE}),
    ),
    (12, 7): (
        "voltage",
        {"device_class": SensorDeviceClass.VOLTAGE, **_MEASURE, "suggested_display_precision": 1},
        frozenset({_PHASE}),
    ),
    (13, 7): (
        "power_factor",
        {
            "device_class": SensorDeviceClass.POWER_FACTOR,
            **_MEASURE,
            "suggested_display_precision": 2,
        },
        frozenset({_PHASE}),
    ),
    (14, 7): (
        "frequency",
        {"device_class": SensorDeviceClass.FREQUENCY, **_MEASURE, "suggested_display_precision": 2},
        frozenset(),
    ),
    # C 16: sum of active power import minus export, signed.
    (16, 7): ("power_net", _POWER, frozenset()),
}
_PHASES = {1: "L1", 2: "L2", 3: "L3"}
_TEXT_DEVICE_CLASSES = (None, SensorDeviceClass.TIMESTAMP, SensorDeviceClass.ENUM)
# C 91: neutral current (Blue Book 7.5.3.2, not in the +20 phase pattern).
_NEUTRAL_CURRENT = 91
# Interface classes whose `ts` is the capture time of the value (docs/mqtt-contract.md,
# "Peak demand"): the extended register (4) and a figure computed from a profile (7).
CAPTURED_CLASSES = frozenset({4, 7})
ATTR_CAPTURE_TIME = "capture_time"

CLOCK_DRIFT_KEY = "clock_drift"
CLOCK_DRIFT_DESCRIPTION = SensorEntityDescription(
    key=CLOCK_DRIFT_KEY,
    translation_key=CLOCK_DRIFT_KEY,
    device_class=SensorDeviceClass.DURATION,
    state_class=SensorStateClass.MEASUREMENT,
    native_unit_of_measurement=UnitOfTime.SECONDS,
    suggested_display_precision=1,
    entity_category=EntityCategory.DIAGNOSTIC,
)
# Sync result when the agent does not set the meter's clock (no `clock_sync`).
SYNC_DISABLED = "disabled"


def describe_obis(obis: str) -> SensorEntityDescription | None:
    """Description of a known electricity OBIS code, or None for a generic sensor."""
    a, _b, c, d, e, f = (int(group) for group in obis.split("."))
    # F 255 = current value; other F values are historical (billing period) values.
    if a != 1 or f != 255:
        return None
    phase: str | None
    if c == _NEUTRAL_CURRENT and (d, e) == (7, 0):
        c, phase = 11, "N"
    elif 1 <= c <= 80:
        phase_index, base = divmod(c - 1, 20)
        c, phase = base + 1, _PHASES.get(phase_index)
    else:
        return None
    entry = _DESCRIPTIONS.get((c, d))
    if entry is None:
        return None
    translation_key, fields, variants = entry
    placeholders: dict[str, str] = {}
    if phase:
        if _PHASE not in variants:
            return None
        translation_key += "_phase"
        placeholders["phase"] = phase
    if e:
        if _TARIFF not in variants or phase:
            return None
        translation_key += "_tariff"
        placeholders["tariff"] = str(e)
    return SensorEntityDescription(
        key=obis,
        translation_key=translation_key,
        translation_placeholders=placeholders or None,
        **fields,
    )


# Abstract objects (value group A = 0) that meters commonly list, named by translation
# (Blue Book 4.4 / 7.4): otherwise an object without a name in `info` would be called,
# and get an entity id, after its OBIS code.
_ABSTRACT_NAMES: dict[str, tuple[str, dict[str, str] | None]] = {
    "0.0.1.0.0.255": ("clock", None),
    "0.0.42.0.0.255": ("logical_device_name", None),
    "0.0.96.14.0.255": ("current_tariff", None),
    "0.0.96.3.10.255": ("disconnect_control", None),
    "0.0.97.97.0.255": ("error_register", None),
    "0.0.97.98.0.255": ("alarm_register", None),
    "1.0.0.2.0.255": ("firmware_version", None),
    **{f"0.0.96.1.{e}.255": ("device_id", {"index": str(e + 1)}) for e in range(10)},
}


def _valid_classes(
    obj: MeterObject,
) -> tuple[SensorDeviceClass | None, SensorStateClass | None]:
    """Device and state class from `info`, kept only where Home Assistant allows them."""
    try:
        device_class = SensorDeviceClass(obj.device_class) if obj.device_class else None
    except ValueError:
        _LOGGER.info(
            "%s: device class %r is unknown to this Home Assistant; exposing it without one",
            obj.obis,
            obj.device_class,
        )
        device_class = None
    try:
        state_class = SensorStateClass(obj.state_class) if obj.state_class else None
    except ValueError:
        state_class = None
    allowed = DEVICE_CLASS_STATE_CLASSES.get(device_class) if device_class else None
    if state_class is not None and allowed is not None and state_class not in allowed:
        # An energy counter announced as `measurement` would break its statistics.
        _LOGGER.info(
            "%s: state class %s is not allowed with device class %s (allowed: %s); "
            "exposing it without a state class",
            obj.obis,
            state_class,
            device_class,
            ", ".join(sorted(allowed)) or "none",
        )
        state_class = None
    return device_class, state_class


def _generic_description(obj: MeterObject) -> SensorEntityDescription:
    """A sensor typed by `info` alone, disabled until the user wants it."""
    device_class, state_class = _valid_classes(obj)
    translation_key, placeholders = _ABSTRACT_NAMES.get(obj.obis, (None, None))
    return SensorEntityDescription(
        key=obj.obis,
        translation_key=translation_key,
        translation_placeholders=placeholders,
        name=UNDEFINED if translation_key else obj.name or f"OBIS {obj.obis}",
        device_class=device_class,
        state_class=state_class,
        entity_category=EntityCategory.DIAGNOSTIC if state_class is None else None,
        entity_registry_enabled_default=False,
    )


def build_description(obj: MeterObject) -> SensorEntityDescription:
    """Description for an announced object, with its unit mapped to Home Assistant's."""
    description = describe_obis(obj.obis) or _generic_description(obj)
    unit = UNITS.get(obj.unit, obj.unit) if obj.unit is not None else None
    allowed_units = DEVICE_CLASS_UNITS.get(description.device_class)  # type: ignore[arg-type]
    if allowed_units is not None and unit not in allowed_units:
        # A device class with a foreign unit is refused by Home Assistant; the value
        # is still worth showing, untyped.
        _LOGGER.info(
            "%s: unit %r does not fit device class %s; exposing it without one",
            obj.obis,
            obj.unit,
            description.device_class,
        )
        description = replace(
            description,
            device_class=None,
            suggested_unit_of_measurement=None,
            suggested_display_precision=None,
        )
    return replace(description, native_unit_of_measurement=unit)


def meter_descriptions(info: MeterInfo) -> list[SensorEntityDescription]:
    """The sensors an info gives, in order: what the confirm step counts and setup adds."""
    return [build_description(obj) for obj in info.objects]


def excluded_objects(entry: DlmsEdgeConfigEntry, key: str) -> set[str]:
    return set(entry.options.get(CONF_EXCLUDED_OBJECTS, {}).get(key, ()))


async def async_setup_entry(
    hass: HomeAssistant,
    entry: DlmsEdgeConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """One sensor per announced object the user did not exclude, as meters appear."""

    def _entities(meter: DlmsEdgeMeter) -> MeterEntities:
        excluded = excluded_objects(entry, meter.key)
        for obj in meter.info.objects:
            if obj.obis not in excluded:
                # Described when added only: a refused pair is logged once per set-up.
                yield obj.obis, partial(DlmsEdgeSensor.of_object, meter, obj)
        # The drift sensor once the agent is seen reading the meter's clock, and at once
        # at later starts, before the retained clock arrives.
        if "clock" in meter.reads or registered(hass, Platform.SENSOR, meter, CLOCK_DRIFT_KEY):
            yield CLOCK_DRIFT_KEY, lambda: DlmsEdgeClockDriftSensor(meter, CLOCK_DRIFT_DESCRIPTION)

    _async_remove_excluded_sensors(hass, entry)
    async_add_meter_entities(entry, async_add_entities, _entities)


@callback
def _async_remove_excluded_sensors(hass: HomeAssistant, entry: DlmsEdgeConfigEntry) -> None:
    """Drop registry entries of objects the user chose to hide (options).

    Objects merely missing from the latest `info` keep theirs: one association view
    may lack an object for a while, and the user's names and ids must survive that.
    """
    registry = er.async_get(hass)
    hidden = {
        f"{key}_{obis}"
        for key, objects in entry.options.get(CONF_EXCLUDED_OBJECTS, {}).items()
        for obis in objects
    }
    for registry_entry in er.async_entries_for_config_entry(registry, entry.entry_id):
        if registry_entry.domain == "sensor" and registry_entry.unique_id in hidden:
            registry.async_remove(registry_entry.entity_id)


class DlmsEdgeSensor(DlmsEdgeEntity, SensorEntity):
    """The latest reading of one COSEM object."""

    entity_description: SensorEntityDescription

    def __init__(
        self, meter: DlmsEdgeMeter, obj: MeterObject, description: SensorEntityDescription
    ) -> None:
        super().__init__(meter, description)
        self.obis = obj.obis
        self._has_value = False
        self._captured = obj.class_id in CAPTURED_CLASSES
        # Home Assistant refuses text for sensors with a unit, state class or
        # numeric device class; such readings are reported as malformed instead.
        self._numeric = (
            description.native_unit_of_measurement is not None
            or description.state_class is not None
            or description.device_class not in _TEXT_DEVICE_CLASSES
        )

    @classmethod
    def of_object(cls, meter: DlmsEdgeMeter, obj: MeterObject) -> DlmsEdgeSensor:
        return cls(meter, obj, build_description(obj))

    async def async_added_to_hass(self) -> None:
        await super().async_added_to_hass()
        self.async_on_remove(self.meter.async_add_reading_listener(self.obis, self._handle_reading))
        # Retained values may have arrived before the entity was added.
        if (reading := self.meter.readings.get(self.obis)) is not None:
            try:
                self._take(reading)
            except InvalidPayload as err:
                self.meter.agent.report_malformed(f"{self.meter.base_topic}/{self.obis}", str(err))

    @callback
    def _handle_reading(self, reading: Reading | None) -> None:
        # InvalidPayload propagates to the agent, which logs it once and keeps state.
        if reading is None:  # cleared by the agent
            self._attr_native_value = None
            self._attr_extra_state_attributes = {}
            self._has_value = False
        else:
            self._take(reading)
        self.async_write_ha_state()

    def _take(self, reading: Reading) -> None:
        """Show `reading`; raise InvalidPayload (nothing changed) when it is unusable."""
        value = self._convert(reading)
        if self._captured:
            # When the peak (or other captured value) happened: its `ts` (the read time
            # when the meter gives no capture time).
            captured = parse_time(reading.ts) if reading.ts else None
            if captured is None or captured.tzinfo is None:
                raise InvalidPayload(f"expected 'ts' as an ISO 8601 time, got {reading.ts!r:.40}")
            self._attr_extra_state_attributes = {
                ATTR_CAPTURE_TIME: dt_util.as_utc(captured).isoformat()
            }
        self._attr_native_value = value
        self._has_value = True

    def _convert(self, reading: Reading) -> float | int | str | datetime | None:
        value = reading.value
        if value is None:
            return None
        if self.entity_description.device_class == SensorDeviceClass.TIMESTAMP:
            parsed = parse_time(value) if isinstance(value, str) else None
            if parsed is None:
                raise InvalidPayload(f"expected an ISO 8601 time, got {value!r:.40}")
            # Without a deviation the meter's clock is local time (contract details);
            # the meter and Home Assistant share the time zone.
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=dt_util.get_default_time_zone())
            return parsed
        if self._numeric:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise InvalidPayload(f"expected a number, got {value!r:.40}")
            return value
        if isinstance(value, list):
            value = json.dumps(value, separators=(",", ":"))
        if isinstance(value, str) and len(value) > 255:
            raise InvalidPayload("text longer than the 255 characters a state can hold")
        return value

    @property
    def available(self) -> bool:
        return super().available and self._has_value


class DlmsEdgeClockDriftSensor(DlmsEdgeEntity, SensorEntity):
    """Meter time minus agent time in seconds (positive: the meter is ahead).

    Unavailable while the meter's time is unusable (the agent publishes no drift).
    """

    # Change with every reading: kept in the state, not in every recorded state row.
    _unrecorded_attributes = frozenset({"meter_time", "read_at"})

    async def async_added_to_hass(self) -> None:
        await super().async_added_to_hass()
        self.async_on_remove(self.meter.async_add_clock_listener(self.async_write_ha_state))

    @property
    def available(self) -> bool:
        clock = self.meter.clock
        return super().available and clock is not None and clock.drift is not None

    @property
    def native_value(self) -> float | None:
        return self.meter.clock.drift if self.meter.clock else None

    @property
    def extra_state_attributes(self) -> dict[str, Any] | None:
        if (clock := self.meter.clock) is None:
            return None
        sync = clock.sync
        return {
            "meter_time": clock.meter_time.isoformat() if clock.meter_time else None,
            "read_at": clock.ts.isoformat(),
            "status": list(clock.status) if clock.status is not None else None,
            "clock_base": clock.clock_base,
            "daylight_saving_active": clock.daylight_saving_active,
            "sync": sync.result if sync.enabled else SYNC_DISABLED,
            "sync_message": sync.message if sync.enabled else None,
        }
