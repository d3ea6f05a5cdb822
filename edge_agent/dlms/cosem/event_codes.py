"""Event codes of the common DLMS/COSEM event logs, by code: a stable name and a text.

An event log is a profile generic (Blue Book 4.3.6) whose rows capture the clock and an
event code: the value of a Data object 0.0.96.11.x.255 ("event object", Blue Book 7.4.3,
value group D 11 of C 96) that the meter sets when something happens. The Blue Book
fixes the objects, not the numbers; the numbers come from the companion specifications
that European meters follow, which share one numbering across their logs, mostly:

* the IDIS Package 2 specification (IDIS association), its event code tables of the
  Standard, Fraud detection, Disconnector control, Power quality and M-Bus event logs
  (event objects 0.0.96.11.0..4.255);
* the DSMR 5.0.2 P3 companion standard (Netbeheer Nederland), its tables of the same
  Dutch logs (0-0:99.98.x with 0-0:96.11.x), which share most of those numbers.

Where the two differ, the table follows IDIS (the numbering of the Austrian, German and
most other European IDIS meters, the T-210D's peers) and says so at the code. Sources
checked, as published and readable without the paid specifications:

* [idis] MetCom Solutions MCS301 product manual 1.25 (an IDIS meter), chapter 15,
  "Table 37: Definition of log file 2 - Fraud Detection Event Log" and the Standard
  Event Log table before it (https://www.easymanua.ls/metcom-solutions/mcs301/manual?p=74
  and ?p=76): the standard log's codes 1..18 as here, then 19 "passive TOU
  programmed"; the fraud detection log in the order 40..49 of this table: 46
  association authentication failure, 47 "Decryption or authentication failure", 48
  "Replay attack" (a received frame counter not above the last one), 49 unexpected
  energy export on an import-only meter;
* [gxf] the GXF / Open Smart Grid Platform's DSMR and SMR 5 event types
  (github.com/OSGP/open-smart-grid-platform, osgp-domain-core ``EventType.java`` and
  osgp-adapter-domain-smartmetering ``EventService.java``, Apache-2.0, read 2024-10):
  codes 19..22, the M-Bus event log 100..137 (per channel: communication error/ok,
  replace battery, fraud attempt, clock adjusted, new device discovered, permanent
  error, dead battery), and the Dutch differences noted below.

Known differences the ``code`` of the payload keeps visible (subscribers that know their
meter's numbering can map it themselves): in the Dutch DSMR/SMR 5 tables [gxf] 47 is
"configuration change" and 48/49 "module cover opened/closed", and the power quality
codes start at 77 (under voltage L1..L3 77..79, then over voltage or sag 80..82, normal
or swell 83..85, phase outage 86..88, phase returned 90..92); this table keeps the IDIS
numbers for 47..49. The power quality codes 76..87 below were not checked against a
published IDIS table (none was found); a meter whose numbering differs shows it in
``code``, and the fix is a row here.

Codes outside the table are manufacturer-specific (IDIS reserves 231..254 for them);
:func:`event_code` gives those the name ``unknown`` and a text with the number, so a
subscriber still sees every event.

``name`` is a snake_case identifier that never changes once published (the MQTT
contract's ``event`` payload carries it; Home Assistant uses it as an event type);
``text`` is the English wording of the specifications.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType


@dataclass(frozen=True, slots=True)
class EventCode:
    """One event code of the table."""

    code: int
    name: str  # stable identifier, snake_case
    text: str  # the specifications' wording


UNKNOWN = "unknown"


def _table(*rows: tuple[int, str, str]) -> MappingProxyType[int, EventCode]:
    codes = {code: EventCode(code, name, text) for code, name, text in rows}
    if len(codes) != len(rows) or len({c.name for c in codes.values()}) != len(rows):
        raise ValueError("event code table: codes and names must be unique")
    return MappingProxyType(codes)


def _m_bus(channel: int) -> list[tuple[int, str, str]]:
    """The M-Bus event log codes of one channel (1..4): 100 + 10 * (channel - 1) on
    ([gxf]: DSMR 5 / SMR 5 M-Bus event log)."""
    base = 100 + 10 * (channel - 1)
    return [
        (base, f"m_bus_{channel}_communication_error",
         f"Communication error M-Bus channel {channel}"),
        (base + 1, f"m_bus_{channel}_communication_ok",
         f"Communication ok M-Bus channel {channel}"),
        (base + 2, f"m_bus_{channel}_replace_battery", f"Replace battery M-Bus channel {channel}"),
        (base + 3, f"m_bus_{channel}_fraud_attempt", f"Fraud attempt M-Bus channel {channel}"),
        (base + 4, f"m_bus_{channel}_clock_adjusted", f"Clock adjusted M-Bus channel {channel}"),
        (base + 5, f"m_bus_{channel}_new_device",
         f"New M-Bus device discovered channel {channel}"),
        (base + 6, f"m_bus_{channel}_permanent_error",
         f"Permanent error from M-Bus device channel {channel}"),
        (base + 7, f"m_bus_{channel}_dead_battery",
         f"Dead battery error M-Bus device channel {channel}"),
    ]


#: Code -> :class:`EventCode` (sources in the module docstring).
EVENT_CODES: MappingProxyType[int, EventCode] = _table(
    # Standard event log (0.0.99.98.0.255, event object 0.0.96.11.0.255).
    (1, "power_down", "Power down"),
    (2, "power_up", "Power up"),
    (3, "daylight_saving_changed", "Daylight saving time enabled or disabled"),
    (4, "clock_adjusted_old_time", "Clock adjusted (old date/time)"),
    (5, "clock_adjusted_new_time", "Clock adjusted (new date/time)"),
    (6, "clock_invalid", "Clock invalid"),
    (7, "replace_battery", "Replace battery"),
    (8, "battery_voltage_low", "Battery voltage low"),
    (9, "tou_activated", "TOU activated"),
    (10, "error_register_cleared", "Error register cleared"),
    (11, "alarm_register_cleared", "Alarm register cleared"),
    (12, "program_memory_error", "Program memory error"),
    (13, "ram_error", "RAM error"),
    (14, "nv_memory_error", "NV memory error"),
    (15, "watchdog_error", "Watchdog error"),
    (16, "measurement_system_error", "Measurement system error"),
    (17, "firmware_ready_for_activation", "Firmware ready for activation"),
    (18, "firmware_activated", "Firmware activated"),
    (19, "passive_tariff_updated", "Passive TOU programmed"),  # [idis] [gxf]
    (20, "firmware_selfcheck_successful",
     "Successful self-check after firmware update"),  # [gxf]
    (21, "communication_module_removed", "Communication module removed"),  # [gxf]
    (22, "communication_module_inserted", "Communication module inserted"),  # [gxf]
    # Fraud detection log (0.0.99.98.1.255, event object 0.0.96.11.1.255).
    (40, "terminal_cover_removed", "Terminal cover removed"),
    (41, "terminal_cover_closed", "Terminal cover closed"),
    (42, "strong_dc_field_detected", "Strong DC field detected"),
    (43, "strong_dc_field_gone", "No strong DC field anymore"),
    (44, "meter_cover_removed", "Meter cover removed"),
    (45, "meter_cover_closed", "Meter cover closed"),
    (46, "authentication_failures", "Association authentication failure (n times)"),
    # [idis] 47..49; DSMR/SMR 5 [gxf]: 47 configuration change, 48/49 module cover.
    (47, "decryption_or_authentication_failure", "Decryption or authentication failure"),
    (48, "replay_attack", "Replay attack"),
    (49, "unexpected_consumption",
     "Unexpected consumption (energy export on an import-only meter)"),
    # Disconnector control log (0.0.99.98.2.255, event object 0.0.96.11.2.255).
    (59, "ready_for_manual_reconnection", "Disconnector ready for manual reconnection"),
    (60, "manual_disconnection", "Manual disconnection"),
    (61, "manual_connection", "Manual connection"),
    (62, "remote_disconnection", "Remote disconnection"),
    (63, "remote_connection", "Remote connection"),
    (64, "local_disconnection", "Local disconnection"),
    (65, "limiter_threshold_exceeded", "Limiter threshold exceeded"),
    (66, "limiter_threshold_ok", "Limiter threshold ok"),
    (67, "limiter_threshold_changed", "Limiter threshold changed"),
    # Power quality event log (0.0.99.98.4.255, event object 0.0.96.11.4.255).
    (76, "under_voltage_l1", "Under voltage L1"),
    (77, "under_voltage_l2", "Under voltage L2"),
    (78, "under_voltage_l3", "Under voltage L3"),
    (79, "over_voltage_l1", "Over voltage L1"),
    (80, "over_voltage_l2", "Over voltage L2"),
    (81, "over_voltage_l3", "Over voltage L3"),
    (82, "missing_voltage_l1", "Missing voltage L1"),
    (83, "missing_voltage_l2", "Missing voltage L2"),
    (84, "missing_voltage_l3", "Missing voltage L3"),
    (85, "voltage_l1_normal", "Voltage L1 normal"),
    (86, "voltage_l2_normal", "Voltage L2 normal"),
    (87, "voltage_l3_normal", "Voltage L3 normal"),
    # M-Bus event log (0.0.99.98.3.255, event object 0.0.96.11.3.255), channels 1..4.
    *_m_bus(1), *_m_bus(2), *_m_bus(3), *_m_bus(4),
    # Any log: the log itself was cleared (its reset method, Blue Book 4.3.6 method 1).
    (255, "event_log_cleared", "Event log cleared"),
)

#: The name of a row of a power failure log that records failures by their end and
#: duration (DSMR 5.0.2 "Power failure event log" 1-0:99.97.0.255: no event code).
LONG_POWER_FAILURE = EventCode(-1, "long_power_failure", "Long power failure")


def event_code(code: int) -> EventCode:
    """The table's entry for ``code``; a code not in it is ``unknown`` with its number."""
    known = EVENT_CODES.get(code)
    if known is not None:
        return known
    return EventCode(code, UNKNOWN, f"Event code {code} (not in the IDIS/DSMR tables: "
                                    "manufacturer-specific)")


__all__ = ["EVENT_CODES", "LONG_POWER_FAILURE", "UNKNOWN", "EventCode", "event_code"]
