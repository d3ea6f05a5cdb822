"""Constants of the DLMS Edge integration (topic contract: docs/mqtt-contract.md)."""

from __future__ import annotations

from typing import Final

DOMAIN: Final = "dlms_edge"

# One config entry per agent (version 2). Its data: where the agent publishes, and per
# meter (keyed by the meter's identity, see MeterInfo.unique_id) the last `info` seen and
# the device name chosen when the meter first appeared, so that devices and entities
# exist at start-up before the broker has replayed the retained messages.
CONF_PREFIX: Final = "prefix"
CONF_AGENT: Final = "agent"
CONF_METERS: Final = "meters"
CONF_INFO: Final = "info"
CONF_NAME: Final = "name"
# Version 1 (one entry per meter) stored the meter id and one info.
CONF_METER: Final = "meter"

# Options: per meter identity, the OBIS codes the user chose not to expose. Storing the
# exclusions (not the selection) lets objects that a firmware update adds appear
# without user action.
CONF_EXCLUDED_OBJECTS: Final = "excluded_objects"
# Options-flow field: the OBIS codes to expose.
CONF_OBJECTS: Final = "objects"

DEFAULT_PREFIX: Final = "dlms"

# How long the user and reconfigure steps listen for retained `info` messages. The
# broker replays retained messages right after SUBACK, so a short window suffices.
SCAN_SECONDS: Final = 2.0

# An agent offline this long raises a repair issue (a restart takes seconds).
AGENT_OFFLINE_ISSUE_SECONDS: Final = 15 * 60

STATUS_ONLINE: Final = "online"
STATUS_OFFLINE: Final = "offline"

# Health codes of the contract; each has a translated repair issue. The contract only
# adds codes (bad_data and access_denied came later); unknown ones get HEALTH_CODE_OTHER.
HEALTH_CODES: Final = frozenset(
    {
        "wrong_key",
        "counter_out_of_step",
        "association_refused",
        "unreachable",
        "push_stopped",
        "signature_rejected",
        "config_error",
        "bad_data",
        "access_denied",
    }
)
# Issue translation for a code this version does not know yet (a newer agent).
HEALTH_CODE_OTHER: Final = "other_problem"

DOCUMENTATION_URL: Final = "https://github.com/dlms-edge/dlms-edge"

# --- clock and events (docs/mqtt-contract.md, "Clock" and "Events") -----------------------

# The Home Assistant bus event fired for each meter event the integration has not seen
# before; logbook.py describes it. Its data: device_id, entity_id (the meter's event
# entity, when it has one), log, code, name, text, meter_time, clock_status, raw, history.
EVENT_METER_EVENT: Final = "dlms_edge_meter_event"

# Event names of the agent's table (edge_agent/dlms/cosem/event_codes.py), by code,
# copied as data: the integration does not import the agent. tests/ha/test_clock_events.py
# checks that it equals the agent's table. The contract only ever adds names; a name this
# version does not know reaches the event entity as UNKNOWN_EVENT (its text stays).
EVENT_NAMES: Final[tuple[tuple[int, str], ...]] = (
    # Standard event log (0.0.99.98.0.255).
    (1, "power_down"),
    (2, "power_up"),
    (3, "daylight_saving_changed"),
    (4, "clock_adjusted_old_time"),
    (5, "clock_adjusted_new_time"),
    (6, "clock_invalid"),
    (7, "replace_battery"),
    (8, "battery_voltage_low"),
    (9, "tou_activated"),
    (10, "error_register_cleared"),
    (11, "alarm_register_cleared"),
    (12, "program_memory_error"),
    (13, "ram_error"),
    (14, "nv_memory_error"),
    (15, "watchdog_error"),
    (16, "measurement_system_error"),
    (17, "firmware_ready_for_activation"),
    (18, "firmware_activated"),
    (19, "passive_tariff_updated"),
    (20, "firmware_selfcheck_successful"),
    (21, "communication_module_removed"),
    (22, "communication_module_inserted"),
    # Fraud detection log (0.0.99.98.1.255).
    (40, "terminal_cover_removed"),
    (41, "terminal_cover_closed"),
    (42, "strong_dc_field_detected"),
    (43, "strong_dc_field_gone"),
    (44, "meter_cover_removed"),
    (45, "meter_cover_closed"),
    (46, "authentication_failures"),
    (47, "decryption_or_authentication_failure"),
    (48, "replay_attack"),
    (49, "unexpected_consumption"),
    # Disconnector control log (0.0.99.98.2.255).
    (59, "ready_for_manual_reconnection"),
    (60, "manual_disconnection"),
    (61, "manual_connection"),
    (62, "remote_disconnection"),
    (63, "remote_connection"),
    (64, "local_disconnection"),
    (65, "limiter_threshold_exceeded"),
    (66, "limiter_threshold_ok"),
    (67, "limiter_threshold_changed"),
    # Power quality event log (0.0.99.98.4.255).
    (76, "under_voltage_l1"),
    (77, "under_voltage_l2"),
    (78, "under_voltage_l3"),
    (79, "over_voltage_l1"),
    (80, "over_voltage_l2"),
    (81, "over_voltage_l3"),
    (82, "missing_voltage_l1"),
    (83, "missing_voltage_l2"),
    (84, "missing_voltage_l3"),
    (85, "voltage_l1_normal"),
    (86, "voltage_l2_normal"),
    (87, "voltage_l3_normal"),
    # M-Bus event log (0.0.99.98.3.255): 100 + 10 * (channel - 1) + 0..7, channels 1..4.
    *(
        (100 + 10 * (channel - 1) + offset, f"m_bus_{channel}_{what}")
        for channel in range(1, 5)
        for offset, what in enumerate(
            (
                "communication_error",
                "communication_ok",
                "replace_battery",
                "fraud_attempt",
                "clock_adjusted",
                "new_device",
                "permanent_error",
                "dead_battery",
            )
        )
    ),
    # Any log: the log itself was cleared.
    (255, "event_log_cleared"),
)
# A row of a power failure log without codes (DSMR 1-0:99.97.0), and a code not in the
# table (manufacturer-specific).
LONG_POWER_FAILURE: Final = "long_power_failure"
UNKNOWN_EVENT: Final = "unknown"
# The event entity's event types: every name, the power failure log's, and unknown.
EVENT_TYPES: Final[tuple[str, ...]] = (
    *(name for _code, name in EVENT_NAMES),
    LONG_POWER_FAILURE,
    UNKNOWN_EVENT,
)

# Event logs by OBIS value groups C.D.E (Blue Book 7.4.3 / IDIS): how the logbook names them.
EVENT_LOG_NAMES: Final = {
    "99.98.0": "standard event log",
    "99.98.1": "fraud detection log",
    "99.98.2": "disconnector control log",
    "99.98.3": "M-Bus event log",
    "99.98.4": "power quality event log",
    "99.98.5": "communication event log",
    "99.97.0": "power failure log",
}

# Clock status bits that make a time stamp unusable for ordering (Blue Book 4.1.6.1).
UNTRUSTED_CLOCK_STATUS: Final = frozenset({"invalid_value", "doubtful_value"})
