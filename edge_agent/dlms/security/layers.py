"""Peel nested protection: ciphering inside signing, signing inside ciphering.

general-signing and the ciphering APDUs nest freely (Green Book 9.2.7.3: "the signed
APDU may be ciphered, the ciphered APDU may be signed"). ``peel`` removes layer after
layer until a plain APDU remains, verifying each, and reports what it removed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from edge_agent.dlms.errors import DecodeError, MissingKeyError
from edge_agent.dlms.secret import Secret
from edge_agent.dlms.security.ciphering import ReceiveCounterGuardLike, Unprotected, unprotect
from edge_agent.dlms.security.control import CipherKeys
from edge_agent.dlms.security.signing import GeneralSigning, PublicKeyOrCertificate, verify
from edge_agent.dlms.security.tags import GENERAL_SIGNING, is_ciphered

MAX_DEPTH = 4  # a signed-then-ciphered-then-signed... chain deeper than this is not an APDU
SignerLookup = (
    Mapping[bytes, PublicKeyOrCertificate] | Callable[[bytes], PublicKeyOrCertificate | None]
)


@dataclass(frozen=True, slots=True)
class Peeled:
    plaintext: bytes
    layers: tuple[Unprotected | GeneralSigning, ...]  # outermost first


def _signer(lookup: SignerLookup | None, system_title: bytes) -> PublicKeyOrCertificate:
    found = None
    if lookup is not None:
        found = lookup.get(system_title) if isinstance(lookup, Mapping) else lookup(system_title)
    if found is None:
        raise MissingKeyError(
            f"general-signing from {system_title.hex().upper()}: no certificate or public key of that "
            "system title is known: give the signer's certificate or public key"
        )
    return found


def peel(
    apdu: bytes,
    *,
    keys: CipherKeys,
    system_title: bytes | None = None,
    signers: SignerLookup | None = None,
    content_key: Secret | None = None,
    guard: ReceiveCounterGuardLike | None = None,
) -> Peeled:
    """Verify and remove every ciphering and signing layer of ``apdu``."""
    layers: list[Unprotected | GeneralSigning] = []
    current = bytes(apdu)
    for _ in range(MAX_DEPTH + 1):
        if not current:
            raise DecodeError("empty APDU inside a protection layer")
        if current[0] == GENERAL_SIGNING:
            signed = GeneralSigning.from_bytes(current)
            current = verify(signed, _signer(signers, signed.originator_system_title))
            layers.append(signed)
        elif is_ciphered(current[0]):
            opened = unprotect(current, keys, system_title, content_key=content_key, guard=guard)
            current = opened.plaintext
            layers.append(opened)
        else:
            return Peeled(current, tuple(layers))
    raise DecodeError(f"more than {MAX_DEPTH} nested protection layers: not a valid APDU")
