"""The system title: the 8 octets that name a DLMS entity (Green Book 4.3.4).

It goes into the GCM initialisation vector (system title ‖ invocation counter, Green Book
9.2.7.2.4), the AARQ calling-AP-title and AARE responding-AP-title, general-signing and
the subject commonName of DLMS certificates (16 hexadecimal digits, Green Book 9.2.6).
The first three octets are usually the manufacturer's FLAG id (``KFM`` Kaifa, ``SAG``
Sagemcom, ``LGZ`` Landis+Gyr), the other five a serial number.

:class:`SystemTitle` is ``bytes`` checked once: every API that takes a system title
accepts plain bytes and turns them into a ``SystemTitle`` (a no-op for one already made),
so the length rule lives here and nowhere else.
"""

from __future__ import annotations

from typing import Self

from edge_agent.dlms.errors import ConfigError, DecodeError, DlmsError

LENGTH = 8
_MANUFACTURER_LENGTH = 3


class SystemTitle(bytes):
    """Eight octets; ``repr`` shows hex and the manufacturer code when there is one."""

    __slots__ = ()

    def __new__(
        cls,
        value: bytes | bytearray | memoryview,
        *,
        what: str = "system title",
        error: type[DlmsError] = DecodeError,
    ) -> Self:
        """Check ``value``; a wrong length raises ``error`` (the caller's view of the
        mistake: ConfigError for settings, DecodeError for received bytes, EncodeError for
        what we are about to send) with a message naming ``what``."""
        if isinstance(value, cls):
            return value
        raw = bytes(value)
        if len(raw) != LENGTH:
            raise error(f"{what} must be {LENGTH} bytes (16 hex digits), got {len(raw)} bytes")
        return super().__new__(cls, raw)

    @classmethod
    def from_hex(cls, text: str, *, what: str = "system title") -> Self:
        """``SystemTitle.from_hex("4B464D1020304050")``; spaces and a ``0x`` prefix are fine."""
        cleaned = "".join(text.split()).removeprefix("0x")
        try:
            raw = bytes.fromhex(cleaned)
        except ValueError:
            raise ConfigError(f"{what} is not hexadecimal (expected 16 hex digits)") from None
        return cls(raw, what=what, error=ConfigError)

    @classmethod
    def optional(
        cls,
        value: bytes | bytearray | memoryview | None,
        *,
        what: str = "system title",
        error: type[DlmsError] = DecodeError,
    ) -> Self | None:
        """``None`` stays ``None``; anything else is checked as by the constructor."""
        return None if value is None else cls(value, what=what, error=error)

    @property
    def manufacturer(self) -> str | None:
        """The FLAG id of the first three octets (``"KFM"``), or None when they are not
        three capital letters (some meters put a binary prefix there)."""
        code = self[:_MANUFACTURER_LENGTH]
        if all(0x41 <= octet <= 0x5A for octet in code):
            return code.decode("ascii")
        return None

    @property
    def serial(self) -> bytes:
        """The five octets after the manufacturer code (usually the serial number)."""
        return bytes(self[_MANUFACTURER_LENGTH:])

    @property
    def text(self) -> str:
        """Upper-case hex, as in certificates and configuration: ``"4B464D1020304050"``."""
        return self.hex().upper()

    def __repr__(self) -> str:
        maker = self.manufacturer
        return f"SystemTitle({self.text}{f', {maker}' if maker else ''})"

    def __str__(self) -> str:
        return self.text
