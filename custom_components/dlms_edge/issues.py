"""Repair issues raised from the meter's retained `health` topic.

Not named `repairs.py`: Home Assistant loads that module as a repairs platform, which
must offer fix flows. These issues are informational: the fix happens on the agent side
(keys, counters, wiring), and the issue clears itself when health returns to `ok`.
"""

from __future__ import annotations

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir

from .const import DOCUMENTATION_URL, DOMAIN, HEALTH_CODE_OTHER, HEALTH_CODES
from .models import Health

# Codes after which no value arrives at all are errors; the others leave the agent
# working on its own (it retries), so they are warnings.
_SEVERITY: dict[str, ir.IssueSeverity] = {
    "wrong_key": ir.IssueSeverity.ERROR,
    "counter_out_of_step": ir.IssueSeverity.ERROR,
    "association_refused": ir.IssueSeverity.ERROR,
    "signature_rejected": ir.IssueSeverity.ERROR,
    "config_error": ir.IssueSeverity.ERROR,
    "access_denied": ir.IssueSeverity.ERROR,
    "unreachable": ir.IssueSeverity.WARNING,
    "push_stopped": ir.IssueSeverity.WARNING,
    "bad_data": ir.IssueSeverity.WARNING,  # often a noisy line: the next telegram may do
}


def health_issue_id(entry: ConfigEntry) -> str:
    """One issue per meter: a new code replaces the previous text."""
    return f"meter_problem_{entry.entry_id}"


@callback
def async_update_health_issue(hass: HomeAssistant, entry: ConfigEntry, health: Health) -> None:
    """Create, replace or delete the meter's repair issue to match `health`."""
    if not health.problem:
        ir.async_delete_issue(hass, DOMAIN, health_issue_id(entry))
        return
    code = health.code if health.code in HEALTH_CODES else HEALTH_CODE_OTHER
    ir.async_create_issue(
        hass,
        DOMAIN,
        health_issue_id(entry),
        is_fixable=False,
        severity=_SEVERITY.get(code, ir.IssueSeverity.ERROR),
        translation_key=code,
        translation_placeholders={
            "meter": entry.title,
            "code": health.code or "",
            "message": health.message,
            "since": health.since or "",
        },
        learn_more_url=f"{DOCUMENTATION_URL}#troubleshooting",
    )


@callback
def async_delete_health_issue(hass: HomeAssistant, entry: ConfigEntry) -> None:
    """Drop the issue of an unloaded or removed entry: nobody would clear it."""
    ir.async_delete_issue(hass, DOMAIN, health_issue_id(entry))
