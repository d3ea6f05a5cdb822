"""Authentication of application associations (Green Book 9.2.7.4, 9.3.3).

- LLS (mechanism 1): the calling-authentication-value is the password itself.
- HLS-5 GMAC (mechanism 5): pass 3/4 carry f(StoC) and f(CtoS) with
      f(X) = SC ‖ IC ‖ GMAC(EK, IV = system title ‖ IC, AAD = SC ‖ AK ‖ X)
  where system title and IC are the computing party's own, SC has only the
  authentication bit and the suite, and the GMAC is the 12-byte GCM tag.
  The client computes f(StoC) with its own system title; it verifies the meter's
  f(CtoS) with the meter's system title and the IC the meter put in front of it.
- HLS-7 ECDSA (mechanism 7): the client sends
      f(StoC) = ECDSA(system-title-C ‖ system-title-S ‖ StoC ‖ CtoS)
  and the server answers f(CtoS) = ECDSA(system-title-S ‖ system-title-C ‖ CtoS ‖ StoC):
  each signs its own system title, the peer's, the challenge it received, then its own.

Challenges (8..64 bytes) come from the caller (os.urandom): no randomness source here.
"""

from __future__ import annotations

import hmac
import struct

from edge_agent.dlms.errors import AuthenticationError, DecodeError, EncodeError, SignatureError
from edge_agent.dlms.secret import Secret
from edge_agent.dlms.security import crypto
from edge_agent.dlms.security.ciphering import LIKELY_CAUSES, MAX_INVOCATION_COUNTER, TAG_LENGTH
from edge_agent.dlms.security.control import CipherKeys, SecurityControl
from edge_agent.dlms.security.signing import ecdsa_sign, ecdsa_verify
from edge_agent.dlms.system_title import SystemTitle

MIN_CHALLENGE = 8
MAX_CHALLENGE = 64
_SC_IC = struct.Struct(">BI")
GMAC_RESPONSE_LENGTH = _SC_IC.size + TAG_LENGTH


def check_password(expected: Secret, received: bytes) -> None:
    """LLS: constant-time comparison; the message never shows either value."""
    if not hmac.compare_digest(expected.reveal(), bytes(received)):
        raise AuthenticationError(
            "LLS password does not match: check the password configured for this client SAP"
        )


def check_challenge(challenge: bytes, what: str = "challenge") -> bytes:
    if not MIN_CHALLENGE <= len(challenge) <= MAX_CHALLENGE:
        raise EncodeError(f"{what} must be 8..64 bytes (Green Book 9.2.7.4), got {len(challenge)}")
    return bytes(challenge)


def _gmac(
    keys: CipherKeys,
    sc: SecurityControl,
    system_title: bytes,
    invocation_counter: int,
    challenge: bytes,
) -> bytes:
    ek = keys.require("ek", "HLS-5 (GMAC) uses the global unicast encryption key")
    ak = keys.require("ak", "HLS-5 (GMAC) authenticates with the AK")
    keys.check_suite(sc.suite)
    encryptor = crypto.Cipher(
        crypto.algorithms.AES(ek.reveal()),
        crypto.modes.GCM(system_title + invocation_counter.to_bytes(4, "big")),
    ).encryptor()
    encryptor.authenticate_additional_data(sc.encode() + ak.reveal() + challenge)
    encryptor.finalize()
    return encryptor.tag[:TAG_LENGTH]


def gmac_response(
    challenge: bytes,
    *,
    keys: CipherKeys,
    system_title: bytes,
    invocation_counter: int,
    suite: int = 0,
) -> bytes:
    """f(challenge) with our own system title and IC (client: f(StoC); meter: f(CtoS))."""
    system_title = SystemTitle(system_title, error=EncodeError)
    if not 0 <= invocation_counter <= MAX_INVOCATION_COUNTER:
        raise EncodeError(f"invocation counter {invocation_counter} outside 0..2**32-1")
    sc = SecurityControl(suite=suite, authentication=True)
    tag = _gmac(keys, sc, system_title, invocation_counter, bytes(challenge))
    return _SC_IC.pack(sc.byte, invocation_counter) + tag


def verify_gmac_response(
    response: bytes,
    challenge: bytes,
    *,
    keys: CipherKeys,
    system_title: bytes,
    suite: int | None = None,
) -> int:
    """Check the peer's f(challenge) (``system_title`` is the peer's); return its IC.

    The returned invocation counter should then go through the receive guard.
    """
    if len(response) != GMAC_RESPONSE_LENGTH:
        raise DecodeError(
            f"HLS-5 response of {len(response)} bytes: SC (1) ‖ IC (4) ‖ GMAC (12) = 17 expected"
        )
    sc_byte: int
    invocation_counter: int
    sc_byte, invocation_counter = _SC_IC.unpack_from(response, 0)
    sc = SecurityControl.decode(sc_byte)
    if not sc.authentication or sc.encryption or sc.broadcast or sc.compression:
        raise AuthenticationError(
            f"HLS-5 response has {sc.describe()}; only the authentication bit may be set (0x1{sc.suite})"
        )
    if suite is not None and sc.suite != suite:
        raise AuthenticationError(
            f"HLS-5 response uses security suite {sc.suite}, the association uses suite {suite}"
        )
    expected = _gmac(keys, sc, bytes(system_title), invocation_counter, bytes(challenge))
    if not hmac.compare_digest(expected, bytes(response[_SC_IC.size :])):
        raise AuthenticationError(
            f"HLS-5 GMAC of the peer does not verify (IC {invocation_counter}, system title "
            f"{bytes(system_title).hex().upper()}): likely {LIKELY_CAUSES}"
        )
    return invocation_counter


def _ecdsa_data(signer_title: bytes, other_title: bytes, received: bytes, sent: bytes) -> bytes:
    signer = SystemTitle(signer_title, error=EncodeError)
    other = SystemTitle(other_title, error=EncodeError)
    return signer + other + bytes(received) + bytes(sent)


def ecdsa_response(
    signing_key: crypto.ec.EllipticCurvePrivateKey,
    *,
    own_system_title: bytes,
    peer_system_title: bytes,
    challenge_received: bytes,
    challenge_sent: bytes,
) -> bytes:
    """HLS-7: the client's f(StoC) (received = StoC, sent = CtoS), or the meter's f(CtoS)."""
    return ecdsa_sign(
        signing_key,
        _ecdsa_data(own_system_title, peer_system_title, challenge_received, challenge_sent),
    )


def verify_ecdsa_response(
    response: bytes,
    peer_public_key: crypto.ec.EllipticCurvePublicKey,
    *,
    own_system_title: bytes,
    peer_system_title: bytes,
    challenge_sent: bytes,
    challenge_received: bytes,
) -> None:
    """Verify the peer's HLS-7 answer to ``challenge_sent`` (ours)."""
    try:
        ecdsa_verify(
            peer_public_key,
            _ecdsa_data(peer_system_title, own_system_title, challenge_sent, challenge_received),
            bytes(response),
            "HLS-7 response",
        )
    except SignatureError as exc:
        raise AuthenticationError(
            f"{exc} (also check both system titles: the peer's must match its certificate)"
        ) from None
