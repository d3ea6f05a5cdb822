"""Repair issues: a meter's health, an agent offline for long, a meter that left.

Health issues are informational: the fix happens on the agent side (keys, counters,
wiring), and the issue clears itself when health returns to `ok`. A meter whose retained
topics the agent cleared gets a fixable issue (repairs.py) that removes its device.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir

from .const import DOCUMENTATION_URL, DOMAIN, HEALTH_CODE_OTHER, HEALTH_CODES
from .models import Health

if TYPE_CHECKING:
    from .coordinator import DlmsEdgeMeter

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

AGENT_OFFLINE = "agent_offline"
METER_REMOVED = "meter_removed"


def health_issue_id(entry: ConfigEntry, key: str) -> str:
    """One issue per meter: a new code replaces the previous text."""
    return f"meter_problem_{entry.entry_id}_{key}"


def agent_offline_issue_id(entry: ConfigEntry) -> str:
    return f"{AGENT_OFFLINE}_{entry.entry_id}"


def meter_removed_issue_id(entry: ConfigEntry, key: str) -> str:
    return f"{METER_REMOVED}_{entry.entry_id}_{key}"


@callback
def async_update_health_issue(
    hass: HomeAssistant, entry: ConfigEntry, meter: DlmsEdgeMeter, health: Health | None
) -> None:
    """Create, replace or delete the meter's repair issue to match `health`."""
    if health is None or not health.problem:
        ir.async_delete_issue(hass, DOMAIN, health_issue_id(entry, meter.key))
        return
    code = health.code if health.code in HEALTH_CODES else HEALTH_CODE_OTHER
    ir.async_create_issue(
        hass,
        DOMAIN,
        health_issue_id(entry, meter.key),
        is_fixable=False,
        severity=_SEVERITY.get(code, ir.IssueSeverity.ERROR),
        translation_key=code,
        translation_placeholders={
            "meter": meter.name,
            "code": health.code or "",
            "message": health.message,
            "since": health.since or "",
        },
        learn_more_url=f"{DOCUMENTATION_URL}#troubleshooting",
    )


@callback
def async_raise_agent_offline_issue(hass: HomeAssistant, entry: ConfigEntry, seconds: int) -> None:
    ir.async_create_issue(
        hass,
        DOMAIN,
        agent_offline_issue_id(entry),
        is_fixable=False,
        severity=ir.IssueSeverity.WARNING,
        translation_key=AGENT_OFFLINE,
        translation_placeholders={"agent": entry.title, "minutes": str(seconds // 60)},
        learn_more_url=f"{DOCUMENTATION_URL}#troubleshooting",
    )


@callback
def async_delete_agent_offline_issue(hass: HomeAssistant, entry: ConfigEntry) -> None:
    ir.async_delete_issue(hass, DOMAIN, agent_offline_issue_id(entry))


@callback
def async_raise_meter_removed_issue(
    hass: HomeAssistant, entry: ConfigEntry, key: str, name: str
) -> None:
    ir.async_create_issue(
        hass,
        DOMAIN,
        meter_removed_issue_id(entry, key),
        is_fixable=True,
        is_persistent=True,
        severity=ir.IssueSeverity.WARNING,
        translation_key=METER_REMOVED,
        translation_placeholders={"meter": name, "agent": entry.title},
        data={"entry_id": entry.entry_id, "key": key},
    )


@callback
def async_delete_meter_removed_issue(hass: HomeAssistant, entry: ConfigEntry, key: str) -> None:
    ir.async_delete_issue(hass, DOMAIN, meter_removed_issue_id(entry, key))


@callback
def async_delete_entry_issues(hass: HomeAssistant, entry: ConfigEntry) -> None:
    """Drop the issues of an unloaded or removed entry: nobody would clear them."""
    registry = ir.async_get(hass)
    for domain, issue_id in list(registry.issues):
        if domain == DOMAIN and entry.entry_id in issue_id:
            ir.async_delete_issue(hass, DOMAIN, issue_id)
