"""AES key wrap (RFC 3394), used by Security setup key_transfer (Blue Book 4.4.7, method 2)
and by wrapped-key general-ciphering (Green Book 9.2.3.4.4): the master key (KEK) wraps
the new key, with the default IV A6A6A6A6A6A6A6A6.
"""

from __future__ import annotations

from edge_agent.dlms.errors import AuthenticationError, DecodeError, EncodeError
from edge_agent.dlms.secret import Secret
from edge_agent.dlms.security import crypto

_KEK_LENGTHS = (16, 24, 32)


def _check_kek(kek: Secret) -> bytes:
    if len(kek) not in _KEK_LENGTHS:
        raise EncodeError(f"key encryption key must be 16, 24 or 32 bytes, got {len(kek)}")
    return kek.reveal()


def wrap(kek: Secret, key: Secret) -> bytes:
    """Wrap ``key`` (16 bytes or a multiple of 8, at least 16) under ``kek``."""
    if len(key) < 16 or len(key) % 8:
        raise EncodeError(
            f"a wrapped key must be at least 16 bytes and a multiple of 8, got {len(key)}"
        )
    return crypto.keywrap.aes_key_wrap(_check_kek(kek), key.reveal())


def unwrap(kek: Secret, wrapped: bytes, name: str = "unwrapped key") -> Secret:
    """Unwrap; an integrity failure (wrong KEK or damaged data) raises AuthenticationError."""
    if len(wrapped) < 24 or len(wrapped) % 8:
        raise DecodeError(
            f"wrapped key must be at least 24 bytes and a multiple of 8, got {len(wrapped)}"
        )
    try:
        return Secret(crypto.keywrap.aes_key_unwrap(_check_kek(kek), bytes(wrapped)), name)
    except crypto.keywrap.InvalidUnwrap:
        raise AuthenticationError(
            "AES key unwrap integrity check failed (RFC 3394 2.2.3): wrong master key (KEK) "
            "or damaged wrapped key"
        ) from None
