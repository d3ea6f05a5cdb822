"""Persistent agent state (I/O allowed here): invocation counters and learned meter facts."""

from edge_agent.state.counters import InvocationCounterStore
from edge_agent.state.facts import FactStore

__all__ = ["FactStore", "InvocationCounterStore"]
