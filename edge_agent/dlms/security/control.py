"""Security control byte, security suites and the symmetric key set.

Green Book (DLMS UA 1000-2 Ed. 8.3) 9.2.7.2.2, Table 38: the security header of every
ciphered APDU starts with the security control byte (SC):

    bit 0-3  security suite id        bit 6  key set (0 unicast, 1 broadcast)
    bit 4    authentication (A)       bit 7  compression (C)
    bit 5    encryption (E)

Security suites, Green Book 9.2.3.7, Table 19:
    0  AES-GCM-128, AES-128 key wrap
    1  AES-GCM-128, ECDH P-256, ECDSA P-256 with SHA-256, AES-128 key wrap
    2  AES-GCM-256, ECDH P-384, ECDSA P-384 with SHA-384, AES-256 key wrap
"""

from __future__ import annotations

from dataclasses import dataclass

from edge_agent.dlms.choice import Choice
from edge_agent.dlms.errors import ConfigError, DecodeError, MissingKeyError, SignatureError
from edge_agent.dlms.secret import Secret
from edge_agent.dlms.security import crypto

AUTHENTICATION = 0x10
ENCRYPTION = 0x20
KEY_SET_BROADCAST = 0x40
COMPRESSION = 0x80
_SUITE_MASK = 0x0F


class SecurityPolicy(Choice):
    """Which protection an association's APDUs carry: the A and E bits of the security
    control byte (Green Book 9.2.7.2.2, Table 38). Values are the configuration spelling."""

    NONE = "none"
    AUTH = "auth"
    ENC = "enc"
    AUTHENC = "authenc"

    @property
    def authentication(self) -> bool:
        return self in (SecurityPolicy.AUTH, SecurityPolicy.AUTHENC)

    @property
    def encryption(self) -> bool:
        return self in (SecurityPolicy.ENC, SecurityPolicy.AUTHENC)


@dataclass(frozen=True, slots=True)
class SuiteParameters:
    """What a security suite fixes: key length, curve, hash, sizes on the wire.

    The curve and hash are named (as ``cryptography`` names them) rather than held as
    classes, so that a process that never signs does not load the library's native
    module (about 6 MB resident); ``curve`` and ``hash`` resolve the names.
    """

    suite: int
    name: str
    key_length: int  # EK, AK, KEK length in bytes
    curve_name: str | None  # None: suite 0 has no public-key algorithms
    hash_name: str | None
    coordinate_length: int  # one coordinate of a public key / one half (r or s) of a signature

    @property
    def signature_length(self) -> int:
        return 2 * self.coordinate_length

    @property
    def curve(self) -> type[crypto.ec.EllipticCurve] | None:
        if self.curve_name is None:
            return None
        curve: type[crypto.ec.EllipticCurve] = getattr(crypto.ec, self.curve_name.upper())
        return curve  # secp256r1 -> crypto.ec.SECP256R1

    @property
    def hash(self) -> type[crypto.hashes.SHA256 | crypto.hashes.SHA384] | None:
        if self.hash_name is None:
            return None
        hash_class: type[crypto.hashes.SHA256 | crypto.hashes.SHA384] = getattr(
            crypto.hashes, self.hash_name.upper()
        )
        return hash_class  # sha256 -> crypto.hashes.SHA256

    def require_public_key_algorithms(self, what: str) -> None:
        if self.curve_name is None:
            raise ConfigError(
                f"{what} needs ECDSA/ECDH, which security suite {self.suite} ({self.name}) "
                "does not have: use suite 1 (P-256) or suite 2 (P-384)"
            )


SUITES: dict[int, SuiteParameters] = {
    0: SuiteParameters(0, "AES-GCM-128", 16, None, None, 0),
    1: SuiteParameters(
        1, "AES-GCM-128 + ECDH/ECDSA P-256, SHA-256", 16, "secp256r1", "sha256", 32
    ),
    2: SuiteParameters(
        2, "AES-GCM-256 + ECDH/ECDSA P-384, SHA-384", 32, "secp384r1", "sha384", 48
    ),
}


def suite_parameters(suite: int) -> SuiteParameters:
    try:
        return SUITES[suite]
    except KeyError:
        raise DecodeError(
            f"security suite {suite} is not defined: expected 0, 1 or 2 (Green Book Table 19)"
        ) from None


_BY_CURVE: dict[str, SuiteParameters] = {
    params.curve_name: params for params in SUITES.values() if params.curve_name is not None
}


def suite_of_key(
    key: crypto.ec.EllipticCurvePrivateKey | crypto.ec.EllipticCurvePublicKey,
) -> SuiteParameters:
    """Suite 1 for a P-256 key, suite 2 for P-384; other curves are refused."""
    params = _BY_CURVE.get(key.curve.name)
    if params is None:
        raise SignatureError(
            f"{key.curve.name} keys are not part of any DLMS security suite: use P-256 (suite 1) or P-384 (suite 2)"
        )
    return params


