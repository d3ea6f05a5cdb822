"""Replay protection of received APDUs (Green Book 9.2.7.2.3: invocation counter).

The invocation counter of every APDU a peer sends under one key must be greater than the
last one accepted from it; a receiver keeps the highest accepted value per (peer system
title, key). Sans-IO: the caller persists ``snapshot()`` if it wants the guard to survive.
"""

from __future__ import annotations

from edge_agent.dlms.errors import ReplayError


class ReceiveCounterGuard:
    """Last accepted invocation counter per (peer system title, key id)."""

    __slots__ = ("_last",)

    def __init__(self, last: dict[tuple[bytes, str], int] | None = None) -> None:
        self._last: dict[tuple[bytes, str], int] = dict(last or {})

    def last(self, system_title: bytes, key_id: str = "ek") -> int | None:
        return self._last.get((bytes(system_title), key_id))

    def check(self, system_title: bytes, key_id: str, invocation_counter: int) -> None:
        """Raise ReplayError unless ``invocation_counter`` is above the last accepted one."""
        last = self._last.get((bytes(system_title), key_id))
        if last is not None and invocation_counter <= last:
            raise ReplayError(
                f"invocation counter {invocation_counter} from {bytes(system_title).hex().upper()} "
                f"({key_id}) is not above the last accepted {last}: a replayed or reordered APDU, "
                "rejected and not used; if the meter was reset or re-keyed, clear the stored counter"
            )

    def accept(self, system_title: bytes, key_id: str, invocation_counter: int) -> None:
        """Check, then record ``invocation_counter``; call only after the APDU verified."""
        self.check(system_title, key_id, invocation_counter)
        self._last[(bytes(system_title), key_id)] = invocation_counter

    def snapshot(self) -> dict[tuple[bytes, str], int]:
        return dict(self._last)

    def __repr__(self) -> str:
        return f"<ReceiveCounterGuard {len(self._last)} peers/keys>"
