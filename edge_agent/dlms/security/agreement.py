"""ECDH key agreement (Green Book 9.2.3.4.6, NIST SP 800-56A Rev. 2).

Schemes the Green Book uses (9.2.3.4.6.2-4):

- Ephemeral Unified Model C(2e, 0s, ECC CDH): both parties use ephemeral keys, each
  signed with its signing key; Security setup ``key_agreement`` (method 3) agrees the
  global unicast/broadcast keys or the AK this way.
- One-Pass Diffie-Hellman C(1e, 1s, ECC CDH): the originator (party U) uses an ephemeral
  key, the recipient (V) its static key-agreement key; general-ciphering agreed-key with
  key-parameters 0x01, the ephemeral public key travels in key-ciphered-data.
- Static Unified Model C(0e, 2s, ECC CDH): both static keys and a nonce from U (the
  transaction-id of general-ciphering), key-parameters 0x02.

The shared secret Z goes through the single-step concatenation KDF of SP 800-56A 5.8.1
with the suite's hash (SHA-256 suite 1, SHA-384 suite 2):
    key = H(00000001 ‖ Z ‖ OtherInfo) truncated to the key length,
    OtherInfo = AlgorithmID ‖ PartyUInfo ‖ PartyVInfo [‖ SuppPubInfo ‖ SuppPrivInfo]
with AlgorithmID the DLMS OID of the algorithm the key is for (2.16.756.5.8.3.x), PartyUInfo
the system title of U (the client for C(2e,0s), the originator otherwise), PartyVInfo the
system title of V. For C(0e, 2s) the nonce is placed in SuppPubInfo: check this against
the Green Book edition your meter follows (the exact OtherInfo table was not verified here).
"""

from __future__ import annotations

import enum

from edge_agent.dlms.errors import ConfigError, SignatureError
from edge_agent.dlms.secret import Secret
from edge_agent.dlms.security import crypto
from edge_agent.dlms.security.certificates import public_key_from_point, public_key_to_point
from edge_agent.dlms.security.control import suite_of_key, suite_parameters
from edge_agent.dlms.security.signing import ecdsa_sign, ecdsa_verify
from edge_agent.dlms.system_title import SystemTitle

_DLMS_ALGORITHM_ARC = bytes.fromhex(
    "608574050803"
)  # 2.16.756.5.8.3 (DLMS UA cryptographic algorithms)


class Algorithm(enum.Enum):
    """What the derived key is for; value = last arc of the OID (Green Book Table 20)."""

    AES_GCM_128 = 0
    AES_GCM_256 = 1
    AES_WRAP_128 = 2
    AES_WRAP_256 = 3

    @property
    def algorithm_id(self) -> bytes:
        return _DLMS_ALGORITHM_ARC + bytes((self.value,))

    @property
    def key_length(self) -> int:
        return 16 if self in (Algorithm.AES_GCM_128, Algorithm.AES_WRAP_128) else 32


class Scheme(enum.Enum):
    EPHEMERAL_UNIFIED_MODEL = "C(2e, 0s, ECC CDH)"
    ONE_PASS_DIFFIE_HELLMAN = "C(1e, 1s, ECC CDH)"
    STATIC_UNIFIED_MODEL = "C(0e, 2s, ECC CDH)"


def shared_secret(
    private_key: crypto.ec.EllipticCurvePrivateKey,
    peer_public_key: crypto.ec.EllipticCurvePublicKey,
) -> Secret:
    """Z of ECC CDH (SP 800-56A 5.7.1.2); both keys on the same curve."""
    if private_key.curve.name != peer_public_key.curve.name:
        raise ConfigError(
            f"key agreement between a {private_key.curve.name} and a {peer_public_key.curve.name} key: "
            "both parties must use the curve of the security suite"
        )
    return Secret(private_key.exchange(crypto.ec.ECDH(), peer_public_key), "shared secret Z")


