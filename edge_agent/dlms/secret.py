"""Key material that cannot leak by accident.

``Secret`` holds bytes but its ``repr``/``str`` never show them, it refuses to be
pickled or formatted as hex by f-strings, and comparison is constant-time. Take the
raw bytes with :meth:`Secret.reveal` only where a cipher needs them.
"""

from __future__ import annotations

from typing import NoReturn


class Secret:
    __slots__ = ("_value", "name")

    def __init__(self, value: bytes, name: str = "key") -> None:
        if not isinstance(value, (bytes, bytearray, memoryview)):
            raise TypeError(f"{name} must be bytes")
        self._value = bytes(value)
        self.name = name

    @classmethod
    def from_hex(cls, text: str, name: str = "key", length: int | None = None) -> Secret:
        from edge_agent.dlms.errors import ConfigError

        cleaned = "".join(text.split()).removeprefix("0x")
        try:
            raw = bytes.fromhex(cleaned)
        except ValueError:
            raise ConfigError(f"{name} is not hexadecimal (expected {2 * (length or 16)} hex digits)") from None
        if length is not None and len(raw) != length:
            raise ConfigError(f"{name} must be {length} bytes ({2 * length} hex digits), got {len(raw)} bytes")
        return cls(raw, name)

    def reveal(self) -> bytes:
        return self._value

    def __len__(self) -> int:
        return len(self._value)

    def __repr__(self) -> str:
        return f"<Secret {self.name}: {len(self._value)} bytes>"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        import hmac  # here: its OpenSSL hashes load in ~2 ms, and most runs compare no keys

        return hmac.compare_digest(self._value, other._value)

    def __hash__(self) -> int:
        return hash((Secret, len(self._value)))

    def __reduce__(self) -> NoReturn:
        raise TypeError("Secret values are not picklable")
