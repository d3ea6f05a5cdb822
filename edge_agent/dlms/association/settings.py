"""What both sides of an association share: the Association LN facts, the security and
authentication vocabulary, the client's settings, and the client's HLS pass 3/4 values.

Green Book (DLMS UA 1000-2) 9.2.7.4 (HLS), 9.3.2 (AARQ), 9.4.2.2 (application context and
mechanism names). :mod:`edge_agent.dlms.association.client` (client) and
:mod:`edge_agent.dlms.association.server` (meter) build on it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from edge_agent.dlms import apdu as x
from edge_agent.dlms.apdu.acse import ApplicationContextName, MechanismName
from edge_agent.dlms.apdu.conformance import CLIENT_DEFAULT, Conformance
from edge_agent.dlms.choice import Choice
from edge_agent.dlms.errors import ConfigError, CounterError
from edge_agent.dlms.secret import Secret
from edge_agent.dlms.security import CipherKeys, Form, SecurityControl, SecurityPolicy, crypto
from edge_agent.dlms.security.hls import (
    ecdsa_response,
    gmac_response,
    verify_ecdsa_response,
    verify_gmac_response,
)
from edge_agent.dlms.security.signing import PublicKeyOrCertificate, public_key_of
from edge_agent.dlms.system_title import SystemTitle

# --- facts shared with the server side ------------------------------------------------------

#: Association LN, current association (Blue Book 4.4.3: 0.0.40.0.0.255), class 15, and its
#: method 1 reply_to_HLS_authentication, which carries pass 3 and pass 4 (Green Book 9.2.7.4).
ASSOCIATION_LN_CLASS = 15
CURRENT_ASSOCIATION = bytes((0, 0, 40, 0, 0, 255))
REPLY_TO_HLS_AUTHENTICATION = 1
HLS_METHOD = x.CosemMethodDescriptor(
    ASSOCIATION_LN_CLASS, CURRENT_ASSOCIATION, REPLY_TO_HLS_AUTHENTICATION
)



class Authentication(Choice):
    """The authentication mechanism of an association (Green Book 9.2.7.4: no security,
    LLS, HLS-5 GMAC, HLS-7 ECDSA); values are the configuration spelling."""

    NONE = "none"
    LOW = "low"
    HLS_GMAC = "hls-gmac"
    HLS_ECDSA = "hls-ecdsa"

    @property
    def mechanism(self) -> MechanismName | None:
        """The mechanism name the AARQ carries (Green Book 9.4.2.2.3)."""
        return MECHANISMS[self]

    @property
    def hls(self) -> bool:
        return self in (Authentication.HLS_GMAC, Authentication.HLS_ECDSA)


class Pass3Signing(Choice):
    """Whether HLS pass 3 goes out in general-signing (the Sagemcom T-210D wants it).

    The session takes NEVER or ALWAYS; AUTO (try unsigned, on the meter's refusal
    re-associate signed and remember it per meter) is the blocking client's retry.
    """

    NEVER = "never"
    ALWAYS = "always"
    AUTO = "auto"


#: Authentication -> mechanism name (Green Book 9.4.2.2.3).
MECHANISMS: dict[Authentication, MechanismName | None] = {
    Authentication.NONE: None,
    Authentication.LOW: MechanismName.LOW,
    Authentication.HLS_GMAC: MechanismName.HIGH_GMAC,
    Authentication.HLS_ECDSA: MechanismName.HIGH_ECDSA,
}
HLS_MECHANISMS = frozenset({MechanismName.HIGH_GMAC, MechanismName.HIGH_ECDSA})

#: What ciphering adds around an APDU: tag, up to 3 length octets, SC, IC (4), GCM tag (12);
#: general-glo-ciphering also carries the 8-byte system title with its length octet.
CIPHERING_OVERHEAD = {
    Form.GLO: 1 + 3 + 5 + 12,
    Form.DED: 1 + 3 + 5 + 12,
    Form.GENERAL_GLO: 1 + 9 + 3 + 5 + 12,
}

#: Our proposal: every LN service we drive. general-block-transfer stays out because
#: responses in GBT are not reassembled here (the T-210D does not use it either).
CLIENT_CONFORMANCE = CLIENT_DEFAULT & ~Conformance.GENERAL_BLOCK_TRANSFER

# Ciphered contexts are needed whenever ciphered APDUs flow (Green Book 9.4.2.2.2).
CONTEXTS = {
    False: ApplicationContextName.LOGICAL_NAME,
    True: ApplicationContextName.LOGICAL_NAME_WITH_CIPHERING,
}

# Plain APDUs a meter may send inside a ciphered association: it sends them when it could
# not decipher or refuses before deciphering (trace: plain ExceptionResponse to pass 3).
PLAIN_REFUSALS = (x.ExceptionResponse, x.ConfirmedServiceError)


_Setting = TypeVar("_Setting")


def required(value: _Setting | None, what: str) -> _Setting:
    """A setting that :class:`ClientSettings` validation guarantees on this path; the
    ConfigError is for callers that bypassed it."""
    if value is None:
        raise ConfigError(f"{what} is needed here but was not given")
    return value


def spend_invocation_counter(source: Callable[[], int]) -> int:
    value = source()
    if not isinstance(value, int) or not 0 <= value <= 0xFFFF_FFFF:
        raise CounterError(
            f"invocation counter source returned {value!r}; expected an integer 0..2**32-1"
        )
    return value


# --- settings -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ClientSettings:
    """What the client brings to an association. The link layer (client SAP, server
    address) is not here: the session only sees APDUs."""

    # The three choices also accept their spelling as a plain string ("authenc").
    security: SecurityPolicy = SecurityPolicy.NONE
    suite: int = 0
    authentication: Authentication = Authentication.NONE
    password: Secret | None = None  # LLS
    system_title: bytes | None = None  # the client's, 8 bytes
    ek: Secret | None = None
    ak: Secret | None = None
    dedicated_key: Secret | None = None  # fresh per association, from the caller's RNG
    signing_key: crypto.ec.EllipticCurvePrivateKey | None = None  # HLS-7, general-signing
    server_public_key: PublicKeyOrCertificate | None = None  # HLS-7 f(CtoS), signed answers
    pass3_signing: Pass3Signing = Pass3Signing.NEVER  # AUTO is the blocking client's retry
    conformance: Conformance = CLIENT_CONFORMANCE
    max_receive_pdu_size: int = 0xFFFF
    general_glo_ciphering: bool = False  # protect with 0xDB instead of service-specific glo-
    first_invoke_id: int = 1  # the trace's pass 3 carries invoke-id 1 (0xC1)
    high_priority: bool = True
    check_invoke_id: bool = True
    # The Association LN object pass 3 goes to: the current association as the standard
    # says; a few installations address their client's own instance (e.g. 0.0.40.0.2.255).
    association: bytes = CURRENT_ASSOCIATION

    @property
    def hls_method(self) -> x.CosemMethodDescriptor:
        return x.CosemMethodDescriptor(ASSOCIATION_LN_CLASS, self.association, REPLY_TO_HLS_AUTHENTICATION)

    def __post_init__(self) -> None:
        object.__setattr__(self, "security", SecurityPolicy.parse(self.security, "security policy"))
        object.__setattr__(
            self, "authentication", Authentication.parse(self.authentication, "authentication")
        )
        signing = Pass3Signing.parse(self.pass3_signing, "pass3_signing")
        if signing is Pass3Signing.AUTO:
            raise ConfigError(
                "pass3_signing 'auto': the session takes never or always "
                "(auto retries with always after Pass3SigningRequired, one level up)"
            )
        object.__setattr__(self, "pass3_signing", signing)
        sc = self.security_control  # validates the suite
        if not 0 <= self.first_invoke_id <= 15:
            raise ConfigError(f"first_invoke_id must be 0..15, got {self.first_invoke_id}")
        if not 12 <= self.max_receive_pdu_size <= 0xFFFF:
            raise ConfigError(
                f"max_receive_pdu_size must be 12..65535, got {self.max_receive_pdu_size}"
            )
        mechanism = self.mechanism
        if mechanism is MechanismName.LOW and self.password is None:
            raise ConfigError("authentication low needs a password (LLS)")
        needs_title = sc.protected or mechanism in HLS_MECHANISMS
        if needs_title and self.system_title is None:
            raise ConfigError(
                "ciphering and HLS need the client system title (system_title: 16 hex digits)"
            )
        title = SystemTitle.optional(
            self.system_title, what="client system title", error=ConfigError
        )
        object.__setattr__(self, "system_title", title)
        if (sc.protected or mechanism is MechanismName.HIGH_GMAC) and (
            self.ek is None or self.ak is None
        ):
            raise ConfigError(
                f"security {self.security} with authentication {self.authentication} needs "
                "the EK and the AK (ek, ak)"
            )
        if mechanism is MechanismName.HIGH_ECDSA and (
            self.signing_key is None or self.server_public_key is None
        ):
            raise ConfigError(
                "authentication hls-ecdsa needs the client signing key (signing_key) and the "
                "meter's certificate or public key"
            )
        if self.pass3_signing is Pass3Signing.ALWAYS:
            if mechanism not in HLS_MECHANISMS:
                raise ConfigError(
                    "pass3_signing: always applies to HLS only "
                    "(authentication hls-gmac or hls-ecdsa)"
                )
            if self.signing_key is None or self.suite == 0 or self.ek is None or self.ak is None:
                raise ConfigError(
                    "pass3_signing: always needs suite 1 or 2, the EK and AK, and the client "
                    "signing key (signing_key) whose certificate the meter knows"
                )
        if self.dedicated_key is not None and not sc.encryption:
            raise ConfigError(
                "a dedicated key needs an encrypting security policy (enc or authenc)"
            )

    @property
    def security_control(self) -> SecurityControl:
        return SecurityControl.of(self.suite, self.security)

    @property
    def mechanism(self) -> MechanismName | None:
        return self.authentication.mechanism

    @property
    def ciphered_context(self) -> bool:
        return self.security_control.protected

    @property
    def keys(self) -> CipherKeys:
        return CipherKeys(ek=self.ek, ak=self.ak, dedicated_ek=self.dedicated_key)


# --- the client's HLS values (Green Book 9.2.7.4) -----------------------------------------


def hls_reply(
    settings: ClientSettings,
    stoc: bytes,
    ctos: bytes,
    server_system_title: bytes | None,
    next_invocation_counter: Callable[[], int],
) -> bytes:
    """f(StoC): HLS-5 GMAC with our system title and a fresh IC, or HLS-7 ECDSA."""
    if settings.mechanism is MechanismName.HIGH_GMAC:
        return gmac_response(
            stoc,
            keys=settings.keys,
            system_title=required(settings.system_title, "the client system title"),
            invocation_counter=spend_invocation_counter(next_invocation_counter),
            suite=settings.suite,
        )
    return ecdsa_response(
        required(settings.signing_key, "the client signing key"),
        own_system_title=required(settings.system_title, "the client system title"),
        peer_system_title=required(server_system_title, "the meter system title"),
        challenge_received=stoc,
        challenge_sent=ctos,
    )


def verify_hls_reply(
    settings: ClientSettings,
    f_ctos: bytes,
    ctos: bytes,
    stoc: bytes,
    server_system_title: bytes | None,
) -> None:
    """Check the meter's f(CtoS) of pass 4; AuthenticationError names the likely cause."""
    if settings.mechanism is MechanismName.HIGH_GMAC:
        verify_gmac_response(
            f_ctos,
            ctos,
            keys=settings.keys,
            system_title=required(server_system_title, "the meter system title"),
            suite=settings.suite,
        )
        return
    signer = settings.server_public_key
    if signer is None:  # (required() would widen the key-or-certificate union to object)
        raise ConfigError("the meter's certificate or public key is needed here but was not given")
    verify_ecdsa_response(
        f_ctos,
        public_key_of(signer, "HLS-7 pass 4"),
        own_system_title=required(settings.system_title, "the client system title"),
        peer_system_title=required(server_system_title, "the meter system title"),
        challenge_sent=ctos,
        challenge_received=stoc,
    )