def other_info(
    algorithm: Algorithm,
    party_u_system_title: bytes,
    party_v_system_title: bytes,
    supp_pub_info: bytes = b"",
    supp_priv_info: bytes = b"",
) -> bytes:
    party_u = SystemTitle(party_u_system_title, what="party U system title", error=ConfigError)
    party_v = SystemTitle(party_v_system_title, what="party V system title", error=ConfigError)
    return (
        algorithm.algorithm_id
        + party_u
        + party_v
        + supp_pub_info
        + supp_priv_info
    )


def kdf(z: Secret, info: bytes, *, suite: int, length: int) -> Secret:
    """Concatenation KDF (SP 800-56A 5.8.1.1) with the suite's hash."""
    params = suite_parameters(suite)
    params.require_public_key_algorithms("key derivation")
    assert params.hash is not None
    kdf_hash = crypto.concatkdf.ConcatKDFHash(algorithm=params.hash(), length=length, otherinfo=info)
    derived = kdf_hash.derive(z.reveal())
    return Secret(derived, "derived key")


def agree(
    scheme: Scheme,
    private_key: crypto.ec.EllipticCurvePrivateKey,
    peer_public_key: crypto.ec.EllipticCurvePublicKey,
    *,
    algorithm: Algorithm,
    party_u_system_title: bytes,
    party_v_system_title: bytes,
    nonce: bytes = b"",
) -> Secret:
    """Derive the key of ``scheme`` from our private key and the peer's public key.

    The caller picks the keys the scheme prescribes (ephemeral or static, see module doc);
    both parties derive the same key with the same U/V system titles.
    """
    params = suite_of_key(private_key)
    if scheme is Scheme.STATIC_UNIFIED_MODEL and not nonce:
        raise ConfigError(
            "Static Unified Model C(0e, 2s) needs party U's nonce (the transaction-id)"
        )
    if scheme is not Scheme.STATIC_UNIFIED_MODEL and nonce:
        raise ConfigError(f"{scheme.value} takes no nonce: freshness comes from the ephemeral key")
    if algorithm.key_length != params.key_length and algorithm in (
        Algorithm.AES_GCM_128,
        Algorithm.AES_GCM_256,
    ):
        raise ConfigError(f"{algorithm.name} keys do not belong to security suite {params.suite}")
    z = shared_secret(private_key, peer_public_key)
    info = other_info(algorithm, party_u_system_title, party_v_system_title, supp_pub_info=nonce)
    return kdf(z, info, suite=params.suite, length=algorithm.key_length)


def key_agreement_data(
    key_id: int,
    ephemeral_key: crypto.ec.EllipticCurvePrivateKey,
    signing_key: crypto.ec.EllipticCurvePrivateKey,
) -> bytes:
    """key_data of Security setup key_agreement (Blue Book 4.4.7 method 3):
    ephemeral public key X‖Y ‖ ECDSA signature of key_id ‖ X‖Y with the signing key."""
    point = public_key_to_point(ephemeral_key.public_key())
    return point + ecdsa_sign(signing_key, bytes((key_id,)) + point)


def verify_key_agreement_data(
    key_id: int, key_data: bytes, signer_public_key: crypto.ec.EllipticCurvePublicKey
) -> crypto.ec.EllipticCurvePublicKey:
    """Check the peer's signed ephemeral key and return it."""
    params = suite_of_key(signer_public_key)
    point_length = 2 * params.coordinate_length
    if len(key_data) != point_length + params.signature_length:
        raise SignatureError(
            f"key agreement data of {len(key_data)} bytes: suite {params.suite} expects public key "
            f"({point_length}) ‖ signature ({params.signature_length})"
        )
    point = key_data[:point_length]
    ecdsa_verify(
        signer_public_key, bytes((key_id,)) + point, key_data[point_length:], "key agreement data"
    )
    return public_key_from_point(point, params.suite)