@dataclass(frozen=True, slots=True)
class SecurityControl:
    """The SC byte as a value: ``SecurityControl.decode(0x31)`` is suite 1, auth+enc."""

    suite: int = 0
    authentication: bool = False
    encryption: bool = False
    broadcast: bool = False
    compression: bool = False

    def __post_init__(self) -> None:
        suite_parameters(self.suite)

    @classmethod
    def decode(cls, value: int) -> SecurityControl:
        known = _DECODED.get(value)  # a value is immutable: one per SC byte seen
        if known is not None and cls is SecurityControl:
            return known
        if not 0 <= value <= 0xFF:
            raise DecodeError(f"security control must be one byte, got {value}")
        decoded = cls(
            suite=value & _SUITE_MASK,
            authentication=bool(value & AUTHENTICATION),
            encryption=bool(value & ENCRYPTION),
            broadcast=bool(value & KEY_SET_BROADCAST),
            compression=bool(value & COMPRESSION),
        )
        if cls is SecurityControl:
            _DECODED[value] = decoded
        return decoded

    @classmethod
    def of(cls, suite: int, policy: SecurityPolicy | str) -> SecurityControl:
        """``SecurityControl.of(1, SecurityPolicy.AUTHENC)`` (or its spelling ``"authenc"``)."""
        chosen = SecurityPolicy.parse(policy, "security policy")
        return cls(suite=suite, authentication=chosen.authentication, encryption=chosen.encryption)

    @property
    def byte(self) -> int:
        return (
            self.suite
            | (AUTHENTICATION if self.authentication else 0)
            | (ENCRYPTION if self.encryption else 0)
            | (KEY_SET_BROADCAST if self.broadcast else 0)
            | (COMPRESSION if self.compression else 0)
        )

    def encode(self) -> bytes:
        return bytes((self.byte,))

    @property
    def parameters(self) -> SuiteParameters:
        return SUITES[self.suite]

    @property
    def protected(self) -> bool:
        return self.authentication or self.encryption

    def describe(self) -> str:
        """Human text for CLI output: 'SC 0x31: suite 1, authenticated and encrypted'."""
        byte = self.byte  # the byte says it all: each text is made once
        text = _DESCRIPTIONS.get(byte)
        if text is None:
            text = _DESCRIPTIONS[byte] = self._describe()
        return text

    def _describe(self) -> str:
        kind = {
            (True, True): "authenticated and encrypted",
            (True, False): "authenticated only (plaintext in clear)",
            (False, True): "encrypted only (no authentication tag)",
            (False, False): "no protection",
        }[(self.authentication, self.encryption)]
        extra = (", broadcast key" if self.broadcast else "") + (
            ", compressed" if self.compression else ""
        )
        return f"SC 0x{self.byte:02X}: suite {self.suite}, {kind}{extra}"

    def keys_needed(self) -> str:
        """Which keys a frame with this SC needs, for 'cannot decrypt' messages."""
        byte = self.byte
        text = _KEYS_NEEDED.get(byte)
        if text is None:
            text = _KEYS_NEEDED[byte] = self._keys_needed()
        return text

    def _keys_needed(self) -> str:
        if not self.protected:
            return "no key"
        ek = "the broadcast encryption key" if self.broadcast else "the encryption key (EK)"
        if self.authentication:
            return f"{ek} and the authentication key (AK)"
        return f"{ek} only (encryption-only frames have no tag, so no AK is needed)"


# Per SC byte (at most 256 entries each): the value, its description and the keys it
# needs. Every APDU of a capture or a session carries the same few bytes, and decode
# shows the texts for each.
_DECODED: dict[int, SecurityControl] = {}
_DESCRIPTIONS: dict[int, str] = {}
_KEYS_NEEDED: dict[int, str] = {}


@dataclass(frozen=True, slots=True)
class CipherKeys:
    """The symmetric keys of one association (Green Book 9.2.3.3: key types).

    ``ek`` global unicast encryption key; ``broadcast_ek`` global broadcast encryption key;
    ``dedicated_ek`` the dedicated key of the current association (ded- APDUs);
    ``ak`` authentication key; ``kek`` master key (key encryption key, key transfer and
    wrapped-key general-ciphering). Every one is optional: an operation names what it lacks.
    """

    ek: Secret | None = None
    ak: Secret | None = None
    broadcast_ek: Secret | None = None
    dedicated_ek: Secret | None = None
    kek: Secret | None = None

    def check_suite(self, suite: int) -> None:
        """Raise ConfigError when a key's length does not fit the suite (16 or 32 bytes)."""
        expected = suite_parameters(suite).key_length
        for field in ("ek", "ak", "broadcast_ek", "dedicated_ek", "kek"):
            key = getattr(self, field)
            if key is not None and len(key) != expected:
                raise ConfigError(
                    f"{_KEY_NAMES[field]} is {len(key)} bytes but security suite {suite} needs "
                    f"{expected}-byte keys ({2 * expected} hex digits)"
                )

    def require(self, field: str, why: str) -> Secret:
        key: Secret | None = getattr(self, field)
        if key is None:
            raise MissingKeyError(f"{_KEY_NAMES[field]} missing: {why}")
        return key


_KEY_NAMES = {
    "ek": "global unicast encryption key (EK)",
    "ak": "authentication key (AK)",
    "broadcast_ek": "global broadcast encryption key",
    "dedicated_ek": "dedicated key",
    "kek": "master key (KEK)",
}
