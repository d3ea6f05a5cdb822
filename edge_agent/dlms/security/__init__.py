"""DLMS security: SC byte, AES-GCM ciphering of APDUs, general-signing, HLS, keys.

Sans-IO: bytes and key objects in, bytes and values out. Key material travels as
:class:`~edge_agent.dlms.secret.Secret` (or ``cryptography`` private-key objects, whose
repr shows no key bytes) and never appears in a message.
"""

from edge_agent.dlms.security.ciphering import (
    CipheredApdu,
    Unprotected,
    decipher,
    protect,
    unprotect,
)
from edge_agent.dlms.security.control import (
    CipherKeys,
    SecurityControl,
    SecurityPolicy,
    suite_parameters,
)
from edge_agent.dlms.security.header import (
    AgreedKey,
    GeneralCipheringHeader,
    IdentifiedKey,
    TransactionHeader,
    WrappedKey,
)
from edge_agent.dlms.security.layers import Peeled, peel
from edge_agent.dlms.security.replay import ReceiveCounterGuard
from edge_agent.dlms.security.signing import GeneralSigning, sign, verify
from edge_agent.dlms.security.tags import Form

__all__ = [
    "AgreedKey",
    "CipherKeys",
    "CipheredApdu",
    "Form",
    "GeneralCipheringHeader",
    "GeneralSigning",
    "IdentifiedKey",
    "Peeled",
    "ReceiveCounterGuard",
    "SecurityControl",
    "SecurityPolicy",
    "TransactionHeader",
    "Unprotected",
    "WrappedKey",
    "decipher",
    "peel",
    "protect",
    "sign",
    "suite_parameters",
    "unprotect",
    "verify",
]
