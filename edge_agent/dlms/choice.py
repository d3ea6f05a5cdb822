"""Settings with a fixed set of spellings: security policy, authentication, pass-3 signing.

Each is a :class:`Choice`, a ``StrEnum`` whose values are the spellings of the command
line, the configuration file and MQTT, so a member compares equal to (and serialises as)
its string and those contracts do not change.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Self

from edge_agent.dlms.errors import ConfigError


class Choice(StrEnum):
    """Base of the setting enums; :meth:`parse` turns a spelling into a member."""

    @classmethod
    def parse(cls, value: str, what: str) -> Self:
        """The member spelled ``value``; ConfigError naming ``what`` and the spellings."""
        try:
            return cls(value)
        except ValueError:
            raise ConfigError(
                f"{what} {value!r}: expected one of {', '.join(cls)}"
            ) from None
