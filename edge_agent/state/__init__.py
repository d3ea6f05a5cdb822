"""Persistent agent state (I/O allowed here): invocation counters and learned meter facts."""

import os
from pathlib import Path

from edge_agent.state.counters import InvocationCounterStore
from edge_agent.state.facts import FactStore

__all__ = ["FactStore", "InvocationCounterStore", "default_state_dir"]


def default_state_dir() -> Path:
    """/var/lib/dlms-edge for root (the agent's service), else $XDG_STATE_HOME/dlms-edge or
    ~/.local/state/dlms-edge. The CLI and the agent of one user share it, and with it the
    invocation counters of shared keys."""
    if os.geteuid() == 0:
        return Path("/var/lib/dlms-edge")
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "dlms-edge"
