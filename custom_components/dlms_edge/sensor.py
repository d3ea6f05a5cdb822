"""Sensors built from the objects a meter announces in its `info` message.

Known electricity OBIS codes (value group A = 1) get a description from the table below:
translated name, device class, state class, display hints. Anything else becomes a
generic sensor, disabled by default, typed by what `info` says about it.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from datetime import datetime

from homeassistant.components.sensor import (
    DEVICE_CLASS_UNITS,
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import (
    PERCENTAGE,
    EntityCategory,
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
from homeassistant.util import dt as dt_util

from .const import CONF_EXCLUDED_OBJECTS
from .coordinator import DlmsEdgeConfigEntry, DlmsEdgeMeter
from .entity import DlmsEdgeEntity
from .models import InvalidPayload, MeterObject, Reading

_LOGGER = logging.getLogger(__name__)

# Push integration: the entity platform must not limit parallel updates.
PARALLEL_UPDATES = 0

# Reactive energy got a device class after 2025.4 (the oldest release we support);
# without it such sensors are still total_increasing and keep their `varh` unit.
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
}
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

# Value groups C (quantity) and D (processing) of IEC 62056-61 / Blue Book 7.5.3.
# C 1..20 are totals over all phases; C + 20, + 40, + 60 are the same quantity on
# L1, L2, L3. D 7 = instantaneous value, D 8 = time integral 1 (the energy register).
# Value (C, D) -> (translation key, description fields, variants allowed).
_PHASE, _TARIFF = "phase", "tariff"
_DESCRIPTIONS: dict[tuple[int, int], tuple[str, dict, frozenset[str]]] = {
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


def describe_obis(obis: str) -> SensorEntityDescription | None:
    """Description of a known electricity OBIS code, or None for a generic sensor."""
    a, _b, c, d, e, f = (int(group) for group in obis.split("."))
    # F 255 = current value; other F values are historical (billing period) values.
    if a != 1 or f != 255:
        return None
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


def _generic_description(obj: MeterObject) -> SensorEntityDescription:
    """A sensor typed by `info` alone, disabled until the user wants it."""
    try:
        device_class = SensorDeviceClass(obj.device_class) if obj.device_class else None
    except ValueError:
        device_class = None
    try:
        state_class = SensorStateClass(obj.state_class) if obj.state_class else None
    except ValueError:
        state_class = None
    return SensorEntityDescription(
        key=obj.obis,
        name=obj.name or obj.obis,
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


async def async_setup_entry(
    hass: HomeAssistant,
    entry: DlmsEdgeConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """One sensor per announced object the user did not exclude."""
    meter = entry.runtime_data
    excluded = set(entry.options.get(CONF_EXCLUDED_OBJECTS, ()))
    entities = [
        DlmsEdgeSensor(meter, obj, build_description(obj))
        for obj in meter.info.objects
        if obj.obis not in excluded
    ]
    _async_remove_stale_sensors(hass, entry, {entity.unique_id for entity in entities})
    async_add_entities(entities)


@callback
def _async_remove_stale_sensors(
    hass: HomeAssistant, entry: DlmsEdgeConfigEntry, keep: set[str | None]
) -> None:
    """Drop registry entries of objects the meter no longer announces or the user hid."""
    registry = er.async_get(hass)
    for registry_entry in er.async_entries_for_config_entry(registry, entry.entry_id):
        if registry_entry.domain == "sensor" and registry_entry.unique_id not in keep:
            registry.async_remove(registry_entry.entity_id)


class DlmsEdgeSensor(DlmsEdgeEntity, SensorEntity):
    """The latest reading of one COSEM object."""

    def __init__(
        self, meter: DlmsEdgeMeter, obj: MeterObject, description: SensorEntityDescription
    ) -> None:
        super().__init__(meter, obj.obis)
        self.entity_description = description
        self._obis = obj.obis
        self._topic = f"{meter.base_topic}/{obj.obis}"
        self._has_value = False
        # Home Assistant refuses text for sensors with a unit, state class or
        # numeric device class; such readings are reported as malformed instead.
        self._numeric = (
            description.native_unit_of_measurement is not None
            or description.state_class is not None
            or description.device_class not in _TEXT_DEVICE_CLASSES
        )

    async def async_added_to_hass(self) -> None:
        await super().async_added_to_hass()
        self.async_on_remove(
            self.meter.async_add_reading_listener(self._obis, self._handle_reading)
        )
        # Retained values may have arrived before the entity was added.
        if (reading := self.meter.readings.get(self._obis)) is not None:
            try:
                self._attr_native_value = self._convert(reading)
            except InvalidPayload as err:
                self.meter.report_malformed(self._topic, str(err))
            else:
                self._has_value = True

    @callback
    def _handle_reading(self, reading: Reading) -> None:
        # InvalidPayload propagates to the meter, which logs it once and keeps state.
        self._attr_native_value = self._convert(reading)
        self._has_value = True
        self.async_write_ha_state()

    def _convert(self, reading: Reading) -> float | int | str | datetime | None:
        value = reading.value
        if value is None:
            return None
        if self.entity_description.device_class == SensorDeviceClass.TIMESTAMP:
            parsed = dt_util.parse_datetime(value) if isinstance(value, str) else None
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
