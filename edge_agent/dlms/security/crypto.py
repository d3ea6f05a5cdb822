"""The one door to the ``cryptography`` package: its modules, loaded on first use.

``cryptography``'s native module costs about 6 MB of resident memory and its X.509 part
about 7 MB more: a process that reads meters without ciphering, or ciphers without
signing, should not pay for them (a Raspberry Pi runs this). So no module of the core
imports ``cryptography`` itself; each does ``from edge_agent.dlms.security import crypto``
(cheap) and names what it needs at the moment it needs it::

    crypto.ec.ECDSA(crypto.hashes.SHA256())      # loads ec and hashes, not x509

The type checker sees the real modules (the imports under ``TYPE_CHECKING``); at run time
the first access of a name imports its module once (PEP 562 module ``__getattr__``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # noqa: F401 below: used as attributes of this module, ``crypto.ec``
    from cryptography import exceptions, x509  # noqa: F401
    from cryptography.hazmat.primitives import hashes, keywrap, serialization  # noqa: F401
    from cryptography.hazmat.primitives.asymmetric import ec  # noqa: F401
    from cryptography.hazmat.primitives.asymmetric import utils as dss  # noqa: F401
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes  # noqa: F401
    from cryptography.hazmat.primitives.kdf import concatkdf  # noqa: F401
    from cryptography.x509 import oid  # noqa: F401

#: Name here -> (module to import, attribute of it or None for the module itself).
_SOURCES: dict[str, tuple[str, str | None]] = {
    "exceptions": ("cryptography.exceptions", None),
    "x509": ("cryptography.x509", None),
    "oid": ("cryptography.x509.oid", None),
    "hashes": ("cryptography.hazmat.primitives.hashes", None),
    "keywrap": ("cryptography.hazmat.primitives.keywrap", None),
    "serialization": ("cryptography.hazmat.primitives.serialization", None),
    "ec": ("cryptography.hazmat.primitives.asymmetric.ec", None),
    "dss": ("cryptography.hazmat.primitives.asymmetric.utils", None),
    "Cipher": ("cryptography.hazmat.primitives.ciphers", "Cipher"),
    "algorithms": ("cryptography.hazmat.primitives.ciphers.algorithms", None),
    "modes": ("cryptography.hazmat.primitives.ciphers.modes", None),
    "concatkdf": ("cryptography.hazmat.primitives.kdf.concatkdf", None),
}

__all__ = sorted(_SOURCES)


def __getattr__(name: str) -> Any:
    try:
        module_name, attribute = _SOURCES[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    module = importlib.import_module(module_name)
    value = module if attribute is None else getattr(module, attribute)
    globals()[name] = value  # later accesses are plain global look-ups
    return value
