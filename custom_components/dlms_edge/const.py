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
