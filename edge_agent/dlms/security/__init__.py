"""DLMS security: SC byte, AES-GCM ciphering of APDUs, general-signing, HLS, keys.

Sans-IO: bytes and key objects in, bytes and values out. Key material travels as
:class:`~edge_agent.dlms.secret.Secret` (or ``cryptography`` private-key objects, whose
repr shows no key bytes) and never appears in a message.

The names below load their module when first asked for (PEP 562), so that deciphering
does not load signing, layer peeling or the replay guard.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

# Each module's names that this package re-exports.
_EXPORTS: dict[str, tuple[str, ...]] = {
    "ciphering": ("CipheredApdu", "Unprotected", "decipher", "protect", "unprotect"),
    "control": ("CipherKeys", "SecurityControl", "SecurityPolicy", "suite_parameters"),
    "header": ("AgreedKey", "GeneralCipheringHeader", "IdentifiedKey", "TransactionHeader",
               "WrappedKey"),
    "layers": ("Peeled", "peel"),
    "replay": ("ReceiveCounterGuard",),
    "signing": ("GeneralSigning", "sign", "verify"),
    "tags": ("Form",),
}
_MODULE_OF: dict[str, str] = {name: module for module, names in _EXPORTS.items() for name in names}


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # later accesses are plain global look-ups
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


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
